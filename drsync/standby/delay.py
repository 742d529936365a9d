"""Delayed apply (`restore-delay`): the standby applies a set only once its barrier is that old.

A logical mistake on the primary (a bad DELETE, a wrong MERGE) is replicated faithfully within
minutes; with a delay the operator has that long to `stop-restore` and fork the state before
it (`drsync drill start`). Sets are held back in chain order: the first set not yet due holds
back every later one, so the standby still moves from barrier to barrier. RPO is not
adjusted: it is measured from the restored barriers, so the delay counts in it, as it should.

The clock is a parameter (`now`), `drsync.faults.wall_clock` by default, so tests decide what
time it is instead of waiting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from drsync.sets.manifest import Manifest
from drsync.site.state import StandbyState, local_time


@dataclass
class Held:
    """What the delay keeps back at `now`: the sets not yet due and when the first one is."""

    delay: timedelta
    keys: list[str] = field(default_factory=list)
    next_due_ms: int | None = None  # when the oldest held-back set becomes due
    newest_barrier_ms: int | None = None  # the newest barrier held back

    def describe(self) -> str:
        if not self.keys:
            return ""
        span = self.keys[0] if len(self.keys) == 1 else f"{self.keys[0]}..{self.keys[-1]}"
        due = local_time(self.next_due_ms / 1000) if self.next_due_ms is not None else "?"
        return (f"restore-delay={format_delay(self.delay)} holds back {len(self.keys)} set(s) ({span}); "
                f"the next is due at {due}")


def format_delay(delay: timedelta) -> str:
    seconds = int(delay.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def due_ms(m: Manifest, delay: timedelta) -> int:
    return m.barrier_ms + int(delay.total_seconds() * 1000)


def split_due(chain: Sequence[Manifest], delay: timedelta, now: datetime) -> tuple[list[Manifest], Held]:
    """The leading sets of `chain` whose barrier is at least `delay` old at `now`, and the rest.

    A set is due exactly when `barrier + delay <= now` (millisecond precision). Without a
    delay every set is due: the primary's clock may run ahead of this host's (skew, a clock
    stepped back), and replication must never wait for this host's clock to catch up."""
    now_ms = int(now.astimezone(UTC).timestamp() * 1000)
    ready: list[Manifest] = []
    held = Held(delay)
    if delay <= timedelta(0):
        return list(chain), held
    for i, m in enumerate(chain):
        if due_ms(m, delay) > now_ms:
            rest = chain[i:]
            held.keys = [r.key for r in rest]
            held.next_due_ms = due_ms(m, delay)
            held.newest_barrier_ms = rest[-1].barrier_ms
            break
        ready.append(m)
    return ready, held


def record_held(state: StandbyState, held: Held) -> None:
    """Keep what is held back in the standby state, for show-progress and /progress."""
    state.restore_delay_s = int(held.delay.total_seconds())
    state.held_back = list(held.keys)
    state.next_apply_time = local_time(held.next_due_ms / 1000) if held.next_due_ms is not None else ""


def progress_fields(standby: StandbyState) -> dict[str, str]:
    """drsync's additions to the show-progress document when a delay is configured or sets
    are held back: the delay in seconds, the held-back keys and when the next one is due."""
    if not standby.restore_delay_s and not standby.held_back:
        return {}
    return {
        "restore delay": str(standby.restore_delay_s),
        "held back keys": ",".join(standby.held_back) or "N/A",
        "next apply time": standby.next_apply_time,
    }
