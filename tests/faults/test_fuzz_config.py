"""Configuration fuzzing: hypothesis-generated backupRestore.ini files (every known key with
generated values, unknown and misspelt keys, junk lines, NUL bytes, invalid UTF-8, CRLF, BOMs),
on top of a valid file or alone, read by the real CLI entry point (`drsync config check -c`,
in-process). Every file is accepted or refused with exit 2 and one `error:` line whose every
problem names the file and line; never a traceback or an internal error.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drsync.config import KNOWN_KEYS
from drsync.demo import write_config
from tests.faults.conftest import Reliability, soak
from tests.faults.test_fuzz_cli import _check, _run

value = st.one_of(
    st.text(max_size=30),
    st.integers(-10**20, 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.from_regex(r"[0-9]{1,4}(ms|s|m|h|d|MB/s|KB/s|GB/s|x)?", fullmatch=True),
    st.from_regex(r"([0-9]{1,2}:[0-9]{2}-[0-9]{1,2}:[0-9]{2},?){0,3}", fullmatch=True),
    st.sampled_from(["", " ", "not available", "N/A", "yes", "no", "true", "0", "-1", "/", "..",
                     "../../etc", "/dev/null", "~", "$HOME", "a\x00b", "\u202e", "1" * 400]),
)
key = st.sampled_from(sorted(KNOWN_KEYS)) | st.from_regex(r"[a-z-]{1,25}", fullmatch=True)
line = st.one_of(
    st.builds("{}={}".format, key, value),
    st.builds("{} = {}".format, key, value),
    st.text(max_size=40),
    st.sampled_from(["[section]", "# comment", "; comment", "=", "==", "key=", "=value", "\ufeffa=b"]),
)


@settings(max_examples=soak(200, 2000), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(lines=st.lists(line, max_size=12), on_valid_base=st.booleans(), crlf=st.booleans(),
       raw=st.binary(max_size=8))
def test_generated_config_files(tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str],
                                lines: list[str], on_valid_base: bool, crlf: bool, raw: bytes,
                                reliability: Reliability) -> None:
    rel = reliability("config file fuzzing", "hypothesis-generated backupRestore.ini (known keys with "
                      "generated values, unknown keys, junk lines, NUL, invalid UTF-8), `config check`")
    base = tmp_path_factory.mktemp("cfg")
    path = write_config(base) if on_valid_base else base / "backupRestore.ini"
    text = (path.read_text() if on_valid_base else "") + "\n".join(lines) + "\n"
    data = text.replace("\n", "\r\n" if crlf else "\n").encode("utf-8", "surrogatepass") + raw
    path.write_bytes(data)
    with rel.trial():
        code, out, err = _run(["config", "check", "-c", str(path)], capsys)
        _check(["config", "check", "-c", str(path)], code, out, err)
        assert code in (0, 2), (code, out, err)
        if code == 2:
            problems = [ln for ln in err.splitlines() if not ln.startswith("hint:")]
            problems[0] = problems[0].removeprefix("error: ")
            assert all(p.startswith(f"{path}") for p in problems), err


def test_config_that_is_a_directory_or_unreadable(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  reliability: Reliability) -> None:
    rel = reliability("config file fuzzing", "hypothesis-generated backupRestore.ini (known keys with "
                      "generated values, unknown keys, junk lines, NUL, invalid UTF-8), `config check`")
    for path in (tmp_path, tmp_path / "missing.ini", Path("/dev/null"), Path("/proc/self/mem")):
        with rel.trial():
            argv = ["config", "check", "-c", str(path)]
            code, out, err = _run(argv, capsys)
            _check(argv, code, out, err)
            assert code == 2 and str(path) in err, (path, code, err)
