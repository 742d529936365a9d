"""Every table of the delta-rs test data (tests/data/delta-rs), replicated by the real CLI.

One warehouse holds all ~50 tables, each under its own name (`rs.data.<name>`, quoted where it
holds a '.': rs.data.`delta-0.8.0`; `golden/<name>` as `rs.golden.<name>`),
a few broken copies of them (`rs.bad.*`) and a few hand-made checkpoint variants
(`rs.derived.*`). It is replicated in three rounds, each `drsync backup` + `drsync restore`:

1. each table's log up to about half of its history (data files are all there already, as a
   writer leaves them before it commits): full copies, some from a checkpoint;
2. the rest of each log: incremental sets carrying commits, checkpoints of every kind, sidecars,
   deletion vectors, change-data files; every table is then at the README's latest version;
3. `deltalake` appends (some followed by a checkpoint) to tables deltalake can write, and a
   checkpoint alone on a table with no new commit.

After each round, every version the round newly exposes on the standby is read by DuckDB's
delta extension (the independent reader) on both sides: where the primary can read it, the
standby must give the same rows; where it cannot, the standby must not "know better" either.
The README's classification says what each table must do: readable ones arrive equal; ones
with data files missing on the primary are mirrored as they are, with a warning naming a
missing file; the broken copies are refused by name while everything else still arrives.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from drsync.site.names import format_name, relpath_of
from tests.helpers import TESTDATA, Sites, drsync, duck, make_sites, read_manifests

README = TESTDATA.parent / "README.md"
DB = "rs"
VERSIONED = re.compile(r"^(\d{20})\.")
CANNOT_OPEN = re.compile(r'Cannot open file "([^"]+)"')


# --- what the README says about each table ---------------------------------------------------


def schema_and_table(src: str) -> tuple[str, str]:
    """Each table under its own directory name (`delta-0.8.0` stays `delta-0.8.0`, named
    rs.data.`delta-0.8.0`); a nested folder `golden/x` is schema `golden`, table `x`."""
    schema, _, table = src.rpartition("/")
    return schema or "data", table


def data_dir(warehouse: Path, src: str) -> Path:
    return warehouse.joinpath(DB, *schema_and_table(src))


def data_name(src: str) -> str:
    return format_name((DB, *schema_and_table(src)))


@dataclass(frozen=True)
class Case:
    src: str  # folder under TESTDATA, e.g. "golden/data-reader-array-primitives"
    latest: int
    rows: int | None  # DuckDB's row count at `latest`; None: 'unreadable' on purpose
    features: frozenset[str]

    @property
    def name(self) -> str:
        return data_name(self.src)

    def path(self, warehouse: Path) -> Path:
        return data_dir(warehouse, self.src)


def _read_readme() -> list[Case]:
    cases = []
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[1].isdigit():
            continue  # prose, the header row, the separator row
        src, latest, rows, _, features = cells
        cases.append(Case(src, int(latest), None if rows == "unreadable" else int(rows),
                          frozenset(f.strip() for f in features.split(",") if f.strip())))
    return cases


CASES = _read_readme()
READABLE = [c for c in CASES if c.rows is not None]
# Data files the log needs are missing on the primary itself: mirrored as they are, with a
# warning (DESIGN §5: the standby never claims more than the primary has).
DAMAGED = [c for c in CASES if c.rows is None and "missing_active_files" in c.features]
# Unreadable for another reason (simple_table_features: an invalid protocol action). Its log
# parses and all its files are inside the table, so drsync *can* copy it byte for byte, and a DR
# operator wants exactly that: the standby holds what the primary holds, equally unreadable;
# when the owner repairs the table on the primary, the repair commit flows through. Refusing
# it would leave every round 'partial' for a table that is copied faithfully.
OTHER_UNREADABLE = [c for c in CASES if c.rows is None and c not in DAMAGED]

# Tables deltalake can append to (checked by hand: DV/variant/v2Checkpoint/ICT/identity-column
# tables it refuses), chosen for their features: log starting after 0 + CDC + partitions,
# checkpoints, odd partition values, column mapping, a stale _last_checkpoint.
APPEND_TO = ["checkpoint-cdf-table", "simple_table_with_checkpoint", "delta-0.8.0-special-partition",
             "table_with_column_mapping", "table_failed_last_checkpoint_update", "http_requests"]
CHECKPOINT_AFTER_APPEND = ["simple_table_with_checkpoint", "table_failed_last_checkpoint_update"]
# A checkpoint written on a table with no new commit: it follows at the next round too.
CHECKPOINT_ONLY = "simple_table"


# --- copying test data into the primary ------------------------------------------------------


def _log_version(name: str) -> int | None:
    """The version a top-level `_delta_log` file belongs to (a compaction: its last one)."""
    if not VERSIONED.match(name):
        return None
    if name.endswith(".compacted.json"):
        return int(name[21:41])
    return int(name[:20])


def split_point(src: Path) -> int | None:
    """Round 1 gets the log up to this version: halfway between the first version the log can
    be read at (commit 0, else its oldest checkpoint) and the latest. None: copy all at once."""
    names = os.listdir(src / "_delta_log")
    commits = [int(n[:20]) for n in names if re.fullmatch(r"\d{20}\.json", n)]
    ckpts = [int(n[:20]) for n in names if re.match(r"\d{20}\.checkpoint\.", n)]
    latest = max(commits + ckpts)
    lo = 0 if 0 in commits else min(ckpts)
    return (lo + latest) // 2 if latest > lo else None


def copy_part(src: Path, dst: Path, upto: int | None, first: bool,
              skip: tuple[str, ...] = ()) -> None:
    """Copy a test table (mode bits made writable, mtimes kept: they are commit times).

    `first`: data files, side folders and the log up to `upto`; otherwise the rest of the log.
    """
    for dirpath, _, filenames in os.walk(src):
        rel = Path(dirpath).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        os.chmod(dst / rel, 0o755)
        for f in filenames:
            if f in skip:
                continue
            if rel == Path("_delta_log") and f == "_last_checkpoint":
                v: int | None = json.loads((Path(dirpath) / f).read_text())["version"]
            else:
                v = _log_version(f) if rel == Path("_delta_log") else None
            in_first = v is None or upto is None or v <= upto
            if (v is None and first) or (v is not None and in_first == first):
                shutil.copy2(Path(dirpath) / f, dst / rel / f)
                os.chmod(dst / rel / f, 0o644)


def _rewrite_commit(commit: Path, edit: Any) -> None:
    """Apply `edit(action) -> action | str` to every action of a commit (keeping its mtime)."""
    st = commit.stat()
    lines = []
    for line in commit.read_text().splitlines():
        out = edit(json.loads(line)) if line.strip() else line
        lines.append(out if isinstance(out, str) else json.dumps(out))
    commit.write_text("\n".join(lines) + "\n")
    os.utime(commit, ns=(st.st_atime_ns, st.st_mtime_ns))


# --- broken copies: drsync cannot copy these faithfully, so it must refuse them by name ------


def _truncate_last_add(commit: Path) -> None:
    text = commit.read_text()
    commit.write_text(text[: text.rindex('{"add"') + 20] + "\n")  # a torn line mid-action


def _null_add(commit: Path) -> None:
    commit.write_text(commit.read_text() + '{"add":null}\n')


def _absolute_dv(commit: Path) -> None:
    def edit(a: dict[str, Any]) -> dict[str, Any]:
        if "add" in a and a["add"].get("deletionVector"):
            a["add"]["deletionVector"].update(storageType="p",
                                              pathOrInlineDv="s3://bucket/t/deletion_vector_1.bin")
        return a
    _rewrite_commit(commit, edit)


# table -> (source, commit to damage, how, a phrase the refusal must contain)
BAD = {
    "unparseable_commit": ("simple_table", "00000000000000000004.json", _truncate_last_add,
                           "not valid JSON"),
    "add_is_null": ("delta-0.8.0", "00000000000000000001.json", _null_add, "not a JSON object"),
    "absolute_dv": ("table-with-dv-small", "00000000000000000001.json", _absolute_dv,
                    "s3://bucket/t/deletion_vector_1.bin"),
}


def make_bad_tables(warehouse: Path) -> None:
    for table, (src, commit, damage, _) in BAD.items():
        dst = warehouse / DB / "bad" / table
        copy_part(TESTDATA / src, dst, None, True)
        damage(dst / "_delta_log" / commit)


# Hand-made checkpoint kinds the test data lacks, built from its tables.
V2_SRC = TESTDATA / "checkpoint-v2-table"
V2_JSON_8 = "00000000000000000008.checkpoint.e5ac4dc4-be27-4106-8a55-609707487f83.json"


def classic_named_v2_checkpoint(table: Path) -> None:
    """Version 8's V2 checkpoint as a *classic-named* Parquet file `8.checkpoint.parquet` with
    the same sidecar: the protocol allows V2-spec checkpoints under the classic name."""
    acts = {k: v for line in (V2_SRC / "_delta_log" / V2_JSON_8).read_text().splitlines()
            for k, v in json.loads(line).items()}
    kv = pa.map_(pa.string(), pa.string())
    schema = pa.schema([
        ("checkpointMetadata", pa.struct([("version", pa.int64()), ("tags", kv)])),
        ("sidecar", pa.struct([("path", pa.string()), ("sizeInBytes", pa.int64()),
                               ("modificationTime", pa.int64()), ("tags", kv)])),
        ("protocol", pa.struct([("minReaderVersion", pa.int32()), ("minWriterVersion", pa.int32()),
                                ("readerFeatures", pa.list_(pa.string())),
                                ("writerFeatures", pa.list_(pa.string()))])),
        ("metaData", pa.struct([("id", pa.string()), ("name", pa.string()), ("description", pa.string()),
                                ("format", pa.struct([("provider", pa.string()), ("options", kv)])),
                                ("schemaString", pa.string()), ("partitionColumns", pa.list_(pa.string())),
                                ("configuration", kv), ("createdTime", pa.int64())])),
    ])
    cm, sc, md = acts["checkpointMetadata"], acts["sidecar"], acts["metaData"]
    rows = [
        {"checkpointMetadata": {"version": cm["version"], "tags": list(cm["tags"].items())}},
        {"sidecar": {**sc, "tags": []}},
        {"protocol": acts["protocol"]},
        {"metaData": {**md, "format": {"provider": "parquet", "options": []},
                      "configuration": list(md["configuration"].items())}},
    ]
    pq.write_table(pa.Table.from_pydict({f.name: [r.get(f.name) for r in rows] for f in schema},
                                        schema=schema),
                   table / "_delta_log" / "00000000000000000008.checkpoint.parquet")


def multipart_checkpoint(table: Path) -> None:
    """Split the classic checkpoint of version 10 into a two-part checkpoint."""
    log = table / "_delta_log"
    classic = log / "00000000000000000010.checkpoint.parquet"
    t, st = pq.read_table(classic), classic.stat()
    half = t.num_rows // 2
    for i, part in enumerate((t.slice(0, half), t.slice(half)), 1):
        dest = log / f"00000000000000000010.checkpoint.{i:010d}.0000000002.parquet"
        pq.write_table(part, dest)
        os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
    classic.unlink()
    hint = json.loads((log / "_last_checkpoint").read_text())
    hint["parts"] = 2
    (log / "_last_checkpoint").write_text(json.dumps(hint))


# --- reading both sides ----------------------------------------------------------------------

Content = tuple[int, int, tuple[str, ...]] | str  # (rows, checksum, sorted rows if few) | error


def content(con: Any, table: Path, version: int) -> Content:
    """What DuckDB reads at a version: count, order-independent checksum and, for small tables,
    every row as text (so a failure shows the difference); or the reader's error, first line."""
    p = str(table).replace("'", "''")
    scan = f"delta_scan('{p}', version={int(version)}) t"
    try:
        n, checksum = con.execute(
            f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM {scan}").fetchone()
        text: tuple[str, ...] = ()
        if n <= 5000:
            text = tuple(r[0] for r in con.execute(f"SELECT CAST(t AS VARCHAR) AS r FROM {scan} ORDER BY r")
                         .fetchall())
        return int(n), int(checksum), text
    except Exception as e:  # DuckDB's error types
        return str(e).splitlines()[0].replace(str(table), "<table>")


def log_floor(table: Path) -> int:
    """Oldest version a table's log can be read at (what the standby exposes from)."""
    names = os.listdir(table / "_delta_log")
    return min(int(n[:20]) for n in names if re.fullmatch(r"\d{20}\.(json|checkpoint\..*)", n))


def files_of(table: Path) -> dict[str, bytes]:
    return {str(Path(d, f).relative_to(table)): Path(d, f).read_bytes()
            for d, _, fs in os.walk(table) for f in fs}


# --- the module's replication ----------------------------------------------------------------


@dataclass
class Round:
    backup: subprocess.CompletedProcess[str]
    restore: subprocess.CompletedProcess[str]
    manifest: dict[str, Any]
    # table name -> version newly exposed on the standby -> (primary, standby) as DuckDB reads them
    seen: dict[str, dict[int, tuple[Content, Content]]] = field(default_factory=dict)

    def table(self, name: str) -> dict[str, Any] | None:
        return next((t for t in self.manifest["tables"] if t["name"] == name), None)


@dataclass
class Replication:
    sites: Sites
    rounds: list[Round]
    verify: subprocess.CompletedProcess[str]


def _run_round(sites: Sites, con: Any, shown: dict[str, int]) -> Round:
    backup = drsync("backup", "-c", str(sites.config))
    assert backup.returncode in (0, 3), f"the round itself failed:\n{backup.stdout}{backup.stderr[-3000:]}"
    restore = drsync("restore", "-c", str(sites.config))
    assert restore.returncode in (0, 3), f"the restore failed:\n{restore.stdout}{restore.stderr[-3000:]}"
    r = Round(backup, restore, read_manifests(sites.primary_meta / "manifests")[-1])
    failed = {f["name"] for f in r.manifest["failed_objects"]}
    for name, version in r.manifest["versions"].items():
        if name in failed:
            continue
        rel = Path(relpath_of(name))
        p, s = sites.primary / rel, sites.standby / rel
        start = shown[name] + 1 if name in shown else log_floor(s)
        r.seen[name] = {v: (content(con, p, v), content(con, s, v)) for v in range(start, version + 1)}
        shown[name] = version
    return r


@pytest.fixture(scope="module")
def replication(tmp_path_factory: pytest.TempPathFactory) -> Replication:
    sites = make_sites(tmp_path_factory.mktemp("testdata") / "sites")
    wh, con = sites.primary, duck()
    shown: dict[str, int] = {}
    derived = wh / DB / "derived"

    # Round 1: the first half of every log, the broken copies, the derived tables.
    for c in CASES:
        copy_part(TESTDATA / c.src, c.path(wh), split_point(TESTDATA / c.src), True)
    make_bad_tables(wh)
    copy_part(V2_SRC, derived / "classic_named_v2", 7, True)
    copy_part(TESTDATA / "simple_table_with_checkpoint", derived / "multipart", None, True)
    multipart_checkpoint(derived / "multipart")
    rounds = [_run_round(sites, con, shown)]

    # Round 2: the rest of every log.
    for c in CASES:
        copy_part(TESTDATA / c.src, c.path(wh), split_point(TESTDATA / c.src), False)
    copy_part(V2_SRC, derived / "classic_named_v2", 7, False, skip=(V2_JSON_8, "_last_checkpoint"))
    classic_named_v2_checkpoint(derived / "classic_named_v2")
    rounds.append(_run_round(sites, con, shown))

    # Round 3: deltalake appends (+ a checkpoint and its _last_checkpoint) on the primary.
    for src in APPEND_TO:
        path = str(data_dir(wh, src))
        write_deltalake(path, DeltaTable(path).to_pyarrow_table().slice(0, 3), mode="append")
        if src in CHECKPOINT_AFTER_APPEND:
            DeltaTable(path).create_checkpoint()
    DeltaTable(str(data_dir(wh, CHECKPOINT_ONLY))).create_checkpoint()
    path = str(derived / "multipart")
    write_deltalake(path, DeltaTable(path).to_pyarrow_table().slice(0, 2), mode="append")
    rounds.append(_run_round(sites, con, shown))

    verify = drsync("verify", "-c", str(sites.config), "--deep")
    return Replication(sites, rounds, verify)


def seen_at(rep: Replication, name: str, version: int) -> tuple[Content, Content]:
    """(primary, standby) at a version, from the round that exposed it."""
    return next(r.seen[name][version] for r in rep.rounds if version in r.seen.get(name, {}))


def _check_exposed_versions(rep: Replication, name: str) -> int:
    """Every version the standby exposes: equal where the primary reads it; never "better"."""
    checked = 0
    for i, r in enumerate(rep.rounds, 1):
        for v, (p, s) in r.seen.get(name, {}).items():
            checked += 1
            if not isinstance(p, str):
                assert s == p, f"round {i}: {name} at version {v}: standby {s!r:.300} != primary {p!r:.300}"
                continue
            assert isinstance(s, str), f"round {i}: {name} at version {v}: standby reads rows, primary: {p}"
            missing = CANNOT_OPEN.search(s)
            if missing:  # the file the standby lacks must be lacking on the primary as well
                rel = Path(missing[1].replace("<table>/", "", 1))
                assert not (rep.sites.primary / relpath_of(name) / rel).exists(), (
                    f"round {i}: {name} at version {v}: standby lacks {rel}, which the primary has")
            else:
                assert s == p, f"round {i}: {name} at version {v}: standby error {s!r} != primary {p!r}"
    return checked


# --- tests -----------------------------------------------------------------------------------


def test_readme_lists_every_test_table() -> None:
    on_disk = {str(p.parent.relative_to(TESTDATA)) for p in TESTDATA.glob("**/_delta_log")}
    assert on_disk == {c.src for c in CASES}
    assert len(READABLE) + len(DAMAGED) + len(OTHER_UNREADABLE) == len(CASES) >= 50


@pytest.mark.parametrize("case", READABLE, ids=lambda c: c.src)
def test_readable_table_arrives_content_equal(replication: Replication, case: Case) -> None:
    for r in replication.rounds:
        assert case.name not in {f["name"] for f in r.manifest["failed_objects"]}
    final = replication.rounds[1].manifest["versions"][case.name]
    assert final == case.latest, "round 2 carries the whole log"
    assert _check_exposed_versions(replication, case.name) >= 1
    p, s = seen_at(replication, case.name, final)
    assert not isinstance(p, str) and p[0] == case.rows, f"primary copy reads {p!r:.200}"
    assert s == p


@pytest.mark.parametrize("case", DAMAGED, ids=lambda c: c.src)
def test_table_damaged_on_primary_is_mirrored_with_a_warning(replication: Replication, case: Case) -> None:
    rep = replication
    pdir, sdir = case.path(rep.sites.primary), case.path(rep.sites.standby)
    for r in rep.rounds:
        assert case.name not in {f["name"] for f in r.manifest["failed_objects"]}, "mirrored, not refused"
    assert rep.rounds[1].manifest["versions"][case.name] == case.latest
    _check_exposed_versions(rep, case.name)

    # A warning names a data file, and each file named is really missing on the primary.
    warned = [w for r in rep.rounds if (t := r.table(case.name)) for w in t["warnings"]]
    named = [m[1] for w in warned if (m := re.search(r": file (.+) needed by version \d+ is missing", w))]
    assert named, f"no warning names a missing file of {case.name}: {warned}"
    for rel in named:
        assert not (pdir / rel).exists()
    backup_err = "".join(r.backup.stderr for r in rep.rounds)
    assert any(rel in backup_err for rel in named), "the backup logs the warning"

    # deltalake (another independent reader) lists the files the latest version needs: the
    # standby has exactly those the primary has, byte for byte, and lacks the ones it lacks.
    ptab, stab = DeltaTable(str(pdir)), DeltaTable(str(sdir))
    assert stab.version() == ptab.version() == case.latest
    needed = sorted(os.path.relpath(u, pdir) for u in ptab.file_uris())
    assert needed == sorted(os.path.relpath(u, sdir) for u in stab.file_uris())
    assert any(not (pdir / rel).exists() for rel in needed)
    for rel in needed:
        assert (sdir / rel).exists() == (pdir / rel).exists(), rel
        if (pdir / rel).exists():
            assert (sdir / rel).read_bytes() == (pdir / rel).read_bytes(), rel


@pytest.mark.parametrize("case", OTHER_UNREADABLE, ids=lambda c: c.src)
def test_table_unreadable_by_protocol_is_mirrored_byte_for_byte(replication: Replication, case: Case) -> None:
    rep = replication
    for r in rep.rounds:
        assert case.name not in {f["name"] for f in r.manifest["failed_objects"]}
    assert rep.rounds[1].manifest["versions"][case.name] == case.latest
    p, s = seen_at(rep, case.name, case.latest)
    assert isinstance(p, str) and s == p, "the same reader error on both sides"
    _check_exposed_versions(rep, case.name)
    pfiles, sfiles = files_of(case.path(rep.sites.primary)), files_of(case.path(rep.sites.standby))
    for rel, data in sfiles.items():
        assert pfiles[rel] == data, rel
    assert {r for r in pfiles if r.startswith("_delta_log/0")} == {
        r for r in sfiles if r.startswith("_delta_log/0")}


def test_broken_tables_are_refused_by_name_and_every_other_table_arrives(replication: Replication) -> None:
    rep = replication
    bad_names = {f"{DB}.bad.{t}" for t in BAD}
    for i, r in enumerate(rep.rounds, 1):
        assert r.backup.returncode == 3, f"round {i}: {r.backup.stdout}{r.backup.stderr[-2000:]}"
        assert "Traceback" not in r.backup.stderr
        assert r.manifest["status"] == "partial"
        failed = {f["name"]: f["error"] for f in r.manifest["failed_objects"]}
        assert set(failed) == bad_names, f"round {i}: {failed}"
        lines = [ln for ln in r.backup.stderr.splitlines() if ln.startswith("failed object ")]
        assert len(lines) == len(BAD), lines
        for table, (_, commit, _, phrase) in BAD.items():
            name = f"{DB}.bad.{table}"
            (line,) = [ln for ln in lines if ln.startswith(f"failed object {name}: ")]
            assert phrase in line and commit in line, line
            assert "\n" not in failed[name] and phrase in failed[name]
            assert not (rep.sites.standby / DB / "bad" / table).exists()
        assert r.restore.returncode == 3, r.restore.stderr[-2000:]
        # One bad table never stops the round: every other table is in the set's barrier map.
        assert {c.name for c in CASES} <= set(r.manifest["versions"])
    for c in CASES:
        assert c.path(rep.sites.standby).is_dir(), c.name
    barriers = sorted((rep.sites.standby / "_drsync" / "barriers").glob("*.json"))
    assert len(barriers) == len(rep.rounds)


def test_appended_tables_arrive_content_equal(replication: Replication) -> None:
    r2, r3 = replication.rounds[1], replication.rounds[2]
    for src in APPEND_TO:
        name = data_name(src)
        assert r3.manifest["versions"][name] > r2.manifest["versions"][name], name
        assert (t := r3.table(name)) is not None and t["mode"] == "incremental", name
        if src in CHECKPOINT_AFTER_APPEND:
            assert any(f["kind"] == "last_checkpoint" for f in t["files"]), name
        assert r3.seen[name], name
        _check_exposed_versions(replication, name)
    touched = {data_name(s) for s in [*APPEND_TO, CHECKPOINT_ONLY]}
    assert not ({c.name for c in CASES} - touched) & {t["name"] for t in r3.manifest["tables"]}


def test_checkpoint_written_without_a_new_commit_follows(replication: Replication) -> None:
    name = data_name(CHECKPOINT_ONLY)
    r2, r3 = replication.rounds[1], replication.rounds[2]
    assert r3.manifest["versions"][name] == r2.manifest["versions"][name]
    t = r3.table(name)
    assert t is not None, "the new checkpoint was not shipped"
    ckpt = f"_delta_log/{r2.manifest['versions'][name]:020d}.checkpoint.parquet"
    assert {f["path"] for f in t["files"]} == {ckpt, "_delta_log/_last_checkpoint"}
    pdir, sdir = data_dir(replication.sites.primary, CHECKPOINT_ONLY), data_dir(
        replication.sites.standby, CHECKPOINT_ONLY)
    for rel in (ckpt, "_delta_log/_last_checkpoint"):
        assert (sdir / rel).read_bytes() == (pdir / rel).read_bytes()


@pytest.mark.parametrize("table", ["classic_named_v2", "multipart"])
def test_derived_checkpoint_kinds_arrive_content_equal(replication: Replication, table: str) -> None:
    """classic_named_v2: a V2 checkpoint with a sidecar under the classic name arrives in an
    incremental set (round 2) and needs its sidecar; multipart: the full copy starts from a
    two-part checkpoint, then a deltalake append follows incrementally."""
    name = f"{DB}.derived.{table}"
    n = _check_exposed_versions(replication, name)
    assert n >= 2
    for r in replication.rounds:
        for v, (p, _) in r.seen.get(name, {}).items():
            assert not isinstance(p, str), f"{name} at {v}: the derived table itself is broken: {p}"
    sdir = replication.sites.standby / DB / "derived" / table
    if table == "classic_named_v2":
        sidecar = V2_SRC / "_delta_log" / "_sidecars"
        assert any(f.name.startswith("00000000000000000008.") for f in sidecar.iterdir())
        assert {f.name for f in (sdir / "_delta_log" / "_sidecars").iterdir()} == {
            f.name for f in sidecar.iterdir()}


VERDICT = re.compile(r"^(ok|MISMATCH)\s+(\S+) @ version (\d+): (\d+) files(?:,\s+(\d+)\s+rows)?", re.M)


def test_verify_deep_verdicts(replication: Replication) -> None:
    rep = replication
    out = rep.verify.stdout
    assert "Traceback" not in rep.verify.stderr, rep.verify.stderr
    verdicts = {m[2]: m for m in VERDICT.finditer(out)}
    bad_names = {f"{DB}.bad.{t}" for t in BAD}
    assert not bad_names & set(verdicts), "refused tables never arrived, so are not verified"
    last = rep.rounds[-1].manifest["versions"]
    expect_ok = [c.name for c in READABLE] + [f"{DB}.derived.{t}" for t in ("classic_named_v2", "multipart")]
    for name in expect_ok:
        m = verdicts.get(name)
        assert m is not None, f"no verdict for {name}\n{out}"
        assert m[1] == "ok" and int(m[3]) == last[name], f"{name}: {m[0]}\n{out}"
        _, s = seen_at(rep, name, last[name])
        assert not isinstance(s, str) and int(m[5]) == s[0], f"{name}: verify: {m[0]}, DuckDB: {s!r:.100}"
    # Mirrored damaged tables: whatever verify concludes about rows (DuckDB cannot read them on
    # either side), the file-level comparison must find the standby equal to the primary.
    blocks = {name: out[m.start():] for name, m in verdicts.items()}
    for c in DAMAGED + OTHER_UNREADABLE:
        assert c.name in verdicts, c.name
        block = blocks[c.name]
        nxt = VERDICT.search(block, 1)
        block = block[: nxt.start()] if nxt else block
        for problem in ("is missing on the standby", "differs between primary and standby",
                        "needs different files on the two sides", "standby copy unreadable"):
            assert problem not in block, f"{c.name}: {block}"


# --- refused by name: absolute and escaping paths, next to good tables -----------------------


def test_absolute_and_escaping_paths_are_refused_by_name(sites: Sites, tmp_path: Path) -> None:
    wh = sites.primary
    small = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "region": ["a b", "c=d", "e%f"]})
    outside = tmp_path / "outside.parquet"
    pq.write_table(small, outside)
    bad_paths = {
        "abs_file": f"file://{outside}",
        "abs_s3": "s3://bucket/x.parquet",
        "escape": "../../escape.parquet",
    }
    for t in ["good_plain", "good_partitioned", *bad_paths]:
        write_deltalake(str(wh / "db" / "s" / t), small,
                        partition_by=["region"] if t == "good_partitioned" else None)
        write_deltalake(str(wh / "db" / "s" / t), small, mode="append")
    pq.write_table(small, wh / "db" / "escape.parquet")  # exists: refusing is not by accident

    def point_first_add_to(raw: str) -> Any:
        done: list[int] = []

        def edit(a: dict[str, Any]) -> dict[str, Any]:
            if "add" in a and not done:
                a["add"]["path"] = raw
                done.append(1)
            return a
        return edit

    for t, raw in bad_paths.items():
        _rewrite_commit(wh / "db" / "s" / t / "_delta_log" / "00000000000000000001.json",
                        point_first_add_to(raw))

    p = drsync("backup", "-c", str(sites.config))
    assert p.returncode == 3, p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("failed object ")]
    assert len(lines) == len(bad_paths), p.stderr
    for t, raw in bad_paths.items():
        (line,) = [ln for ln in lines if ln.startswith(f"failed object db.s.{t}: ")]
        assert raw in line and "00000000000000000001.json" in line, line
        assert ("absolute path" if t.startswith("abs") else "leaving the table") in line, line
    manifest = json.loads(sorted((sites.primary_meta / "manifests").glob("*.json"))[-1].read_text())
    assert manifest["status"] == "partial"
    assert {f["name"] for f in manifest["failed_objects"]} == {f"db.s.{t}" for t in bad_paths}
    assert {t["name"] for t in manifest["tables"]} == {"db.s.good_plain", "db.s.good_partitioned"}

    r = drsync("restore", "-c", str(sites.config))
    assert r.returncode == 3, r.stdout + r.stderr
    con = duck()
    for t in ("good_plain", "good_partitioned"):
        got = content(con, sites.standby / "db" / "s" / t, 1)
        assert got == content(con, wh / "db" / "s" / t, 1) and not isinstance(got, str), t
    for t in bad_paths:
        assert not (sites.standby / "db" / "s" / t).exists(), t
    assert not (sites.standby / "db" / "escape.parquet").exists()
