"""drsync.tableformat.delta: log listing, replay against deltalake, DV paths, path safety."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from hypothesis import given, settings
from hypothesis import strategies as st

from drsync.errors import TableFormatError, UnsafePathError
from drsync.tableformat import delta
from drsync.tableformat.delta import (
    LogFile,
    commit_timestamp_ms,
    data_path,
    deletion_vector_path,
    files_added,
    files_removed,
    is_delta_table,
    list_log,
    read_commit,
    safe_relpath,
    snapshot,
)
from drsync.tableformat.delta import paths as delta_paths

TESTDATA = Path(__file__).resolve().parents[2] / "data" / "delta-rs"
AWKWARD = ["a b", "a=b", "100%", "Zürich", "x/y", "#?&"]


def copy_table(name: str, dest: Path) -> Path:
    """A private copy of a reference table (the shared folder is never modified)."""
    target = dest / name
    shutil.copytree(TESTDATA / name, target, symlinks=True)
    return target


def log(v: int) -> str:
    return f"_delta_log/{v:020d}.json"


def live_data(table: Path, version: int, name: str = "d.s.t") -> dict[str, int | None]:
    snap = snapshot(table, version, list_log(table), name)
    return {p: f.size for p, f in snap.data_files.items() if f.kind == "data"}


def assert_matches_deltalake(table: Path, version: int, files_on_disk: bool = True) -> None:
    """Our replay of `version` lists exactly the files (and sizes) deltalake reads."""
    dt = DeltaTable(str(table), version=version)
    ours = live_data(table, version)
    assert {str(table / p) for p in ours} == set(dt.file_uris()), f"version {version}"
    adds = pa.table(dt.get_add_actions(flatten=True))
    theirs = dict(zip((unquote(p) for p in adds.column("path").to_pylist()),
                      adds.column("size_bytes").to_pylist(), strict=True))
    assert ours == theirs, f"version {version}"
    if files_on_disk:  # some reference tables ship their log only
        for p in ours:
            assert (table / p).is_file(), p


# --- list_log -------------------------------------------------------------------------------


def test_list_log_v2_checkpoints_and_crc(tmp_path: Path) -> None:
    t = copy_table("checkpoint-v2-table", tmp_path)
    listing = list_log(t)
    assert sorted(listing.commits) == list(range(10))
    assert sorted(listing.crcs) == list(range(10))
    assert sorted(listing.checkpoints) == [6, 8]
    for v in (6, 8):
        c = listing.checkpoints[v]
        assert c.kind == "v2" and c.complete
        assert len(c.files) == 1
        assert c.files[0].name.startswith(f"_delta_log/{v:020d}.checkpoint.")
        assert c.files[0].name.endswith(".json")
    assert listing.last_checkpoint is not None
    assert listing.last_checkpoint.name == "_delta_log/_last_checkpoint"
    assert listing.compactions == []
    assert listing.latest_version == 9
    newest = listing.newest_checkpoint(9)
    assert newest is not None and newest.version == 8
    newest = listing.newest_checkpoint(7)
    assert newest is not None and newest.version == 6
    assert listing.newest_checkpoint(5) is None
    # Sidecars (a directory) and `_autostats` are not log files of a version.
    names = {f.name for f in listing.all_files()}
    assert not any("_sidecars" in n or "_autostats" in n for n in names)
    assert len(names) == 10 + 10 + 2 + 1


def test_list_log_sizes_and_mtimes(tmp_path: Path) -> None:
    t = copy_table("simple_table_with_checkpoint", tmp_path)
    os.utime(t / log(3), ns=(1_600_000_000_987_654_321, 1_600_000_000_987_654_321))
    listing = list_log(t)
    assert listing.commits[3] == LogFile(log(3), (t / log(3)).stat().st_size,
                                         1_600_000_000_987_654_321)
    for f in listing.all_files():
        st = (t / f.name).stat()
        assert (f.size, f.mtime_ns) == (st.st_size, st.st_mtime_ns)
    ck = listing.checkpoints[10]
    assert ck.kind == "classic" and ck.complete
    assert [f.name for f in ck.files] == ["_delta_log/00000000000000000010.checkpoint.parquet"]


def test_list_log_cleaned_log(tmp_path: Path) -> None:
    t = copy_table("checkpoints_vacuumed", tmp_path)
    listing = list_log(t)
    assert sorted(listing.commits) == list(range(5, 13))
    assert sorted(listing.checkpoints) == [5, 10]
    assert listing.latest_version == 12
    assert listing.last_checkpoint is None


def test_list_log_a_file_gone_between_scan_and_stat_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer's staged commit (`<v>.json#<n>`, object_store's) is linked into place and
    removed while drsync lists the log: seen by the scan, gone at its stat. The listing leaves
    it out instead of failing the table (a burst of commits hit this)."""
    t = copy_table("checkpoints_vacuumed", tmp_path)
    staged = t / "_delta_log" / "00000000000000000013.json#1"
    staged.write_bytes(b"{}")
    real_scandir = os.scandir

    def scandir_then_gone(path: str | Path) -> list[os.DirEntry[str]]:
        entries = list(real_scandir(path))
        staged.unlink()
        return entries

    monkeypatch.setattr("drsync.tableformat.delta.log.os.scandir", scandir_then_gone)
    listing = list_log(t)
    assert sorted(listing.commits) == list(range(5, 13))


