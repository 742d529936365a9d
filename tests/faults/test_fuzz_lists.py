"""pub.list and object-list fuzzing through the real CLI: hypothesis-generated files (valid
names, path tricks, wrong shapes, junk, NUL, invalid UTF-8, CRLF) given to `drsync backup
--publication-list F` and `drsync cancel-publication --object-list F`. Every file is used or
refused with one `error:` line naming the file and line; never a traceback; a refused file
changes nothing (no set is cut, no publication is altered).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drsync.publications.store import PUBLICATIONS_FILE
from drsync.site.state import PrimaryState, load_state
from tests.faults.conftest import Reliability, soak
from tests.faults.test_fuzz_cli import _check, _run
from tests.helpers import Sites, make_sites

name = st.sampled_from(["sales", "hr", "public", "orders", "all", "*", "..", ".", "", "a b", "Zürich",
                        "/etc", "x/y", "-", "_drsync", "a\x00b", "\u202e", "n" * 300])
entry = st.one_of(
    st.builds(".".join, st.lists(name, min_size=1, max_size=4)),
    st.text(max_size=30),
    st.sampled_from(["# comment", "   ", "sales.public.orders  # trailing", "/abs/path", "../x.y",
                     "sales..orders", "sales.public.", ".public.orders"]),
)
FAMILY = ("pub.list / object-list fuzzing", "hypothesis-generated list files (names, path tricks, "
          "wrong shapes, junk, NUL, invalid UTF-8) to `backup --publication-list` and "
          "`cancel-publication --object-list`")
FILE = st.tuples(st.lists(entry, max_size=8), st.booleans(), st.binary(max_size=6))


@pytest.fixture(scope="module")
def list_sites(tmp_path_factory: pytest.TempPathFactory) -> Sites:
    return make_sites(tmp_path_factory.mktemp("fuzz-lists") / "sites")


def _write(sites: Sites, n: int, lines: list[str], crlf: bool, raw: bytes) -> str:
    path = sites.base / f"list-{n}.txt"
    text = ("\r\n" if crlf else "\n").join(lines) + "\n"
    path.write_bytes(text.encode("utf-8", "surrogatepass") + raw)
    return str(path)


def _assert_refusal_names_the_file(path: str, code: int, err: str) -> None:
    if code == 2:
        first = err.splitlines()[0].removeprefix("error: ")
        assert first.startswith(f"{path}:") or path in first, err


@settings(max_examples=soak(60, 600), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=FILE)
def test_generated_pub_lists(list_sites: Sites, capsys: pytest.CaptureFixture[str],
                             data: tuple[list[str], bool, bytes], reliability: Reliability) -> None:
    rel = reliability(*FAMILY)
    lines, crlf, raw = data
    path = _write(list_sites, 0, lines, crlf, raw)
    before = load_state(list_sites.primary_meta, PrimaryState).last_key
    with rel.trial():
        argv = ["backup", "-c", str(list_sites.config), "--publication-list", path]
        code, out, err = _run(argv, capsys)
        _check(argv, code, out, err)
        _assert_refusal_names_the_file(path, code, err)
        if code == 2:
            assert load_state(list_sites.primary_meta, PrimaryState).last_key == before  # no set cut


@settings(max_examples=soak(60, 600), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=FILE)
def test_generated_object_lists(list_sites: Sites, capsys: pytest.CaptureFixture[str],
                                data: tuple[list[str], bool, bytes], reliability: Reliability) -> None:
    rel = reliability(*FAMILY)
    lines, crlf, raw = data
    path = _write(list_sites, 1, lines, crlf, raw)
    pubs = list_sites.primary_meta / PUBLICATIONS_FILE
    before = json.loads(pubs.read_text())
    with rel.trial():
        argv = ["cancel-publication", "-c", str(list_sites.config), "--object-list", path]
        code, out, err = _run(argv, capsys)
        _check(argv, code, out, err)
        _assert_refusal_names_the_file(path, code, err)
        if code == 2:
            assert json.loads(pubs.read_text()) == before  # a refused list alters nothing
