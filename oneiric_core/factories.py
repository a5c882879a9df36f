"""Turning a factory string into a callable, behind the allow-list.

A factory is written `package.module:attribute`. Only modules under a prefix listed in
app.yml `factory_allowlist` are ever imported: a string from a settings file or a remote
manifest can never make the engine import arbitrary code. `factory_problem` says, without
importing anything, whether a factory could be loaded (for `oneiric config validate`).
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from typing import Any

from .errors import FactoryError
from .provider_calls import describe_error

FACTORY_PATTERN = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<attr>[A-Za-z_]\w*)$")


def module_allowed(module: str, allowlist: Sequence[str]) -> bool:
    """`oneiric_core.providers.` allows `oneiric_core.providers.x`; `myapp` allows `myapp` and `myapp.x`."""
    for prefix in allowlist:
        base = prefix.rstrip(".")
        if base and (module == base or module.startswith(base + ".")):
            return True
    return False


def check_factory(factory: str, allowlist: Sequence[str]) -> tuple[str, str]:
    match = FACTORY_PATTERN.match(factory.strip())
    if not match:
        raise FactoryError(
            f"Factory '{factory}' is not of the form package.module:attribute."
        )
    module = match["module"]
    if not module_allowed(module, allowlist):
        allowed = ", ".join(allowlist) if allowlist else "nothing (the allow-list is empty)"
        raise FactoryError(
            f"Factory module '{module}' is not in factory_allowlist (allowed: {allowed})."
        )
    return module, match["attr"]


def load_factory(factory: str, allowlist: Sequence[str]) -> Callable[..., Any]:
    module_name, attr = check_factory(factory, allowlist)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise FactoryError(f"Factory module '{module_name}' cannot be imported: {exc}.") from exc
    except BaseException as exc:  # noqa: BLE001 - importing runs the provider's code: its failure, not ours
        raise FactoryError(f"Factory module '{module_name}' raised {describe_error(exc)} "
                           "while being imported.") from exc
    try:
        target = getattr(module, attr, None)
    except BaseException as exc:  # noqa: BLE001 - a module __getattr__ is provider code too
        raise FactoryError(f"Factory '{factory}' raised {describe_error(exc)} when looked up.") from exc
    if target is None or not callable(target):
        raise FactoryError(f"Factory '{factory}' names nothing callable.")
    return target


def preload_modules(factories: Sequence[str], allowlist: Sequence[str]) -> None:
    """Import the allowed modules behind `factories`, ignoring every failure: the host runs
    this on a worker thread before activating, so that importing a provider package (httpx
    with its dependencies: 40-80 ms) does not happen inside load_factory on the event loop.
    What fails here fails again in load_factory, which words it for the journal."""
    seen: set[str] = set()
    for factory in factories:
        try:
            module_name, _ = check_factory(factory, allowlist)
        except FactoryError:
            continue
        if module_name in seen or module_name in sys.modules:
            continue
        seen.add(module_name)
        try:
            importlib.import_module(module_name)
        except BaseException:  # noqa: BLE001, S112 - provider code; load_factory reports it
            continue


# -- checking a factory without importing it (`oneiric config validate`, config_check.py) ----------

def find_module_spec(name: str) -> ModuleSpec | None:
    """Where `import name` would find the module, or None when nothing would, without running
    any of its code or its parent packages' (`importlib.util.find_spec` imports the parents).
    Each level is asked of every finder on sys.meta_path, the way import asks them, with the
    parent package's static `__path__`."""
    if name in sys.modules:
        return getattr(sys.modules[name], "__spec__", None) or ModuleSpec(name, None)
    parts = name.split(".")
    path: list[str] | None = None
    spec: ModuleSpec | None = None
    for depth in range(1, len(parts) + 1):
        fullname = ".".join(parts[:depth])
        if fullname in sys.modules:
            spec = getattr(sys.modules[fullname], "__spec__", None)
        else:
            spec = _ask_finders(fullname, path)
        if spec is None:
            return None
        if depth < len(parts):
            if spec.submodule_search_locations is None:
                return None  # a plain module has no submodules
            path = list(spec.submodule_search_locations)
    return spec


def _ask_finders(fullname: str, path: list[str] | None) -> ModuleSpec | None:
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find(fullname, path, None)
        except (ImportError, ValueError, OSError):
            continue
        if spec is not None:
            return spec
    return None


def top_level_names(spec: ModuleSpec) -> set[str] | None:
    """The names a module's source binds at its top level (functions, classes, assignments,
    imports, also inside top-level if/try/with blocks), read with `ast`; None when that cannot
    tell (no Python source, or a module `__getattr__` or `import *` that makes names at run time)."""
    origin = spec.origin
    if not origin or not origin.endswith(".py") or not spec.has_location:
        return None
    try:
        with open(origin, "rb") as handle:
            tree = ast.parse(handle.read(), origin)
    except (OSError, SyntaxError, ValueError):
        return None
    names: set[str] = set()
    body = list(tree.body)
    while body:
        node = body.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
            for block in ("body", "orelse", "finalbody", "handlers"):
                body.extend(getattr(node, block, []))
        elif isinstance(node, ast.ExceptHandler):
            body.extend(node.body)
    if "__getattr__" in names:
        return None
    return names


def factory_problem(factory: str, allowlist: Sequence[str]) -> str | None:
    """Why the host could not build `factory`, or None when it looks buildable: outside the
    allow-list, no such module on the Python path, or no such attribute in the module's source.
    Nothing is imported and nothing is called (see config_check.py for why)."""
    match = FACTORY_PATTERN.match(factory.strip())
    if not match:
        return f"factory '{factory}' is not of the form package.module:attribute"
    module, attr = match["module"], match["attr"]
    if not module_allowed(module, allowlist):
        allowed = ", ".join(allowlist) if allowlist else "nothing (the allow-list is empty)"
        return (f"factory module '{module}' is not in app.yml factory_allowlist (allowed: {allowed}), so the "
                "host will refuse to import it")
    spec = find_module_spec(module)
    if spec is None:
        return f"factory module '{module}' is allowed but no such module can be found by {sys.executable}"
    names = top_level_names(spec)
    if names is not None and attr not in names:
        return f"factory '{factory}' names nothing: {spec.origin} defines no top-level '{attr}'"
    return None
