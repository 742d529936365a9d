"""drsync.sets.manifest: set keys, validation of everything the standby trusts, apply order."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drsync.errors import ManifestError, UnsafePathError
from drsync.sets.manifest import (
    FORMAT_VERSION,
    Manifest,
    ManifestFile,
    ManifestTable,
    apply_order,
    key_time,
    load_manifest,
    next_key,
    parse_manifest,
)
from drsync.site.layout import KEY_FORMAT

WHERE = "/inbox/manifests/20261123_141502.manifest.json"


def mfile(path: str, kind: str, version: int | None = None, bundle: str = "b0.tar.zst",
          size: int = 10) -> dict[str, Any]:
    return {"path": path, "kind": kind, "size": size, "mtime_ns": 1, "version": version,
            "blake2b": "00" * 32, "bundle": bundle}


def commit(v: int) -> str:
    return f"_delta_log/{v:020d}.json"


def valid_raw() -> dict[str, Any]:
    """A small, valid manifest as the primary writes it."""
    return {
        "format_version": FORMAT_VERSION,
        "key": "20261123_141502",
        "prior_key": "20261123_141402",
        "barrier_utc": "2026-11-23T14:15:02+00:00",
        "barrier_ms": 1_795_442_102_000,
        "created_utc": "2026-11-23T14:15:03+00:00",
        "tables": [{
            "name": "sales.public.orders",
            "table_id": "0f26483c-16e1-400f-8865-2e12a2ee041c",
            "mode": "incremental",
            "from_version": 3,
            "to_version": 4,
            "files": [
                mfile("part=a%20b/part-00000-x.parquet", "data"),
                mfile(commit(4), "commit", 4),
            ],
            "deletions": ["part=a%20b/part-00000-old.parquet"],
        }],
        "versions": {"sales.public.orders": 4},
        "bundles": [{"name": "b0.tar.zst", "size": 100, "blake2b": "11" * 32,
                     "compression": "zstd", "files": 2, "raw_bytes": 20}],
    }


# --- next_key -----------------------------------------------------------------------------


def test_next_key_is_utc_time_of_barrier() -> None:
    cet = timezone(timedelta(hours=1))
    assert next_key(datetime(2026, 11, 23, 15, 15, 2, tzinfo=cet), None) == "20261123_141502"
    assert next_key(datetime(2026, 11, 23, 14, 15, 2, 999_999, tzinfo=UTC), None) \
        == "20261123_141502"


def test_next_key_after_previous_keeps_barrier_time() -> None:
    b = datetime(2026, 11, 23, 14, 15, 2, tzinfo=UTC)
    assert next_key(b, "20261123_141400") == "20261123_141502"


def test_next_key_same_second_is_previous_plus_one() -> None:
    b = datetime(2026, 11, 23, 14, 15, 2, 500_000, tzinfo=UTC)
    assert next_key(b, "20261123_141502") == "20261123_141503"


def test_next_key_clock_stepped_back() -> None:
    b = datetime(2026, 11, 23, 13, 0, 0, tzinfo=UTC)
    assert next_key(b, "20261123_141502") == "20261123_141503"


def test_next_key_rolls_over_day_and_year() -> None:
    b = datetime(2020, 1, 1, tzinfo=UTC)
    assert next_key(b, "20261231_235959") == "20270101_000000"


def test_key_time_round_trip() -> None:
    assert key_time("20261123_141502") == datetime(2026, 11, 23, 14, 15, 2, tzinfo=UTC)


_offsets = st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-14 * 60, 14 * 60))
_barriers = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9000, 1, 1), timezones=_offsets
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_barriers, min_size=1, max_size=30))
def test_next_key_strictly_increasing(barriers: list[datetime]) -> None:
    prev: str | None = None
    for b in barriers:
        key = next_key(b, prev)
        assert len(key) == 15
        own = b.astimezone(UTC).strftime(KEY_FORMAT)
        if prev is None:
            assert key == own
        else:
            assert key > prev
            one_after = (key_time(prev) + timedelta(seconds=1)).strftime(KEY_FORMAT)
            assert key == max(own, one_after)
            # string order is time order
            assert key_time(key) > key_time(prev)
        prev = key


# --- parse_manifest / load_manifest ---------------------------------------------------------


def test_valid_manifest_parses_and_round_trips(tmp_path: Path) -> None:
    m = parse_manifest(valid_raw(), where=WHERE)
    assert m.tables[0].path == "sales/public/orders"
    assert m.data_bytes == 20
    f = tmp_path / "m.json"
    f.write_bytes(m.to_bytes())
    again = load_manifest(f)
    assert again == m


def test_minor_version_accepted() -> None:
    raw = valid_raw()
    raw["format_version"] = "1.9"
    assert parse_manifest(raw, where=WHERE).format_version == "1.9"


@pytest.mark.parametrize("version", ["2.0", "0.9", "10.0", "", None, "1x"])
def test_unknown_major_refused(version: str | None) -> None:
    raw = valid_raw()
    if version is None:
        del raw["format_version"]
    else:
        raw["format_version"] = version
    with pytest.raises(ManifestError) as caught:
        parse_manifest(raw, where=WHERE)
    assert WHERE in str(caught.value)
    assert "format_version" in str(caught.value)


@pytest.mark.parametrize("name", [  # db.table is a name of the hive layout (names.py): valid
    "orders", "a.b.c.d", "sales..orders", "sales.`a.b`.c.d", "sales.a.b`c", "sales.`unclosed",
    ".public.orders", "sales.public.",
    "sales/x.public.orders", "sales.public.or/ders", "...", "sales.public.orders.",
])
def test_table_name_not_three_levels_refused(name: str) -> None:
    raw = valid_raw()
    raw["tables"][0]["name"] = name
    raw["versions"] = {}
    with pytest.raises(UnsafePathError) as caught:
        parse_manifest(raw, where=WHERE)
    assert WHERE in str(caught.value)
    assert name in str(caught.value)


@pytest.mark.parametrize("name", ["orders", "sales/x.public.orders", "a.b.c.d"])
def test_bad_table_name_in_versions_names_manifest(name: str) -> None:
    """The barrier map (`versions`) feeds paths on the standby too: refused, naming the file."""
    raw = valid_raw()
    raw["versions"] = {name: 4}
    with pytest.raises((ManifestError, UnsafePathError)) as caught:
        parse_manifest(raw, where=WHERE)
    assert WHERE in str(caught.value)


UNSAFE_PATHS = [
    "../escape.parquet",
    "part=a/../../../etc/passwd",
    "/etc/passwd",
    "file:///etc/passwd",
    "s3://bucket/table/part-0.parquet",
    "a//b.parquet",
    "./a.parquet",
    "",
    "..",
    "a\\..\\b",
]


@pytest.mark.parametrize("path", UNSAFE_PATHS)
def test_unsafe_file_path_refused(path: str) -> None:
    raw = valid_raw()
    raw["tables"][0]["files"][0]["path"] = path
    with pytest.raises(UnsafePathError) as caught:
        parse_manifest(raw, where=WHERE)
    assert WHERE in str(caught.value)
    assert "sales.public.orders" in str(caught.value)


@pytest.mark.parametrize("path", UNSAFE_PATHS)
def test_unsafe_deletion_refused(path: str) -> None:
    raw = valid_raw()
    raw["tables"][0]["deletions"] = ["ok.parquet", path]
    with pytest.raises(UnsafePathError) as caught:
        parse_manifest(raw, where=WHERE)
    assert WHERE in str(caught.value)
    assert "deletion" in str(caught.value)


@pytest.mark.parametrize("name", ["../b0.tar.zst", "/tmp/b0.tar.zst"])
def test_unsafe_bundle_name_refused(name: str) -> None:
    raw = valid_raw()
    raw["bundles"][0]["name"] = name
    for f in raw["tables"][0]["files"]:
        f["bundle"] = name
    with pytest.raises(UnsafePathError) as caught:
        parse_manifest(raw, where=WHERE)
    assert WHERE in str(caught.value)


def test_file_in_unknown_bundle_refused() -> None:
    raw = valid_raw()
    raw["tables"][0]["files"][1]["bundle"] = "b9.tar.zst"
    with pytest.raises(ManifestError) as caught:
        parse_manifest(raw, where=WHERE)
    msg = str(caught.value)
    assert WHERE in msg
    assert "b9.tar.zst" in msg
    assert commit(4) in msg


@pytest.mark.parametrize("mutate", [
    lambda r: r["tables"][0]["files"][0].__setitem__("size", -1),
    lambda r: r["tables"][0]["files"][0].__setitem__("kind", "evil"),
    lambda r: r["tables"][0].__setitem__("mode", "merge"),
    lambda r: r.__delitem__("key"),
    lambda r: r["bundles"][0].__setitem__("compression", "gzip"),
])
def test_schema_violations_refused(mutate: Any) -> None:
    raw = valid_raw()
    mutate(raw)
    with pytest.raises(ManifestError) as caught:
        parse_manifest(raw, where=WHERE)
    assert WHERE in str(caught.value)


@pytest.mark.parametrize("raw", [[], "x", 3, None])
def test_non_object_refused(raw: Any) -> None:
    with pytest.raises(ManifestError, match="not a JSON object"):
        parse_manifest(raw, where=WHERE)


def test_truncated_json_refused(tmp_path: Path) -> None:
    data = json.dumps(valid_raw()).encode()
    f = tmp_path / "20261123_141502.manifest.json"
    for cut in (0, 1, len(data) // 2, len(data) - 1):
        f.write_bytes(data[:cut])
        with pytest.raises(ManifestError) as caught:
            load_manifest(f)
        assert str(f) in str(caught.value)


def test_missing_and_binary_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifest(tmp_path / "absent.json")
    f = tmp_path / "bin.json"
    f.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ManifestError) as caught:
        load_manifest(f)
    assert str(f) in str(caught.value)


def test_load_manifest_validates_like_parse(tmp_path: Path) -> None:
    raw = valid_raw()
    raw["tables"][0]["files"][0]["path"] = "../../x"
    f = tmp_path / "m.json"
    f.write_text(json.dumps(raw))
    with pytest.raises(UnsafePathError) as caught:
        load_manifest(f)
    assert str(f) in str(caught.value)


# --- apply_order ----------------------------------------------------------------------------


def _table(mode: str, files: list[dict[str, Any]]) -> ManifestTable:
    return ManifestTable(name="d.s.t", table_id=None, mode=mode,  # type: ignore[arg-type]
                         from_version=None, to_version=12,
                         files=[ManifestFile(**f) for f in files])


RESYNC_FILES = [
    mfile("_delta_log/_last_checkpoint", "last_checkpoint", 10),
    mfile(commit(12), "commit", 12),
    mfile("_delta_log/00000000000000000010.checkpoint.parquet", "checkpoint", 10),
    mfile(commit(9), "commit", 9),
    mfile("_delta_log/00000000000000000008.crc", "crc", 8),
    mfile("part=b/1.parquet", "data"),
    mfile("_delta_log/_sidecars/s1.parquet", "sidecar", 5),
    mfile(commit(5), "commit", 5),
    mfile("_delta_log/00000000000000000005.checkpoint.parquet", "checkpoint", 5),
    mfile("deletion_vector_0.bin", "dv"),
    mfile(commit(10), "commit", 10),
    mfile("_delta_log/00000000000000000005.00000000000000000009.compacted.json", "compacted", 5),
    mfile("_change_data/c.parquet", "cdc"),
    mfile("part=a/0.parquet", "data"),
    mfile(commit(6), "commit", 6),
]


def test_apply_order_resync() -> None:
    order = [f.path for f in apply_order(_table("resync", RESYNC_FILES))]
    data = {"part=a/0.parquet", "part=b/1.parquet", "deletion_vector_0.bin",
            "_change_data/c.parquet"}
    assert set(order[:4]) == data
    assert set(order[4:6]) == {"_delta_log/00000000000000000005.checkpoint.parquet",
                               "_delta_log/_sidecars/s1.parquet"}
    assert order[6:11] == [commit(5), commit(6), commit(9), commit(10), commit(12)]
    assert order[11:14] == [
        "_delta_log/00000000000000000005.00000000000000000009.compacted.json",
        "_delta_log/00000000000000000008.crc",
        "_delta_log/00000000000000000010.checkpoint.parquet",
    ]
    assert order[14] == "_delta_log/_last_checkpoint"
    assert len(order) == len(RESYNC_FILES)


def test_apply_order_incremental_checkpoints_after_commits() -> None:
    files = [
        mfile("_delta_log/00000000000000000007.checkpoint.parquet", "checkpoint", 7),
        mfile(commit(8), "commit", 8),
        mfile(commit(7), "commit", 7),
        mfile("x.parquet", "data"),
    ]
    order = [f.path for f in apply_order(_table("incremental", files))]
    assert order == ["x.parquet", commit(7), commit(8),
                     "_delta_log/00000000000000000007.checkpoint.parquet"]


def test_apply_order_commit_versions_numeric() -> None:
    """Version order, not string order, even if a writer used unpadded names."""
    files = [mfile("_delta_log/10.json", "commit", 10), mfile("_delta_log/9.json", "commit", 9)]
    order = [f.version for f in apply_order(_table("incremental", files))]
    assert order == [9, 10]


@settings(max_examples=100, deadline=None)
@given(st.permutations(RESYNC_FILES))
def test_apply_order_independent_of_input_order(files: list[dict[str, Any]]) -> None:
    expected = [f.path for f in apply_order(_table("resync", RESYNC_FILES))]
    assert [f.path for f in apply_order(_table("resync", copy.deepcopy(files)))] == expected


def test_manifest_model_defaults() -> None:
    m = Manifest(key="20261123_141502", prior_key=None, barrier_utc="x", barrier_ms=0,
                 created_utc="y")
    assert m.format_version == FORMAT_VERSION
    assert json.loads(m.to_bytes())["format_version"] == FORMAT_VERSION


# --- table formats (1.2) ----------------------------------------------------------------------


def test_format_1_1_manifest_loads_as_delta() -> None:
    """A 1.1 manifest names no format: its tables are Delta (the only format then), checked
    and installed as Delta's."""
    raw = valid_raw()
    raw["format_version"] = "1.1"
    assert "format" not in raw["tables"][0]
    m = parse_manifest(raw, where=WHERE)
    t = m.tables[0]
    assert t.format == "delta"
    assert [f.kind for f in apply_order(t)] == ["data", "commit"]
    raw["tables"][0]["files"][1]["version"] = 5  # commit 4's file claiming version 5
    with pytest.raises(UnsafePathError, match="cannot be of kind 'commit'"):
        parse_manifest(raw, where=WHERE)


