"""puffin.rewrite_deletion_vectors: v3 deletion-vector Puffin files get the standby's paths in
their footer; blobs keep their bytes and offsets (so manifests' content_offset/size stay valid);
damaged files are clear errors; foreign paths are refused by name. Compressed footers (LZ4)
are rewritten compressed; compressed blobs (lz4, zstd) are kept byte for byte: checked on
files written by other implementations (tests/data/iceberg/puffin, see the README there) and
on files built here with the lz4 library."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import fastavro
import lz4.frame
import pytest

from drsync.errors import TableFormatError, UnsafePathError
from drsync.tableformat.iceberg.puffin import MAGIC, read_blob, read_footer, rewrite_deletion_vectors
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


def _puffin(footer: dict[str, Any], blob: bytes = b"\x01" * 10, flags: int = 0,
            payload: bytes | None = None) -> bytes:
    payload = json.dumps(footer).encode() if payload is None else payload
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
    "blob_outside", "compressed_not_lz4", "unknown_flag",
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
        "compressed_not_lz4": _puffin(ok_footer, flags=1),  # flagged, but plain JSON
        "unknown_flag": _puffin(ok_footer, flags=2),
    }[damage]
    src = tmp_path / "bad.puffin"
    src.write_bytes(data)
    with pytest.raises(TableFormatError) as e:
        rewrite_deletion_vectors(src, tmp_path / "out.puffin", OLD, NEW)
    assert "bad.puffin" in str(e.value) and e.value.hint
    assert not (tmp_path / "out.puffin").exists()


PUFFIN_DATA = TEST_DATA / "puffin"


def _tail(data: bytes) -> tuple[bytes, int]:
    """(footer payload as stored, flags) of a Puffin file's bytes."""
    size, flags = struct.unpack("<ii", data[-12:-4])
    return data[-12 - size:-12], flags


def test_lz4_compressed_footer_is_rewritten_compressed(tmp_path: Path) -> None:
    """A DV file whose footer is one LZ4 frame (flag bit 0): the copy's footer is an LZ4 frame
    again, with the flag, the paths rebased and every blob byte kept."""
    blobs = b"\x07" * 10 + b"\x08" * 6
    footer = {"blobs": [
        {"type": "deletion-vector-v1", "fields": [2147483645], "offset": 4, "length": 10,
         "properties": {"referenced-data-file": "/srv/t/data/a.parquet", "cardinality": "1"}},
        {"type": "deletion-vector-v1", "fields": [2147483645], "offset": 14, "length": 6,
         "properties": {"referenced-data-file": "/srv/t/data/b.parquet", "cardinality": "1"}}],
        "properties": {"created-by": "test"}}
    src = tmp_path / "c.puffin"
    src.write_bytes(_puffin(footer, blobs, flags=1, payload=lz4.frame.compress(json.dumps(footer).encode())))
    assert read_footer(src) == (footer, 20)
    dst = tmp_path / "d.puffin"
    rewrite_deletion_vectors(src, dst, "/srv/t", "/standby/t")
    out = dst.read_bytes()
    assert out[:20] == src.read_bytes()[:20]
    stored, flags = _tail(out)
    assert flags == 1
    got = json.loads(lz4.frame.decompress(stored))  # a plain LZ4 frame, as any reader expects
    assert [b["properties"]["referenced-data-file"] for b in got["blobs"]] == [
        "/standby/t/data/a.parquet", "/standby/t/data/b.parquet"]
    assert read_footer(dst) == (got, 20)


def test_footer_compressed_by_the_lz4_cli_is_read_and_kept(tmp_path: Path) -> None:
    """iceberg-go's fixture, its footer compressed by the LZ4 command-line tool (not by the
    Python binding drsync uses)."""
    src = PUFFIN_DATA / "compressed-footer-lz4-cli.puffin"
    assert read_footer(src) == ({"blobs": [], "properties": {"source": "lz4-cli"}}, 4)
    dst = tmp_path / "out.puffin"
    rewrite_deletion_vectors(src, dst, "/srv/t", "/standby/t")
    stored, flags = _tail(dst.read_bytes())
    assert flags == 1 and json.loads(lz4.frame.decompress(stored)) == read_footer(src)[0]


@pytest.mark.parametrize("name", ["sample-metric-data-compressed-zstd.bin",
                                  "sample-metric-data-uncompressed.bin"])
def test_compressed_blobs_of_apache_iceberg_java_kept_byte_for_byte(name: str, tmp_path: Path) -> None:
    """Apache Iceberg's (Java) canonical Puffin files: blobs zstd-compressed or not; the copy
    keeps them at their offsets and they decompress to the spec's sample content."""
    src = PUFFIN_DATA / name
    dst = tmp_path / "out.puffin"
    rewrite_deletion_vectors(src, dst, "/srv/t", "/standby/t")
    footer, start = read_footer(dst)
    assert dst.read_bytes()[:start] == src.read_bytes()[:start]
    assert footer == read_footer(src)[0]
    contents = [read_blob(dst, b) for b in footer["blobs"]]
    assert contents[0] == b"abcdefghi"
    assert contents[1].startswith(b"some blob \x00 binary data \xf0\x9f\xa4\xaf that is not very")


def test_lz4_blob_is_decoded_and_an_unknown_codec_refused_by_name(tmp_path: Path) -> None:
    content = b"blob content " * 20
    packed = lz4.frame.compress(content)
    blob = {"type": "some-blob", "fields": [1], "offset": 4, "length": len(packed),
            "compression-codec": "lz4"}
    src = tmp_path / "b.puffin"
    src.write_bytes(_puffin({"blobs": [blob]}, packed))
    dst = tmp_path / "out.puffin"
    rewrite_deletion_vectors(src, dst, "/srv/t", "/standby/t")
    assert read_blob(dst, read_footer(dst)[0]["blobs"][0]) == content
    with pytest.raises(TableFormatError) as e:
        read_blob(dst, {**blob, "compression-codec": "snappy"})
    assert "out.puffin" in str(e.value) and "'snappy'" in str(e.value)


def test_java_written_deletion_vectors_rebased(tmp_path: Path) -> None:
    """Deletion vectors written by Apache Iceberg's Java PuffinWriter (iceberg-go's
    cross-client fixture), their data files on an object store location."""
    src = PUFFIN_DATA / "multi-blob-dv.puffin"
    dst = tmp_path / "out.puffin"
    rewrite_deletion_vectors(src, dst, "s3://warehouse/db/table", "/standby/t")
    footer, start = read_footer(dst)
    assert dst.read_bytes()[:start] == src.read_bytes()[:start]
    assert [b["properties"]["referenced-data-file"] for b in footer["blobs"]] == [
        "/standby/t/data/file-001.parquet", "/standby/t/data/file-002.parquet"]
    before = [read_blob(src, b) for b in read_footer(src)[0]["blobs"]]
    assert [read_blob(dst, b) for b in footer["blobs"]] == before
