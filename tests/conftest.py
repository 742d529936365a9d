from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Sites, make_sites

UNPRIVILEGED_USER = "drsync-ro-test"  # a system user the read-only and fencing tests write as


@pytest.fixture
def sites(tmp_path: Path) -> Sites:
    """A primary and a standby warehouse on this host, with a transport=local config."""
    return make_sites(tmp_path / "sites")



@pytest.fixture
def open_sites() -> Iterator[Sites]:
    """Sites under a directory UNPRIVILEGED_USER can reach (pytest's tmp is root-only), for
    tests that prove mode bits stop a real unprivileged writer (mode bits do not stop root)."""
    if os.geteuid() != 0:
        raise RuntimeError("this test needs root to create an unprivileged user")
    try:
        pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        # two pytest-xdist workers may race to create it: whoever loses finds it made
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        UNPRIVILEGED_USER], check=False, capture_output=True)
        pwd.getpwnam(UNPRIVILEGED_USER)
    base = Path(tempfile.mkdtemp(prefix="drsync-open-", dir="/tmp"))
    os.chmod(base, 0o755)
    try:
        yield make_sites(base / "sites")
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)


from tests.sshd import private_sshd, sshd  # noqa: E402,F401  (re-exported fixtures)