def test_list_log_multipart_compacted_and_junk(tmp_path: Path) -> None:
    """Shapes no reference table has, built by name (classification reads names only)."""
    t = tmp_path / "t"
    logdir = t / "_delta_log"
    logdir.mkdir(parents=True)
    files = {
        log(0): b"{}", log(1): b"{}", log(2): b"{}", log(3): b"{}", log(4): b"{}",
        # version 2: a complete 3-part checkpoint
        "_delta_log/00000000000000000002.checkpoint.0000000001.0000000003.parquet": b"p1",
        "_delta_log/00000000000000000002.checkpoint.0000000002.0000000003.parquet": b"p2",
        "_delta_log/00000000000000000002.checkpoint.0000000003.0000000003.parquet": b"p3",
        # version 4: 2 parts of 3 (a writer died): not a usable checkpoint
        "_delta_log/00000000000000000004.checkpoint.0000000001.0000000003.parquet": b"q1",
        "_delta_log/00000000000000000004.checkpoint.0000000003.0000000003.parquet": b"q3",
        # V2 checkpoint, parquet flavour
        "_delta_log/00000000000000000003.checkpoint.80a083e8-7026-4e79-81be-64bd76c43a11.parquet":
            b"v2",
        "_delta_log/00000000000000000001.00000000000000000003.compacted.json": b"{}",
        "_delta_log/00000000000000000001.crc": b"{}",
        "_delta_log/_last_checkpoint": b'{"version":2}',
        # junk a listing must ignore
        "_delta_log/00000000000000000005.json.tmp": b"",
        "_delta_log/.00000000000000000005.json.crc": b"",
        "_delta_log/0000000000000000006.json": b"",  # 19 digits
        "_delta_log/00000000000000000007.checkpoint.parquet.crc": b"",
        "_delta_log/README": b"",
    }
    for rel, data in files.items():
        (t / rel).write_bytes(data)
    (logdir / "_commits").mkdir()
    (logdir / "_commits" / log(9).split("/")[1]).write_bytes(b"{}")
    (logdir / "00000000000000000008.json").mkdir()  # a directory with a commit's name
    listing = list_log(t)
    assert sorted(listing.commits) == [0, 1, 2, 3, 4]
    assert sorted(listing.crcs) == [1]
    mp = listing.checkpoints[2]
    assert mp.kind == "multipart" and mp.complete
    assert [f.name[-29:] for f in mp.files] == [
        "0000000001.0000000003.parquet", "0000000002.0000000003.parquet",
        "0000000003.0000000003.parquet"]
    torn = listing.checkpoints[4]
    assert torn.kind == "multipart" and not torn.complete
    assert listing.checkpoints[3].kind == "v2"
    assert [(a, b) for a, b, _ in listing.compactions] == [(1, 3)]
    assert listing.last_checkpoint is not None
    # The torn checkpoint is never chosen as a base.
    newest = listing.newest_checkpoint(4)
    assert newest is not None and newest.version == 3
    names = {f.name for f in listing.all_files()}
    assert names == {rel for rel in files if "json.tmp" not in rel and ".json.crc" not in rel
                     and "6.json" not in rel and "parquet.crc" not in rel
                     and "README" not in rel}


