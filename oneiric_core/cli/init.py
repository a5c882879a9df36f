"""The commands that need no settings yet: `oneiric init` and `oneiric version` (and `--version`).

Both run before any settings are loaded (main.py dispatches them without an engine).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .output import json_text, say
from .parser import Commands

DIST_NAME = "oneiric-console"  # the distribution pyproject.toml builds


def add_parsers(commands: Commands) -> None:
    p = commands.add("init", "write a working settings directory (a copy of the demo) to edit from", run=cmd_init,
                     needs_engine=False, json_flag=False,
                     example=["oneiric init ~/oneiric-settings", "oneiric --settings /etc/oneiric init"])
    p.add_argument("dir", nargs="?", metavar="DIR", help="where (default: --settings); new or empty")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty DIR, replacing the template's files (others are left alone)")
    commands.add("version", "the installed version", run=cmd_version, needs_engine=False,
                 example=["oneiric version", "oneiric version --json"])


class VersionAction(argparse.Action):
    """`--version`: the version is looked up only when asked (importlib.metadata costs
    milliseconds every other command would pay)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        say(version_line())
        parser.exit()


def version() -> str:
    """The installed distribution's version; the package's own `__version__` when it is not
    installed (run from a checkout with PYTHONPATH, say)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version(DIST_NAME)
    except PackageNotFoundError:
        from .. import __version__

        return __version__


def version_line() -> str:
    return f"oneiric {version()}"


def settings_parser() -> str:
    """Which YAML parser reads valid settings files: yaml-rs when the `fast` extra is
    installed and imports, else ruamel.yaml's safe loader (settings.py `_fast_loader`)."""
    from ..settings import _yaml_rs_loads

    return "yaml-rs" if _yaml_rs_loads() is not None else "ruamel.yaml"


def cmd_version(args: argparse.Namespace) -> int:
    import platform

    if getattr(args, "json", False):
        say(json_text({"name": DIST_NAME, "version": version(), "python": platform.python_version(),
                       "settings_parser": settings_parser()}, indent=2))
    else:
        say(version_line())
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    """Write the demo settings into DIR (default: --settings), then say what was written,
    where the state will be kept and what to run next."""
    from ..init_settings import write_template
    from ..settings import STATE_DIR_ENV, SettingsLoader

    given = args.dir if args.dir is not None else args.settings
    result = write_template(Path(given).expanduser(), force=args.force)
    dest = result.settings_dir.resolve()
    say(f"wrote {len(result.written)} files to {dest}: {_listing(result.written)}")
    if result.replaced:
        say(f"replaced {len(result.replaced)} existing files: {_listing(result.replaced)}")
    snapshot = SettingsLoader(dest).load()
    for problem in snapshot.problems:  # the template is checked by the tests; say so if not
        say(f"config invalid: {problem}", err=True)
    if snapshot.problems:
        say(f"oneiric: the settings written to {dest} do not validate; see above.", err=True)
        return 1
    import shlex

    flag = f"--settings {shlex.quote(str(given))}"
    if args.state_dir:
        say(f"state will be kept in {Path(args.state_dir).resolve()} (--state-dir).")
        flag += f" --state-dir {shlex.quote(str(args.state_dir))}"
    elif os.environ.get(STATE_DIR_ENV, "").strip():
        say(f"state will be kept in {snapshot.state_dir} (${STATE_DIR_ENV}).")
    else:
        say(f"state will be kept in {snapshot.state_dir} (state_dir in app.yml, relative to the "
            "directory that holds the settings).")
    say(f"next: oneiric {flag} console    (or a quick look: oneiric {flag} status)")
    return 0


def _listing(paths: list[Path]) -> str:
    """`app.yml, adapters.yml, runbooks/ (17 files)`: top-level files by name, a subdirectory
    by its count (a single file by its path)."""
    top = [str(rel) for rel in paths if len(rel.parts) == 1]
    groups: dict[str, list[Path]] = {}
    for rel in paths:
        if len(rel.parts) > 1:
            groups.setdefault(rel.parts[0], []).append(rel)
    return ", ".join(top + [str(files[0]) if len(files) == 1 else f"{name}/ ({len(files)} files)"
                            for name, files in groups.items()])
