"""Iceberg directory table: drsync (in-process backup + restore) against `rsync -a --delete`.

One table written by pyiceberg with SNAPSHOTS appends (a few hundred rows each), then
replicated first in full, then over ROUNDS rounds of one more append each. Side by side per
step: wall seconds and bytes moved (drsync: the set's bundles plus its manifest; rsync:
`Total bytes sent` of --stats, local to local). Then the copies are read with the primary's
directory renamed away: drsync's (rewritten to its own location) reads; rsync's, whose
metadata still names the primary's paths, does not.

    .venv/bin/python -m bench.iceberg [--snapshots 50] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from pyiceberg.table import Table

from drsync.config import Settings, load_settings
from drsync.demo import write_config
from drsync.fsutil import rmtree_force
from drsync.primary.round import run_backup
from drsync.site.layout import MANIFEST_DIR
from drsync.standby.restore import run_restore
from tests.iceberg_helpers import batch, catalog, commit, create_dir_table, duck_rows, iceduck


def _rsync(src: Path, dst: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    p = subprocess.run(["rsync", "-a", "--delete", "--stats", f"{src}/", f"{dst}/"],
                       capture_output=True, text=True, check=True)
    took = time.perf_counter() - t0
    m = re.search(r"Total bytes sent: ([\d,]+)", p.stdout)
    return took, int(m[1].replace(",", "")) if m else -1


def local_sites(prefix: str) -> tuple[Path, Settings]:
    """A temp root holding a primary and a standby warehouse, and a transport=local config."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    for side in ("primary", "standby"):
        (root / side / "warehouse").mkdir(parents=True)
    return root, load_settings(write_config(root, grace="0s"))


def snapshot_table(root: Path, src: Path, snapshots: int, rows: int) -> Table:
    """A directory table at `src` written by pyiceberg: `snapshots` appends of `rows` rows."""
    t = create_dir_table(catalog(root / "scratch"), "db.ice", src, rows=rows)
    for i in range(1, snapshots):
        commit(t, lambda t, i=i: t.append(batch(1000 * i, rows)))
    return t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--snapshots", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    root, settings = local_sites("drsync-bench-iceberg-")
    src = root / "primary" / "warehouse" / "db" / "s" / "ice"
    rs_dst = root / "rsync" / "db" / "s" / "ice"
    rs_dst.mkdir(parents=True)
    t = snapshot_table(root, src, args.snapshots, 300)

    def drsync_round() -> tuple[float, int]:
        before = set(os.listdir(settings.primary_metadata_destination / MANIFEST_DIR)) \
            if (settings.primary_metadata_destination / MANIFEST_DIR).exists() else set()
        t0 = time.perf_counter()
        b = run_backup(settings)
        r = run_restore(settings)
        took = time.perf_counter() - t0
        assert b.exit_code == 0 and r.exit_code == 0, (b.message, r.message)
        new = sorted(set(os.listdir(settings.primary_metadata_destination / MANIFEST_DIR)) - before)
        m = settings.primary_metadata_destination / MANIFEST_DIR / new[-1]
        return took, sum(x["size"] for x in json.loads(m.read_bytes())["bundles"]) + m.stat().st_size

    rows = [("first copy", drsync_round(), _rsync(src, rs_dst))]
    for r in range(args.rounds):
        commit(t, lambda t, r=r: t.append(batch(10_000_000 + 100 * r, 100)))
        rows.append((f"round {r + 1}", drsync_round(), _rsync(src, rs_dst)))
    print(f"Iceberg directory table, {args.snapshots} snapshots, then {args.rounds} rounds of one append")
    print(f"{'step':<12} {'drsync ms':>10} {'drsync kB':>10} {'rsync ms':>9} {'rsync kB':>9}")
    for label, (d_s, d_b), (r_s, r_b) in rows:
        print(f"{label:<12} {d_s * 1000:>10.0f} {d_b / 1000:>10.1f} {r_s * 1000:>9.0f} {r_b / 1000:>9.1f}")
    con = iceduck()
    expected = duck_rows(con, src)
    away = src.parent.parent.parent.with_name("warehouse.away")
    os.rename(src.parent.parent.parent, away)
    try:
        ours = duck_rows(con, root / "standby" / "warehouse" / "db" / "s" / "ice") == expected
        try:
            theirs = "equal" if duck_rows(con, rs_dst) == expected else "differs"
        except Exception as e:
            theirs = f"unreadable ({type(e).__name__})"
    finally:
        os.rename(away, src.parent.parent.parent)
    print(f"primary renamed away: drsync copy {'equal' if ours else 'DIFFERS'}; rsync copy {theirs}")
    rmtree_force(root)


if __name__ == "__main__":
    main()
