"""The layers hold: the engine never imports Textual or the console, the console never the CLI,
no import cycle (pyproject.toml's import-linter contracts, checked by `lint-imports` here)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "oneiric_core"


def test_the_import_contracts_hold():
    """pyproject.toml's import-linter contracts: the core never imports the console or
    Textual (the static imports, also inside functions, also `importlib` left out: there is
    none), the console never imports the CLI, no package has an import cycle."""
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--no-cache"], cwd=CORE.parent, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "broken" not in out.stdout.split("Contracts:")[-1].split(",")[0] and "0 broken" in out.stdout


def test_no_module_loads_another_by_a_name_the_contracts_cannot_see():
    """import-linter reads import statements: `importlib.import_module("oneiric_tui.app")`
    or `__import__("textual")` would walk round every contract above unseen. (factories.py
    imports providers by the names the settings give, through its allow-list.)"""
    offenders = []
    for package in (CORE, CORE.parent / "oneiric_tui"):
        for path in package.rglob("*.py"):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                name, first = ast.unparse(node.func), node.args[0]
                if name.split(".")[-1] in ("import_module", "__import__") and isinstance(first, ast.Constant) \
                        and str(first.value).split(".")[0] in ("oneiric_core", "oneiric_tui", "textual"):
                    offenders.append(f"{path.relative_to(CORE.parent)}:{node.lineno}: {name}({first.value!r})")
    assert offenders == []


def test_importing_the_whole_core_loads_no_textual():
    modules = sorted(
        "oneiric_core." + ".".join(p.relative_to(CORE).with_suffix("").parts)
        for p in CORE.rglob("*.py") if p.name != "__init__.py"
    )
    assert "oneiric_core.engine" in modules and "oneiric_core.cli.main" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'oneiric_tui'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
