"""backupRestore.ini parsing: values, ranges, error lines, cross-field rules and the swap."""

from __future__ import annotations

import re
from datetime import time, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from drsync.config import (
    KNOWN_KEYS,
    SWAP_PAIRS,
    load_settings,
    parse_duration,
    parse_settings_text,
    parse_size_per_second,
    swap_config_text,
)
from drsync.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[3] / "etc" / "backupRestore.ini.example"
SOURCE = "cfg.ini"

# The smallest valid file: the required paths, on one host.
MINIMAL = {
    "transport": "local",
    "primary-warehouse": "/srv/p/warehouse",
    "standby-warehouse": "/srv/s/warehouse",
    "primary-media-destination": "/srv/p/media",
    "primary-metadata-destination": "/srv/p/metadata",
    "restore-media-destination": "/srv/s/media",
    "restore-metadata-destination": "/srv/s/metadata",
}
SSH_KEYS = {
    "primary-host-ip": "10.0.0.1",
    "restore-host-ip": "standby.example.com",
    "username": "drsync",
    "ssh-key-file": "/etc/drsync/id_ed25519",
    "known-hosts-file": "/etc/drsync/known_hosts",
}


def render(**overrides: str | None) -> str:
    """MINIMAL with keys (in snake_case) replaced, added, or removed (None)."""
    entries: dict[str, str | None] = dict(MINIMAL)
    entries.update({name.replace("_", "-"): value for name, value in overrides.items()})
    return "".join(f"{key}={value}\n" for key, value in entries.items() if value is not None)


def line_of(text: str, key: str) -> int:
    return next(n for n, line in enumerate(text.split("\n"), 1) if line.startswith(f"{key}="))


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings_text(text, SOURCE)
    return str(caught.value).split("\n")


def example_keys() -> list[str]:
    return re.findall(r"^([a-z-]+)=", EXAMPLE.read_text(), flags=re.MULTILINE)


# ---------------------------------------------------------------- the example and defaults


def test_example_file_loads_with_every_key() -> None:
    loaded = load_settings(EXAMPLE)
    assert loaded.transport == "ssh"
    assert loaded.source_file == EXAMPLE
    assert loaded.primary_cluster_id == UUID("3f2b6c1e-8a4d-4e2f-9b71-2c5d8e0a1f34")
    assert loaded.bandwidth_limit == 50_000_000
    assert loaded.barrier_grace == timedelta(seconds=1)
    assert "barrier-grace" in example_keys()
    assert sorted(example_keys()) == sorted(set(KNOWN_KEYS) - {"parallel-process"})


def test_defaults() -> None:
    loaded = parse_settings_text(render(), SOURCE)
    assert loaded.life_cycle == timedelta(days=7)
    assert loaded.backuprestoreinfo_file == "backuprestoreinfo.csv"
    assert loaded.full_backup_exec_time_interval is None
    assert loaded.backup_exec_time_interval == loaded.restore_interval == timedelta(minutes=1)
    assert loaded.media_type == "disk"
    assert (loaded.parallel_process, loaded.compression_level) == (4, 1)
    assert loaded.compression_type == "zstd"
    assert loaded.primary_cluster_logging_level == loaded.standby_cluster_logging_level == "INFO"
    assert (loaded.log_file_count, loaded.check_balance_retry_times) == (50, 3)
    assert loaded.desync_table_operation == "none"
    assert loaded.local_reserve_file_count == 0
    assert loaded.suppressed_windows == ()
    assert loaded.ssh_port == 22
    assert loaded.bandwidth_limit is None and loaded.rpo_target is None
    assert loaded.api_listen == "127.0.0.1"
    assert loaded.barrier_grace == timedelta(seconds=1)
    for optional in ("username", "primary_env", "primary_host_ip", "backup_port", "cpu_cores",
                     "primary_cluster_id", "ssh_key_file", "publication_list", "api_token_file"):
        assert getattr(loaded, optional) is None, optional


