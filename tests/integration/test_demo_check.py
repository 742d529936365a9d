"""`make demo` leaves a site `drsync check` passes, and the repository points at nothing outside
itself (issue 16, item 8)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, drsync


def test_check_passes_right_after_the_demo(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    p = subprocess.run([sys.executable, "-m", "drsync.demo", "--dir", str(demo), "--rounds", "0"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    r = drsync("check", "-c", str(demo / "backupRestore.ini"))
    assert r.returncode == 0, r.stdout
    assert re.search(r"^pair_recorded: OK", r.stdout, re.M), r.stdout


def test_docs_and_example_config_name_only_files_of_the_repository() -> None:
    outside = re.compile(r"shared/(?:spec|DESIGN|STYLE|testdata)|\.\./shared")
    files = [REPO / "README.md", REPO / "etc" / "backupRestore.ini.example",
             *(REPO / "docs").glob("*.md"), *(REPO / "drsync").rglob("*.py")]
    offenders = [str(f.relative_to(REPO)) for f in files if outside.search(f.read_text())]
    assert offenders == []
