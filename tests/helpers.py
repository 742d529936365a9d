"""Shared test helpers: sites on this host, the CLI as a subprocess, an independent reader.

Content checks use DuckDB's delta extension directly (not drsync's own log code, and not
drsync.tableformat.delta.reader either, so a bug there cannot hide a bug in replication).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import duckdb_extension_delta

from drsync.demo import write_config
from drsync.site.names import relpath_of

REPO = Path(__file__).resolve().parent.parent
TESTDATA = REPO / "tests" / "data" / "delta-rs"


@dataclass
class Sites:
    base: Path
    config: Path

    @property
    def primary(self) -> Path:
        return self.base / "primary" / "warehouse"

    @property
    def standby(self) -> Path:
        return self.base / "standby" / "warehouse"

    @property
    def primary_meta(self) -> Path:
        return self.base / "primary" / "metadata"

    @property
    def standby_meta(self) -> Path:
        return self.base / "standby" / "metadata"

    @property
    def primary_media(self) -> Path:
        return self.base / "primary" / "media"

    @property
    def standby_media(self) -> Path:
        return self.base / "standby" / "media"


def make_sites(base: Path, extra: str = "") -> Sites:
    (base / "primary" / "warehouse").mkdir(parents=True, exist_ok=True)
    (base / "standby" / "warehouse").mkdir(parents=True, exist_ok=True)
    return Sites(base, write_config(base, grace="0s", extra=extra))


def read_manifests(manifests_dir: Path) -> list[dict[str, Any]]:
    """The manifests of a directory in key order, each with `versions` the whole barrier map.

    Rebuilt here from the raw JSON (not with drsync.sets.barriers): a 1.3 manifest carries only
    the tables that moved since `versions_base`, which must be a manifest before it here."""
    out: list[dict[str, Any]] = []
    whole: dict[str, dict[str, int]] = {}
    for path in sorted(manifests_dir.glob("*.manifest.json")):
        m = json.loads(path.read_text())
        base = m.get("versions_base")
        if base is not None:
            assert base in whole, f"{path}: versions_base {base} is not an earlier manifest here"
            dropped = set(m.get("versions_dropped", []))
            full = {n: v for n, v in whole[base].items() if n not in dropped}
            full.update(m["versions"])
            m["versions"] = full
        whole[m["key"]] = m["versions"]
        out.append(m)
    return out


def drsync(*args: str, env: dict[str, str] | None = None, check: bool = False,
           timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as an operator would.

    `backup` gets `--now`: tests run rounds back to back, which backup-exec-time-interval
    (honoured by one-shot runs, tests/integration/test_dws_oneshot.py) would otherwise skip."""
    if args[:1] == ("backup",) and "--now" not in args:
        args = ("backup", "--now", *args[1:])
    full_env = {**os.environ, **(env or {})}
    full_env.pop("DRSYNC_DEBUG", None)
    p = subprocess.run([sys.executable, "-m", "drsync", *args], capture_output=True, text=True,
                       env=full_env, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"drsync {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def duck() -> Any:
    root = Path(os.path.dirname(duckdb_extension_delta.__file__)) / "extensions"
    ext = sorted(root.glob("*/delta.duckdb_extension"))[-1]
    con = duckdb.connect()
    con.execute(f"LOAD '{ext}'")
    return con


def rows(con: Any, table: Path, version: int | None = None) -> list[tuple[Any, ...]]:
    """All rows of a table (at a version), sorted, read by DuckDB."""
    opt = f", version={int(version)}" if version is not None else ""
    p = str(table).replace("'", "''")
    return sorted(con.execute(f"SELECT * FROM delta_scan('{p}'{opt})").fetchall(), key=repr)


def tree(base: Path) -> dict[str, tuple[int, int]]:
    """Every path under base with its mode and size: any change shows."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            out[os.path.relpath(os.path.join(dirpath, name), base)] = (st.st_mode, st.st_size)
    return out


@contextlib.contextmanager
def as_owner_of(base: Path) -> Iterator[None]:
    """Act as an unprivileged owner of `base`: mode bits do not stop root.

    As root, hand the tree to `nobody` and switch the effective uid/gid for the block (the
    real uid stays 0, so we can switch back). As any other user, do nothing.
    """
    if os.geteuid() != 0:
        yield
        return
    nobody = pwd.getpwnam("nobody")
    for dirpath, dirnames, filenames in os.walk(base):
        for n in dirnames + filenames:
            os.lchown(os.path.join(dirpath, n), nobody.pw_uid, nobody.pw_gid)
    os.lchown(base, nobody.pw_uid, nobody.pw_gid)
    os.setegid(nobody.pw_gid)
    os.seteuid(nobody.pw_uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def latest_version(table: Path) -> int:
    from deltalake import DeltaTable

    return DeltaTable(str(table)).version()


Rows = list[tuple[Any, ...]]
VersionRows = dict[str, dict[int, Rows]]  # table -> version -> its rows, as DuckDB read them


def capture_versions(con: Any, warehouse: Path, names: list[str], seen: VersionRows) -> None:
    """Record the rows of every version of `names` the primary can read now, for later
    comparison with the standby (a version vacuumed before we looked is simply skipped)."""
    for name in names:
        p = warehouse / relpath_of(name)
        have = seen.setdefault(name, {})
        for v in range(latest_version(p) + 1):
            if v not in have:
                try:
                    have[v] = rows(con, p, version=v)
                except Exception:
                    continue  # vacuumed before we looked: never readable on the primary
