"""Command-line fuzzing: hypothesis-generated argument lists (real commands and options, wrong
ones, missing and junk values, valid/missing/garbage config files) run through the real entry
point `drsync.cli.main.main` in-process. Every run exits 0/1/2/3 with no traceback and no internal
error, and a failing run says why on exactly one `error:` line.

`daemon` (runs until SIGTERM) and `agent` (serves stdin) are left out of the generated lists; their
bad-argument cases are listed explicitly at the end.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drsync.cli.main import main
from tests.faults.conftest import Reliability, soak
from tests.helpers import Sites, drsync, make_sites

COMMANDS = [[], ["backup"], ["restore"], ["check"], ["show-progress"], ["verify"], ["stop-backup"],
            ["start-backup"], ["stop-restore"], ["start-restore"], ["retention"], ["config", "check"],
            ["config", "swap"], ["config"], ["version"], ["nope"], ["config", "nope"],
            ["publication"], ["publication", "create"], ["publication", "alter"], ["publication", "drop"],
            ["publication", "list"], ["cancel-publication"], ["reseed"], ["prepare", "--check"],
            ["switchover", "--dry-run"], ["failover"], ["reprotect"], ["set-independent"]]
WORDS = ["-c", "--config", "--format", "json", "text", "xml", "--table", "no.such.table", "a..b.c",
         "hr.people.employees", "--role", "primary", "standby", "bogus", "--deep", "--bogus", "-x", "",
         "--", "--tick", "-1", "1e999", "nan", "--help", "--db", "--all-tables", "--all-databases",
         "--schema", "--add-table", "--drop-schema", "--object-list", "--all-cancel", "--all",
         "--publication-list", "--dry-run", "--force", "--timeout", "pub1", "*", "sales", "public.orders",
         "../etc", "/etc/passwd"]


@pytest.fixture(scope="module")
def cli_sites(tmp_path_factory: pytest.TempPathFactory) -> tuple[Sites, list[str]]:
    base = tmp_path_factory.mktemp("fuzz-cli")
    sites = make_sites(base / "sites")
    garbage = base / "garbage.ini"
    garbage.write_bytes(b"\xff\xfe[[[\nparrallel-process=\x00\nkey\n")
    return sites, [str(sites.config), str(garbage), str(base / "missing.ini"), str(base), "/dev/null"]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    old = sys.argv
    sys.argv = ["drsync", *argv]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


def _check(argv: list[str], code: int, out: str, err: str) -> None:
    text = out + err
    what = f"drsync {argv!r} exited {code}\nstdout: {out}\nstderr: {err}"
    assert code in (0, 1, 2, 3), what
    assert "Traceback" not in text and "internal error" not in text, what
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    if code == 3:  # done, but some objects failed: each is named on stderr, there is no one error
        assert err.strip() and not errors, what
        return
    if code != 0 and "Usage:" not in text:  # `drsync` / `drsync config` alone print the help
        if ": FAILED — " in out:  # `check` reports each failed check on its own line (+ hint)
            assert not errors, what
            return
        assert len(errors) == 1 and len(errors[0]) > len("error: ") + 5, what


@settings(max_examples=soak(150, 1500), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_generated_arguments(cli_sites: tuple[Sites, list[str]], capsys: pytest.CaptureFixture[str],
                             data: st.DataObject, reliability: Reliability) -> None:
    rel = reliability("CLI argument fuzzing", "hypothesis-generated argument lists through the real "
                      "entry point (commands, options, junk values, missing/garbage config files)")
    _, configs = cli_sites
    cmd = data.draw(st.sampled_from(COMMANDS), label="command")
    word = st.sampled_from(WORDS) | st.sampled_from(configs) | st.text(max_size=12)
    config = data.draw(st.one_of(st.just([]), st.sampled_from(configs).map(lambda c: ["-c", c])),
                       label="config")
    rest = data.draw(st.lists(word, max_size=5), label="rest")
    argv = [*cmd, *config, *rest]
    with rel.trial():
        _check(argv, *_run(argv, capsys))


EXPLICIT = [
    ["daemon"], ["daemon", "-c"], ["daemon", "-c", "/nonexistent.ini"], ["daemon", "--tick", "abc"],
    ["daemon", "-c", "/dev/null", "--role", "bogus"], ["agent"], ["agent", "--media-root"],
    ["backup", "-c", "/dev/null"], ["restore", "-c", "/"],
    ["show-progress", "-c", "CONFIG", "--format", "xml"],
    ["verify", "-c", "CONFIG", "--table", "no.such.table"], ["verify", "-c", "CONFIG", "--table", "../x"],
    ["retention", "-c", "CONFIG", "--role", "bogus"],
]


@pytest.mark.parametrize("argv", EXPLICIT, ids=" ".join)
def test_explicit_bad_arguments_as_a_subprocess(cli_sites: tuple[Sites, list[str]], argv: list[str],
                                                reliability: Reliability) -> None:
    rel = reliability("CLI argument fuzzing", "hypothesis-generated argument lists through the real "
                      "entry point (commands, options, junk values, missing/garbage config files)")
    sites, _ = cli_sites
    argv = [str(sites.config) if a == "CONFIG" else a for a in argv]
    with rel.trial():
        p = drsync(*argv, timeout=60)
        assert p.returncode != 0, p.stdout + p.stderr
        _check(argv, p.returncode, p.stdout, p.stderr)


def test_usage_error_is_one_line(tmp_path: Path) -> None:
    """Regression: a usage error (unknown option, missing value) printed a multi-line panel."""
    p = drsync("backup", "--bogus")
    assert p.returncode == 2
    assert p.stderr.splitlines() == ["error: No such option: --bogus",
                                     "hint: see `python -m drsync backup --help`"], p.stderr