def test_manifest_records_each_tables_format() -> None:
    m = parse_manifest(valid_raw(), where=WHERE)
    assert FORMAT_VERSION == "1.4"
    assert json.loads(m.to_bytes())["tables"][0]["format"] == "delta"


def test_unknown_table_format_refused_by_name() -> None:
    raw = valid_raw()
    raw["tables"][0]["format"] = "hudi"
    with pytest.raises(ManifestError, match=r"sales\.public\.orders: unknown table format 'hudi'"):
        parse_manifest(raw, where=WHERE)


# --- 1.3: versions relative to the prior set ----------------------------------------------------


def test_versions_base_must_be_the_prior_set() -> None:
    raw = valid_raw()
    raw["prior_key"], raw["versions_base"] = "20261123_141000", "20261123_141000"
    assert parse_manifest(raw, where=WHERE).versions_base == "20261123_141000"
    raw["versions_base"] = "20261123_140000"
    with pytest.raises(ManifestError, match="versions_base '20261123_140000' is not the set it builds on"):
        parse_manifest(raw, where=WHERE)


def test_dropped_names_are_checked_like_every_table_name() -> None:
    raw = valid_raw()
    raw["prior_key"] = raw["versions_base"] = "20261123_141000"
    raw["versions_dropped"] = ["../../etc.passwd.x"]
    with pytest.raises(UnsafePathError, match="refused"):
        parse_manifest(raw, where=WHERE)


