"""The RPO forecast warns before the breach, not after: a throttled SSH link and a big write.

One measured round teaches the rate (bandwidth-limit 2 MB/s). Then a write larger than the
link can carry before rpo-target is shipped; while it is on the wire, `show-progress` must
already predict the breach although the RPO is still below the target — and the RPO must then
really cross the target (the load does breach).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.helpers import drsync
from tests.integration.test_ssh import big_table, ssh_sites
from tests.sshd import SshServer


def _progress(config: Path) -> dict[str, Any]:
    r = drsync("show-progress", "--format", "json", "-c", str(config))
    assert r.returncode in (0, 1), r.stderr
    return dict(json.loads(r.stdout))


def test_forecast_predicts_the_breach_before_it_happens(sshd: SshServer, tmp_path: Path) -> None:
    sites = ssh_sites(tmp_path / "s", sshd, more="bandwidth-limit=1MB/s\n")
    big_table(sites.primary, 3, files=1)  # the measured round: ~3 s on the wire
    for op in ("backup", "restore"):
        r = drsync(op, "-c", str(sites.config), timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
    doc = _progress(sites.config)
    assert doc["rpo forecast"]["note"] == "caught up" and not doc["rpo forecast"]["breachPredicted"]

    big_table(sites.primary, 24, files=2)  # ~24 s on the wire at 1 MB/s
    rpo_now = int(_progress(sites.config)["recovery point objective"])
    # reachable only once the big set has been on the wire a while; far enough that cutting and
    # packing the set (before its manifest tells the forecast its size) fits on a busy machine
    target = rpo_now + 15
    sites.config.write_text(sites.config.read_text() + f"rpo-target={target}s\n")

    backup = subprocess.Popen([sys.executable, "-m", "drsync", "backup", "--now", "-c", str(sites.config)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    warned_at = breached_at = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and breached_at is None:
        doc = _progress(sites.config)
        rpo = int(doc["recovery point objective"])
        if warned_at is None and doc["rpo forecast"]["breachPredicted"] and rpo <= target:
            warned_at = (time.monotonic(), rpo, doc["rpo forecast"]["note"])
        if rpo > target:
            breached_at = time.monotonic()
        time.sleep(0.3)
    out = backup.communicate(timeout=120)[0].decode()
    assert backup.returncode == 0, out
    assert breached_at is not None, "the load never breached rpo-target: the test proves nothing"
    assert warned_at is not None, "no breach predicted while the RPO was still below the target"
    assert warned_at[0] < breached_at, warned_at
    assert "breach predicted" in warned_at[2]
