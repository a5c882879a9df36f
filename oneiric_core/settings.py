"""Settings files: typed models, a loader that keeps the last good version, and safe edits.

A settings directory holds `app.yml` (engine options) and one file per domain
(`adapters.yml`, `services.yml`, ... see `Domain.settings_file`). A missing file means
defaults; a missing directory is a `ConfigError`.

Parsing uses ruamel.yaml's round-trip composer so every value keeps its line and column,
and YAML tags are checked on the node tree *before* anything is constructed: a
`!!python/object/apply:...` tag is a reported problem, never code execution. Schema
errors from pydantic are mapped back to the line of the offending key or value.

`SettingsLoader` never raises for file content: a file that fails keeps the model from
its last good load (or defaults) and the problems are listed on the snapshot.

`edit_yaml` / `set_selection` edit a file in place keeping comments, key order and
quoting, validate the result before writing, and replace the file atomically.
"""

from __future__ import annotations

import codecs
import difflib
import io
import os
import re
import secrets
import stat
import threading
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.scalarstring import ScalarString
from ruamel.yaml.tokens import CommentToken

from .domains import Domain
from .errors import ConfigError

__all__ = [
    "APP_FILE",
    "AppSettings",
    "ApprovalsOptions",
    "CandidateSpec",
    "ConfigProblem",
    "DomainSettings",
    "HealthOptions",
    "JournalOptions",
    "LifecycleOptions",
    "SettingsLoader",
    "SettingsSnapshot",
    "TelemetryOptions",
    "edit_yaml",
    "load_file",
    "model_for_file",
    "set_selection",
    "validate_dir",
]

APP_FILE = "app.yml"
STATE_DIR_ENV = "ONEIRIC_STATE_DIR"
STACK_ORDER_ENV = "ONEIRIC_STACK_ORDER"

NAME_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
FACTORY_PATTERN = r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*"
_NAME_RE = re.compile(NAME_PATTERN)
_FACTORY_RE = re.compile(FACTORY_PATTERN)

# Tags a settings file may carry (explicitly or by implicit resolution). Anything else,
# python/object tags included, is refused before construction.
_ALLOWED_TAGS = frozenset(
    "tag:yaml.org,2002:" + name
    for name in ("null", "bool", "int", "float", "str", "map", "seq", "merge", "timestamp")
)
# Cap on values after alias expansion (guards against "billion laughs" documents).
_MAX_VALUES = 200_000


# --------------------------------------------------------------------------- validators


def _problem(reason: str) -> PydanticCustomError:
    # The reason travels through the context so braces in user input are never formatted.
    return PydanticCustomError("oneiric_setting", "{reason}", {"reason": reason})


def _name_check(what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not _NAME_RE.fullmatch(value):
            raise _problem(
                f"{value!r} is not a valid {what}: use letters, digits, '_', '.' and '-' "
                "(not starting with '.' or '-')"
            )
        return value

    return check


def _factory_check(value: str) -> str:
    if not _FACTORY_RE.fullmatch(value):
        raise _problem(f"factory {value!r} is not of the form package.module:attribute")
    return value


KeyName = Annotated[str, AfterValidator(_name_check("component key"))]
ProviderName = Annotated[str, AfterValidator(_name_check("provider name"))]
FactoryRef = Annotated[str, AfterValidator(_factory_check)]


# --------------------------------------------------------------------------- models


class _SettingsModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, data: Any) -> Any:
        """`lifecycle:` or `selections:` with nothing under it means "defaults", not null."""
        if isinstance(data, dict):
            fields = cls.model_fields
            drop = [
                k
                for k, v in data.items()
                if v is None and isinstance(k, str) and k in fields and not _allows_none(fields[k].annotation)
            ]
            if drop:
                data = {k: v for k, v in data.items() if k not in drop}
        return data


def _allows_none(annotation: Any) -> bool:
    return annotation is None or type(None) in typing.get_args(annotation)


class LifecycleOptions(_SettingsModel):
    activation_timeout: float = Field(30.0, gt=0)
    health_timeout: float = Field(5.0, gt=0)
    cleanup_timeout: float = Field(10.0, gt=0)


class HealthOptions(_SettingsModel):
    interval_s: float = Field(10.0, gt=0)
    history: int = Field(60, ge=2)


class ApprovalsOptions(_SettingsModel):
    mode: Literal["manual", "auto"] = "manual"
    two_person: bool = False
    expire_after_s: float = Field(3600.0, gt=0)


