"""Building real settings directories for engine tests."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "settings"

FAST_APP = """\
lifecycle:
  activation_timeout: 1.0
  health_timeout: 0.5
  cleanup_timeout: 1.0
health:
  interval_s: 3600
factory_allowlist:
  - oneiric_core.providers.
  - tests.fixture_providers
"""


def demo_copy(tmp_path: Path, *, fast: bool = True) -> Path:
    """The demo settings copied to tmp_path, with short timeouts and the fixture providers allowed."""
    target = tmp_path / "settings"
    shutil.copytree(DEMO, target)
    if fast:
        (target / "app.yml").write_text(FAST_APP)
    return target


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def fixture_candidates(key: str, *providers: tuple[str, str], **extra: int) -> str:
    """YAML for candidates of adapter/<key> built by tests.fixture_providers factories."""
    lines = ["candidates:"]
    for name, factory in providers:
        lines += [
            f"  - key: {key}",
            f"    provider: {name}",
            f"    factory: tests.fixture_providers:{factory}",
            "    settings:",
            f"      name: {name}",
        ]
    return "\n".join(lines) + "\n"