def test_replication_mode_defaults_to_scheduled_and_min_interval_accepts_ms() -> None:
    loaded = parse_settings_text(render(), SOURCE)
    assert loaded.replication_mode == "scheduled"
    assert loaded.continuous_min_interval == timedelta(seconds=1)
    loaded = parse_settings_text(render(replication_mode="Continuous", continuous_min_interval="250ms"),
                                 SOURCE)
    assert loaded.replication_mode == "continuous"
    assert loaded.continuous_min_interval == timedelta(milliseconds=250)
    assert parse_settings_text(render(continuous_min_interval="200ms"), SOURCE).continuous_min_interval \
        == timedelta(milliseconds=200)
    assert "continuous-min-interval" in problems(render(continuous_min_interval="199ms"))[0]


def test_not_set_means_default_or_none() -> None:
    loaded = parse_settings_text(render(life_cycle="N/A", cpu_cores=" n/a ", username=""), SOURCE)
    assert loaded.life_cycle == timedelta(days=7)
    assert loaded.cpu_cores is None and loaded.username is None


def test_settings_is_frozen_and_role_helpers() -> None:
    loaded = parse_settings_text(render(), SOURCE)
    with pytest.raises(ValidationError):
        loaded.parallel_process = 8
    assert loaded.warehouse("primary") == Path("/srv/p/warehouse")
    assert loaded.warehouse("standby") == Path("/srv/s/warehouse")
    assert loaded.media_dir("primary") == Path("/srv/p/media")
    assert loaded.media_dir("standby") == Path("/srv/s/media")
    assert loaded.metadata_dir("primary") == Path("/srv/p/metadata")
    assert loaded.metadata_dir("standby") == Path("/srv/s/metadata")


# ---------------------------------------------------------------- one error line per bad value

BAD_VALUES = [
    ("desync-guard", "120%"), ("desync-guard", "a lot"),
    ("verify-interval", "9s"), ("verify-interval", "daily"),
    ("primary-iceberg-catalog", "cat.db"), ("standby-iceberg-catalog", "sqlite:///relative.db"),
    ("iceberg-catalog-name", "two words"),
    ("life-cycle", "7w"), ("life-cycle", "-1d"),
    ("backuprestoreinfo-file", "dir/history.csv"), ("backuprestoreinfo-file", ".."),
    ("username", "bad user"), ("username", "9lives"),
    ("primary-env", "relative.env"), ("standby-env", "~/standby.env"),
    ("primary-warehouse", "warehouse"), ("standby-warehouse", "./w"),
    ("full-backup-exec-time-interval", "0s"), ("full-backup-exec-time-interval", "weekly"),
    ("backup-exec-time-interval", "9s"), ("backup-exec-time-interval", "0"),
    ("restore-interval", "0s"), ("restore-interval", "1 minute"),
    ("restore-delay", "-5m"), ("restore-delay", "half an hour"),
    ("verify-on-restore", "yes"), ("verify-on-restore", "partial"),
    ("primary-host-ip", "bad host!"), ("restore-host-ip", "300.1.1.1"),
    ("media-type", "tape"),
    ("parrallel-process", "0"), ("parrallel-process", "33"), ("parrallel-process", "four"),
    ("parallel-process", "33"),
    ("compression-level", "10"), ("compression-level", "-1"),
    ("compression-type", "3"), ("compression-type", "gzip"),
    ("primary-media-destination", "media"), ("primary-metadata-destination", "meta"),
    ("restore-media-destination", "media"), ("restore-metadata-destination", "meta"),
    ("backup-port", "0"), ("restore-port", "65536"), ("ssh-port", "port"),
    ("primary-cluster-logging-level", "TRACE"), ("standby-cluster-logging-level", "verbose"),
    ("log-file-count", "4"), ("log-file-count", "1025"),
    ("check-balance-retry-times", "-1"),
    ("primary-cluster-id", "not-a-uuid"), ("standby-cluster-id", "1234"),
    ("desync-table-operation", "delete"),
    ("cpu-cores", "0"), ("cpu-cores", "1025"), ("cpu-cores", "１"),
    ("local-reserve-file-count", "-1"),
    ("new-disaster-recovery-suppressed-time-windows", "25:00-01:00"),
    ("new-disaster-recovery-suppressed-time-windows", "10:00-10:00"),
    ("new-disaster-recovery-suppressed-time-windows", "10:00"),
    ("new-disaster-recovery-suppressed-time-windows", "01:00-02:00,"),
    ("ssh-key-file", "id_ed25519"), ("known-hosts-file", "known_hosts"),
    ("publication-list", "pub.list"), ("api-token-file", "token"),
    ("transport", "ftp"), ("warehouse-layout", "delta"),
    ("bandwidth-limit", "50Mb/s"), ("bandwidth-limit", "0MB/s"), ("bandwidth-limit", "fast"),
    ("api-listen", "not a host"),
    ("rpo-target", "15"), ("rpo-target", "0s"),
    ("barrier-grace", "61s"), ("barrier-grace", "2m"),
    ("replication-mode", "streaming"), ("replication-mode", "on"),
    ("continuous-min-interval", "100ms"), ("continuous-min-interval", "1"),
    ("remote-drsync-command", "'unclosed quote"),
    ("remote-config-file", "relative/backupRestore.ini"),
]