class JournalOptions(_SettingsModel):
    max_age_days: float = Field(30.0, gt=0)
    max_rows: int = Field(100_000, ge=100)


class TelemetryOptions(_SettingsModel):
    exporter: Literal["none", "console", "otlp"] = "none"
    endpoint: str | None = None
    service_name: str = "oneiric"


class AppSettings(_SettingsModel):
    state_dir: str | None = None
    stack_order: list[str] = Field(default_factory=list)
    factory_allowlist: list[str] = Field(default_factory=lambda: ["oneiric_core.providers."])
    read_only: bool = False
    keymap: dict[str, str] = Field(default_factory=dict)
    lifecycle: LifecycleOptions = Field(default_factory=LifecycleOptions)
    health: HealthOptions = Field(default_factory=HealthOptions)
    approvals: ApprovalsOptions = Field(default_factory=ApprovalsOptions)
    journal: JournalOptions = Field(default_factory=JournalOptions)
    telemetry: TelemetryOptions = Field(default_factory=TelemetryOptions)


class CandidateSpec(_SettingsModel):
    key: KeyName
    provider: ProviderName
    factory: FactoryRef
    priority: int = Field(0, ge=-1000, le=1000)
    stack_level: int = Field(0, ge=-1000, le=1000)
    settings: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


class DomainSettings(_SettingsModel):
    selections: dict[KeyName, ProviderName] = Field(default_factory=dict)
    candidates: list[CandidateSpec] = Field(default_factory=list)
    # provider_settings[key][provider] is merged over that candidate's own settings.
    provider_settings: dict[KeyName, dict[ProviderName, dict[str, Any]]] = Field(default_factory=dict)