def test_a_1_2_manifest_still_loads_with_its_whole_map() -> None:
    raw = valid_raw()
    raw["format_version"] = "1.2"
    m = parse_manifest(raw, where=WHERE)
    assert m.versions_base is None and m.versions_dropped == []
    assert m.versions == {"sales.public.orders": 4}


# --- digests (1.4) ------------------------------------------------------------------------


def test_digests_of_both_algorithms_load_and_unknown_ones_are_refused() -> None:
    raw = valid_raw()
    raw["tables"][0]["files"][0]["blake2b"] = "blake3:" + "ab" * 32  # 1.4 wrote it
    m = parse_manifest(raw, where=WHERE)  # the commit keeps a bare BLAKE2b digest (<= 1.3)
    assert m.tables[0].files[0].blake2b.startswith("blake3:")
    for bad, loc in (("md5:" + "ab" * 32, "tables.0.files.1.blake2b"), ("ab" * 31, "bundles.0.blake2b")):
        broken = copy.deepcopy(raw)
        if loc.startswith("bundles"):
            broken["bundles"][0]["blake2b"] = bad
        else:
            broken["tables"][0]["files"][1]["blake2b"] = bad
        with pytest.raises(ManifestError, match=rf"{WHERE}: field {loc.replace('.', '[.]')}: .*not a digest"):
            parse_manifest(broken, where=WHERE)