@pytest.mark.parametrize(("key", "value"), BAD_VALUES)
def test_bad_value_gives_one_line_naming_file_line_and_key(key: str, value: str) -> None:
    text = "# comment first, so the line number is not trivially 1\n" + render(**{key: value})
    lines = problems(text)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{SOURCE}:{line_of(text, key)}: {key}: ")
    assert "; allowed: " in lines[0]


def test_every_key_has_a_bad_value_case() -> None:
    assert set(KNOWN_KEYS) == {key for key, _ in BAD_VALUES}


def test_media_type_error_says_only_disk_exists() -> None:
    (line,) = problems(render(media_type="obs"))
    assert "disk" in line and "only" in line


def test_all_problems_are_reported_in_line_order() -> None:
    text = render(compression_level="12", primary_warehouse=None) + "log-file-count=1\nnonsense\n"
    lines = problems(text)
    assert lines == [
        f"{SOURCE}:7: compression-level: 12 is out of range; allowed: integer 0-9 (default 1)",
        f"{SOURCE}:8: log-file-count: 1 is out of range; allowed: integer 5-1024 (default 50)",
        f"{SOURCE}:9: not a 'key=value' line: 'nonsense'",
        f"{SOURCE}: missing required key 'primary-warehouse' "
        "(absolute path of the primary warehouse root)",
    ]


def test_required_key_given_as_not_available_names_its_line() -> None:
    text = render(standby_warehouse="N/A")
    (line,) = problems(text)
    assert line.startswith(f"{SOURCE}:{line_of(text, 'standby-warehouse')}: standby-warehouse: ")


# ---------------------------------------------------------------- unknown, duplicate, spelling


def test_unknown_key_suggests_the_closest() -> None:
    (line,) = problems(render() + "parralel-process=4\n")
    assert line == f"{SOURCE}:8: unknown key 'parralel-process' — did you mean 'parrallel-process'?"
    (line,) = problems(render() + "Life-Cycle=7d\n")
    assert "did you mean 'life-cycle'?" in line


def test_unknown_key_without_a_close_match() -> None:
    (line,) = problems(render() + "zzz=1\n")
    assert line.startswith(f"{SOURCE}:8: unknown key 'zzz'") and "did you mean" not in line


def test_duplicate_key_names_both_lines() -> None:
    (line,) = problems(render(compression_level="3") + "compression-level=4\n")
    assert line.startswith(f"{SOURCE}:9: compression-level: duplicate key, first set on line 8")


@pytest.mark.parametrize("spelling", ["parrallel-process", "parallel-process"])
def test_either_spelling_of_parallel_process(spelling: str) -> None:
    assert parse_settings_text(render(**{spelling: "12"}), SOURCE).parallel_process == 12


def test_both_spellings_of_parallel_process_is_an_error() -> None:
    (line,) = problems(render(parrallel_process="2") + "parallel-process=2\n")
    assert line.startswith(f"{SOURCE}:9: parallel-process: ")
    assert "'parrallel-process'" in line and "line 8" in line


