"""drsync.sets.bundle: tar+zstd bundles, per-file digests, corruption always caught, bounded memory."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drsync.errors import IntegrityError
from drsync.fsutil import TMP_PREFIX
from drsync.sets.bundle import (
    BundleEntry,
    BundleResult,
    Expected,
    extract_bundle,
    file_hash,
    new_hash,
    plan_bundles,
    write_bundle,
)

REPO = Path(__file__).resolve().parents[3]
MTIME_NS = 1_700_000_000_123_456_789
Compression = Literal["zstd", "none"]

LONG_NAME = "db/schema/table/" + "/".join(["part=" + "x" * 60] * 4) + "/part-0.parquet"
UNICODE_NAME = "dbä/schéma/täble/part=Zürich/ファイル 100%.parquet"


def h(data: bytes) -> str:
    x = new_hash()
    x.update(data)
    return x.hexdigest()


@dataclass
class Packed:
    bundle: Path
    compression: Compression
    result: BundleResult
    contents: dict[str, bytes]  # member -> bytes


def make_sources(d: Path, contents: dict[str, bytes]) -> list[BundleEntry]:
    """One file on disk per member, named by index (member names need not be valid paths)."""
    d.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (member, data) in enumerate(contents.items()):
        src = d / f"src{i}"
        src.write_bytes(data)
        entries.append(BundleEntry(member, len(data), MTIME_NS, source=src))
    return entries


def expectations(p: Packed, stage: Path) -> dict[str, Expected]:
    stage.mkdir(parents=True, exist_ok=True)
    return {m: Expected(len(data), h(data), stage / f"out{i}")
            for i, (m, data) in enumerate(p.contents.items())}


def pack(base: Path, contents: dict[str, bytes], compression: Compression,
         level: int) -> Packed:
    entries = make_sources(base / "src", contents)
    final = base / ("b.tar.zst" if compression == "zstd" else "b.tar")
    result = write_bundle(final, entries, compression, level)
    return Packed(final, compression, result, contents)


CONTENTS: dict[str, bytes] = {
    "db/s/t/_delta_log/00000000000000000000.json": b'{"commitInfo":{}}\n' * 20,
    "db/s/t/empty.parquet": b"",
    UNICODE_NAME: bytes(range(256)) * 3,
    LONG_NAME: os.urandom(700),
    "db/s/t/part=a%20b/zeros.parquet": b"\0" * 5000,
}


# --- round trip ------------------------------------------------------------------------------


@pytest.mark.parametrize(("compression", "level"),
                         [("zstd", lvl) for lvl in range(1, 10)] + [("none", 0)])
def test_round_trip(tmp_path: Path, compression: Compression, level: int) -> None:
    seen: list[tuple[int, int]] = []
    entries = make_sources(tmp_path / "src", CONTENTS)
    final = tmp_path / "out" / ("b.tar.zst" if compression == "zstd" else "b.tar")
    final.parent.mkdir()
    result = write_bundle(final, entries, compression, level,
                          progress=lambda raw, out: seen.append((raw, out)))
    assert result.path == final
    assert result.missing == []
    assert result.size == final.stat().st_size
    assert result.blake2b == file_hash(final)
    assert result.raw_bytes == sum(len(v) for v in CONTENTS.values())
    assert [p.member for p in result.packed] == list(CONTENTS)
    for p in result.packed:
        assert p.size == len(CONTENTS[p.member])
        assert p.blake2b == h(CONTENTS[p.member])
    assert os.listdir(final.parent) == [final.name]  # no temp left
    assert sum(r for r, _ in seen) == result.raw_bytes
    assert sum(o for _, o in seen) == result.size

    packed = Packed(final, compression, result, CONTENTS)
    exp = expectations(packed, tmp_path / "stage")
    got: list[int] = []
    extract_bundle(final, compression, exp, progress=got.append)
    for member, e in exp.items():
        assert e.dest.read_bytes() == CONTENTS[member]
    assert sum(got) == result.raw_bytes
    assert [n for n in os.listdir(tmp_path / "stage") if n.startswith(TMP_PREFIX)] == []


def test_bundle_is_standard_tar_zst(tmp_path: Path) -> None:
    """`zstd -dc X.tar.zst | tar t` works: plain tar in a zstd frame, names and mtimes kept."""
    p = pack(tmp_path, CONTENTS, "zstd", 3)
    raw = zstandard.ZstdDecompressor().stream_reader(p.bundle.read_bytes()).read()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == list(CONTENTS)
        for m in members:
            assert m.isfile()
            assert int(m.mtime) == MTIME_NS // 10**9
            f = tar.extractfile(m)
            assert f is not None
            assert f.read() == CONTENTS[m.name]


def test_level_changes_output_and_zero_level_none(tmp_path: Path) -> None:
    data = {"d/s/t/x": (b"abcdefgh" * 50_000) + os.urandom(1000)}
    small = pack(tmp_path / "a", data, "zstd", 9).result.size
    big = pack(tmp_path / "b", data, "zstd", 1).result.size
    stored = pack(tmp_path / "c", data, "none", 0).result.size
    assert small <= big < stored
    assert stored >= len(data["d/s/t/x"])


def test_content_entries(tmp_path: Path) -> None:
    """Files captured in memory at collect time are packed from those bytes."""
    final = tmp_path / "b.tar.zst"
    entries = [BundleEntry("d/s/t/_delta_log/_last_checkpoint", 12, MTIME_NS,
                           content=b'{"version":3}'),
               BundleEntry("d/s/t/empty", 0, MTIME_NS, content=b"")]
    r = write_bundle(final, entries, "zstd", 1)
    assert [(p.member, p.size) for p in r.packed] == [
        ("d/s/t/_delta_log/_last_checkpoint", 13), ("d/s/t/empty", 0)]
    stage = tmp_path / "stage"
    stage.mkdir()
    extract_bundle(final, "zstd", {
        "d/s/t/_delta_log/_last_checkpoint": Expected(13, h(b'{"version":3}'), stage / "lc"),
        "d/s/t/empty": Expected(0, h(b""), stage / "e"),
    })
    assert (stage / "lc").read_bytes() == b'{"version":3}'
    assert (stage / "e").read_bytes() == b""


def test_empty_bundle(tmp_path: Path) -> None:
    r = write_bundle(tmp_path / "b.tar.zst", [], "zstd", 1)
    assert r.packed == [] and r.raw_bytes == 0
    extract_bundle(r.path, "zstd", {})


def test_vanished_source_reported_missing(tmp_path: Path) -> None:
    entries = make_sources(tmp_path / "src", {"d/s/t/a": b"aaa", "d/s/t/b": b"bbb",
                                               "d/s/t/c": b"ccc"})
    assert entries[1].source is not None
    entries[1].source.unlink()  # VACUUM between collect and pack
    r = write_bundle(tmp_path / "b.tar.zst", entries, "zstd", 1)
    assert r.missing == ["d/s/t/b"]
    assert [p.member for p in r.packed] == ["d/s/t/a", "d/s/t/c"]
    assert r.raw_bytes == 6
    stage = tmp_path / "stage"
    stage.mkdir()
    extract_bundle(r.path, "zstd", {
        "d/s/t/a": Expected(3, h(b"aaa"), stage / "a"),
        "d/s/t/c": Expected(3, h(b"ccc"), stage / "c"),
    })
    assert (stage / "c").read_bytes() == b"ccc"


def test_size_taken_at_pack_time(tmp_path: Path) -> None:
    """A file that grew after collect is packed with its real size and hash."""
    entries = make_sources(tmp_path / "src", {"d/s/t/_last_checkpoint": b"{}"})
    assert entries[0].source is not None
    entries[0].source.write_bytes(b'{"version": 10}')
    r = write_bundle(tmp_path / "b.tar", entries, "none", 0)
    assert r.packed[0].size == len(b'{"version": 10}')
    assert r.packed[0].blake2b == h(b'{"version": 10}')


# --- extract refuses what does not match ------------------------------------------------------


@pytest.fixture
def small(tmp_path: Path) -> Packed:
    return pack(tmp_path, {"d/s/t/a": b"alpha" * 100, "d/s/t/b": b"beta" * 100}, "zstd", 3)


@pytest.mark.parametrize("in_place", [False, True])
def test_extract_wrong_hash(small: Packed, tmp_path: Path, in_place: bool) -> None:
    exp = expectations(small, tmp_path / "stage")
    exp["d/s/t/b"] = Expected(400, "ab" * 32, exp["d/s/t/b"].dest)
    with pytest.raises(IntegrityError, match="d/s/t/b fails its BLAKE2b"):
        extract_bundle(small.bundle, "zstd", exp, in_place=in_place)
    assert not exp["d/s/t/b"].dest.exists()
    assert [n for n in os.listdir(tmp_path / "stage") if n.startswith(TMP_PREFIX)] == []


def test_bundle_of_an_old_set_extracts_with_its_blake2b_digests(small: Packed, tmp_path: Path) -> None:
    """A set shipped before 1.4 lists bare BLAKE2b digests: each is checked with BLAKE2b."""
    assert small.result.blake2b.startswith("blake3:")  # what this drsync writes
    exp = expectations(small, tmp_path / "stage")
    old = {m: Expected(e.size, hashlib.blake2b(small.contents[m], digest_size=32).hexdigest(), e.dest)
           for m, e in exp.items()}
    whole = hashlib.blake2b(small.bundle.read_bytes(), digest_size=32).hexdigest()
    extract_bundle(small.bundle, "zstd", old, whole=(small.bundle.stat().st_size, whole))
    assert {m: e.dest.read_bytes() for m, e in old.items()} == small.contents
    flipped = "0" + whole[1:] if whole[0] != "0" else "1" + whole[1:]
    with pytest.raises(IntegrityError, match="fails its BLAKE2b check"):
        extract_bundle(small.bundle, "zstd", old, whole=(small.bundle.stat().st_size, flipped))
    old["d/s/t/a"] = Expected(500, "blake3:" + "ab" * 32, old["d/s/t/a"].dest)
    with pytest.raises(IntegrityError, match="d/s/t/a fails its BLAKE3 check"):
        extract_bundle(small.bundle, "zstd", old)


def test_extract_wrong_size(small: Packed, tmp_path: Path) -> None:
    exp = expectations(small, tmp_path / "stage")
    exp["d/s/t/a"] = Expected(499, exp["d/s/t/a"].blake2b, exp["d/s/t/a"].dest)
    with pytest.raises(IntegrityError, match="500 bytes, manifest says 499"):
        extract_bundle(small.bundle, "zstd", exp)


def test_extract_unexpected_member(small: Packed, tmp_path: Path) -> None:
    exp = expectations(small, tmp_path / "stage")
    del exp["d/s/t/b"]
    with pytest.raises(IntegrityError, match="unexpected member 'd/s/t/b'"):
        extract_bundle(small.bundle, "zstd", exp)


def test_extract_member_missing_from_bundle(small: Packed, tmp_path: Path) -> None:
    exp = expectations(small, tmp_path / "stage")
    exp["d/s/t/zzz"] = Expected(1, h(b"z"), tmp_path / "stage" / "zzz")
    with pytest.raises(IntegrityError, match="lacks 1 file"):
        extract_bundle(small.bundle, "zstd", exp)


def test_extract_missing_bundle(tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match="is missing"):
        extract_bundle(tmp_path / "nope.tar.zst", "zstd", {})


def test_extract_wrong_compression(small: Packed, tmp_path: Path) -> None:
    with pytest.raises(IntegrityError):
        extract_bundle(small.bundle, "none", expectations(small, tmp_path / "stage"))


# --- corruption: truncation or any single bit flip -------------------------------------------


def check_corrupted(p: Packed, corrupted: bytes) -> str:
    """Extract a corrupted copy: IntegrityError, or every file intact. Never anything else."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bundle = work / p.bundle.name
        bundle.write_bytes(corrupted)
        exp = expectations(p, work / "stage")
        try:
            extract_bundle(bundle, p.compression, exp)
        except IntegrityError:
            return "detected"
        # Not detected: then nothing that matters was damaged.
        for member, e in exp.items():
            assert e.dest.read_bytes() == p.contents[member], member
        return "harmless"


