"""Writing an upstream Oneiric document as a settings directory (`oneiric config import`).

upstream_settings.translate says what each field becomes; this writes the files (app.yml and
one file per domain with something in it), refuses to overwrite settings already there, and
validates what it wrote with the same checks as `oneiric config validate`, so the report
never calls something imported that this engine would not load.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .domains import Domain
from .errors import UsageError
from .upstream_settings import IMPORT_MARK, Translation

APP_FILE = "app.yml"


@dataclass
class ImportResult:
    sources: list[Path]
    target: Path
    written: list[Path] = field(default_factory=list)
    translation: Translation = field(default_factory=Translation)
    problems: list[str] = field(default_factory=list)  # what `config validate` says of the written files

    def to_dict(self) -> dict[str, Any]:
        return {"from": [str(p) for p in self.sources], "to": str(self.target),
                "written": [str(p) for p in self.written], **self.translation.to_dict(),
                "valid": not self.problems, "problems": self.problems}


def _ours(directory: Path) -> list[Path]:
    """This engine's settings files already in `directory`."""
    names = [APP_FILE, *(d.settings_file for d in Domain)]
    return [directory / n for n in names if (directory / n).exists()]


def _yaml(data: dict[str, Any], header: str) -> str:
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    # Keep the order the sections were written in.
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]  # ruamel declares it None
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return header + buffer.getvalue()


def write_import(sources: list[Path], translation: Translation, target: Path, *, force: bool = False) -> ImportResult:
    """Write the translation's files into `target`, but only once they validate: they are
    written and checked in a scratch directory first, so a failed import changes nothing
    (`result.problems` says why, `result.written` is empty)."""
    import shutil
    import tempfile

    from .config_check import validate_settings

    existing = _ours(target)
    if existing and not force:
        raise UsageError(f"{target} already holds settings of this engine ({', '.join(p.name for p in existing)}); "
                         "give --to DIR for the imported ones, or --force to replace those files.")
    header = f"{IMPORT_MARK}{', '.join(str(p) for p in sources)}) by oneiric config import.\n"
    files = {APP_FILE: translation.app, **{d.settings_file: data for d, data in translation.domains.items()}}
    result = ImportResult(sources, target, translation=translation)
    with tempfile.TemporaryDirectory(prefix="oneiric-import-") as scratch:
        for name, data in files.items():
            (Path(scratch) / name).write_text(_yaml(data, header) if data else header)
        found = validate_settings(Path(scratch))
        result.problems = [str(p).replace(scratch + "/", "") for p in found.problems]
        if result.problems:
            return result
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copyfile(Path(scratch) / name, target / name)
            result.written.append(target / name)
    return result