# ---------------------------------------------------------------- durations, sizes, choices


def test_bare_numbers_are_minutes_where_the_dws_tool_says_so() -> None:
    loaded = parse_settings_text(
        render(backup_exec_time_interval="5", restore_interval="2",
               full_backup_exec_time_interval="1440", barrier_grace="3"), SOURCE)
    assert loaded.backup_exec_time_interval == timedelta(minutes=5)
    assert loaded.restore_interval == timedelta(minutes=2)
    assert loaded.full_backup_exec_time_interval == timedelta(days=1)
    assert loaded.barrier_grace == timedelta(seconds=3)


@pytest.mark.parametrize("key", ["rpo-target"])
def test_bare_number_is_an_error_with_a_hint(key: str) -> None:
    (line,) = problems(render(**{key: "7"}))
    assert f": {key}: bare number '7' needs a unit, e.g. '7d'" in line


def test_durations_with_units() -> None:
    assert parse_duration("30s", bare_unit=None) == timedelta(seconds=30)
    assert parse_duration(" 10m ", bare_unit=None) == timedelta(minutes=10)
    assert parse_duration("1.5h", bare_unit=None) == timedelta(minutes=90)
    assert parse_duration("7d", bare_unit="m") == timedelta(days=7)
    assert parse_duration("7", bare_unit="m") == timedelta(minutes=7)
    for bad in ("", "7w", "-1s", "1e3s", "9" * 400 + "d"):
        with pytest.raises(ConfigError):
            parse_duration(bad, bare_unit="m")
    with pytest.raises(ConfigError, match="needs a unit"):
        parse_duration("7", bare_unit=None)


def test_rates() -> None:
    assert parse_size_per_second("50MB/s") == 50_000_000
    assert parse_size_per_second("512KB/s") == 512_000
    assert parse_size_per_second("512kB/s") == 512_000
    assert parse_size_per_second("1GB/s") == 10**9
    assert parse_size_per_second("100MiB/s") == 100 * 2**20
    assert parse_size_per_second("1.5 KiB/s") == 1536
    assert parse_size_per_second("200B/s") == 200
    for bad in ("50MB", "50Mb/s", "0B/s", "0.5B/s", "MB/s", "9" * 40 + "TB/s"):
        with pytest.raises(ConfigError):
            parse_size_per_second(bad)


def test_compression_type_two_means_zstd() -> None:
    assert parse_settings_text(render(compression_type="2"), SOURCE).compression_type == "zstd"
    assert parse_settings_text(render(compression_type="NONE"), SOURCE).compression_type == "none"


def test_logging_level_is_case_insensitive_and_stored_upper() -> None:
    loaded = parse_settings_text(render(primary_cluster_logging_level="debug"), SOURCE)
    assert loaded.primary_cluster_logging_level == "DEBUG"


# ---------------------------------------------------------------- suppressed windows


def test_suppressed_windows_including_midnight() -> None:
    loaded = parse_settings_text(
        render(new_disaster_recovery_suppressed_time_windows="01:00-02:00, 22:30 - 00:30"), SOURCE)
    assert loaded.suppressed_windows == ((time(1), time(2)), (time(22, 30), time(0, 30)))
    inside = [time(1), time(1, 59), time(22, 30), time(23, 59), time(0), time(0, 29)]
    outside = [time(0, 30), time(0, 59), time(2), time(12), time(22, 29)]
    assert all(loaded.in_suppressed_window(t) for t in inside)
    assert not any(loaded.in_suppressed_window(t) for t in outside)


def test_window_ending_at_24_00() -> None:
    loaded = parse_settings_text(
        render(new_disaster_recovery_suppressed_time_windows="22:00-24:00"), SOURCE)
    assert loaded.in_suppressed_window(time(23, 59))
    assert not loaded.in_suppressed_window(time(0)) and not loaded.in_suppressed_window(time(21))


