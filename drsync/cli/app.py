"""What every command module of the CLI shares: the Typer app, the consoles, the options, and
the one error boundary (`_run`) that turns a DrsyncError into one line, a hint and an exit code.

Command modules (main.py, oneshot.py, inspect.py, publications.py, drill.py, roles/cli.py)
import from here and register on `app`; main.py imports them all. Nothing here imports them,
so there is no import cycle.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from drsync.config import Settings, load_settings
from drsync.config.envfile import load_side_env
from drsync.errors import ConfigError, DrsyncError
from drsync.logsetup import setup_stderr_logging

app = typer.Typer(
    help="drsync: fine-grained disaster-recovery replication of Delta Lake tables.\n\n"
    "Every command reads backupRestore.ini (-c). Run `drsync COMMAND --help` for details.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

err = Console(stderr=True)
out = Console()
ConfigOpt = Annotated[Path, typer.Option("-c", "--config", help="backupRestore.ini of this site.")]
log = logging.getLogger("drsync")


def _setup_logging(level: str) -> None:
    setup_stderr_logging(level)  # the daemon's setup (logsetup.py): same format, same redaction


def _load(path: Path, side: str = "primary") -> Settings:

    settings = load_settings(path)
    load_side_env(settings, "primary" if side == "primary" else "standby")
    level = (settings.primary_cluster_logging_level if side == "primary"
             else settings.standby_cluster_logging_level)
    _setup_logging(level)
    return settings


@contextmanager
def _progress_ui(label: str) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress bar on a terminal; plain log lines per step otherwise."""
    if not err.is_terminal:
        last = {"step": ""}

        def plain(step: str, done: int, total: int) -> None:
            if step != last["step"]:
                last["step"] = step
                log.debug("%s: step %s", label, step)

        yield plain
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=err, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def rich_ui(step: str, done: int, total: int) -> None:
            bar.update(task, description=f"{label} {step}", completed=done, total=total or None)

        yield rich_ui


def _run(fn: Callable[[], int | None]) -> None:
    """The one error boundary: DrsyncError -> one line (+ hint), never a traceback."""
    try:
        code = fn() or 0
    except DrsyncError as e:
        err.print(f"[red]error:[/red] {e.message}", highlight=False, markup=True, soft_wrap=True)
        if e.hint:
            err.print(f"hint: {e.hint}", highlight=False, soft_wrap=True)
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None
    except Exception as e:  # a bug: still one line, traceback only on request
        if os.environ.get("DRSYNC_DEBUG"):
            raise
        err.print(f"[red]internal error:[/red] {type(e).__name__}: {e}", highlight=False, soft_wrap=True)
        err.print("hint: re-run with DRSYNC_DEBUG=1 for the traceback and report it", highlight=False)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


FormatOpt = Annotated[str, typer.Option("--format", help="text, or json (for scripts and monitoring).")]


def _text_or_json(fmt: str) -> Literal["text", "json"]:
    if fmt == "text":
        return "text"
    if fmt == "json":
        return "json"
    raise ConfigError(f"--format must be text or json, not {fmt!r}")


def _say(line: str) -> None:
    out.print(line, highlight=False, soft_wrap=True, markup=False)
