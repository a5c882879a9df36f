"""Shared, generic fixtures: a private copy of the demo settings and a CLI runner.

Nothing here writes into the repository: settings are copied under `tmp_path` and every
CLI run gets its own state directory under `tmp_path` too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_SETTINGS = REPO_ROOT / "settings"

# Variables that would change what the CLI computes or who it says is acting.
_SCRUBBED_ENV = (
    "ONEIRIC_SETTINGS", "ONEIRIC_STATE_DIR", "ONEIRIC_STACK_ORDER", "ONEIRIC_OPERATOR",
    "SSH_CLIENT", "SSH_CONNECTION",
)


@pytest.fixture
def demo_settings(tmp_path: Path) -> Path:
    """A copy of the demo settings directory at tmp_path/"settings"."""
    dest = tmp_path / "settings"
    shutil.copytree(DEMO_SETTINGS, dest)
    return dest


@dataclass
class CliResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:  # shown by pytest when an assertion fails
        return (f"$ {' '.join(self.argv)}\n-> exit {self.returncode}\n"
                f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}")


@pytest.fixture
def cli_env() -> dict[str, str]:
    # OTEL_* too: a developer's collector settings must not reach the tests' hosts.
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV and not k.startswith("OTEL_")}
    env.update({"ONEIRIC_OPERATOR": "tester", "COLUMNS": "120"})
    return env


@pytest.fixture
def run_cli(tmp_path: Path, demo_settings: Path, cli_env: dict[str, str]) -> Callable[..., CliResult]:
    """Run `python -m oneiric_core.cli` in a real subprocess.

    `run_cli("status", "--json")` passes `--settings <copy of the demo>` and
    `--state-dir tmp_path/state`; pass `settings=`/`state_dir=` to change them (None
    leaves the flag out) and `env=` to add variables.
    """
    default_state = tmp_path / "state"

    def run(*args: Any, settings: Path | None = demo_settings, state_dir: Path | None = default_state,
            env: dict[str, str] | None = None, timeout: float = 60) -> CliResult:
        argv = [sys.executable, "-m", "oneiric_core.cli"]
        if settings is not None:
            argv += ["--settings", str(settings)]
        if state_dir is not None:
            argv += ["--state-dir", str(state_dir)]
        argv += [str(a) for a in args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
                              env={**cli_env, **(env or {})})
        return CliResult(argv, proc.returncode, proc.stdout, proc.stderr)

    return run


# -- the store's two backends ----------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest):
    """Each store test runs twice: on the SQLite file in its state directory (None) and on a
    schema of its own in the test PostgreSQL (tests/pg.py), the same repositories over both."""
    if request.param == "sqlite":
        yield None
        return
    from tests.pg import fresh_schema

    with fresh_schema() as url:
        yield url


# -- in-process engines ----------------------------------------------------------------------------

@pytest.fixture
def settings_dir(tmp_path: Path) -> Path:
    """The demo settings with short timeouts and tests.fixture_providers allowed; modules
    that need other settings override this fixture."""
    from tests.helpers import demo_copy

    return demo_copy(tmp_path)


@pytest.fixture
async def engine(settings_dir: Path, tmp_path: Path):
    """A started host Engine on `settings_dir`, stopped and closed after the test."""
    from oneiric_core.engine import Engine

    eng = Engine(settings_dir, state_dir=tmp_path / "state", actor="tester")
    await eng.start()
    yield eng
    await eng.stop()
    eng.close()