def test_no_windows_never_suppresses() -> None:
    loaded = parse_settings_text(
        render(new_disaster_recovery_suppressed_time_windows="N/A"), SOURCE)
    assert loaded.suppressed_windows == () and not loaded.in_suppressed_window(time(3))


# ---------------------------------------------------------------- cross-field rules


def test_ssh_transport_requires_its_keys() -> None:
    lines = problems(render(transport="ssh"))
    assert len(lines) == len(SSH_KEYS)
    for key, line in zip(SSH_KEYS, lines, strict=True):
        assert line.startswith(f"{SOURCE}: missing required key '{key}'")
        assert line.endswith("or set transport=local for a single-host setup")
    loaded = parse_settings_text(render(transport="ssh", **_snake(SSH_KEYS)), SOURCE)
    assert loaded.username == "drsync" and loaded.restore_host_ip == "standby.example.com"


@pytest.mark.parametrize("missing", list(SSH_KEYS))
def test_each_ssh_key_is_required(missing: str) -> None:
    keys = {**_snake(SSH_KEYS), missing.replace("-", "_"): None}
    (line,) = problems(render(transport=None, **keys))  # ssh is the default transport
    assert f"missing required key '{missing}'" in line


def test_ssh_keys_not_required_for_local_transport_nor_double_reported() -> None:
    parse_settings_text(render(), SOURCE)
    (line,) = problems(render(transport="ssh", **{**_snake(SSH_KEYS), "username": "bad user"}))
    assert ": username: 'bad user' is not a valid OS user name" in line


def _snake(keys: dict[str, str]) -> dict[str, str | None]:
    return {key.replace("-", "_"): value for key, value in keys.items()}


def test_paths_must_be_distinct() -> None:
    text = render(restore_media_destination="/srv/p/media/")
    (line,) = problems(text)
    inner = line_of(text, "restore-media-destination")
    outer = line_of(text, "primary-media-destination")
    assert line.startswith(f"{SOURCE}:{inner}: restore-media-destination: /srv/p/media is the same "
                           f"path as primary-media-destination (line {outer}); allowed: ")


def test_paths_must_not_nest() -> None:
    text = render(primary_warehouse="/srv/p", primary_media_destination="/srv/p/x/../media2")
    lines = problems(text)
    # /srv/p contains /srv/p/media2 and /srv/p/metadata
    assert len(lines) == 2
    assert all("is inside primary-warehouse" in line for line in lines)
    assert any(line.startswith(f"{SOURCE}:4: primary-media-destination: /srv/p/media2")
               for line in lines)


def test_sibling_paths_with_a_common_prefix_are_fine() -> None:
    parse_settings_text(render(primary_media_destination="/srv/p/warehouse2"), SOURCE)


# ---------------------------------------------------------------- file syntax and loading


def test_comments_sections_whitespace_and_crlf() -> None:
    text = "[drsync]\r\n; comment\r\n# comment\r\n\r\n  compression-level =  7 \r\n" + render()
    assert parse_settings_text(text, SOURCE).compression_level == 7


def test_line_without_equals_and_empty_key() -> None:
    lines = problems(render() + "just words\n= value\n")
    assert lines == [f"{SOURCE}:8: not a 'key=value' line: 'just words'",
                     f"{SOURCE}:9: not a 'key=value' line: '= value'"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "absent.ini")
    assert str(tmp_path / "absent.ini") in str(caught.value) and caught.value.hint
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path)


def test_load_reports_the_path(tmp_path: Path) -> None:
    path = tmp_path / "backupRestore.ini"
    path.write_text(render(cpu_cores="0"))
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:8: cpu-cores: "):
        load_settings(path)


# ---------------------------------------------------------------- sw_backupRestore.ini


