"""drsync.logsetup: one logging setup (format, level, redaction) for the CLI, daemon and agent."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from drsync.cli.app import _load
from drsync.logsetup import RedactSecrets, setup_stderr_logging
from tests.helpers import make_sites


def _ours() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if getattr(h, "_drsync_handler", False)]


def test_stderr_setup_redacts_bearer_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    setup_stderr_logging("INFO")
    logging.getLogger("drsync.test").info("sent header Authorization: Bearer abc.def")
    err = capsys.readouterr().err
    assert "Bearer ***" in err and "abc.def" not in err


def test_the_cli_installs_the_same_redacting_handlers(tmp_path: Path) -> None:
    """The CLI used a basicConfig of its own, without the daemon's redaction filter."""
    _load(make_sites(tmp_path / "sites").config)
    handlers = _ours()
    assert handlers, "the CLI installed no drsync handler"
    assert all(any(isinstance(f, RedactSecrets) for f in h.filters) for h in handlers)
    assert len(handlers) == len({type(h) for h in handlers})  # installed once, not stacked


def test_a_second_setup_replaces_the_handlers() -> None:
    setup_stderr_logging("INFO")
    setup_stderr_logging("ERROR")
    assert len(_ours()) == 1 and logging.getLogger().level == logging.ERROR
