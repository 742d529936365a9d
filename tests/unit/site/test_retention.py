from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from drsync.config import Settings, load_settings
from drsync.demo import ROUND_WRITES, create_sample_warehouse
from drsync.primary.round import run_backup
from drsync.sets.manifest import key_time
from drsync.site.retention import main, run_retention
from drsync.site.state import PrimaryState, load_state, read_history, save_state
from drsync.standby.restore import barrier_dir, run_restore
from drsync.standby.verify import verify_tables
from tests.helpers import Sites


def _sets(media: Path, manifests: Path) -> tuple[list[str], list[str]]:
    return (sorted(p.name for p in media.iterdir() if p.is_dir()),
            sorted(p.name.split(".")[0] for p in manifests.glob("*.manifest.json")))


@pytest.fixture
def chain(sites: Sites) -> tuple[Settings, list[str]]:
    """Four sets: the first three restored on the standby, the fourth shipped only."""
    create_sample_warehouse(sites.primary, rows=20)
    s = load_settings(sites.config)
    keys = []
    for r in range(4):
        if r:
            ROUND_WRITES[r - 1](sites.primary, r)
        keys.append(run_backup(s).key)
        if r == 2:
            run_restore(s)
    return s, [k for k in keys if k is not None]


def test_primary_deletes_restored_expired_sets_only(sites: Sites, chain: tuple[Settings, list[str]]) -> None:
    s, keys = chain
    later = key_time(keys[-1]) + s.life_cycle + timedelta(hours=1)
    report = run_retention(s, "primary", now=later)
    assert report.deleted_sets == keys[:3] and report.kept_sets == 1 and report.bytes_freed > 0
    assert _sets(sites.primary_media, sites.primary_meta / "manifests") == ([keys[3]], [keys[3]])
    assert report.message.startswith(f"retention (primary): deleted 3 set(s) {keys[0]}..{keys[2]}, ")
    # the standby's copies are the standby's business
    assert _sets(sites.standby_media, sites.standby_meta / "manifests") == (keys, keys)


def test_standby_deletes_sets_and_barrier_maps_but_keeps_the_newest(
        sites: Sites, chain: tuple[Settings, list[str]]) -> None:
    s, keys = chain
    later = key_time(keys[-1]) + s.life_cycle + timedelta(hours=1)
    report = run_retention(s, "standby", now=later)
    assert report.deleted_sets == keys[:3]  # the fourth is not restored (and is the newest)
    assert report.deleted_barrier_maps == keys[:2]  # the newest map stays
    assert _sets(sites.standby_media, sites.standby_meta / "manifests") == ([keys[3]], [keys[3]])
    assert sorted(p.stem for p in barrier_dir(sites.standby).iterdir()) == [keys[2]]

    # nothing needed was deleted: the chain goes on and the standby verifies
    run_restore(s)
    ROUND_WRITES[3](sites.primary, 4)
    run_backup(s)
    assert len(run_restore(s).applied) == 1
    assert all(v.ok for v in verify_tables(s, None, False))


def test_nothing_within_life_cycle(sites: Sites, chain: tuple[Settings, list[str]]) -> None:
    s, keys = chain
    soon = key_time(keys[0]) + s.life_cycle - timedelta(minutes=1)
    for role in ("primary", "standby"):
        report = run_retention(s, role, now=soon)
        assert report.deleted_sets == [] and report.deleted_barrier_maps == []
        assert report.message == (f"retention ({role}): nothing to delete; kept 4 set(s) (not restored, "
                                  f"newer than life-cycle, or the newest); the standby is restored up to "
                                  f"{keys[2]}")


def test_never_a_set_waiting_to_be_shipped(sites: Sites, chain: tuple[Settings, list[str]]) -> None:
    s, keys = chain
    state: PrimaryState = load_state(sites.primary_meta, PrimaryState)
    state.unshipped = [keys[1]]  # as if the primary had to ship it again
    save_state(sites.primary_meta, state)
    report = run_retention(s, "primary", now=key_time(keys[-1]) + s.life_cycle * 2)
    assert report.deleted_sets == [keys[0], keys[2]]


def test_all_restored_keeps_the_newest(sites: Sites, chain: tuple[Settings, list[str]]) -> None:
    s, keys = chain
    run_restore(s)
    report = run_retention(s, "primary", now=key_time(keys[-1]) + s.life_cycle * 2)
    assert report.deleted_sets == keys[:3]
    assert _sets(sites.primary_media, sites.primary_meta / "manifests") == ([keys[3]], [keys[3]])


def test_one_shot_entry_point(sites: Sites, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", str(sites.config)]) == 2  # transport=local: the role must be given
    assert "pass --role" in capsys.readouterr().err
    assert main(["-c", str(sites.config), "--role", "standby"]) == 0
    assert capsys.readouterr().out.startswith("retention (standby): nothing to delete")


def test_continuous_mode_thins_old_barrier_maps_and_history(
        sites: Sites, chain: tuple[Settings, list[str]]) -> None:
    s, keys = chain
    barriers = barrier_dir(sites.standby)
    template = (barriers / f"{keys[2]}.json").read_bytes()
    # a burst of one set a second two hours before the chain, as continuous mode cuts them
    start = key_time(keys[0]) - timedelta(hours=2)
    burst = [(start + timedelta(seconds=i)).strftime("%Y%m%d_%H%M%S") for i in range(150)]
    for k in burst:
        (barriers / f"{k}.json").write_bytes(template)
    history = s.metadata_dir("standby") / s.backuprestoreinfo_file
    rows_before = len(read_history(history))
    soon = key_time(keys[-1]) + timedelta(minutes=1)

    scheduled = run_retention(s, "standby", now=soon)  # the DWS behaviour: nothing thinned
    assert scheduled.thinned_barrier_maps == 0 and len(list(barriers.iterdir())) == 150 + 3

    s = s.model_copy(update={"replication_mode": "continuous"})
    report = run_retention(s, "standby", now=soon)
    left = sorted(p.stem for p in barriers.iterdir())
    minutes = {k[:13] for k in burst}
    assert report.thinned_barrier_maps == 150 - len(minutes)
    assert [k for k in left if k in burst] == sorted(max(k for k in burst if k[:13] == m) for m in minutes)
    assert all(k in left for k in keys[:3])  # the last hour is untouched
    assert report.deleted_sets == [] and "thinned" in report.message
    assert len(read_history(history)) == rows_before  # its rows are all recent

    run_restore(s)  # the chain goes on from the newest map
    assert all(v.ok for v in verify_tables(s, None, False))
