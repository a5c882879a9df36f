"""Turning a factory string into a callable, behind the allow-list.

A factory is written `package.module:attribute`. Only modules under a prefix listed in
app.yml `factory_allowlist` are ever imported: a string from a settings file or a remote
manifest can never make the engine import arbitrary code.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
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
        raise FactoryError(f"Factory module '{module_name}' raised {describe_error(exc)} while being imported.") from exc
    try:
        target = getattr(module, attr, None)
    except BaseException as exc:  # noqa: BLE001 - a module __getattr__ is provider code too
        raise FactoryError(f"Factory '{factory}' raised {describe_error(exc)} when looked up.") from exc
    if target is None or not callable(target):
        raise FactoryError(f"Factory '{factory}' names nothing callable.")
    return target
