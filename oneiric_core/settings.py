"""Settings files: typed models, a loader that keeps the last good version, and safe edits.

A settings directory holds `app.yml` (engine options) and one file per domain
(`adapters.yml`, `services.yml`, ... see `Domain.settings_file`). A missing file means
defaults; a missing directory is a `ConfigError`.

Two ways in, one result. A file is first read by the fast path: yaml-rs (a Rust YAML 1.2
parser that builds plain dicts and lists, never objects from tags; the optional `fast` extra,
else ruamel's safe loader takes its place, see `_fast_loader`) and one strict
validation by `schema` (the models are plain dataclasses checked in Python, without
importing pydantic: 10,000 candidates take about 70 ms, less than pydantic's import and
set-up alone). On those 10,000 candidates (1.2 MB) yaml-rs takes about 40 ms where
ruamel.yaml took over a second even with its C parser. The
fast path only takes text it parses exactly as the careful path would (no anchors, aliases,
tags, merge keys, directives, timestamps, tabs, control characters or very deep nesting;
see `_needs_careful`) and only keeps a result that validates. Anything else, every broken
file included, goes to the careful path in `settings_careful.py`: ruamel.yaml's round-trip
composer, which checks tags before constructing anything, then pydantic, and words every
problem with its file:line:column. Reloading a file whose bytes have not changed parses
nothing.

Before either path, a file is held to app.yml's `limits` (input_limits.py): one larger than
`limits.settings_max_bytes` is refused before it is read, and data nested deeper than
`limits.max_depth` is refused before it is validated. app.yml itself is read with the built-in
defaults, since it is what sets them. A large file (over CAREFUL_MAX_CHARS) that yaml-rs
parsed but that does not validate is not given to the slow careful parser just to find a
line: its problems are named by key path.

`SettingsLoader` never raises for file content: a file that fails keeps the model from
its last good load (or defaults) and the problems are listed on the snapshot.

The models and the problem wording are settings_model.py (re-exported here); the careful
path is settings_careful.py; `edit_yaml` / `set_selection` (settings_edit.py) edit a file in
place keeping comments, key order and quoting, validate the result before writing, and
replace the file atomically.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from . import schema
from .bulk import gc_paused
from .domains import Domain
from .errors import ConfigError
from .input_limits import (
    DEFAULT_LIMITS,
    DEFAULT_MAX_DEPTH,
    InputLimits,
    LimitExceeded,
    depth_beyond,
    read_capped,
)
from .private_files import write_private
from .schema import Model
from .settings_model import (
    APP_FILE,
    STACK_ORDER_ENV,
    STATE_DIR_ENV,
    STORE_URL_ENV,
    AccessOptions,
    ApprovalsOptions,
    AppSettings,
    BreakerOptions,
    CandidateSpec,
    ConfigProblem,
    ContactOptions,
    DomainSettings,
    EscalationOptions,
    GrantOptions,
    HealthOptions,
    JournalOptions,
    LifecycleOptions,
    LimitsOptions,
    RemoteOptions,
    RemoteSourceOptions,
    SeverityOptions,
    TelemetryOptions,
    TrustedKey,
    _abs,
    _config_error,
    _describe_error,
    model_for_file,
)

if TYPE_CHECKING:
    from ruamel.yaml.comments import CommentedMap

    from .settings_careful import _Parsed

__all__ = [  # the models are settings_model's, re-exported: `from .settings import AppSettings` reads well
    "APP_FILE",
    "STACK_ORDER_ENV",
    "STATE_DIR_ENV",
    "STORE_URL_ENV",
    "AccessOptions",
    "AppSettings",
    "ApprovalsOptions",
    "BreakerOptions",
    "CandidateSpec",
    "ConfigProblem",
    "ContactOptions",
    "DomainSettings",
    "EscalationOptions",
    "GrantOptions",
    "HealthOptions",
    "JournalOptions",
    "LifecycleOptions",
    "LimitsOptions",
    "RemoteOptions",
    "RemoteSourceOptions",
    "SettingsLoader",
    "SettingsSnapshot",
    "SeverityOptions",
    "TelemetryOptions",
    "TrustedKey",
    "load_file",
    "model_for_file",
    "validate_dir",
]

def _decode(file: Path, raw: bytes) -> tuple[str | None, ConfigProblem | None]:
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        return None, ConfigProblem(file, line, column, "the file is not valid UTF-8 text")


# The fast path leaves to the careful one every text that uses a YAML feature where yaml-rs
# and ruamel.yaml could disagree, or that the careful path must see to word a problem
# (tests/test_settings_fastpath.py checks the two against each other). Each check is a
# substring search or a regex with a literal first character, so all of them together
# cost a few milliseconds on a megabyte of settings: a regex that tries every position of
# the text costs ten times that.
_CAREFUL_MARKS = (
    "&", "*", "!",  # anchors and aliases (the careful path bounds their expansion), tags
    "\t",  # tabs: ruamel refuses some that yaml-rs accepts
)
# ASCII control characters: ruamel refuses them (\t, \n, \r are handled separately).
_ASCII_CONTROLS = tuple(chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F))
# Outside ASCII: control characters, and NEL, LS, PS where ruamel breaks lines. Compiled on
# first use: compiling these ranges costs 10-20 ms, and most settings files are ASCII.
_UNPRINTABLE = "[^\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
_CAREFUL_PATTERNS = [
    re.compile(r"<<"),  # merge keys: ruamel merges, yaml-rs keeps a '<<' key
    # Numbers the two resolve differently: an underscore next to a digit, a sign, a point or
    # a prefix (`_1`, `1_000`, `+_`, `_.5`, `0x_`), upper-case prefixes (`0X1F`), `.5e3`, `.iNf`.
    re.compile(r"_(?:[0-9.]|(?<=[-+.0-9]_)|(?<=0[xXoObB]_))"),
    re.compile(r"0[XOB]"),
    re.compile(r"\.(?:[0-9]+[eE]|[iInN][nNaA][fFnN])"),
    re.compile(r"-[0-9][0-9]?-[0-9]"),  # timestamps: ruamel builds dates of them
    re.compile(r"':\S"), re.compile(r'":\S'),  # `'a':1`: a key and its value to yaml-rs, an
    #                                              error to ruamel
]
_FLOW_PATTERNS = [  # only looked for when the text has a flow collection
    re.compile(r"\] *:"), re.compile(r"\} *:"),  # a flow collection as a key
    re.compile(r"\[ *[|>@`%:]"), re.compile(r"\{ *[|>@`%:]"),  # indicators the two read
    re.compile(r", *[|>@`%:]"),  # ... differently at the start of a flow item
    re.compile(r":[,\[\]{}]"),  # `{a:}`: an empty value to yaml-rs, text to ruamel
]
# Block scalars (`key: |`): the two differ on empty ones and on one that ends the text.
_BLOCK_SCALAR = re.compile(r"(?:^|[ :-])[|>][-+0-9]* *(?:#.*)?$", re.MULTILINE)
# 60 columns of indentation (spaces, or the dashes of compact nested lists): nesting deep
# enough for the careful path to run out of recursion (about 250 levels).
_DEEP_INDENT = re.compile(r"(?:^|\n)[ ?-]{60}")
# More flow brackets than this could nest past the careful path's recursion limit.
_MAX_FAST_BRACKETS = 100


def _needs_careful(text: str) -> bool:
    """Whether `text` must take the careful path (see the tables above)."""
    if any(mark in text for mark in _CAREFUL_MARKS):
        return True
    if text.isascii():
        if any(c in text for c in _ASCII_CONTROLS):
            return True
    elif re.search(_UNPRINTABLE, text):
        return True
    if text.startswith("%") or "\n%" in text:  # directives: `%YAML 1.1` changes how ruamel
        return True  # resolves `yes`, `on`, ...
    if _after_space_or_flow(text, "=") or _after_space_or_flow(text, "?"):
        return True  # a plain `=` is ruamel's !!value tag; `?x` in a flow item a key to ruamel
    if any(pattern.search(text) for pattern in _CAREFUL_PATTERNS):
        return True
    if (" " * 60 in text or "- - - - - - - - " in text) and _DEEP_INDENT.search(text):
        return True
    if "[" in text or "{" in text:
        if text.count("[") + text.count("{") > _MAX_FAST_BRACKETS:
            return True
        if any(pattern.search(text) for pattern in _FLOW_PATTERNS):
            return True
    return ("|" in text or ">" in text) and _BLOCK_SCALAR.search(text) is not None


def _after_space_or_flow(text: str, char: str) -> bool:
    """Whether `char` starts a token somewhere: at the start, after whitespace, `[`, `{` or `,`."""
    index = text.find(char)
    while index >= 0:
        if index == 0 or text[index - 1] in " \n\r[{,":
            return True
        index = text.find(char, index + 1)
    return False


def _fast_load(text: str, max_depth: int = DEFAULT_MAX_DEPTH) -> dict[str, Any] | None:
    """The data of a settings text, if the fast path can parse it exactly as the careful path
    would: a mapping of plain dicts, lists, str, int, float, bool and None, nesting at most
    `max_depth` levels. None means: let the careful path decide (it is also what an empty
    file gives; a file nested too deeply is worded there, with its line)."""
    data = _fast_data(text)
    if data is None or (_may_nest_deeper(text, max_depth) and depth_beyond(data, max_depth) is not None):
        return None
    return data


def _fast_data(text: str) -> dict[str, Any] | None:
    """yaml-rs's mapping for a text that uses no feature the two parsers could read apart
    (`_needs_careful`); None for anything else, a text yaml-rs refuses included."""
    if _needs_careful(text):
        return None
    loads = _fast_loader()
    try:
        # Duplicate keys are an error, as in the careful path; no datetime objects (any
        # date-like text went to the careful path above).
        data = loads(text)
    except Exception:  # noqa: BLE001 - outside text: yaml-rs raises TypeError too, ruamel IndexError...
        return None
    return data if isinstance(data, dict) else None


def _may_nest_deeper(text: str, max_depth: int) -> bool:
    """A cheap bound, so a normal file is never walked for its depth: in the block style the
    fast path takes, a level is at least one column of indentation or of `- ` (a sequence under
    a key may share its key's column, one level per column at worst, plus the top mapping and
    a last sequence), and each flow bracket opens at most one level."""
    width = max_depth - 2 - (text.count("[") + text.count("{"))
    if width <= 0:
        return True
    run = f"[ ?-]{{{width}}}"
    return re.match(run, text) is not None or re.search("\n" + run, text) is not None


def _fast_loader() -> Callable[[str], Any]:
    """The fast path's parser: yaml-rs when it is installed (`pip install oneiric-console[fast]`,
    and the dev extra), else ruamel's safe loader (C parser, Python constructor): about 30x
    slower on a big file, as safe, and just as exact on the texts `_needs_careful` lets through
    (tests/test_settings_fastpath.py runs its checks on both)."""
    global _LOADS
    if _LOADS is None:
        _LOADS = _yaml_rs_loads() or _ruamel_loads()
    return _LOADS


def _yaml_rs_loads() -> Callable[[str], Any] | None:
    try:
        import yaml_rs
    except ImportError:
        return None
    # Duplicate keys are an error, as in the careful path; dates stay text.
    return lambda text: yaml_rs.loads(  # noqa: E731
        text, parse_datetime=False, duplicate_key_policy=yaml_rs.DuplicateKeyPolicy.Error
    )


def _ruamel_loads() -> Callable[[str], Any]:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=False).load


_LOADS: Callable[[str], Any] | None = None


def _fast_parse(text: str, model: type[Model], max_depth: int = DEFAULT_MAX_DEPTH) -> Model | None:
    """The common case, a valid file, through `_fast_load` and the schema's fast validator.
    None means: take the careful path, which finds and words any problem with its line and
    column (pydantic is imported then, and only then)."""
    data = _fast_load(text, max_depth)
    if data is None:
        return None
    return schema.fast_validate(model, data)


def _parse_text(file: Path, text: str, model: type[Model],
                limits: InputLimits = DEFAULT_LIMITS) -> tuple[Model | None, list[ConfigProblem]]:
    data = _fast_data(text)
    if data is not None:
        deep = depth_beyond(data, limits.max_depth) if _may_nest_deeper(text, limits.max_depth) else None
        if deep is None:
            fast = schema.fast_validate(model, data)
            if fast is not None:
                return fast, []
        if len(text) > CAREFUL_MAX_CHARS:
            return _problems_by_path(file, data, model, deep, limits)
    from .settings_careful import parse_careful

    return parse_careful(file, text, model, limits)


# The careful path (ruamel's pure-Python round-trip parser) costs 6 s per MiB of block-style
# settings and over 20 s per MiB of flow lists (bench/settings_size.py). A text longer than this
# that yaml-rs did parse is not handed to it only to find the line of a schema or nesting
# problem: the same problems are worded from the data, by key path (`candidates[5123].provider`)
# instead of line. Acceptance does not change: the data is what the careful path would build.
CAREFUL_MAX_CHARS = 256 * 1024


def _problems_by_path(file: Path, data: dict[str, Any], model: type[Model], deep: tuple[int, str] | None,
                      limits: InputLimits) -> tuple[Model | None, list[ConfigProblem]]:
    if deep is not None:
        depth, at = deep
        exc = LimitExceeded("depth", str(file), depth, limits.max_depth, limits.depth_key, f" (at {at})" if at else "")
        return None, [ConfigProblem(file, None, None, exc.reason())]
    instance, errors = schema.check(model, data)  # what the careful path would conclude, without lines
    if instance is not None:
        return instance, []
    return None, [ConfigProblem(file, None, None, _describe_error(model, error)) for error in errors]


def _parse_yaml(file: Path, text: str, limits: InputLimits = DEFAULT_LIMITS) -> _Parsed:
    """The careful path's parse (syntax, tags, nesting, duplicate keys, top-level shape): see settings_careful."""
    from .settings_careful import _parse_yaml as parse

    return parse(file, text, limits)