def test_swap_exchanges_each_pair_and_nothing_else() -> None:
    original = EXAMPLE.read_text()
    swapped_text = swap_config_text(original)
    before = load_settings(EXAMPLE)
    after = parse_settings_text(swapped_text, "sw_backupRestore.ini")
    for a, b in SWAP_PAIRS:
        field_a, field_b = a.replace("-", "_"), b.replace("-", "_")
        assert getattr(after, field_a) == getattr(before, field_b), a
        assert getattr(after, field_b) == getattr(before, field_a), b
        if getattr(before, field_a) is not None:  # the example leaves optional pairs unset
            assert getattr(before, field_a) != getattr(before, field_b), a
    swapped_keys = {key for pair in SWAP_PAIRS for key in pair}
    for old, new in zip(original.split("\n"), swapped_text.split("\n"), strict=True):
        if old.split("=", 1)[0] not in swapped_keys:
            assert old == new
    unswapped = {key.replace("-", "_") for key in swapped_keys} | {"source_file"}
    assert before.model_dump(exclude=unswapped) == after.model_dump(exclude=unswapped)


def test_swap_twice_is_the_original() -> None:
    original = EXAMPLE.read_text()
    assert swap_config_text(original) != original
    assert swap_config_text(swap_config_text(original)) == original


def test_swap_exchanges_the_iceberg_catalogs() -> None:
    """A promoted standby's writers commit through its own catalog: it is the primary's now."""
    text = "primary-iceberg-catalog=sqlite:////p/cat.db\nstandby-iceberg-catalog=sqlite:////s/cat.db\n"
    assert swap_config_text(text) == \
        "primary-iceberg-catalog=sqlite:////s/cat.db\nstandby-iceberg-catalog=sqlite:////p/cat.db\n"


def test_swap_renames_a_key_whose_partner_is_absent() -> None:
    text = "# c\nbackup-port = 8470\r\nprimary-warehouse=/w\n"
    assert swap_config_text(text) == "# c\nrestore-port = 8470\r\nstandby-warehouse=/w\n"


swappable_line = st.one_of(
    st.builds("{}{}={}".format, st.sampled_from(["", " ", "\t"]),
              st.sampled_from([key for pair in SWAP_PAIRS for key in pair] + ["life-cycle"]),
              st.text(alphabet="ab =#\r/")),
    st.text(alphabet="ab=#;[]\r -"),
)


@given(st.lists(swappable_line, max_size=12))
def test_swap_is_an_involution_for_any_text(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert swap_config_text(swap_config_text(text)) == text


# ---------------------------------------------------------------- robustness

garbage_line = st.one_of(
    st.text(max_size=40),
    st.builds("{}={}".format, st.sampled_from(KNOWN_KEYS) | st.text(max_size=20),
              st.text(max_size=30) | st.from_regex(r"[0-9:.,\-/ a-zA-Z]{0,20}", fullmatch=True)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(garbage_line, max_size=15), st.booleans())
def test_garbage_raises_only_config_error(lines: list[str], on_valid_base: bool) -> None:
    text = (render() if on_valid_base else "") + "\n".join(lines)
    try:
        parse_settings_text(text, SOURCE)
    except ConfigError as error:
        assert str(error).strip()
        assert all(line.startswith(SOURCE) for line in str(error).split("\n"))


def test_ssh_sides_may_use_the_same_paths_on_their_own_hosts() -> None:
    """With transport=ssh each side's paths live on its own host: the same layout on both is
    normal, but one side's paths must still be disjoint among themselves."""
    same_layout = {
        "primary-warehouse": "/srv/drsync/warehouse", "standby-warehouse": "/srv/drsync/warehouse",
        "primary-media-destination": "/srv/drsync/media", "restore-media-destination": "/srv/drsync/media",
        "primary-metadata-destination": "/srv/drsync/meta",
        "restore-metadata-destination": "/srv/drsync/meta",
    }
    ssh = {k.replace("-", "_"): v for k, v in {**SSH_KEYS, **same_layout, "transport": "ssh"}.items()}
    loaded = parse_settings_text(render(**ssh), SOURCE)
    assert loaded.restore_media_destination == loaded.primary_media_destination
    nested = dict(ssh, restore_media_destination="/srv/drsync/warehouse/media")
    lines = problems(render(**nested))
    assert any("restore-media-destination" in line and "standby-warehouse" in line for line in lines)
    local = dict(ssh, transport="local")
    assert problems(render(**local))