def test_latest_version_ignores_incomplete_checkpoint(tmp_path: Path) -> None:
    logdir = tmp_path / "t" / "_delta_log"
    logdir.mkdir(parents=True)
    (logdir / "00000000000000000005.checkpoint.0000000001.0000000002.parquet").write_bytes(b"")
    (logdir / "00000000000000000003.checkpoint.parquet").write_bytes(b"")
    listing = list_log(tmp_path / "t")
    assert listing.latest_version == 3
    assert list_log(tmp_path / "t").newest_checkpoint(10) is not None


def test_list_log_not_a_table(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    assert not is_delta_table(tmp_path / "plain")
    with pytest.raises(TableFormatError, match="not a Delta table"):
        list_log(tmp_path / "plain")
    empty = tmp_path / "empty"
    (empty / "_delta_log").mkdir(parents=True)
    assert is_delta_table(empty)
    assert list_log(empty).latest_version is None


# --- snapshot against deltalake on reference tables --------------------------------------------

REFERENCE_TABLES = [
    "checkpoint-v2-table",
    "checkpoints",
    "checkpoints_vacuumed",
    "simple_table_with_checkpoint",
    "with_checkpoint_no_last_checkpoint",
    "table_failed_last_checkpoint_update",
    "latest_not_checkpointed",
    "delta-0.8.0-special-partition",
    "delta-0.8.0-null-partition",
    "delta-2.2.0-partitioned-types",
    "table_with_partitioning_mapping",
    "table_with_column_mapping",
    "table_with_deletion_logs",
    "cdf-table-with-cdc-and-dvs",
    "table-with-dv-small",
    "spark-variant-checkpoint",
    "delta-1.2.1-only-struct-stats",
]


@pytest.mark.parametrize("name", REFERENCE_TABLES)
def test_snapshot_matches_deltalake_reference(tmp_path: Path, name: str) -> None:
    t = copy_table(name, tmp_path)
    listing = list_log(t)
    latest = DeltaTable(str(t)).version()
    assert listing.latest_version == latest
    floor = min(listing.commits)
    start = floor if floor == 0 else min(v for v in listing.checkpoints if v >= floor)
    for v in range(start, latest + 1):
        assert_matches_deltalake(t, v, files_on_disk=False)


def test_snapshot_v2_sidecars(tmp_path: Path) -> None:
    t = copy_table("checkpoint-v2-table", tmp_path)
    listing = list_log(t)
    snap = snapshot(t, 9, listing, "d.s.t")
    assert snap.checkpoint is not None and snap.checkpoint.version == 8
    assert snap.sidecars == [
        "_delta_log/_sidecars/00000000000000000008.checkpoint.0000000001.0000000001."
        "d55fb2cb-b8d3-4362-8572-c52142a9da1f.parquet"]
    assert all((t / s).is_file() for s in snap.sidecars)
    assert snap.table_id == "1060c65c-e4aa-4d98-80d7-3eb9bd52ee29"


def test_snapshot_table_id_without_checkpoint(tmp_path: Path) -> None:
    t = copy_table("simple_table", tmp_path)
    md = next(a["metaData"] for a in read_commit(t, 0) if "metaData" in a)
    assert snapshot(t, 4, list_log(t), "d.s.t").table_id == md["id"]


def test_snapshot_missing_commit_without_checkpoint(tmp_path: Path) -> None:
    t = copy_table("simple_table", tmp_path)
    (t / log(2)).unlink()
    with pytest.raises(TableFormatError, match=r"table d\.s\.t: commit 2 is missing"):
        snapshot(t, 4, list_log(t), "d.s.t")


# --- deletion vectors -------------------------------------------------------------------------


def test_deletion_vector_decoded_to_existing_file(tmp_path: Path) -> None:
    t = copy_table("table-with-dv-small", tmp_path)
    actions = read_commit(t, 1)
    refs = files_added(actions, table="d.s.t", where="v1")
    dvs = [r for r in refs if r.kind == "dv"]
    assert [r.path for r in dvs] == ["deletion_vector_61d16c75-6994-46b7-a15b-8b538852e50e.bin"]
    assert (t / dvs[0].path).is_file()
    snap = snapshot(t, 1, list_log(t), "d.s.t")
    assert snap.data_files[dvs[0].path].kind == "dv"
    # Version 0 has no DV yet; the DV update (remove + add of one path) keeps the data file.
    assert {f.kind for f in snapshot(t, 0, list_log(t), "d.s.t").data_files.values()} == {"data"}
    assert files_removed(actions, table="d.s.t", where="v1") == {
        "part-00000-fae5310a-a37d-4e51-827b-c3d5516560ca-c000.snappy.parquet"}


@pytest.mark.parametrize("name", ["table_with_deletion_logs", "cdf-table-with-cdc-and-dvs"])
def test_every_dv_of_reference_tables_exists(tmp_path: Path, name: str) -> None:
    t = copy_table(name, tmp_path)
    listing = list_log(t)
    seen = 0
    for v in sorted(listing.commits):
        for ref in files_added(read_commit(t, v), table=name, where=str(v)):
            if ref.kind == "dv":
                seen += 1
                assert (t / ref.path).is_file(), (v, ref.path)
                assert ref.path.startswith("deletion_vector_") or "/deletion_vector_" in ref.path
    assert seen > 0


def test_deletion_vector_kinds() -> None:
    kw = {"table": "d.s.t", "where": "w"}
    assert deletion_vector_path(None, **kw) is None
    assert deletion_vector_path({}, **kw) is None
    inline = {"storageType": "i", "pathOrInlineDv": "wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72l"}
    assert deletion_vector_path(inline, **kw) is None
    value = "vBn[lx{q8@P<9BNH/isA"
    plain = deletion_vector_path({"storageType": "u", "pathOrInlineDv": value}, **kw)
    assert plain == "deletion_vector_61d16c75-6994-46b7-a15b-8b538852e50e.bin"
    # a random prefix puts the file in a sub-directory
    prefixed = deletion_vector_path({"storageType": "u", "pathOrInlineDv": "ab" + value}, **kw)
    assert prefixed == "ab/deletion_vector_61d16c75-6994-46b7-a15b-8b538852e50e.bin"


def test_deletion_vector_absolute_refused() -> None:
    with pytest.raises(UnsafePathError, match=r"table d\.s\.t"):
        deletion_vector_path({"storageType": "p",
                              "pathOrInlineDv": "s3://bucket/dv/deletion_vector_x.bin"},
                             table="d.s.t", where="w")


@pytest.mark.parametrize("dv", [
    {"storageType": "u", "pathOrInlineDv": "short"},
    {"storageType": "x", "pathOrInlineDv": "vBn[lx{q8@P<9BNH/isA"},
    {"storageType": "u", "pathOrInlineDv": "vBn[lx{q8@P<9BNH/is\""},  # '"' is not Z85
])
def test_deletion_vector_malformed(dv: dict[str, str]) -> None:
    with pytest.raises(TableFormatError, match=r"table d\.s\.t"):
        deletion_vector_path(dv, table="d.s.t", where="w")


@pytest.mark.parametrize("dv", [
    {"storageType": "u", "pathOrInlineDv": "#" * 20},  # Z85 digits beyond 2**32
    {"storageType": "u", "pathOrInlineDv": "ab" + "%" * 20},
    {"storageType": "u", "pathOrInlineDv": 12345678901234567890},
    {"storageType": "u", "pathOrInlineDv": True},
    {"storageType": "p", "pathOrInlineDv": 5},
    {"storageType": "u", "pathOrInlineDv": ["vBn[lx{q8@P<9BNH/isA"]},
])
def test_deletion_vector_garbage_is_a_table_error(dv: dict[str, object]) -> None:
    """A malformed log must fail its table with TableFormatError (which names it), never with
    a Python error that aborts the whole round."""
    with pytest.raises(TableFormatError, match=r"table d\.s\.t"):
        deletion_vector_path(dv, table="d.s.t", where="w")


_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=24))
_json = st.recursive(_scalar, lambda c: st.one_of(
    st.lists(c, max_size=3), st.dictionaries(st.text(max_size=6), c, max_size=3)), max_leaves=6)