def model_for_file(path: Path | str) -> type[AppSettings] | type[DomainSettings] | None:
    """The model a settings file validates against, by file name; None for any other file."""
    name = Path(path).name
    if name == APP_FILE:
        return AppSettings
    if any(name == d.settings_file for d in Domain):
        return DomainSettings
    return None


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a settings file. `line`/`column` are 1-based, None when unknown."""

    file: Path
    line: int | None
    column: int | None
    reason: str

    def display_path(self) -> str:
        path = Path(os.path.abspath(self.file))
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    def __str__(self) -> str:
        where = self.display_path()
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "line": self.line,
            "column": self.column,
            "reason": self.reason,
            "message": str(self),
        }


def _config_error(problems: list[ConfigProblem], prefix: str = "", suffix: str = "") -> ConfigError:
    message = prefix + str(problems[0])
    if len(problems) > 1:
        more = len(problems) - 1
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    err = ConfigError(message + suffix)
    err.problems = list(problems)  # type: ignore[attr-defined]
    return err


# --------------------------------------------------------------------------- parsing


def _abs(path: Path | str) -> Path:
    return Path(os.path.abspath(os.path.expanduser(str(path))))


def _new_yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.allow_duplicate_keys = False
    return yaml


def _tag_text(tag: Any) -> str:
    text = getattr(tag, "value", None) or str(tag)
    if text.startswith("tag:yaml.org,2002:"):
        return "!!" + text[len("tag:yaml.org,2002:") :]
    return text


def _mark_problem(file: Path, mark: Any, reason: str) -> ConfigProblem:
    if mark is None:
        return ConfigProblem(file, None, None, reason)
    return ConfigProblem(file, mark.line + 1, mark.column + 1, reason)


def _syntax_problem(file: Path, err: MarkedYAMLError) -> ConfigProblem:
    problem = (err.problem or "").strip() or (err.context or "").strip() or "unreadable YAML"
    mark = err.problem_mark or err.context_mark
    context = (err.context or "").strip()
    if context and err.problem and err.context_mark is not None and err.problem_mark is not None:
        problem += f" ({context} that starts at line {err.context_mark.line + 1})"
    return _mark_problem(file, mark, f"YAML syntax error: {problem}")


def _check_tags(file: Path, root: Node) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    seen: set[int] = set()
    stack: list[Node] = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        tag = getattr(node.tag, "value", None) or str(node.tag)
        if tag not in _ALLOWED_TAGS:
            problems.append(
                _mark_problem(
                    file,
                    node.start_mark,
                    f"YAML tag '{_tag_text(node.tag)}' is not allowed in settings files "
                    "(only plain strings, numbers, booleans, lists and mappings)",
                )
            )
        if isinstance(node, MappingNode):
            for key, value in node.value:
                stack.append(value)
                stack.append(key)
        elif isinstance(node, SequenceNode):
            stack.extend(reversed(node.value))
    return problems


class _TooBig(Exception):
    pass


def _to_plain(obj: Any, budget: list[int]) -> Any:
    """ruamel round-trip types -> plain dict/list/str/int/float/bool for pydantic."""
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooBig
    if isinstance(obj, dict):
        return {_to_plain(k, budget): _to_plain(v, budget) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [_to_plain(v, budget) for v in obj]
        return items if isinstance(obj, list) else tuple(items)
    if isinstance(obj, bool):
        return bool(obj)
    if type(obj).__name__ == "ScalarBoolean":  # anchored booleans are an int subclass
        return bool(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, str):
        return str(obj)
    return obj


@dataclass
class _Parsed:
    data: CommentedMap | None
    problems: list[ConfigProblem]


def _parse_yaml(file: Path, text: str) -> _Parsed:
    """Syntax, tags, duplicate keys and the top-level shape; no schema."""
    yaml = _new_yaml()
    try:
        node = yaml.compose(text)
    except MarkedYAMLError as err:
        return _Parsed(None, [_syntax_problem(file, err)])
    except YAMLError as err:
        return _Parsed(None, [ConfigProblem(file, None, None, f"YAML error: {err}")])
    except RecursionError:
        return _Parsed(None, [ConfigProblem(file, None, None, "YAML error: the document is nested too deeply")])
    if node is None:
        return _Parsed(None, [])
    tag_problems = _check_tags(file, node)
    if tag_problems:
        return _Parsed(None, tag_problems)
    if not isinstance(node, MappingNode):
        return _Parsed(None, [_mark_problem(file, node.start_mark, "expected a mapping at the top of the file")])
    try:
        # Build the data from the node already composed: parsing the text twice doubled the
        # load time of large settings files (the parser is pure Python).
        data = yaml.constructor.construct_document(node)
    except MarkedYAMLError as err:
        if type(err).__name__ == "DuplicateKeyError":
            match = re.search(r'found duplicate key "(.*?)"', err.problem or "")
            key = match.group(1) if match else "?"
            reason = f"duplicate key '{key}'"
            if err.context_mark is not None:
                reason += f" (first defined at line {err.context_mark.line + 1})"
            return _Parsed(None, [_mark_problem(file, err.problem_mark, reason)])
        return _Parsed(None, [_syntax_problem(file, err)])
    except Exception as err:  # e.g. an impossible implicit timestamp such as 2001-02-30
        return _Parsed(None, [ConfigProblem(file, None, None, f"YAML error: {err}")])
    if not isinstance(data, CommentedMap):
        return _Parsed(None, [ConfigProblem(file, 1, 1, "expected a mapping at the top of the file")])
    return _Parsed(data, [])


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and re.fullmatch(r"[A-Za-z_]\w*", part):
            out += ("." if out else "") + part
        else:
            out += f"[{part!r}]"
    return out


def _model_at(model: Any, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that validates the value at `loc`, if there is one."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return None
            current = field.annotation
        else:
            origin = typing.get_origin(current)
            args = typing.get_args(current)
            if origin is Annotated:
                current, args = args[0], typing.get_args(args[0])
                origin = typing.get_origin(current)
            if origin is list and args:
                current = args[0]
            elif origin is dict and len(args) == 2:
                current = args[1]
            else:
                return None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _lc(node: Any, method: str, arg: Any) -> tuple[int, int] | None:
    try:
        pos = getattr(node.lc, method)(arg)
    except (AttributeError, KeyError, IndexError, TypeError):
        return None
    if pos is None or pos[0] is None:
        return None
    return int(pos[0]), int(pos[1])


def _locate(root: CommentedMap, loc: tuple[Any, ...], on_key: bool) -> tuple[int, int] | None:
    """0-based (line, column) for a pydantic `loc`, falling back to the nearest ancestor."""
    node: Any = root
    pos: tuple[int, int] | None = None
    parts = list(loc)
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        next_is_key = not last and parts[i + 1] == "[key]"
        if part == "[key]":
            return pos
        if isinstance(node, CommentedMap):
            try:
                present = part in node
            except TypeError:
                present = False
            if not present:
                return pos
            key_pos = _lc(node, "key", part)
            child = node[part]
            if next_is_key or (last and on_key):
                return key_pos or pos
            if last:
                if isinstance(child, (CommentedMap, CommentedSeq)):
                    return key_pos or pos
                return _lc(node, "value", part) or key_pos or pos
            node, pos = child, key_pos or pos
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            item_pos = _lc(node, "item", part) or pos
            if last:
                return item_pos
            node, pos = node[part], item_pos
        else:
            return pos
    return pos


def _describe_error(model: type[BaseModel], error: dict[str, Any]) -> str:
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    where = _format_loc(loc)
    if kind == "extra_forbidden" and loc:
        name = loc[-1]
        parent = _format_loc(loc[:-1])
        reason = f"unknown setting '{name}'" + (f" under {parent}" if parent else "")
        owner = _model_at(model, loc[:-1])
        if owner is not None:
            known = list(owner.model_fields)
            close = difflib.get_close_matches(str(name), known, n=1)
            if close:
                reason += f" (did you mean '{close[0]}'?)"
            else:
                reason += f" (known settings: {', '.join(known)})"
        return reason
    if kind == "missing" and loc:
        parent = _format_loc(loc[:-1])
        return (f"{parent}: " if parent else "") + f"missing required setting '{loc[-1]}'"
    msg = str(error.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if loc and loc[-1] == "[key]":
        msg = f"invalid key: {msg}"
    return f"{where}: {msg}" if where else msg


def _validate(file: Path, data: CommentedMap | None, model: type[BaseModel]) -> tuple[BaseModel | None, list[ConfigProblem]]:
    if data is None:
        return model(), []
    try:
        plain = _to_plain(data, [_MAX_VALUES])
    except (_TooBig, RecursionError):
        return None, [ConfigProblem(file, None, None, "the file expands to too many values (check anchors and aliases)")]
    try:
        return model.model_validate(plain, strict=True), []
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error.get("loc", ()))
            pos = _locate(data, loc, on_key=error.get("type") == "extra_forbidden")
            if pos is None:
                pos = _lc(data, "key", next(iter(data))) if len(data) else None
            line, col = (pos[0] + 1, pos[1] + 1) if pos else (None, None)
            problems.append(ConfigProblem(file, line, col, _describe_error(model, error)))
        return None, _sorted(problems)


def _sorted(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


def _decode(file: Path, raw: bytes) -> tuple[str | None, ConfigProblem | None]:
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        return None, ConfigProblem(file, line, column, "the file is not valid UTF-8 text")


# Anchors, aliases and tags always take the careful path (it bounds alias expansion and
# refuses unknown tags with their line); so does anything the fast path cannot validate.
_CAREFUL_MARKS = re.compile(r"[&*!]")


def _fast_parse(text: str, model: type[BaseModel]) -> BaseModel | None:
    """The common case, a valid file with no anchors, aliases or tags, through ruamel's C
    parser (about 5x faster than the round-trip parser, which matters for settings with
    thousands of candidates). None means: take the careful path, which finds and words
    any problem with its line and column."""
    if _CAREFUL_MARKS.search(text):
        return None
    try:
        data = YAML(typ="safe").load(text)
    except Exception:
        return None
    if data is None or not isinstance(data, dict):
        return None
    try:
        return model.model_validate(data, strict=True)
    except ValidationError:
        return None


def _parse_text(file: Path, text: str, model: type[BaseModel]) -> tuple[BaseModel | None, list[ConfigProblem]]:
    fast = _fast_parse(text, model)
    if fast is not None:
        return fast, []
    parsed = _parse_yaml(file, text)
    if parsed.problems:
        return None, _sorted(parsed.problems)
    return _validate(file, parsed.data, model)


def _read_and_parse(file: Path, model: type[BaseModel]) -> tuple[BaseModel | None, list[ConfigProblem], bool]:
    """(model or None, problems, exists). A missing file is defaults."""
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        return model(), [], False
    except IsADirectoryError:
        return None, [ConfigProblem(file, None, None, "cannot read the file: it is a directory")], True
    except OSError as err:
        return None, [ConfigProblem(file, None, None, f"cannot read the file: {err.strerror or err}")], True
    text, problem = _decode(file, raw)
    if problem is not None:
        return None, [problem], True
    assert text is not None
    instance, problems = _parse_text(file, text, model)
    return instance, problems, True


def load_file(path: Path, model: type[BaseModel]) -> BaseModel:
    """Load and validate one file; a missing file gives the model's defaults.

    Raises ConfigError naming file:line:column, with `.problems` listing every problem.
    """
    file = _abs(path)
    instance, problems, _ = _read_and_parse(file, model)
    if problems or instance is None:
        raise _config_error(problems or [ConfigProblem(file, None, None, "could not be loaded")])
    return instance


def _known_files(settings_dir: Path) -> dict[Path, type[BaseModel]]:
    files: dict[Path, type[BaseModel]] = {settings_dir / APP_FILE: AppSettings}
    for domain in Domain:
        files[settings_dir / domain.settings_file] = DomainSettings
    return files


def _missing_dir_message(settings_dir: Path) -> str:
    if settings_dir.exists():
        return f"settings path {settings_dir} is not a directory"
    return f"settings directory {settings_dir} does not exist"


def validate_dir(settings_dir: Path) -> list[ConfigProblem]:
    """Every problem in a settings directory (no last-good fallback).

    Also flags near-miss file names that would otherwise be silently ignored,
    such as `adapter.yml` or `adapters.yaml`.
    """
    directory = _abs(settings_dir)
    if not directory.is_dir():
        return [ConfigProblem(directory, None, None, _missing_dir_message(directory))]
    problems: list[ConfigProblem] = []
    for file, model in _known_files(directory).items():
        problems.extend(_read_and_parse(file, model)[1])
    expected = {f.name for f in _known_files(directory)}
    stems = {"app": APP_FILE}
    for domain in Domain:
        stems[domain.value] = stems[domain.plural] = domain.settings_file
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        entries = []
    for entry in entries:
        name = entry.name
        if name in expected or entry.suffix.lower() not in (".yml", ".yaml"):
            continue
        meant = stems.get(entry.stem.lower())
        if meant is not None:
            problems.append(
                ConfigProblem(entry, None, None, f"this file is ignored: settings are read from {meant}")
            )
    return problems


# --------------------------------------------------------------------------- snapshot and loader


@dataclass
class SettingsSnapshot:
    settings_dir: Path
    app: AppSettings
    domains: dict[Domain, DomainSettings]
    problems: list[ConfigProblem]
    # For each file with problems, what serves instead: "last good" or "defaults".
    in_force: dict[Path, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def fallback(self, problem: ConfigProblem) -> str:
        """What is in force for the file of `problem`, in words for an operator."""
        if self.in_force.get(_abs(problem.file)) == "last good":
            return "the last good version of that file stays in force"
        return "that file's settings fall back to defaults (no good version was ever loaded)"

    @property
    def state_dir(self) -> Path:
        """$ONEIRIC_STATE_DIR, else app.state_dir (relative to the settings dir's parent),
        else <settings_dir>/../.oneiric. Always absolute."""
        base = _abs(self.settings_dir).parent
        env = os.environ.get(STATE_DIR_ENV, "").strip()
        if env:
            return _abs(env)
        if self.app.state_dir:
            configured = Path(os.path.expanduser(self.app.state_dir))
            return _abs(configured if configured.is_absolute() else base / configured)
        return base / ".oneiric"

    @property
    def stack_order(self) -> list[str]:
        """$ONEIRIC_STACK_ORDER (comma-separated; blank or unset means "not set") overrides app.stack_order."""
        env = os.environ.get(STACK_ORDER_ENV)
        if env is not None:
            order = [part.strip() for part in env.split(",") if part.strip()]
            if order:
                return order
        return list(self.app.stack_order)

    def path_for(self, domain: Domain | str) -> Path:
        return self.settings_dir / Domain.parse(domain).settings_file

    @property
    def app_path(self) -> Path:
        return self.settings_dir / APP_FILE

    def domain(self, domain: Domain | str) -> DomainSettings:
        return self.domains[Domain.parse(domain)]


class SettingsLoader:
    """Loads a settings directory; a file that fails keeps its last good model. Thread-safe."""

    def __init__(self, settings_dir: Path, keep_dir: Path | None = None) -> None:
        self.settings_dir = _abs(settings_dir)
        self._files = _known_files(self.settings_dir)
        # Where a copy of each file's last good text is kept (under the state dir), so the
        # last good settings stay in force across restarts and in every process.
        self.keep_dir = keep_dir
        self._good: dict[Path, BaseModel] = {}
        self._problems: dict[Path, list[ConfigProblem]] = {}
        self._loaded = False
        self._lock = threading.RLock()

    def owns(self, path: Path | str) -> bool:
        """Whether `path` is one of this directory's settings files (for a watcher to filter events)."""
        return self._resolve(path) is not None

    def _resolve(self, path: Path | str) -> Path | None:
        candidate = _abs(path)
        if candidate in self._files:
            return candidate
        relative = Path(path)
        if not relative.is_absolute() and (self.settings_dir / relative) in self._files:
            return self.settings_dir / relative
        return None

    def _check_dir(self) -> None:
        if not self.settings_dir.is_dir():
            raise ConfigError(_missing_dir_message(self.settings_dir))

    def _load_one(self, file: Path) -> list[ConfigProblem]:
        model = self._files[file]
        instance, problems, exists = _read_and_parse(file, model)
        if instance is not None and not problems:
            self._good[file] = instance
            self._problems[file] = []
            if exists:
                self._keep(file)
        else:
            self._problems[file] = problems
            if file not in self._good:
                kept = self._kept(file, model)
                if kept is not None:
                    self._good[file] = kept
        return list(self._problems[file])

    def use_keep_dir(self, keep_dir: Path) -> SettingsSnapshot:
        """Start keeping last good copies in `keep_dir`; files that failed fall back to them."""
        with self._lock:
            self.keep_dir = keep_dir
            for file in self._files:
                if self._problems.get(file):
                    if file not in self._good:
                        kept = self._kept(file, self._files[file])
                        if kept is not None:
                            self._good[file] = kept
                elif file.exists():
                    self._keep(file)
            return self._snapshot()

    def _keep(self, file: Path) -> None:
        if self.keep_dir is None:
            return
        target = self.keep_dir / file.name
        try:
            data = file.read_bytes()
            if target.exists() and target.read_bytes() == data:
                return
            self.keep_dir.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        except OSError:
            pass  # keeping a copy is a convenience; never a reason to fail a load

    def _kept(self, file: Path, model: type[BaseModel]) -> BaseModel | None:
        if self.keep_dir is None:
            return None
        copy = self.keep_dir / file.name
        if not copy.exists():
            return None
        instance, problems, _ = _read_and_parse(copy, model)
        return instance if instance is not None and not problems else None

    def _snapshot(self) -> SettingsSnapshot:
        app = self._good.get(self.settings_dir / APP_FILE)
        domains: dict[Domain, DomainSettings] = {}
        for domain in Domain:
            model = self._good.get(self.settings_dir / domain.settings_file)
            domains[domain] = model if isinstance(model, DomainSettings) else DomainSettings()
        problems = [p for file in self._files for p in self._problems.get(file, [])]
        in_force = {
            file: "last good" if file in self._good else "defaults"
            for file in self._files if self._problems.get(file)
        }
        return SettingsSnapshot(
            settings_dir=self.settings_dir,
            app=app if isinstance(app, AppSettings) else AppSettings(),
            domains=domains,
            problems=problems,
            in_force=in_force,
        )

    def load(self) -> SettingsSnapshot:
        """Load every file. Raises ConfigError only when the directory itself is missing."""
        with self._lock:
            self._check_dir()
            for file in self._files:
                self._load_one(file)
            self._loaded = True
            return self._snapshot()

    def reload_file(self, path: Path | str) -> tuple[SettingsSnapshot, list[ConfigProblem]]:
        """Reload one settings file; returns the new snapshot and that file's problems."""
        with self._lock:
            file = self._resolve(path)
            if file is None:
                raise ConfigError(f"{path} is not a settings file of {self.settings_dir}")
            if not self._loaded:
                snapshot = self.load()
                return snapshot, list(self._problems.get(file, []))
            problems = self._load_one(file)
            return self._snapshot(), problems

    def last_good(self, path: Path | str) -> BaseModel | None:
        with self._lock:
            file = self._resolve(path)
            return None if file is None else self._good.get(file)


# --------------------------------------------------------------------------- editing


def _guess_indent(root: CommentedMap, text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) indentation as used by the file, ruamel defaults otherwise."""
    lines = text.splitlines()
    mapping: int | None = None
    sequence: int | None = None
    offset: int | None = None
    stack: list[Any] = [root]
    seen: set[int] = set()
    while stack and (mapping is None or sequence is None):
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, CommentedMap):
            if node.fa.flow_style():
                continue
            for key in node:
                child = node[key]
                key_pos = _lc(node, "key", key)
                if key_pos is None:
                    continue
                if isinstance(child, CommentedMap) and len(child) and not child.fa.flow_style():
                    first = _lc(child, "key", next(iter(child)))
                    if mapping is None and first and first[0] > key_pos[0]:
                        mapping = first[1] - key_pos[1]
                elif isinstance(child, CommentedSeq) and len(child) and not child.fa.flow_style():
                    item = _lc(child, "item", 0)
                    if sequence is None and item and item[0] < len(lines):
                        dash = lines[item[0]].rfind("-", 0, item[1])
                        if dash >= key_pos[1]:
                            sequence = item[1] - key_pos[1]
                            offset = dash - key_pos[1]
                stack.append(child)
        elif isinstance(node, CommentedSeq):
            stack.extend(node)
    mapping = mapping if mapping and mapping > 0 else 2
    if sequence is None or offset is None or sequence - offset < 2:
        sequence, offset = 2, 0
    return mapping, sequence, offset


def _atomic_write(target: Path, data: bytes, mode: int | None) -> None:
    directory = target.parent
    tmp = directory / f".{target.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies to new files
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


class _Unchanged(Exception):
    """Raised by a mutator that found nothing to change: edit_yaml then writes nothing."""


def edit_yaml(path: Path, mutate: Callable[[CommentedMap], None]) -> None:
    """Edit a settings file in place, keeping comments, key order and quoting.

    Refuses (ConfigError naming file:line:column) when the file does not parse now, and
    refuses when the result would not validate against the file's model; in both cases
    the file is left untouched. A missing file is created. The write is atomic and keeps
    the file's mode.
    """
    shown = _abs(path)
    model = model_for_file(shown)
    if model is None:
        names = ", ".join([APP_FILE] + [d.settings_file for d in Domain])
        raise ConfigError(f"{shown} is not a settings file (expected one of {names})")
    target = Path(os.path.realpath(shown)) if shown.is_symlink() else shown
    if not target.parent.is_dir():
        raise ConfigError(_missing_dir_message(target.parent))

    try:
        raw = target.read_bytes()
        existed = True
    except FileNotFoundError:
        raw, existed = b"", False
    except OSError as err:
        raise ConfigError(f"{shown}: cannot read the file: {err.strerror or err}") from None
    bom = raw.startswith(codecs.BOM_UTF8)
    text, problem = _decode(shown, raw)
    if problem is not None:
        raise _config_error([problem], suffix="; fix the file before editing it")
    assert text is not None
    newline = "\r\n" if "\r\n" in text else "\n"
    text = text.replace("\r\n", "\n")

    parsed = _parse_yaml(shown, text)
    if parsed.problems:
        raise _config_error(_sorted(parsed.problems), suffix="; fix the file before editing it")

    prefix = ""
    if parsed.data is None:
        data = CommentedMap()
        if text.strip():  # only comments: keep them above the new content
            prefix = text if text.endswith("\n") else text + "\n"
        indent = (2, 2, 0)
    else:
        data = parsed.data
        indent = _guess_indent(data, text)

    try:
        mutate(data)
    except _Unchanged:
        return
    if parsed.data is None and not len(data):
        return  # nothing to write into an empty (or missing) file

    yaml = _new_yaml()
    yaml.width = 4096
    yaml.indent(mapping=indent[0], sequence=indent[1], offset=indent[2])
    if text.startswith("---"):
        yaml.explicit_start = True
    out = io.StringIO()
    yaml.dump(data, out)
    new_text = prefix + out.getvalue()

    _, problems = _parse_text(shown, new_text, model)
    if problems:
        reasons = "; ".join(p.reason for p in problems)
        err = ConfigError(f"refusing to edit {shown}: the change would make it invalid: {reasons}")
        err.problems = problems  # type: ignore[attr-defined]
        raise err

    if existed and new_text == text:
        return
    encoded = new_text.replace("\n", newline).encode("utf-8")
    if bom:
        encoded = codecs.BOM_UTF8 + encoded
    mode = stat.S_IMODE(os.stat(target).st_mode) if existed else None
    _atomic_write(target, encoded, mode)


# Comment bookkeeping: ruamel attaches the comment lines that follow a key to that key's
# value (index 2 of `ca.items[key]`: "eol comment\nfollowing lines..."). When keys are
# added or removed, those following lines are moved so they stay where they were.


def _is_collection(value: Any) -> bool:
    return isinstance(value, (CommentedMap, CommentedSeq))


def _split_post_comment(mapping: CommentedMap, key: Any) -> str:
    """Detach and return the comment lines following `key` (its own eol comment stays)."""
    entry = mapping.ca.items.get(key)
    if not entry or len(entry) < 3 or entry[2] is None:
        return ""
    token = entry[2]
    head, _, tail = token.value.partition("\n")
    if not tail:
        return ""
    if head.strip():
        token.value = head + "\n"
    else:
        entry[2] = None
        if not any(entry):
            del mapping.ca.items[key]
    return tail


def _comment_tokens(lines: str) -> list[CommentToken]:
    tokens = []
    for line in lines.splitlines():
        stripped = line.lstrip()
        column = len(line) - len(stripped)
        tokens.append(CommentToken((stripped or "") + "\n", CommentMark(column if stripped else 0), None))
    return tokens


def _place_after(mapping: CommentedMap, keys: list[Any], index: int, tail: str) -> bool:
    """Put comment lines where the key at `keys[index]` (now removed) used to end."""
    if index > 0 and not _is_collection(mapping.get(keys[index - 1])):
        prev = keys[index - 1]
        entry = mapping.ca.items.setdefault(prev, [None, None, None, None])
        token = entry[2]
        if token is None:
            entry[2] = CommentToken("\n" + tail, CommentMark(0), None)
        else:
            token.value = (token.value if token.value.endswith("\n") else token.value + "\n") + tail
        return True
    if index + 1 < len(keys):
        entry = mapping.ca.items.setdefault(keys[index + 1], [None, None, None, None])
        entry[1] = _comment_tokens(tail) + list(entry[1] or [])
        return True
    return False


def _remove_key(mapping: CommentedMap, key: Any, carried: str = "") -> str:
    """Delete `key`, keeping the comment lines that followed it; returns lines it could not place."""
    keys = list(mapping)
    index = keys.index(key)
    tail = _split_post_comment(mapping, key) + carried
    del mapping[key]
    mapping.ca.items.pop(key, None)
    if tail and _place_after(mapping, keys, index, tail):
        return ""
    return tail


def _append_key(mapping: CommentedMap, key: Any, value: Any) -> None:
    """Add `key` at the end; comment lines that followed the old last key follow the new one."""
    tail = ""
    if len(mapping) and not mapping.fa.flow_style():
        last = list(mapping)[-1]
        if not _is_collection(mapping[last]):
            tail = _split_post_comment(mapping, last)
    mapping[key] = value
    if tail:
        mapping.ca.items[key] = [None, None, CommentToken("\n" + tail, CommentMark(0), None), None]


def _same_style(old: Any, new: str) -> Any:
    """A replacement value quoted the way the old one was."""
    if isinstance(old, ScalarString):
        try:
            return type(old)(new)
        except Exception:
            return new
    return new


def set_selection(settings_dir: Path, domain: Domain | str, key: str, provider: str | None) -> Path:
    """Select `provider` for `key` in the domain's settings file (None removes the selection).

    Comments, key order and quoting are kept; the file is created if absent. Returns its path.
    """
    domain = Domain.parse(domain)
    if not _NAME_RE.fullmatch(key or ""):
        raise ConfigError(f"'{key}' is not a valid component key: use letters, digits, '_', '.' and '-'.")
    if provider is not None and not _NAME_RE.fullmatch(provider):
        raise ConfigError(f"'{provider}' is not a valid provider name: use letters, digits, '_', '.' and '-'.")
    directory = _abs(settings_dir)
    if not directory.is_dir():
        raise ConfigError(_missing_dir_message(directory))
    path = directory / domain.settings_file
    if provider is None and not path.exists():
        return path

    def mutate(root: CommentedMap) -> None:
        selections = root.get("selections")
        if selections is not None and not isinstance(selections, CommentedMap):
            line = _lc(root, "key", "selections")
            where = f"{path}:{line[0] + 1}:{line[1] + 1}" if line else str(path)
            raise ConfigError(f"{where}: 'selections' must be a mapping of key: provider")
        if provider is None:
            if selections is None or key not in selections:
                raise _Unchanged
            unplaced = _remove_key(selections, key)
            if len(selections) == 0:
                unplaced = _remove_key(root, "selections", carried=unplaced)
            if unplaced:
                root.ca.end = _comment_tokens(unplaced) + list(root.ca.end or [])
            return
        if selections is None:
            fresh = CommentedMap()
            fresh[key] = provider
            if "selections" in root:
                root["selections"] = fresh
            else:
                root.insert(0, "selections", fresh)
        elif key in selections:
            if selections[key] == provider:
                raise _Unchanged
            selections[key] = _same_style(selections[key], provider)
        else:
            _append_key(selections, key, provider)

    edit_yaml(path, mutate)
    return path
