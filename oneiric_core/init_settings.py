"""`oneiric init DIR`: a working settings directory, copied from the demo the package ships.

An installed `oneiric` has no ./settings to run against; this writes one (app.yml, the domain
files, manifests/, runbooks/) to edit from. It writes only into a new or empty directory unless
told `force`, and then replaces only the template's own files: anything else in DIR is left
alone, and the result says which files were replaced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import OneiricError
from .package_data import template_dir


class InitRefused(OneiricError):
    """DIR cannot take the template (not empty, not a directory, not writable)."""


@dataclass
class InitResult:
    settings_dir: Path
    written: list[Path] = field(default_factory=list)  # relative to settings_dir, in order
    replaced: list[Path] = field(default_factory=list)  # the written files that existed before


def template_files(root: Path | None = None) -> list[Path]:
    """Every file of the template, relative to its root: top-level files first, then each
    subdirectory's (manifests/, runbooks/), sorted. Hidden files and caches (an editor's
    `.app.yml.swp` in a checkout, `__pycache__`) are not part of it."""
    root = template_dir() if root is None else root
    found = [p.relative_to(root) for p in root.rglob("*") if p.is_file()]
    found = [rel for rel in found if not any(part.startswith(".") or part == "__pycache__" for part in rel.parts)]
    return sorted(found, key=lambda rel: (len(rel.parts) > 1, rel.parts))


def write_template(dest: Path, *, force: bool = False) -> InitResult:
    """Copy the demo settings into `dest` (created if missing). Raises InitRefused, in one
    sentence, for a non-empty `dest` without `force`, or when a file cannot be written."""
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise InitRefused(f"{dest} exists and is not a directory.")
    if dest.is_dir() and not force and any(dest.iterdir()):
        raise InitRefused(f"{dest} is not empty: 'oneiric init' writes only into a new or empty directory "
                          "(--force replaces the template's files there and leaves the others alone).")
    root = template_dir()
    result = InitResult(dest)
    for rel in template_files(root):
        target = dest / rel
        try:
            existed = target.exists()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((root / rel).read_bytes())
        except OSError as exc:
            raise InitRefused(f"cannot write {target}: {exc.strerror or exc}.") from None
        result.written.append(rel)
        if existed:
            result.replaced.append(rel)
    return result