_Z85_CHARS = delta_paths._Z85
_dv = st.one_of(_json, st.fixed_dictionaries({
    "storageType": st.one_of(st.sampled_from(["u", "i", "p", "x"]), _json),
    "pathOrInlineDv": st.one_of(st.text(alphabet=_Z85_CHARS, min_size=19, max_size=26), _json),
}))
_path = st.one_of(st.text(max_size=20), _json,
                  st.sampled_from(["a%2", "%zz/x", "%2e%2e/x", "a b", "s3://x/y", "x/%2F/y"]))
_file_action = st.fixed_dictionaries({"path": _path},
                                     optional={"deletionVector": _dv, "size": _json})
_action = st.one_of(
    st.builds(lambda k, v: {k: v}, st.sampled_from(["add", "remove", "cdc"]),
              st.one_of(_file_action, _json)),
    st.builds(lambda k, v: {k: v},
              st.sampled_from(["metaData", "protocol", "commitInfo", "txn", "sidecar"]), _json),
    st.dictionaries(st.text(max_size=8), _json, max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_action, max_size=5))
def test_any_commit_content_fails_only_with_table_format_error(
    actions: list[dict[str, object]],
) -> None:
    data = b"\n".join(json.dumps(a).encode() for a in actions)
    try:
        parsed = delta.parse_commit_bytes(data, where="c.json")
        added = files_added(parsed, table="d.s.t", where="c.json")
        removed = files_removed(parsed, table="d.s.t", where="c.json")
        live = delta.LiveFiles()
        live.apply(parsed, table="d.s.t", where="c.json")
        delta.ddl_events(parsed, 3)
        delta.table_id(parsed)
        commit_timestamp_ms(parsed)
    except TableFormatError:
        return
    for ref in added:  # whatever was accepted stays inside the table
        assert safe_relpath(ref.path, table="t", where="w") == ref.path
    for p in removed | set(live.files()):
        assert safe_relpath(p, table="t", where="w") == p