def _validate(
    file: Path, data: CommentedMap | None, model: type[Model], **options: Any
) -> tuple[Model | None, list[ConfigProblem]]:
    """The careful path's validation of parsed data, problems located by line: see settings_careful."""
    from .settings_careful import _validate as validate

    return validate(file, data, model, **options)


class _Read(NamedTuple):
    """One settings file read and parsed. `raw` is the exact content that was validated (what
    the last-good copy keeps); None when the file is missing or unreadable."""

    instance: Model | None
    problems: list[ConfigProblem]
    exists: bool
    raw: bytes | None = None


def _read(file: Path, model: type[Model],
          limits: InputLimits = DEFAULT_LIMITS) -> tuple[bytes | None, _Read | None]:
    """(the file's bytes, None), or (None, the result) for a missing, unreadable or oversized
    file. The size is checked before anything is read (input_limits.read_capped)."""
    try:
        return read_capped(file, limits), None
    except FileNotFoundError:
        return None, _Read(model(), [], False)
    except IsADirectoryError:
        return None, _Read(None, [ConfigProblem(file, None, None, "cannot read the file: it is a directory")], True)
    except LimitExceeded as exc:
        return None, _Read(None, [ConfigProblem(file, None, None, exc.reason())], True)
    except OSError as err:
        problem = ConfigProblem(file, None, None, f"cannot read the file: {err.strerror or err}")
        return None, _Read(None, [problem], True)


