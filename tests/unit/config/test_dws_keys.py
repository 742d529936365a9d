"""The DWS keys that used to be accepted without effect (issue 16, item 7): each is honoured
or refused with a reason."""

from __future__ import annotations

import concurrent.futures
import os
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from drsync.config import load_settings, parse_settings_text
from drsync.config.envfile import load_side_env, parse_env_file
from drsync.errors import ConfigError
from tests.helpers import drsync, make_sites
from tests.unit.config.test_config import SOURCE, problems, render


def test_life_cycle_bare_number_is_days() -> None:
    assert parse_settings_text(render(life_cycle="7"), SOURCE).life_cycle == timedelta(days=7)
    assert parse_settings_text(render(life_cycle="12h"), SOURCE).life_cycle == timedelta(hours=12)


def test_compression_type_codes_of_the_dws_tool() -> None:
    assert parse_settings_text(render(compression_type="2"), SOURCE).compression_type == "zstd"
    assert parse_settings_text(render(compression_type="0"), SOURCE).compression_type == "none"
    (line,) = problems(render(compression_type="1"))
    assert "compression-type" in line and "drsync bundles are zstd" in line


def test_warehouse_layout_key() -> None:
    assert parse_settings_text(render(), SOURCE).warehouse_layout == "dws"
    assert parse_settings_text(render(warehouse_layout="hive"), SOURCE).warehouse_layout == "hive"
    (line,) = problems(render(warehouse_layout="delta"))
    assert "warehouse-layout" in line and "hive" in line


def test_cpu_cores_bounds_the_worker_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A round with parrallel-process=8 and cpu-cores=1 never starts a pool above one worker."""
    import drsync.primary.packing
    import drsync.transport.base
    import drsync.transport.window
    from drsync.primary.round import run_backup

    sites = make_sites(tmp_path / "s", extra="cpu-cores=1\n")
    text = sites.config.read_text().replace("parrallel-process=2", "parrallel-process=8")
    sites.config.write_text(text)
    settings = load_settings(sites.config)
    assert settings.parallel_process == 8 and settings.workers == 1
    for i in range(3):
        write_deltalake(str(sites.primary / "db" / "s" / f"t{i}"), pa.table({"id": [i]}))
    seen: list[int | None] = []

    class Recording(concurrent.futures.ThreadPoolExecutor):  # a real pool that notes its size
        def __init__(self, max_workers: int | None = None, *args: object, **kw: object) -> None:
            seen.append(max_workers)
            super().__init__(max_workers)

    monkeypatch.setattr(drsync.primary.packing, "ThreadPoolExecutor", Recording)
    # shipping: Transport.send_files (base: local; window.py: ssh) sizes the sending pool
    monkeypatch.setattr(drsync.transport.base, "ThreadPoolExecutor", Recording)
    monkeypatch.setattr(drsync.transport.window, "ThreadPoolExecutor", Recording)
    assert run_backup(settings).key is not None
    assert seen and set(seen) == {1}


def test_env_file_is_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / "primary.env"
    env.write_text("# site settings\nexport DRSYNC_TEST_A=\"two words\"\nDRSYNC_TEST_B='$HOME'\n\n")
    assert parse_env_file(env) == {"DRSYNC_TEST_A": "two words", "DRSYNC_TEST_B": "$HOME"}
    sites = make_sites(tmp_path / "s", extra=f"primary-env={env}\n")
    monkeypatch.delenv("DRSYNC_TEST_A", raising=False)
    monkeypatch.delenv("DRSYNC_TEST_B", raising=False)
    load_side_env(load_settings(sites.config), "primary")
    assert os.environ["DRSYNC_TEST_A"] == "two words"
    assert load_side_env(load_settings(sites.config), "standby") == {}  # standby-env not set


def test_a_bad_env_file_stops_the_command_naming_file_and_line(tmp_path: Path) -> None:
    env = tmp_path / "primary.env"
    env.write_text("A=1\nthis is not an assignment\n")
    sites = make_sites(tmp_path / "s", extra=f"primary-env={env}\n")
    r = drsync("backup", "-c", str(sites.config))
    assert r.returncode == 2 and f"{env}:2:" in r.stderr, r.stderr
    missing = make_sites(tmp_path / "m", extra=f"primary-env={tmp_path / 'nope.env'}\n")
    r = drsync("show-progress", "-c", str(missing.config))
    assert r.returncode == 2 and "nope.env: cannot read" in r.stderr
    with pytest.raises(ConfigError):
        parse_env_file(tmp_path / "nope.env")