def test_a_raw_bundle_is_exactly_one_file_with_its_size_and_digest() -> None:
    raw = valid_raw()
    f = raw["tables"][0]["files"][0]
    f.update(bundle="k_0001.raw", size=5 << 20, blake2b="blake3:" + "cd" * 32)
    ok = {"name": "k_0001.raw", "size": 5 << 20, "blake2b": "blake3:" + "cd" * 32, "compression": "raw",
          "files": 1, "raw_bytes": 5 << 20}
    raw["bundles"].append(ok)
    parse_manifest(raw, where=WHERE)
    for change in ({"size": 4 << 20}, {"blake2b": "blake3:" + "ce" * 32}, {"files": 2}):
        broken = copy.deepcopy(raw)
        broken["bundles"][1].update(change)
        with pytest.raises(ManifestError, match=r"raw bundle k_0001[.]raw does not match"):
            parse_manifest(broken, where=WHERE)
    both = copy.deepcopy(raw)
    both["tables"][0]["files"][1].update(bundle="k_0001.raw", size=5 << 20, blake2b="blake3:" + "cd" * 32)
    with pytest.raises(ManifestError, match="exactly one file"):
        parse_manifest(both, where=WHERE)
    unused = copy.deepcopy(raw)
    unused["bundles"].append({**ok, "name": "k_0002.raw"})
    with pytest.raises(ManifestError, match=r"k_0002[.]raw must hold exactly one file"):
        parse_manifest(unused, where=WHERE)