def _parse_raw(file: Path, raw: bytes, model: type[Model], limits: InputLimits = DEFAULT_LIMITS) -> _Read:
    text, problem = _decode(file, raw)
    if problem is not None:
        return _Read(None, [problem], True, raw)
    assert text is not None
    instance, problems = _parse_text(file, text, model, limits)
    return _Read(instance, problems, True, raw)


def _read_and_parse(file: Path, model: type[Model], limits: InputLimits = DEFAULT_LIMITS) -> _Read:
    """A missing file is defaults."""
    raw, result = _read(file, model, limits)
    if raw is not None:
        return _parse_raw(file, raw, model, limits)
    assert result is not None  # _read gives the bytes or the result
    return result


def limits_for(file: Path, app: Model | None) -> InputLimits:
    """The limits `file` is read with: app.yml always with the built-in defaults (it is what
    sets the limits, so it cannot be bounded by itself); a domain file with app.yml's `limits`
    (its last good version; the defaults while none loaded)."""
    if Path(file).name == APP_FILE or not isinstance(app, AppSettings):
        return DEFAULT_LIMITS
    return app.limits.input_limits()


def _digest(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=16).digest()


def load_file(path: Path, model: type[Model]) -> Model:
    """Load and validate one file; a missing file gives the model's defaults.

    Raises ConfigError naming file:line:column, with `.problems` listing every problem.
    """
    file = _abs(path)
    app = None
    if model is not AppSettings and file.name != APP_FILE:
        app = _read_and_parse(file.parent / APP_FILE, AppSettings).instance
    instance, problems, _, _ = _read_and_parse(file, model, limits_for(file, app))
    if problems or instance is None:
        raise _config_error(problems or [ConfigProblem(file, None, None, "could not be loaded")])
    return instance


