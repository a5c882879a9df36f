"""Lint and types are part of `make test`, so of CI: ruff and mypy over the checkout, as
pyproject.toml configures them (`[tool.ruff]`, `[tool.mypy]`), run as the tools themselves
from this environment. A failure shows their report, each finding as file:line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name(tool)
    assert exe.is_file(), f"{tool} is not installed beside {sys.executable}: pip install -e '.[dev]'"
    return subprocess.run([str(exe), *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_ruff_finds_nothing() -> None:
    out = _run("ruff", "check", "--output-format", "concise", ".")
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


def test_mypy_finds_nothing() -> None:
    # The files come from pyproject.toml (oneiric_core, oneiric_tui); the cache (.mypy_cache)
    # makes a run after a small change take a second or two.
    out = _run("mypy")
    assert out.returncode == 0 and "Success: no issues found" in out.stdout, out.stdout[-6000:] + out.stderr[-2000:]
