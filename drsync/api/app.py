"""The daemon's HTTP API (FastAPI, served by uvicorn inside `drsync daemon`).

Read endpoints: `GET /progress` (the show-progress document, field for field, spaces
included), `GET /healthz` (200 / 503 with the failing checks, for load balancers and monitors
that should not parse anything), `GET /metrics` (Prometheus text), `GET /status` (what the
loop decided last and why rounds pause). Mutating endpoints only record intent, like the CLI
commands, then wake the loop: `POST /stop-backup`, `/start-backup`, `/stop-restore`,
`/start-restore`, each requiring `Authorization: Bearer <api-token-file's content>`; without
api-token-file they are disabled (403).

No request ever gets a 500: a DrsyncError (e.g. the other side's state cannot be read) or a
bug answers 503 with a one-line JSON reason.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Any, Literal, Protocol

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from drsync import __version__
from drsync.api.dashboard import history_rows, render_page
from drsync.api.metrics import CONTENT_TYPE, DrsyncMetrics
from drsync.config import Role, Settings
from drsync.config.private import check_private_file
from drsync.errors import ConfigError, DrsyncError
from drsync.primary.desync_guard import confirm_refused
from drsync.roles.status import progress_document
from drsync.site.document import ProgressDocument, standby_rpo_seconds
from drsync.site.forecast import site_forecast
from drsync.site.progress import read_verify_state
from drsync.site.rpo_history import load_history
from drsync.site.state import PrimaryState, StandbyState, clear_stop, request_stop

log = logging.getLogger("drsync.api.app")


class DaemonView(Protocol):
    """What the API needs from the daemon (drsync.daemon.main.Daemon; a fake in tests)."""

    role: Role
    metrics: DrsyncMetrics

    @property
    def settings(self) -> Settings: ...
    def states(self) -> tuple[PrimaryState, StandbyState]: ...
    def loop_running(self) -> bool: ...
    def status(self) -> dict[str, Any]: ...
    def wake(self) -> None: ...


# ------------------------------------------------------------------ response models


class Healthy(BaseModel):
    status: Literal["ok"] = "ok"


class HealthCheck(BaseModel):
    name: Literal["loop", "state", "rpo"]
    reason: str


class Unhealthy(BaseModel):
    status: Literal["failing"] = "failing"
    checks: list[HealthCheck]


class JobInfo(BaseModel):
    every_seconds: float
    last_decision: str
    decided_at: str
    next_run: str


class DaemonStatus(BaseModel):
    role: Role
    pid: int
    replication_mode: Literal["scheduled", "continuous"] = Field(
        "scheduled", description="replication-mode: rounds on the schedule, or as soon as a commit lands")
    loop_running: bool
    config: str = Field(description="the config file; '' unless the request carries the bearer token")
    reload: str = Field(description="outcome of the last SIGHUP, '' if none")
    paused: str = Field(description="why backup rounds do not start right now, '' when they do")
    jobs: dict[str, JobInfo]
    recent_errors: list[str] = Field(default_factory=list,
                                     description="the last warnings and errors of passes, newest last")


class IntentRecorded(BaseModel):
    intent: str
    message: str


class ErrorBody(BaseModel):
    detail: str


def failing_checks(view: DaemonView) -> list[HealthCheck]:
    failing: list[HealthCheck] = []
    if not view.loop_running():
        failing.append(HealthCheck(name="loop", reason="the daemon's scheduling loop is not running"))
    primary, standby = view.states()
    state, side = ((primary.state, primary.progress) if view.role == "primary"
                   else (standby.state, standby.progress))
    if state == "abnormal":
        failing.append(HealthCheck(name="state", reason=(
            f"{view.role} state is abnormal: step {side.failedStep} failed: {side.errorMsg} "
            f"({side.errorCode})")))
    target = view.settings.rpo_target
    rpo = standby_rpo_seconds(standby)
    if target is not None and rpo is not None and rpo > target.total_seconds():
        failing.append(HealthCheck(name="rpo", reason=(
            f"RPO {rpo} s is above rpo-target {target.total_seconds():g} s")))
    return failing


# ------------------------------------------------------------------ the app

_DENIED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or wrong bearer token"},
    403: {"model": ErrorBody, "description": "disabled: set api-token-file"},
    409: {"model": ErrorBody, "description": "this daemon does not run that operation"},
}
_BEARER = HTTPBearer(auto_error=False, description="the content of api-token-file")
_INTENTS: tuple[tuple[Literal["backup", "restore"], bool], ...] = (
    ("backup", True), ("backup", False), ("restore", True), ("restore", False))
_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "a state cannot be read right now"}}


def create_app(view: DaemonView) -> FastAPI:
    app = FastAPI(title="drsync daemon", version=__version__,
                  description="Progress, health and metrics of a drsync site; stop/start intents.")

    @app.middleware("http")
    async def never_500(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        try:
            return await call_next(request)
        except DrsyncError as e:
            reason = "; ".join(e.message.splitlines())
        except Exception as e:  # a bug: a one-line reason, the traceback in the log
            log.exception("API %s %s failed", request.method, request.url.path)
            reason = f"internal error: {type(e).__name__}: {e}".splitlines()[0]
        return JSONResponse({"detail": reason}, status_code=503)

    def require_token(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> None:
        path = view.settings.api_token_file
        if path is None:
            raise HTTPException(403, "disabled: set api-token-file")
        try:
            check_private_file(path, "api-token-file")
        except ConfigError as e:
            log.warning("API: %s (%s); mutating endpoints refuse", e.message, e.hint)
            raise HTTPException(403, f"disabled: {e.message}; {e.hint}") from None
        try:
            expected = path.read_bytes().strip()
        except OSError as e:
            log.warning("API: api-token-file %s cannot be read (%s); mutating endpoints refuse",
                        path, e.strerror)
            raise HTTPException(403, "disabled: api-token-file cannot be read") from None
        if not expected:
            raise HTTPException(403, "disabled: api-token-file is empty")
        given = creds.credentials.encode() if creds is not None else b""
        if not hmac.compare_digest(given, expected):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    @app.get("/progress", response_model=ProgressDocument, response_model_by_alias=True,
             responses=_UNAVAILABLE, summary="The show-progress document of both sides")
    def progress() -> JSONResponse:
        # rendered by the document itself, exactly as `show-progress --format json` prints it
        return JSONResponse(progress_document(view.settings, view.states()).as_json())

    @app.get("/", response_class=HTMLResponse, summary="The dashboard (read-only, refreshes itself)",
             responses={200: {"content": {"text/html": {}}, "description": "the page"}, **_UNAVAILABLE})
    def dashboard() -> HTMLResponse:
        settings = view.settings
        primary, standby = view.states()
        metas = [settings.primary_metadata_destination, settings.restore_metadata_destination]
        page = render_page(
            progress_document(settings, (primary, standby)), standby, role=view.role,
            samples=load_history(settings.metadata_dir(view.role)),
            history=history_rows(metas, settings.backuprestoreinfo_file),
            errors=view.status().get("recent_errors", []),
            target_s=settings.rpo_target.total_seconds() if settings.rpo_target else None)
        return HTMLResponse(page)

    @app.get("/healthz", response_model=Healthy, summary="200 when healthy, 503 with the failing checks",
             responses={503: {"model": Unhealthy, "description": "failing checks"}})
    def healthz() -> Healthy | JSONResponse:
        failing = failing_checks(view)
        if failing:
            return JSONResponse(Unhealthy(checks=failing).model_dump(), status_code=503)
        return Healthy()

    @app.get("/metrics", response_class=Response, summary="Prometheus metrics",
             responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"},
                        **_UNAVAILABLE})
    def metrics() -> Response:
        primary, standby = view.states()
        view.metrics.set_mode(view.settings.replication_mode)
        text = view.metrics.scrape(primary, standby, view.settings.rpo_target,
                                   site_forecast(view.settings, primary, standby),
                                   read_verify_state(view.settings))
        return Response(text, media_type=CONTENT_TYPE)

    @app.get("/status", response_model=DaemonStatus, summary="What the loop decided last, and why it pauses")
    def status(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> DaemonStatus:
        doc = view.status()
        try:
            require_token(creds)
        except HTTPException:  # where the config (and so the key and token files) live: not for anyone
            doc = {**doc, "config": ""}
        return DaemonStatus.model_validate(doc)

    def intent_endpoint(op: Literal["backup", "restore"], stop: bool) -> Callable[[Request], IntentRecorded]:
        name = f"{'stop' if stop else 'start'}-{op}"
        side: Role = "primary" if op == "backup" else "standby"

        def record(request: Request) -> IntentRecorded:
            if view.role != side:
                port = "backup-port" if side == "primary" else "restore-port"
                raise HTTPException(409, f"this daemon is the {view.role}; send {name} to the {side}'s "
                                         f"daemon ({port})")
            meta = view.settings.metadata_dir(side)
            if stop:
                request_stop(meta, op)
                message = f"{op} will stop at the next step boundary; start-{op} resumes it"
            else:
                message = f"{op} resumed" if clear_stop(meta, op) else f"{op} was not stopped"
            log.info("API: %s recorded (client %s)", name, request.client.host if request.client else "?")
            view.wake()
            return IntentRecorded(intent=name, message=message)

        record.__name__ = name.replace("-", "_")
        record.__doc__ = f"Record the {name} intent (as `drsync {name}` does) and wake the loop."
        return record

    for op, stop in _INTENTS:
        endpoint = intent_endpoint(op, stop)
        app.post(f"/{'stop' if stop else 'start'}-{op}", response_model=IntentRecorded, status_code=202,
                 dependencies=[Depends(require_token)], responses=_DENIED,
                 operation_id=endpoint.__name__)(endpoint)

    @app.post("/confirm-desync", response_model=IntentRecorded, status_code=202,
              dependencies=[Depends(require_token)], responses=_DENIED,
              summary="Confirm the desynchronisation the last backup round refused (desync-guard)")
    def confirm_desync(request: Request) -> IntentRecorded:

        if view.role != "primary":
            raise HTTPException(409, f"this daemon is the {view.role}; send confirm-desync to the "
                                     "primary's daemon (backup-port)")
        try:
            names = confirm_refused(view.settings.primary_metadata_destination)
        except DrsyncError as e:
            raise HTTPException(409, e.message) from None
        log.info("API: confirm-desync of %d table(s) recorded (client %s)", len(names),
                 request.client.host if request.client else "?")
        view.wake()
        return IntentRecorded(intent="confirm-desync",
                              message=f"the next round may desynchronise {len(names)} table(s): "
                                      + ", ".join(names))
    return app


# ------------------------------------------------------------------ serving it


class _ThreadedServer(uvicorn.Server):
    """uvicorn in a thread: the daemon's own signal handlers stay in charge."""

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        pass

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # uvicorn >= 0.29
        yield


class ApiServer:
    """The app served by uvicorn in a thread. The socket is bound here, in the caller's thread,
    so a busy port fails the daemon's start with one clear line instead of a dead thread."""

    def __init__(self, view: DaemonView, host: str, port: int) -> None:
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
            self._sock = socket.socket(family, kind, proto)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind(address)
        except OSError as e:
            raise DrsyncError(f"HTTP API: cannot listen on {host}:{port}: {e.strerror or e}",
                              hint="set a free backup-port/restore-port or api-listen, or stop what uses it"
                              ) from None
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        config = uvicorn.Config(create_app(view), log_config=None, access_log=False, lifespan="off")
        self._server = _ThreadedServer(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="drsync-api", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
