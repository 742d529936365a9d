"""Bad input: a clear one-line error, a non-zero exit, and nothing applied."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

from drsync.demo import create_sample_warehouse, table_dir
from tests.helpers import Sites, drsync, duck, rows, tree


def _tree_digest(root: Path) -> str:
    """Names, sizes and contents of every file under root (staging excluded)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "staging")
        for name in sorted(filenames):
            p = Path(dirpath) / name
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _one_line_error(p: object) -> str:
    stderr = p.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def _first_round(sites: Sites) -> None:
    create_sample_warehouse(sites.primary, rows=20)
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)
    write_deltalake(str(table_dir(sites.primary, "hr.people.employees")),
                    pa.table({"id": pa.array([999], pa.int64()), "amount": [1.0], "note": ["x"]}),
                    mode="append")
    drsync("backup", "-c", str(sites.config), check=True)


def test_bad_config_value_names_file_line_key_and_runs_nothing(sites: Sites) -> None:
    text = sites.config.read_text().replace("parrallel-process=2", "parrallel-process=99")
    sites.config.write_text(text + "compresion-level=3\n")
    before = tree(sites.base)  # make_sites' publications.json is already there
    p = drsync("backup", "-c", str(sites.config))
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert f"{sites.config}:" in p.stderr and "parrallel-process" in p.stderr and "1-32" in p.stderr
    assert "did you mean 'compression-level'" in p.stderr
    assert tree(sites.base) == before, "a round started despite bad configuration"


def test_missing_config_file(tmp_path: Path) -> None:
    p = drsync("restore", "-c", str(tmp_path / "nope.ini"))
    assert p.returncode == 2
    assert "nope.ini" in _one_line_error(p)


def test_corrupted_bundle_byte_is_detected_nothing_applied_then_reshipped(sites: Sites) -> None:
    _first_round(sites)
    before = _tree_digest(sites.standby)
    (bundle,) = [p for p in sites.standby_media.rglob("*.tar.zst") if p.parent.name > sorted(
        d.name for d in sites.standby_media.iterdir())[0]]
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0x40
    bundle.write_bytes(bytes(data))
    p = drsync("restore", "-c", str(sites.config))
    assert p.returncode == 1
    line = _one_line_error(p)
    assert bundle.name in line
    assert _tree_digest(sites.standby) == before, "a corrupt set changed the standby"
    # The standby set the manifest aside; the primary notices and ships the set again.
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)
    t = "hr.people.employees"
    assert rows(duck(), table_dir(sites.standby, t)) == rows(duck(), table_dir(sites.primary, t))


def test_truncated_manifest_is_refused_by_name(sites: Sites) -> None:
    _first_round(sites)
    before = _tree_digest(sites.standby)
    newest = sorted((sites.standby_meta / "manifests").glob("*.manifest.json"))[-1]
    newest.write_bytes(newest.read_bytes()[:100])
    p = drsync("restore", "-c", str(sites.config))
    assert p.returncode == 1
    assert newest.name in _one_line_error(p)
    assert _tree_digest(sites.standby) == before


def test_missing_prior_set_blocks_loudly(sites: Sites) -> None:
    _first_round(sites)
    write_deltalake(str(table_dir(sites.primary, "hr.people.employees")),
                    pa.table({"id": pa.array([1000], pa.int64()), "amount": [1.0], "note": ["y"]}),
                    mode="append")
    drsync("backup", "-c", str(sites.config), check=True)
    manifests = sorted((sites.standby_meta / "manifests").glob("*.manifest.json"))
    middle = manifests[-2]
    middle.unlink()
    p = drsync("restore", "-c", str(sites.config))
    assert p.returncode == 1
    line = _one_line_error(p)
    assert middle.name.split(".")[0] in line and "missing" in line
    state = json.loads((sites.standby_meta / "standby-state.json").read_text())
    assert state["last_key"] == manifests[0].name.split(".")[0]
    progress = json.loads(drsync("show-progress", "-c", str(sites.config), "--format", "json").stdout)
    assert progress["apply"]["restoreState"] == "abnormal"
    assert progress["standby cluster"]["errorCode"] == "DRS310"


def test_cli_usage_errors_are_clean(sites: Sites) -> None:
    p = drsync("show-progress", "-c", str(sites.config), "--format", "xml")
    assert p.returncode != 0 and "Traceback" not in p.stderr
    p = drsync("verify", "-c", str(sites.config), "--table", "no.such.table")
    assert p.returncode == 1 and "no.such.table" in _one_line_error(p)
    p = drsync("backup")
    assert p.returncode == 2 and "Traceback" not in p.stderr
