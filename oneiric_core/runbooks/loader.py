"""Reading settings/runbooks/*.yml into a Catalog: safe YAML only, every tree checked.

Default trees ship with the package (package_data.py: the demo's runbooks/), so an installed
`oneiric` has its runbooks whatever settings it is pointed at; a settings directory's own
`runbooks/` adds to them and overrides them. An own file overrides the default of the same file
name (even when it is broken: its error is listed and that default stays out), and an own tree
overrides the default tree with the same id. The demo, and every copy `oneiric init` made,
holds all the default files, so there its own trees are the whole catalog.

YAML is read with ruamel's safe loader (no Python objects are ever built from tags; an
unknown tag is an error). A broken file is refused with one sentence naming the file and the
node, and left out of the catalog; the others still load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import TREE_PREFIX, Tree, TreeError, check_structure, parse_tree

RUNBOOK_DIR = "runbooks"


@dataclass
class Catalog:
    trees: dict[str, Tree] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    directory: Path | None = None  # the settings' own runbooks/
    defaults: Path | None = None  # the package's default trees, when any of them is in the catalog

    def where(self) -> str:
        """Where the trees come from, for a sentence."""
        if self.defaults is None:
            return str(self.directory)
        return f"{self.directory} and the default trees in {self.defaults}"

    def get(self, tree_id: str) -> Tree:
        from ..errors import NotFound

        tree = self.trees.get(tree_id)
        if tree is None:
            known = ", ".join(sorted(self.trees)) or "none"
            raise NotFound(f"No runbook is named '{tree_id}' (known: {known}).")
        return tree

    def resolve_target(self, tree: Tree, target: str) -> tuple[Tree, str]:
        """The tree and node a branch target names (`tree:<id>` is that tree's start)."""
        if target.startswith(TREE_PREFIX):
            other = self.get(target[len(TREE_PREFIX):])
            return other, other.start
        return tree, target


def read_yaml(path: Path) -> Any:
    """Parse one YAML file safely; a syntax error becomes a TreeError with line:column."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TreeError(f"{path}: cannot be read ({exc}).") from None
    try:
        return YAML(typ="safe", pure=True).load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise TreeError(f"{path}{where}: not valid YAML ({exc.problem or exc.context}).") from None
    except YAMLError as exc:
        raise TreeError(f"{path}: not valid YAML ({exc}).") from None


def load_file(path: Path) -> Tree:
    return parse_tree(read_yaml(path), path)


def runbook_dir(settings_dir: Path | str) -> Path:
    return Path(settings_dir) / RUNBOOK_DIR


def load_catalog(settings_dir: Path | str, *, roles: list[str] | None = None) -> Catalog:
    """The package's default trees with settings_dir/runbooks/ added over them (see the module
    docstring), every tree structurally checked against the fact and action registries (and
    the escalation roles, when given)."""
    from ..package_data import default_runbook_dir
    from .actions import ACTIONS
    from .fact_index import FACTS
    from .faults import FAULTS

    directory = runbook_dir(settings_dir)
    default_dir = default_runbook_dir()
    catalog = Catalog(directory=directory)
    own_files = _tree_files(directory)
    own_names = {path.name for path in own_files}
    if default_dir.is_dir() and not (directory.is_dir() and directory.resolve() == default_dir.resolve()):
        shipped = _tree_files(default_dir)
        default_files = [p for p in shipped if p.name not in own_names]
        replaced = [p for p in shipped if p.name in own_names]  # what serves if an own copy is refused
    else:
        default_files, replaced = [], []
    by_id: dict[str, Tree] = {}
    for files in (default_files, own_files):
        seen: set[str] = set()
        for path in files:
            try:
                tree = load_file(path)
            except TreeError as exc:
                catalog.errors.append(str(exc))
                continue
            if tree.id in seen:
                catalog.errors.append(f"{path}: the runbook id '{tree.id}' is already used by another file.")
                continue
            seen.add(tree.id)
            by_id[tree.id] = tree  # an own tree replaces the default with its id
    parsed = list(by_id.values())
    if any(tree.file in default_files for tree in parsed):
        catalog.defaults = default_dir
    ids = {t.id for t in parsed}
    fallbacks: dict[str, Tree] = {}
    for path in replaced:
        try:
            fallback = load_file(path)
        except TreeError:
            continue
        fallbacks[fallback.id] = fallback

    def checked(tree: Tree) -> Tree:
        check_structure(tree, facts=FACTS, actions=ACTIONS, trees=ids, roles=roles, faults=FAULTS,
                        changing=[name for name, spec in ACTIONS.items() if spec.mutates])
        return tree

    for tree in parsed:
        try:
            catalog.trees[tree.id] = checked(tree)
        except TreeError as exc:
            default = fallbacks.get(tree.id)
            if default is None or default.file == tree.file:
                catalog.errors.append(str(exc))
                continue
            # An own copy made from an older release (`oneiric init`) that a newer rule refuses:
            # the shipped tree of that id serves meanwhile, rather than none at all.
            try:
                catalog.trees[tree.id] = checked(default)
            except TreeError:
                catalog.errors.append(str(exc))
                continue
            catalog.errors.append(f"{exc} The shipped '{tree.id}' runbook serves instead until that file is "
                                  "fixed (or removed).")
    # A jump to a tree that was refused is itself a dangling branch.
    for tree in list(catalog.trees.values()):
        missing = sorted(tree.external_trees() - set(catalog.trees))
        if missing:
            catalog.errors.append(f"{tree.file}: jumps to the runbook '{missing[0]}', which could not be loaded.")
    return catalog


def catalog_signature(settings_dir: Path | str) -> tuple[tuple[str, int, int], ...]:
    """What load_catalog would read, as (path, size, mtime) of each tree file: equal
    signatures, the same catalog. A caller that asks often (the console's palette and `:`
    completion, per keystroke) keeps the catalog until this changes: parsing the ~40 trees
    took 2.7 s of every keystroke in the palette."""
    from ..package_data import default_runbook_dir

    out = []
    for directory in (runbook_dir(settings_dir), default_runbook_dir()):
        for path in _tree_files(directory):
            try:
                st = path.stat()
            except OSError:
                continue
            out.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(out)


def _tree_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return [p for p in sorted(directory.iterdir()) if p.suffix.lower() in (".yml", ".yaml") and p.is_file()]
