"""The Engine is a composition root that its consumers reach through small ports.

Each module handed the engine names what it uses as a Protocol in oneiric_core/ports.py. These
tests hold that shape: mypy proves the Engine satisfies every port (the assignments below,
type-checked by running mypy on this file), every port member exists on a real Engine at run
time, the consumers no longer annotate the whole Engine (facts.py no longer `engine: Any`), and
the Engine writes no other object's private fields.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from oneiric_core import ports
from oneiric_core.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "oneiric_core"

# Who takes which port instead of the whole Engine.
CONSUMERS = {
    "commands.py": "CommandsEngine",
    "remote/loop.py": "RemoteEngine",
    "remote/registration.py": "RegistrationEngine",
    "runbooks/facts.py": "FactsEngine",
    "runbooks/actions.py": "FactsEngine",
    "runbooks/walker.py": "FactsEngine",
    "operator_port.py": "OperatorEngine",
    "settings_sync.py": "SettingsSyncEngine",
    "status_view.py": "StatusEngine",
    "node_summary.py": "NodeEngine",
    "host_telemetry.py": "TelemetryEngine",
    "snapshot_writer.py": "SnapshotEngine",
    "host_session.py": "HostSessionEngine",
    "host_inbox.py": "HostInboxEngine",
    "rollout.py": "RolloutEngine",
}

if TYPE_CHECKING:  # mypy judges these (test_mypy_proves_the_engine_provides_every_port)

    def _the_engine_provides_every_port(engine: Engine) -> None:
        commands: ports.CommandsEngine = engine
        operator: ports.OperatorEngine = engine
        remote: ports.RemoteEngine = engine
        registration: ports.RegistrationEngine = engine
        facts: ports.FactsEngine = engine
        settings_sync: ports.SettingsSyncEngine = engine
        status: ports.StatusEngine = engine
        node: ports.NodeEngine = engine
        telemetry: ports.TelemetryEngine = engine
        snapshots: ports.SnapshotEngine = engine
        session: ports.HostSessionEngine = engine
        inbox: ports.HostInboxEngine = engine
        rollout: ports.RolloutEngine = engine
        del commands, operator, remote, registration, facts, settings_sync, status, node, telemetry, snapshots
        del session, inbox, rollout


def _ports() -> list[type]:
    return [obj for _, obj in inspect.getmembers(ports, inspect.isclass)
            if obj.__module__ == ports.__name__ and Protocol in obj.__mro__]


def _members(proto: type) -> set[str]:
    """Every attribute, property and method a port names, its base ports' too."""
    names: set[str] = set()
    for cls in proto.__mro__:
        if cls.__module__ != ports.__name__:
            continue
        names |= set(cls.__dict__.get("__annotations__", {}))
        names |= {n for n, v in cls.__dict__.items()
                  if not n.startswith("__") and (callable(v) or isinstance(v, property))}
    return names


def test_mypy_proves_the_engine_provides_every_port():
    out = subprocess.run([sys.executable, "-m", "mypy", str(Path(__file__).relative_to(ROOT))],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]


def test_every_port_member_exists_on_a_real_engine(settings_dir, tmp_path):
    engine = Engine(settings_dir, state_dir=tmp_path / "state", actor="tester")
    try:
        found = {proto.__name__: _members(proto) for proto in _ports()}
        assert set(CONSUMERS.values()) <= set(found), "a consumer names a port that ports.py does not define"
        missing = {name: sorted(m for m in members if not hasattr(engine, m)) for name, members in found.items()}
        assert not any(missing.values()), missing
        assert all(found.values()), "a port names nothing"
    finally:
        engine.close()


def test_the_consumers_take_their_port_not_the_whole_engine():
    for rel, port in CONSUMERS.items():
        tree = ast.parse((CORE / rel).read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    and (node.module or "").endswith("engine") for alias in node.names}
        assert "Engine" not in imported, f"{rel} still imports the whole Engine"
        annotations = [ast.unparse(node.annotation) for node in ast.walk(tree) if isinstance(node, ast.arg)
                       and node.arg == "engine" and node.annotation is not None]
        annotations += [ast.unparse(node.annotation) for node in ast.walk(tree) if isinstance(node, ast.AnnAssign)
                        and ast.unparse(node.target) == "engine"]
        assert annotations, f"{rel} annotates no `engine`"
        assert set(annotations) == {port}, f"{rel} annotates engine as {sorted(set(annotations))}, not {port}"


def test_facts_no_longer_take_the_engine_as_any():
    source = (CORE / "runbooks" / "facts.py").read_text()
    assert "engine: Any" not in source
    context = next(node for node in ast.walk(ast.parse(source))
                   if isinstance(node, ast.ClassDef) and node.name == "FactContext")
    field = next(node for node in context.body if isinstance(node, ast.AnnAssign)
                 and ast.unparse(node.target) == "engine")
    assert ast.unparse(field.annotation) == "FactsEngine"


def test_the_engine_writes_no_other_objects_private_fields():
    """`self.lifecycle._telemetry = tel` reached into another object; each now takes what it
    needs through a method (`use_telemetry`) or its constructor."""
    tree = ast.parse((CORE / "engine.py").read_text())
    offenders = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Attribute) and target.attr.startswith("_") \
                    and not (isinstance(target.value, ast.Name) and target.value.id == "self"):
                offenders.append(f"line {node.lineno}: {ast.unparse(target)}")
    assert not offenders, offenders
