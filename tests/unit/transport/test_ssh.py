"""drsync.transport.ssh pieces that need no server: the shared rate limiter, the remote
command line (quoting), host-key fingerprints."""

from __future__ import annotations

import shlex
import threading
import time
from pathlib import Path

import paramiko

from drsync.config import parse_settings_text
from drsync.transport.ssh import RateLimiter, agent_command, fingerprint


def test_rate_limiter_bounds_the_total_rate_across_threads() -> None:
    limiter = RateLimiter(4 << 20)  # 4 MiB/s shared
    sent = 12 << 20

    def worker() -> None:
        for _ in range(sent // 3 // (256 << 10)):
            limiter.take(256 << 10)

    start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    # 12 MiB at 4 MiB/s: ~2 s after the initial 1 s burst; never much faster than the limit.
    assert elapsed >= 1.8, elapsed


def test_no_limit_costs_nothing() -> None:
    limiter = RateLimiter(None)
    start = time.monotonic()
    for _ in range(10_000):
        limiter.take(1 << 20)
    assert time.monotonic() - start < 0.5


def test_agent_command_quotes_every_word(tmp_path: Path) -> None:
    text = f"""transport=local
primary-warehouse={tmp_path}/p/w
standby-warehouse={tmp_path}/s/w`id`
primary-media-destination={tmp_path}/p/media
primary-metadata-destination={tmp_path}/p/meta
restore-media-destination={tmp_path}/s/media dir; rm -rf ~
restore-metadata-destination={tmp_path}/s/$(touch pwned)
remote-drsync-command="/opt/dr sync/bin/drsync" --flag
"""
    settings = parse_settings_text(text, "cfg.ini")
    cmd = agent_command(settings)
    words = shlex.split(cmd)  # what the remote shell will see, word for word
    assert words == ["/opt/dr sync/bin/drsync", "--flag", "agent",
                     "--media-root", f"{tmp_path}/s/media dir; rm -rf ~",
                     "--metadata-root", f"{tmp_path}/s/$(touch pwned)",
                     "--warehouse-root", f"{tmp_path}/s/w`id`"]
    assert agent_command(settings, "primary").endswith(shlex.quote(f"{tmp_path}/p/w"))


def test_fingerprint_matches_openssh_format() -> None:
    fp = fingerprint(paramiko.RSAKey.generate(1024))
    assert fp.startswith("SHA256:") and "=" not in fp and len(fp) == 7 + 43
