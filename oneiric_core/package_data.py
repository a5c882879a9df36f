"""The files shipped inside the package (`oneiric_core/defaults/`): the demo settings, which are
the template `oneiric init` copies, and, inside them, the default runbook trees.

There is one copy in the repository: `./settings`, which `make run`, the README and the tests
use. `oneiric_core/defaults` is a symlink to it (`../settings`), and pyproject.toml lists
`defaults/...` as package data. setuptools follows the symlink when it copies package data, so
a wheel built from the checkout and the sdist both hold real files under
`oneiric_core/defaults/` (a wheel built from the sdist holds the same: no symlink is left by
then); an editable install reads the checkout, where the symlink leads to `./settings`.
tests/test_wheel.py builds both ways and installs the result outside the checkout. (The
alternative, a `build_py` hook in a setup.py copying ./settings at build time, needs a
MANIFEST.in for the sdist and a second way to find the files in an editable install; the
symlink needs neither. A Windows checkout without symlink support would need the hook.)

pip installs a wheel unpacked, so the package's files are a directory on disk and are read
with pathlib.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

DEFAULTS = "defaults"
RUNBOOKS = "runbooks"


def template_dir() -> Path:
    """The demo settings shipped with the package (app.yml, the domain files, manifests/,
    runbooks/): what `oneiric init` copies."""
    return Path(str(files(__package__ or "oneiric_core").joinpath(DEFAULTS)))


def default_runbook_dir() -> Path:
    """The runbook trees every settings directory starts from (its own runbooks/ adds to them
    and overrides them)."""
    return template_dir() / RUNBOOKS


def settings_or_default(settings_dir: Path, name: str) -> Path:
    """`settings_dir`/`name` when the directory has it, else the shipped default of that name
    (maintenance.yml, messages.yml: a settings directory rewords or replaces them)."""
    path = settings_dir / name
    return path if path.is_file() else template_dir() / name


def load_yaml(path: Path, what: str) -> Any:
    """A YAML file's plain data (ruamel's safe loader); ConfigError "PATH: cannot read WHAT:
    why" for a file that cannot be read or parsed."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from .errors import ConfigError

    try:
        return YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read {what}: {getattr(exc, 'problem', None) or exc}.") from None