def _known_files(settings_dir: Path) -> dict[Path, type[Model]]:
    files: dict[Path, type[Model]] = {settings_dir / APP_FILE: AppSettings}
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
    return _validate_files(directory)[0]


def _validate_files(directory: Path) -> tuple[list[ConfigProblem], dict[Path, Model]]:
    """validate_dir's problems, and the model of every file that loaded cleanly (for the
    checks `config validate` adds: config_check.py)."""
    problems: list[ConfigProblem] = []
    good: dict[Path, Model] = {}
    app: AppSettings | None = None
    for file, model in _known_files(directory).items():  # app.yml first: its limits hold the others
        result = _read_and_parse(file, model, limits_for(file, app))
        problems.extend(result.problems)
        if result.instance is not None and not result.problems:
            good[file] = result.instance
            if isinstance(result.instance, AppSettings):
                app = result.instance
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
    return problems, good


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
    def store_url(self) -> str | None:
        """$ONEIRIC_STORE_URL, else app.store.url; None means the SQLite file in the state dir."""
        env = os.environ.get(STORE_URL_ENV, "").strip()
        return env or self.app.store.url

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
        self._good: dict[Path, Model] = {}
        self._problems: dict[Path, list[ConfigProblem]] = {}
        # A digest of the bytes each file's current state (model or problems) came from, and
        # the limits they were read with.
        self._digests: dict[Path, tuple[bytes, InputLimits]] = {}
        # The validated bytes of good files loaded while there was no keep_dir yet, for
        # `use_keep_dir` to keep without reading the files again (which could also keep a
        # newer, unvalidated version).
        self._unkept: dict[Path, bytes] = {}
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

    def limits(self, file: Path) -> InputLimits:
        """The limits `file` is read with now (`limits_for`, with the last good app.yml)."""
        app = self._good.get(self.settings_dir / APP_FILE)
        return limits_for(file, app if isinstance(app, AppSettings) else None)

    def _load_one(self, file: Path) -> list[ConfigProblem]:
        model = self._files[file]
        limits = self.limits(file)
        raw, result = _read(file, model, limits)
        if raw is not None:
            # The very content the current state came from (a watcher's catch-up pass at
            # start-up, a re-save, a full reload): nothing to parse, and the models stay the
            # same objects, so nothing downstream sees a change. With 10,000 candidates a
            # parse is ~100 ms and a second copy of every model. Read under other limits,
            # the same bytes can give another answer (a nesting limit raised in app.yml).
            digest = (_digest(raw), limits)
            if self._digests.get(file) == digest:
                return list(self._problems[file])
            result = _parse_raw(file, raw, model, limits)
            self._digests[file] = digest
        else:
            self._digests.pop(file, None)
        assert result is not None
        instance, problems, exists, raw = result
        if instance is not None and not problems:
            self._good[file] = instance
            self._problems[file] = []
            self._unkept.pop(file, None)
            if exists and raw is not None:
                if self.keep_dir is None:
                    self._unkept[file] = raw
                else:
                    self._keep(file, raw)
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
                elif file in self._unkept:
                    self._keep(file, self._unkept.pop(file))
                elif file.exists():
                    try:
                        self._keep(file, read_capped(file, self.limits(file)))
                    except (OSError, LimitExceeded):
                        pass
            return self._snapshot()

    def _keep(self, file: Path, data: bytes) -> None:
        """Keep `data`, the validated content of `file`, as its last good copy. An identical
        copy is left alone (the usual case on a restart): a size check, then one read."""
        if self.keep_dir is None:
            return
        target = self.keep_dir / file.name
        try:
            try:
                if target.stat().st_size == len(data) and target.read_bytes() == data:
                    return
            except FileNotFoundError:
                pass
            write_private(target, data, fsync=False)  # the state dir's modes (private_files.py)
        except OSError:
            pass  # keeping a copy is a convenience; never a reason to fail a load

    def _kept(self, file: Path, model: type[Model]) -> Model | None:
        if self.keep_dir is None:
            return None
        copy = self.keep_dir / file.name
        if not copy.exists():
            return None
        instance, problems, _, _ = _read_and_parse(copy, model, self.limits(file))
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
        with self._lock, gc_paused():  # thousands of models, no cycles: see bulk.py
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

    def last_good(self, path: Path | str) -> Model | None:
        with self._lock:
            file = self._resolve(path)
            return None if file is None else self._good.get(file)
