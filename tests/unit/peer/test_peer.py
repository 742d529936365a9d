"""drsync.peer: the one seam for calls to the other site.

The scan holds the seam: outside drsync/peer/ and drsync/transport/ no module branches on
`transport`, builds an SSH connection, or calls the agent's RPC; a new transport is then one
`Transport` plus one `Peer`, chosen in `open_peer`. The LocalPeer tests run against real
site directories built by drsync itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import drsync
from drsync.config import Settings, load_settings
from drsync.peer import both_sites_here, open_peer
from drsync.peer.local import LocalPeer
from drsync.roles.epoch import write_role
from drsync.site.state import StandbyState, save_state
from tests.helpers import Sites

PACKAGE = Path(drsync.__file__).parent
SEAM = ("peer", "transport")  # the only packages that may know which transports exist
SSH_OBJECTS = {"SshTransport", "Link", "SSHClient", "Transport", "LocalTransport"}
AGENT_RPC = {"call", "call_once"}


def _violations(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                if isinstance(side, ast.Attribute) and side.attr == "transport":
                    found.append((node.lineno, "branches on .transport"))
        elif isinstance(node, ast.Call):
            fn = node.func
            name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
            if name in SSH_OBJECTS:
                found.append((node.lineno, f"constructs {name}"))
            if isinstance(fn, ast.Attribute) and name in AGENT_RPC:
                found.append((node.lineno, f"calls the agent directly (.{name})"))
            if name == "getattr" and any(isinstance(a, ast.Constant) and a.value in AGENT_RPC
                                         for a in node.args):
                found.append((node.lineno, "probes a transport with getattr"))
        elif isinstance(node, ast.Match) and isinstance(node.subject, ast.Attribute) \
                and node.subject.attr == "transport":
            found.append((node.lineno, "matches on .transport"))
    return sorted(found)


def scan(root: Path) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in SEAM:
            continue
        for line, what in _violations(ast.parse(path.read_text(), str(path))):
            out.append(f"{root.name}/{rel}:{line}: {what}")
    return out


def test_only_the_peer_and_transport_packages_know_the_transports() -> None:
    assert scan(PACKAGE) == [], "go through drsync.peer (open_peer / both_sites_here) instead"


def test_the_scan_finds_each_kind_of_bypass(tmp_path: Path) -> None:
    """The guard above must be able to fail: a module with every bypass is named, line by line."""
    root = tmp_path / "drsync"
    (root / "roles").mkdir(parents=True)
    (root / "peer").mkdir()
    bad = ('if settings.transport == "local":\n    pass\n'
           'link = SshTransport(settings)\n'
           'link.call_once("restore")\n'
           'call = getattr(t, "call_once", None)\n'
           'if "ssh" != s.transport:\n    pass\n')
    (root / "roles" / "x.py").write_text(bad)
    (root / "peer" / "ok.py").write_text(bad)  # inside the seam: allowed
    assert scan(root) == [
        "drsync/roles/x.py:1: branches on .transport",
        "drsync/roles/x.py:3: constructs SshTransport",
        "drsync/roles/x.py:4: calls the agent directly (.call_once)",
        "drsync/roles/x.py:5: probes a transport with getattr",
        "drsync/roles/x.py:6: branches on .transport",
    ]


def test_open_peer_is_local_for_transport_local(local_settings: Settings) -> None:
    assert both_sites_here(local_settings)
    with open_peer(local_settings) as peer:
        assert isinstance(peer, LocalPeer) and peer.here
        assert peer.request_restore() is None  # the standby's own schedule restores


def test_local_peer_reads_the_other_sites_facts(local_settings: Settings) -> None:
    meta = local_settings.restore_metadata_destination
    write_role(meta, "standby", 3)
    save_state(meta, StandbyState(last_key="20260101_000000", role_epoch=3))
    with open_peer(local_settings) as standby:
        assert standby.role().epoch == 3 and standby.role().role == "standby"
        assert standby.standby_state().last_key == "20260101_000000"
        assert standby.read("metadata", StandbyState.FILE) is not None
        df = standby.df("media")
        assert df["total"] >= df["free"] > 0
        assert standby.hello()["version"] == drsync.__version__
        assert standby.replicating() is None
    with open_peer(local_settings, toward="primary") as primary:
        assert primary.role().epoch == 0  # no role record there yet


@pytest.fixture
def local_settings(sites: Sites) -> Settings:
    return load_settings(sites.config)
