"""Finding 11 of issue 15: installs are reproducible and checked. `make venv` installs every
dependency from requirements.lock with --require-hashes (so a package swapped on the index is
refused), drsync itself adds nothing unlocked, and indirect dependencies with known CVEs are
held above the vulnerable releases."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.version import Version

from tests.helpers import REPO

FLOORS = {"h11": Version("0.16"), "starlette": Version("0.49.1")}


def _lock() -> dict[str, tuple[Version, int]]:
    """name -> (pinned version, number of hashes) of requirements.lock."""
    text = (REPO / "requirements.lock").read_text()
    pins: dict[str, tuple[Version, int]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        m = re.match(r"([A-Za-z0-9_.-]+)==(\S+)", block)
        if m:
            pins[m[1].lower().replace("_", "-")] = (Version(m[2]), block.count("--hash=sha256:"))
    return pins


def test_make_venv_installs_from_the_lock_with_hashes() -> None:
    makefile = (REPO / "Makefile").read_text()
    stamp = makefile[makefile.index("$(STAMP): pyproject.toml requirements.lock"):]
    stamp = stamp[:stamp.index("touch $(STAMP)")]
    assert "pip install -q --require-hashes -r requirements.lock" in stamp
    assert "pip install -q --no-deps -e ." in stamp
    assert "'.[dev]'" not in stamp  # an unlocked resolve of the dev extras
    assert re.search(r"^audit:", makefile, re.M) and "pip-audit" in makefile


def test_every_dependency_and_dev_extra_is_locked_with_hashes() -> None:
    pins = _lock()
    assert all(n > 0 for _, n in pins.values())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for raw in project["dependencies"] + project["optional-dependencies"]["dev"]:
        req = Requirement(raw)
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not in requirements.lock"
        assert req.specifier.contains(pins[name][0]), f"{name} {pins[name][0]} outside {req.specifier}"


def test_known_vulnerable_indirect_dependencies_have_floors() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {Requirement(r).name: Requirement(r).specifier for r in project["dependencies"]}
    pins = _lock()
    for name, floor in FLOORS.items():
        assert name in declared and not declared[name].contains(Version("0.0.1")), name
        assert all(not declared[name].contains(v) for v in (Version("0.15.0"), Version("0.49.0"))
                   if v < floor), name
        assert pins[name][0] >= floor, name