CORRUPTION_CONTENTS: dict[str, bytes] = {
    "db/s/t/_delta_log/00000000000000000001.json": b'{"add":{"path":"a"}}\n' * 8,
    "db/s/t/empty": b"",
    "db/s/t/part=Zürich/ü.parquet": bytes(range(200)),
    LONG_NAME: b"L" * 300,
}


@pytest.fixture(scope="module", params=["zstd", "none"])
def corruptible(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Packed]:
    base = tmp_path_factory.mktemp(f"corrupt-{request.param}")
    yield pack(base, CORRUPTION_CONTENTS, request.param, 3)
    shutil.rmtree(base, ignore_errors=True)


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_single_bit_flip_detected_or_harmless(corruptible: Packed, data: st.DataObject) -> None:
    blob = corruptible.bundle.read_bytes()
    pos = data.draw(st.integers(0, len(blob) - 1), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    corrupted = bytearray(blob)
    corrupted[pos] ^= 1 << bit
    check_corrupted(corruptible, bytes(corrupted))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_truncation_detected_or_harmless(corruptible: Packed, data: st.DataObject) -> None:
    blob = corruptible.bundle.read_bytes()
    cut = data.draw(st.integers(0, len(blob) - 1), label="cut")
    check_corrupted(corruptible, blob[:cut])


def test_every_truncation_of_zstd_bundle_detected(tmp_path: Path) -> None:
    """Exhaustive over a small zstd bundle: a truncated stream never passes as complete."""
    p = pack(tmp_path, CORRUPTION_CONTENTS, "zstd", 3)
    blob = p.bundle.read_bytes()
    undetected = [cut for cut in range(len(blob)) if check_corrupted(p, blob[:cut]) != "detected"]
    assert undetected == []


def test_every_bit_flip_of_member_data_detected(tmp_path: Path) -> None:
    """In a stored bundle every bit of every member's bytes is covered by its hash."""
    contents = {"d/s/t/a": bytes(range(100, 116)), "d/s/t/b": b"b" * 8}
    p = pack(tmp_path, contents, "none", 0)
    blob = p.bundle.read_bytes()
    for member, data in contents.items():
        start = blob.index(data)
        for pos in range(start, start + len(data)):
            for bit in range(8):
                corrupted = bytearray(blob)
                corrupted[pos] ^= 1 << bit
                assert check_corrupted(p, bytes(corrupted)) == "detected", (member, pos, bit)


# --- memory -------------------------------------------------------------------------------------

_RSS_PROBE = """
import resource, sys
from pathlib import Path
from drsync.sets.bundle import BundleEntry, write_bundle, file_hash
src, out, comp = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
file_hash(src.parent / "warm")  # import and warm everything before measuring
write_bundle(out.with_suffix(".warm"), [BundleEntry("d/s/t/w", 1, 0, source=src.parent / "warm")],
             comp, 1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
r = write_bundle(out, [BundleEntry("d/s/t/big", src.stat().st_size, 0, source=src)], comp, 1)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before, after, r.raw_bytes)
"""


@pytest.mark.parametrize("compression", ["zstd"])
def test_pack_memory_does_not_grow_with_file_size(tmp_path: Path, compression: str) -> None:
    size = 200 << 20
    src = tmp_path / "big"
    with open(src, "wb") as f:
        f.truncate(size)  # sparse: costs no disk
    (tmp_path / "warm").write_bytes(b"w")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(src), str(tmp_path / "b.tar.zst"),
                        compression], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    before_kb, after_kb, raw = (int(x) for x in p.stdout.split())
    assert raw == size
    grown = (after_kb - before_kb) * 1024  # ru_maxrss is in KiB on Linux
    assert grown < size // 8, f"peak RSS grew by {grown >> 20} MiB packing {size >> 20} MiB"


# --- planning ---------------------------------------------------------------------------------


def test_plan_bundles_groups_in_order() -> None:
    sizes = [40, 30, 50, 10, 200, 0, 5]
    entries = [BundleEntry(f"m{i}", s, 0, content=b"") for i, s in enumerate(sizes)]
    groups = plan_bundles(entries, target=100)
    assert [[e.member for e in g] for g in groups] == [
        ["m0", "m1"], ["m2", "m3"], ["m4"], ["m5", "m6"]]
    assert [e for g in groups for e in g] == entries
    assert plan_bundles([], target=100) == []


def test_extract_in_place_writes_each_member_at_its_dest(small: Packed, tmp_path: Path) -> None:
    """The standby's staging (rebuilt by every run): no temp name, no rename."""
    exp = expectations(small, tmp_path / "stage")
    whole = (small.result.size, small.result.blake2b)
    extract_bundle(small.bundle, "zstd", exp, fsync=False, whole=whole, in_place=True)
    assert {n: (tmp_path / "stage" / n).read_bytes() for n in os.listdir(tmp_path / "stage")} == \
        {e.dest.name: small.contents[m] for m, e in exp.items()}
