"""The fault suite's trial recorder (a small pytest plugin).

Every fault test names its fault family and how it is injected, and counts its trials:

    def test_x(reliability: Reliability) -> None:
        rel = reliability("bundle bit flip", "one random bit of a shipped bundle flipped")
        for ...:
            with rel.trial():
                ...  # one injection and its checks; an exception = a failed trial

When the environment names a file in DRSYNC_RELIABILITY_OUT, each recorder appends one JSON
line there at teardown: fault, injection, trials, passed, the test's id and its outcome.
bench/reliability_report.py runs this suite with it set and turns the lines into
docs/reliability.md. Without the variable, nothing is written.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SOAK = os.environ.get("DRSYNC_SOAK") == "1"


def soak(normal: int, long: int) -> int:
    """How many iterations: `normal` in `make test`, `long` in `make soak` (DRSYNC_SOAK=1)."""
    return long if SOAK else normal


class Trials:
    """Trials of one fault family in one test (thread-safe: kills run on worker threads)."""

    def __init__(self, fault: str, injection: str) -> None:
        self.fault, self.injection = fault, injection
        self.trials = self.passed = 0
        self._lock = threading.Lock()

    @contextmanager
    def trial(self) -> Iterator[None]:
        with self._lock:
            self.trials += 1
        yield
        with self._lock:
            self.passed += 1

    def add(self, trials: int, passed: int) -> None:
        with self._lock:
            self.trials += trials
            self.passed += passed


Reliability = Callable[[str, str], Trials]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_OUTCOME] = report.outcome


_OUTCOME = pytest.StashKey[str]()


@pytest.fixture
def reliability(request: pytest.FixtureRequest) -> Iterator[Reliability]:
    made: dict[tuple[str, str], Trials] = {}

    def new(fault: str, injection: str) -> Trials:
        # One recorder per family and test: a hypothesis test asks again for every example.
        return made.setdefault((fault, injection), Trials(fault, injection))

    yield new
    out = os.environ.get("DRSYNC_RELIABILITY_OUT")
    if not out:
        return
    outcome = request.node.stash.get(_OUTCOME, "error")
    with Path(out).open("a") as f:
        for t in made.values():
            # A trial whose test failed after its own checks still counts as passed; a test
            # that failed with no failed trial is reported as one failed trial more.
            trials, passed = t.trials, t.passed
            if outcome != "passed" and passed == trials:
                trials += 1
            f.write(json.dumps({"fault": t.fault, "injection": t.injection, "trials": trials,
                                "passed": passed, "test": request.node.nodeid, "outcome": outcome,
                                "soak": SOAK}) + "\n")