# --- paths --------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    "/abs/part-0.parquet", "s3://bucket/x.parquet", "file:///tmp/x.parquet",
    "abfss://c@a.dfs.core.windows.net/x", "C:x.parquet", "../x.parquet", "a/../../x",
    "a/./b", "a//b", "", ".", "..", "a/", "a\\b", "a\x00b",
])
def test_safe_relpath_refuses(raw: str) -> None:
    with pytest.raises(UnsafePathError) as caught:
        safe_relpath(raw, table="db.s.orders", where="add.path")
    assert "db.s.orders" in str(caught.value)


@pytest.mark.parametrize("raw", [
    "part-0.parquet", "part=a b/x.parquet", "part=100%25/x.parquet", "part=Zürich/x",
    "_change_data/cdc-0.parquet", "a/b/c/d.parquet", "..hidden", "x..y", "part=a:b/x",
])
def test_safe_relpath_accepts(raw: str) -> None:
    assert safe_relpath(raw, table="t", where="w") == raw


@pytest.mark.parametrize(("uri", "path"), [
    ("part=a%2520b/x.parquet", "part=a%20b/x.parquet"),
    ("part=a%20b/x.parquet", "part=a b/x.parquet"),
    ("part%3Db/x.parquet", "part=b/x.parquet"),
    ("part=Z%C3%BCrich/x.parquet", "part=Zürich/x.parquet"),
    ("plain.parquet", "plain.parquet"),
])
def test_data_path_url_decodes(uri: str, path: str) -> None:
    assert data_path(uri, table="t", where="w") == path


@pytest.mark.parametrize("uri", [
    "%2E%2E/x.parquet", "a/%2e%2e/%2e%2e/x", "%2Fetc%2Fpasswd", "s3://b/x.parquet",
    "file:/x.parquet", "/x.parquet",
])
def test_data_path_refuses_after_decoding(uri: str) -> None:
    with pytest.raises(UnsafePathError):
        data_path(uri, table="t", where="w")


def test_absolute_add_path_in_log_names_table(tmp_path: Path) -> None:
    t = tmp_path / "t"
    write_deltalake(str(t), pa.table({"v": [1, 2]}))
    lines = (t / log(0)).read_text().splitlines()
    out = []
    for line in lines:
        obj = json.loads(line)
        if "add" in obj:
            obj["add"]["path"] = f"file://{t}/{obj['add']['path']}"
        out.append(json.dumps(obj))
    (t / log(0)).write_text("\n".join(out) + "\n")
    with pytest.raises(UnsafePathError) as caught:
        snapshot(t, 0, list_log(t), "db.s.abs")
    assert "db.s.abs" in str(caught.value)
    assert "absolute" in str(caught.value)


def test_commit_timestamp_and_parse_errors(tmp_path: Path) -> None:
    assert commit_timestamp_ms([{"commitInfo": {"inCommitTimestamp": 1234}}]) == 1234
    assert commit_timestamp_ms([{"commitInfo": {"timestamp": 1234}}]) is None
    assert commit_timestamp_ms([{"add": {}}, {"commitInfo": {"inCommitTimestamp": 1}}]) is None
    assert commit_timestamp_ms([]) is None
    with pytest.raises(TableFormatError, match="line 2 is not valid JSON"):
        delta.parse_commit_bytes(b'{"a":1}\n{"b":\n', where="x.json")
    with pytest.raises(TableFormatError, match="line 1 is not a JSON object"):
        delta.parse_commit_bytes(b"[1]\n", where="x.json")
    assert delta.parse_commit_bytes(b'\n{"a":1}\n\n', where="x.json") == [{"a": 1}]


