"""Contexts (issue 18 point 5), as k9s keeps them: named places an operator works on, a local
state directory or a fleet's store, in one small file, so `oneiric --context prod status` and
`:ctx prod` in the console switch between them without retyping paths and URLs.

The file is $ONEIRIC_CONTEXTS, else ~/.config/oneiric/contexts.yml:

    current: prod
    contexts:
      local: {settings: ~/ops/settings}
      prod:  {settings: ~/ops/prod, store_url: "postgresql://alice@db/oneiric", node: alice-laptop}

A context names a settings directory and, optionally, a state directory, a store URL (a fleet's
PostgreSQL, docs/fleet.md) and the node this process is. It holds no password: libpq reads one
from ~/.pgpass or the environment. The file is this operator's own: written private (0600)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError

CONTEXTS_ENV = "ONEIRIC_CONTEXTS"
_FIELDS = ("settings", "state_dir", "store_url", "node")


def contexts_file() -> Path:
    env = os.environ.get(CONTEXTS_ENV, "").strip()
    return Path(os.path.expanduser(env)) if env else Path.home() / ".config" / "oneiric" / "contexts.yml"


@dataclass(frozen=True, slots=True)
class Context:
    name: str
    settings: str
    state_dir: str | None = None
    store_url: str | None = None
    node: str | None = None

    def describe(self) -> str:
        where = self.store_url.split("@")[-1] if self.store_url else (self.state_dir or "its state directory")
        return f"{self.name}: settings {self.settings}, store {where}" + (f", node {self.node}" if self.node else "")


@dataclass(slots=True)
class Contexts:
    path: Path
    current: str | None = None
    by_name: dict[str, Context] = field(default_factory=dict)

    def get(self, name: str) -> Context:
        context = self.by_name.get(name)
        if context is None:
            known = ", ".join(sorted(self.by_name)) or "none yet"
            raise UsageError(f"No context '{name}' in {self.path} (its contexts: {known}).")
        return context

    def use(self, name: str) -> Context:
        """Make `name` the current context, in the file."""
        context = self.get(name)
        self.current = name
        save(self)
        return context


def load(path: Path | None = None) -> Contexts:
    """The contexts file, or none when it does not exist; a file that is not one is one sentence."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    path = path or contexts_file()
    if not path.exists():
        return Contexts(path)
    try:
        raw: Any = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError) as exc:
        raise UsageError(f"{path}: cannot be read as contexts ({' '.join(str(exc).split())}).") from None
    raw = raw or {}
    entries = raw.get("contexts") if isinstance(raw, dict) else None
    if not isinstance(entries, dict):
        raise UsageError(f"{path}: 'contexts' must map names to {{settings, state_dir, store_url, node}}.")
    by_name: dict[str, Context] = {}
    for name, spec in entries.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("settings"), str):
            raise UsageError(f"{path}: context '{name}' needs 'settings' (a settings directory).")
        unknown = sorted(set(spec) - set(_FIELDS))
        if unknown:
            raise UsageError(f"{path}: context '{name}' has unknown keys: {', '.join(map(str, unknown))} "
                             f"(known: {', '.join(_FIELDS)}).")
        by_name[str(name)] = Context(str(name), str(spec["settings"]), _text(spec, "state_dir"),
                                     _text(spec, "store_url"), _text(spec, "node"))
    current = raw.get("current")
    return Contexts(path, str(current) if current is not None else None, by_name)


def _text(spec: dict[str, Any], key: str) -> str | None:
    value = spec.get(key)
    return None if value is None else str(value)


def save(contexts: Contexts) -> None:
    from io import StringIO

    from ruamel.yaml import YAML

    from .private_files import write_private

    data: dict[str, Any] = {"current": contexts.current, "contexts": {
        c.name: {k: getattr(c, k) for k in _FIELDS if getattr(c, k) is not None} for c in contexts.by_name.values()}}
    out = StringIO()
    YAML(typ="safe", pure=True).dump(data, out)
    contexts.path.parent.mkdir(parents=True, exist_ok=True)
    write_private(contexts.path, out.getvalue().encode())
    os.chmod(contexts.path, 0o600)  # one operator's own, not the state directory's group's


def apply(context: Context, args: Any) -> None:
    """Point a command's arguments (and the store URL's variable) at `context`."""
    args.settings = os.path.expanduser(context.settings)
    if context.state_dir:
        args.state_dir = os.path.expanduser(context.state_dir)
    if context.node and not getattr(args, "node", None):
        args.node = context.node
    if context.store_url:
        os.environ["ONEIRIC_STORE_URL"] = context.store_url
    else:
        os.environ.pop("ONEIRIC_STORE_URL", None)
