"""puffin.rewrite_deletion_vectors: v3 deletion-vector Puffin files get the standby's paths in
their footer; blobs keep their bytes and offsets (so manifests' content_offset/size stay valid);
damaged files are clear errors; foreign paths are refused by name."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import fastavro
import pytest

from drsync.errors import TableFormatError, UnsafePathError
from drsync.tableformat.iceberg.puffin import MAGIC, read_footer, rewrite_deletion_vectors
from tests.unit.tableformat.iceberg.relocate import LOCATIONS, TEST_DATA

DV_TABLE = TEST_DATA / "v3_deletion_vectors"
DV_FILE = DV_TABLE / "data" / "multiple-deletion-vectors.puffin"
OLD = LOCATIONS["v3_deletion_vectors"]
NEW = "file:///srv/standby/wh/default/dv"


def test_paths_rebased_blobs_unchanged(tmp_path: Path) -> None:
    dst = tmp_path / "dv.puffin"
    size = rewrite_deletion_vectors(DV_FILE, dst, OLD, NEW)
    assert size == dst.stat().st_size
    before, start_b = read_footer(DV_FILE)
    after, start_a = read_footer(dst)
    assert start_a == start_b
    src, out = DV_FILE.read_bytes(), dst.read_bytes()
    assert out[:start_b] == src[:start_b]  # magic and every blob byte for byte
    assert out[:4] == MAGIC and out[-4:] == MAGIC
    payload_size, flags = struct.unpack("<ii", out[-12:-4])
    assert flags == 0 and json.loads(out[-12 - payload_size:-12]) == after
    assert len(after["blobs"]) == 2
    for b, a in zip(before["blobs"], after["blobs"], strict=True):
        assert (a["offset"], a["length"], a["type"]) == (b["offset"], b["length"], b["type"])
        ref = b["properties"]["referenced-data-file"]
        assert a["properties"]["referenced-data-file"] == NEW + ref[len(OLD):]
        assert a["properties"]["cardinality"] == b["properties"]["cardinality"]


def test_manifest_offsets_still_address_the_blobs(tmp_path: Path) -> None:
    """content_offset / content_size_in_bytes of each DV entry in the table's manifest point at
    the same blob (same bytes) in the rewritten file, and at the blob the footer lists for the
    same referenced data file."""
    dst = tmp_path / "dv.puffin"
    rewrite_deletion_vectors(DV_FILE, dst, OLD, NEW)
    footer, _ = read_footer(dst)
    by_ref = {b["properties"]["referenced-data-file"]: (b["offset"], b["length"])
              for b in footer["blobs"]}
    src, out = DV_FILE.read_bytes(), dst.read_bytes()
    with open(DV_TABLE / "metadata" / "multiple-deletion-vectors-m0.avro", "rb") as fo:
        records: list[Any] = list(fastavro.reader(fo))
    entries = [e["data_file"] for e in records if e["data_file"]["content"] == 1]
    assert len(entries) == 2
    for df in entries:
        off, n = df["content_offset"], df["content_size_in_bytes"]
        assert out[off:off + n] == src[off:off + n] and n > 0
        ref = NEW + df["referenced_data_file"][len(OLD):]
        assert by_ref[ref] == (off, n)


def _puffin(footer: dict[str, Any], blob: bytes = b"\x01" * 10, flags: int = 0) -> bytes:
    payload = json.dumps(footer).encode()
    return MAGIC + blob + MAGIC + payload + struct.pack("<ii", len(payload), flags) + MAGIC


def test_foreign_referenced_file_is_refused_by_name(tmp_path: Path) -> None:
    src = tmp_path / "x.puffin"
    src.write_bytes(_puffin({"blobs": [{"type": "deletion-vector-v1", "fields": [], "offset": 4,
                                        "length": 10, "properties": {
                                            "referenced-data-file": "/elsewhere/data/a.parquet"}}]}))
    with pytest.raises(UnsafePathError) as e:
        rewrite_deletion_vectors(src, tmp_path / "y.puffin", "/srv/t", NEW)
    assert "x.puffin" in str(e.value) and "/elsewhere/data/a.parquet" in str(e.value)
    assert not (tmp_path / "y.puffin").exists()


@pytest.mark.parametrize("damage", [
    "empty", "no_head_magic", "no_tail_magic", "truncated", "size_too_big", "not_json",
    "blob_outside", "compressed",
])
def test_damaged_puffin_is_a_clear_error(damage: str, tmp_path: Path) -> None:
    good = DV_FILE.read_bytes()
    ok_footer: dict[str, Any] = {"blobs": [{"type": "deletion-vector-v1", "offset": 4, "length": 10,
                            "properties": {}}]}
    data = {
        "empty": b"",
        "no_head_magic": b"XXXX" + good[4:],
        "no_tail_magic": good[:-4] + b"XXXX",
        "truncated": good[: len(good) - 30],
        "size_too_big": good[:-12] + struct.pack("<ii", 10**6, 0) + MAGIC,
        "not_json": MAGIC + b"\x00" * 10 + MAGIC + b"{nope" + struct.pack("<ii", 5, 0) + MAGIC,
        "blob_outside": _puffin({"blobs": [{"type": "deletion-vector-v1", "offset": 4,
                                            "length": 500, "properties": {}}]}),
        "compressed": _puffin(ok_footer, flags=1),
    }[damage]
    src = tmp_path / "bad.puffin"
    src.write_bytes(data)
    with pytest.raises(TableFormatError) as e:
        rewrite_deletion_vectors(src, tmp_path / "out.puffin", OLD, NEW)
    assert "bad.puffin" in str(e.value) and e.value.hint
    assert not (tmp_path / "out.puffin").exists()