def test_ict_reference_table(tmp_path: Path) -> None:
    t = copy_table("cdc_ict_table", tmp_path)
    ts = [commit_timestamp_ms(read_commit(t, v)) for v in sorted(list_log(t).commits)]
    assert len(ts) == 4
    assert all(isinstance(x, int) and x > 1_600_000_000_000 for x in ts)


# --- snapshot against deltalake on tables we write ---------------------------------------------


def _batch(parts: list[str], start: int) -> pa.Table:
    return pa.table({"part": parts, "v": list(range(start, start + len(parts)))})


def test_snapshot_matches_deltalake_written(tmp_path: Path) -> None:
    t = tmp_path / "db" / "s" / "awkward"
    write_deltalake(str(t), _batch(AWKWARD, 0), partition_by=["part"])
    write_deltalake(str(t), _batch(AWKWARD, 100), partition_by=["part"], mode="append")
    write_deltalake(str(t), _batch(["a b", "Zürich"], 200), partition_by=["part"],
                    mode="overwrite", predicate="part = 'a b' OR part = 'Zürich'")
    dt = DeltaTable(str(t))
    dt.delete("v = 101")
    write_deltalake(str(t), _batch(AWKWARD, 300), partition_by=["part"], mode="append")
    DeltaTable(str(t)).create_checkpoint()
    write_deltalake(str(t), _batch(["100%"], 400), partition_by=["part"], mode="append")
    DeltaTable(str(t)).optimize.compact()
    DeltaTable(str(t)).vacuum(retention_hours=0, enforce_retention_duration=False,
                              dry_run=False)
    write_deltalake(str(t), _batch(["#?&"], 500), partition_by=["part"], mode="append")
    latest = DeltaTable(str(t)).version()
    assert latest >= 7
    listing = list_log(t)
    assert listing.latest_version == latest
    assert any(c.kind == "classic" for c in listing.checkpoints.values())
    for v in range(latest + 1):
        dt_v = DeltaTable(str(t), version=v)
        ours = live_data(t, v)
        assert {str(t / p) for p in ours} == set(dt_v.file_uris()), v
    # The newest version's files survive vacuum and match deltalake's sizes too.
    assert_matches_deltalake(t, latest)
    dirs = {p.split("/")[0] for p in live_data(t, latest)}
    assert {"part=a%20b", "part=a%3Db", "part=100%25", "part=Z%C3%BCrich"} <= dirs


def test_snapshot_after_optimize_and_vacuum_drops_old_files(tmp_path: Path) -> None:
    t = tmp_path / "t"
    for i in range(4):
        write_deltalake(str(t), _batch(["p"], i), partition_by=["part"], mode="append")
    before = set(live_data(t, 3))
    assert len(before) == 4
    DeltaTable(str(t)).optimize.compact()
    DeltaTable(str(t)).vacuum(retention_hours=0, enforce_retention_duration=False,
                              dry_run=False)
    latest = DeltaTable(str(t)).version()
    after = set(live_data(t, latest))
    assert len(after) == 1 and not (after & before)
    assert all(not (t / p).exists() for p in before)
    assert_matches_deltalake(t, latest)


def test_snapshot_from_checkpoint_when_log_cleaned(tmp_path: Path) -> None:
    t = tmp_path / "t"
    for i in range(5):
        write_deltalake(str(t), _batch(["a b", "x"], i * 10), partition_by=["part"],
                        mode="append")
    DeltaTable(str(t)).create_checkpoint()
    write_deltalake(str(t), _batch(["a=b"], 99), partition_by=["part"], mode="append")
    for v in range(4):  # log cleanup: commits below the checkpoint are gone
        (t / log(v)).unlink()
    listing = list_log(t)
    assert sorted(listing.checkpoints) == [4]
    snap = snapshot(t, 5, listing, "d.s.t")
    assert snap.checkpoint is not None and snap.checkpoint.version == 4
    assert_matches_deltalake(t, 5)
    assert_matches_deltalake(t, 4)
    with pytest.raises(TableFormatError, match="commit 0 is missing"):
        snapshot(t, 3, listing, "d.s.t")
