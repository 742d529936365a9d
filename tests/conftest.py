from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import Sites, make_sites


@pytest.fixture
def sites(tmp_path: Path) -> Sites:
    """A primary and a standby warehouse on this host, with a transport=local config."""
    return make_sites(tmp_path / "sites")


from tests.sshd import private_sshd, sshd  # noqa: E402,F401  (re-exported fixtures)
