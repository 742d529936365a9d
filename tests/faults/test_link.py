"""A bad link between the primary and the standby's sshd: every fault is injected by a TCP fault
proxy (tests/faultproxy.py; this kernel has no `tc netem`) between drsync and a real OpenSSH
server, or by killing the real `drsync agent` on the far side mid-put.

Each case: the round completes (re-run when the configured retries are used up, as the daemon
would), what already landed is resumed rather than sent again (bytes through the proxy), and the
standby ends up equal to the primary (DuckDB).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faultproxy import FaultProxy
from tests.faults.conftest import Reliability, soak
from tests.helpers import Sites, drsync, duck, rows
from tests.integration.test_ssh import big_table, known_hosts_for_port, ssh_sites
from tests.sshd import SshServer

MIB = 1 << 20


@pytest.fixture
def proxy(sshd: SshServer) -> Iterator[FaultProxy]:
    p = FaultProxy("127.0.0.1", sshd.port).start()
    yield p
    p.stop()
    assert p.error is None, f"the fault proxy itself failed: {p.error!r}"


def _proxied_sites(sshd: SshServer, proxy: FaultProxy, tmp_path: Path, more: str = "") -> Sites:
    kh = known_hosts_for_port(sshd, proxy.port, tmp_path / "kh")
    sites = ssh_sites(tmp_path / "s", sshd, port=proxy.port, known_hosts=kh,
                      more="parrallel-process=1\n" + more)
    sites.config.write_text(sites.config.read_text().replace("parrallel-process=2\n", ""))
    return sites


def _parquet_bytes(sites: Sites) -> int:
    return sum(f.stat().st_size for f in sites.primary.rglob("*.parquet"))


def _backup_until_done(sites: Sites, attempts: int) -> int:
    """Run backup rounds until one succeeds (what the daemon does); returns the rounds needed."""
    outs = []
    for n in range(1, attempts + 1):
        p = drsync("backup", "-c", str(sites.config))
        assert "Traceback" not in p.stderr and "internal error" not in p.stderr, p.stderr
        if p.returncode == 0:
            return n
        outs.append(p.stderr)
    raise AssertionError(f"backup did not complete in {attempts} rounds:\n" + "\n".join(outs))


def _equal_big(sites: Sites) -> None:
    drsync("restore", "-c", str(sites.config), check=True)
    t = "big/raw/blobs"
    assert rows(duck(), sites.standby / t) == rows(duck(), sites.primary / t)


def test_cut_connection_resumes_without_resending_complete_bytes(sshd: SshServer, proxy: FaultProxy,
                                                                 tmp_path: Path,
                                                                 reliability: Reliability) -> None:
    """(Moved from tests/integration/test_ssh.py.)"""
    rel = reliability("SSH connection dropped mid-transfer", "fault proxy cuts every connection "
                      "after 70 % of the data went through it")
    with rel.trial():
        sites = _proxied_sites(sshd, proxy, tmp_path)
        big_table(sites.primary, mb=24)
        total = _parquet_bytes(sites)
        proxy.cut_after_bytes = int(total * 0.7)  # every connection is cut after 70 % of the data
        p = drsync("backup", "-c", str(sites.config))
        assert p.returncode == 0, p.stderr
        assert proxy.cuts >= 1, "the proxy never cut: the test proves nothing"
        # Regression: the dead channel's buffered file printed a paramiko traceback on close.
        assert "Traceback" not in p.stderr and "Exception ignored" not in p.stderr, p.stderr
        # Resumed, not restarted: restarting would cost >= 1.7x the data.
        assert proxy.bytes_up < total * 1.25, (proxy.bytes_up, total)
        _equal_big(sites)


@pytest.mark.parametrize("parallel", [1, 2])
def test_cut_with_several_raw_files_in_flight_resumes_each(sshd: SshServer, proxy: FaultProxy,
                                                           tmp_path: Path, parallel: int,
                                                           reliability: Reliability) -> None:
    """Windowed sending (transport/window.py): a link holds several raw files unacknowledged when
    it is cut. Each is then checked and resumed from what the standby holds, none sent again."""
    rel = reliability("SSH connection dropped with several files in flight", "8 raw files of 1.5 MiB "
                      f"(parrallel-process={parallel}), every connection cut after 60 % of its share")
    with rel.trial():
        sites = _proxied_sites(sshd, proxy, tmp_path)
        sites.config.write_text(sites.config.read_text().replace(
            "parrallel-process=1\n", f"parrallel-process={parallel}\n"))
        big_table(sites.primary, mb=12, files=8)
        total = _parquet_bytes(sites)
        proxy.cut_after_bytes = int(total * 0.6 / parallel)
        rounds = _backup_until_done(sites, attempts=3)
        assert proxy.cuts >= parallel, "the proxy never cut: the test proves nothing"
        # Beyond the data: what was in the pipes at each cut (SSH window, socket buffers, the
        # proxy's 1 MiB queue), never a whole unacknowledged file again.
        assert proxy.bytes_up < total * 1.03 + (proxy.cuts + rounds) * 3 * MIB, \
            f"{proxy.bytes_up} bytes sent for {total} with {proxy.cuts} cut(s)"
        _equal_big(sites)


def test_corrupted_partial_file_is_detected_and_resent(sshd: SshServer, proxy: FaultProxy, tmp_path: Path,
                                                       reliability: Reliability) -> None:
    """(Moved from tests/integration/test_ssh.py.)"""
    rel = reliability("SSH connection dropped mid-transfer", "cut at 50 % with no retries, a bit "
                      "flipped in the partial file on the standby, then the next round")
    with rel.trial():
        sites = _proxied_sites(sshd, proxy, tmp_path)
        sites.config.write_text(sites.config.read_text().replace("check-balance-retry-times=3", "")
                                + "check-balance-retry-times=0\n")
        big_table(sites.primary, mb=8, files=1)
        proxy.cut_after_bytes = _parquet_bytes(sites) // 2
        p = drsync("backup", "-c", str(sites.config))
        assert p.returncode == 1, "the cut should fail the round (no retries configured)"
        (part,) = list(sites.standby_media.rglob("*.part"))
        data = bytearray(part.read_bytes())
        data[len(data) // 3] ^= 0x01  # a bit flipped in what already arrived
        part.write_bytes(bytes(data))
        proxy.cut_after_bytes = None
        p = drsync("backup", "-c", str(sites.config))
        assert p.returncode == 0, p.stderr
        assert "corrupted" in p.stderr  # the agent's hash check caught it; the file was sent again
        _equal_big(sites)


SEEDS = list(range(soak(1, 8)))


@pytest.mark.parametrize("seed", SEEDS)
def test_slow_lossy_link(sshd: SshServer, proxy: FaultProxy, tmp_path: Path, seed: int,
                         reliability: Reliability) -> None:
    rel = reliability("slow, lossy link", "fault proxy: 100 ms one-way latency, 3 MB/s each way, "
                      "random connection cuts (p = 0.35 per MiB, seeded)")
    with rel.trial():
        sites = _proxied_sites(sshd, proxy, tmp_path)
        big_table(sites.primary, mb=8, files=4)
        total = _parquet_bytes(sites)
        proxy.latency_s = 0.1
        proxy.rate_bytes_per_s = 3 * 10**6
        proxy._rng.seed(seed)
        proxy.cut_probability_per_mb = 0.35
        rounds = _backup_until_done(sites, attempts=8)
        cuts = proxy.cuts
        proxy.cut_probability_per_mb = 0.0
        # Resumed, never restarted: beyond the data itself, at most what was in flight at each
        # cut (socket buffers + the proxy's 1 MiB queue) and SSH's own framing.
        assert proxy.bytes_up < total * 1.05 + (cuts + rounds) * 2 * MIB, \
            f"{proxy.bytes_up} bytes sent for {total} bytes of data with {cuts} cut(s)"
        print(f"seed {seed}: {cuts} cut(s), {rounds} round(s), {proxy.bytes_up / total:.2f}x the data")
        _equal_big(sites)


@pytest.mark.parametrize("point", ["agent.put_chunk:3", "agent.put_renamed:2"])
def test_agent_killed_inside_a_put(sshd: SshServer, proxy: FaultProxy, tmp_path: Path, point: str,
                                   reliability: Reliability) -> None:
    """put_chunk: mid-file; put_renamed: a file renamed into place on the agent's second thread
    (completions.py) with its reply not sent, while the next file is already arriving."""
    rel = reliability("kill -9 of the standby's agent mid-put", "every `drsync agent` started over "
                      f"SSH kills itself (SIGKILL) at {point} (DRSYNC_CRASH_AT)")
    with rel.trial():
        sites = _proxied_sites(sshd, proxy, tmp_path)
        text = sites.config.read_text().replace(
            f"remote-drsync-command={sys.executable} -m drsync",
            f"remote-drsync-command=env DRSYNC_CRASH_AT={point} {sys.executable} -m drsync")
        sites.config.write_text(text)
        big_table(sites.primary, mb=12, files=4)
        total = _parquet_bytes(sites)
        rounds = _backup_until_done(sites, attempts=12)
        assert proxy.connections > 1, "the agent never died: the test proves nothing"
        assert proxy.bytes_up < total * 1.05 + proxy.connections * 3 * MIB, \
            f"{proxy.bytes_up} bytes sent for {total} with {proxy.connections} connections"
        print(f"{proxy.connections} connection(s), {rounds} round(s), {proxy.bytes_up / total:.2f}x the data")
        sites.config.write_text(text.replace(f"env DRSYNC_CRASH_AT={point} ", ""))
        _equal_big(sites)


KILLS_MID_SHIP = [2, 5, 9] if not soak(0, 1) else [1, 2, 3, 5, 7, 9, 11, 13]


def test_primary_killed_mid_ship_over_ssh_resumes(sshd: SshServer, proxy: FaultProxy, tmp_path: Path,
                                                  reliability: Reliability) -> None:
    rel = reliability("kill -9 of backup mid-ship (SSH)", "SIGKILL of the primary's backup at its "
                      f"n-th chunk sent over SSH (n = {', '.join(map(str, KILLS_MID_SHIP))}), each run "
                      "resuming the last; then a clean round")
    sites = _proxied_sites(sshd, proxy, tmp_path)
    big_table(sites.primary, mb=12, files=2)
    total = _parquet_bytes(sites)
    con = duck()
    killed = 0
    for n in KILLS_MID_SHIP:
        with rel.trial():
            p = drsync("backup", "-c", str(sites.config), env={"DRSYNC_CRASH_AT": f"ship.chunk:{n}"})
            assert p.returncode in (-9, 0), p.stderr
            killed += p.returncode == -9
            # Whatever arrived restores; the standby table is readable or not there yet.
            r = drsync("restore", "-c", str(sites.config))
            assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
            s = sites.standby / "big" / "raw" / "blobs"
            assert not s.exists() or rows(con, s) == rows(con, sites.primary / "big" / "raw" / "blobs")
    assert killed >= 2, "the backups were not killed mid-ship: the test proves nothing"
    with rel.trial():
        drsync("backup", "-c", str(sites.config), check=True)
        # Each killed run lost at most what was in flight; nothing complete was sent twice.
        assert proxy.bytes_up < total * 1.05 + len(KILLS_MID_SHIP) * 3 * MIB, (proxy.bytes_up, total)
        _equal_big(sites)
