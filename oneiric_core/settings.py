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
file included, goes to the careful path in `settings_yaml.py`: ruamel.yaml's round-trip
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

`edit_yaml` / `set_selection` (in `settings_yaml.py`) edit a file in place keeping
comments, key order and quoting, validate the result before writing, and replace the
file atomically.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import threading
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, NamedTuple

from . import schema
from .bulk import gc_paused
from .domains import Domain
from .errors import ConfigError
from .input_limits import (
    DEFAULT_LIMITS, DEFAULT_MAX_BYTES, DEFAULT_MAX_DEPTH, MAX_DEPTH_CEILING, InputLimits, LimitExceeded, read_capped,
)
from .private_files import write_private
from .schema import Bounds, Check, Model, Pattern, drop_empty
from .input_limits import depth_beyond

if TYPE_CHECKING:
    from ruamel.yaml.comments import CommentedMap

    from .settings_yaml import _Parsed

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
    "LimitsOptions",
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

# Tags a settings file may carry (explicitly or by implicit resolution). Anything else,
# python/object tags included, is refused before construction.
_ALLOWED_TAGS = frozenset(
    "tag:yaml.org,2002:" + name
    for name in ("null", "bool", "int", "float", "str", "map", "seq", "merge", "timestamp")
)
# Cap on values after alias expansion (guards against "billion laughs" documents). Only
# the careful path sees aliases, so only it counts.
_MAX_VALUES = 200_000


# --------------------------------------------------------------------------- names


def _name_reason(kind: str, value: Any) -> str:
    if kind == "factory":
        return f"factory {value!r} is not of the form package.module:attribute"
    return (
        f"{value!r} is not a valid {kind}: use letters, digits, '_', '.' and '-' "
        "(not starting with '.' or '-')"
    )


KeyName = Annotated[str, Pattern(NAME_PATTERN, "component key")]
ProviderName = Annotated[str, Pattern(NAME_PATTERN, "provider name")]
FactoryRef = Annotated[str, Pattern(FACTORY_PATTERN, "factory")]
PositiveFloat = Annotated[float, Bounds(gt=0)]


# --------------------------------------------------------------------------- models
# Plain dataclasses checked by `schema` (its module docstring says why not pydantic models).


@dataclass
class LifecycleOptions(Model):
    activation_timeout: PositiveFloat = 30.0
    health_timeout: PositiveFloat = 5.0
    cleanup_timeout: PositiveFloat = 10.0


@dataclass
class HealthOptions(Model):
    interval_s: PositiveFloat = 10.0
    history: Annotated[int, Bounds(ge=2)] = 60


@dataclass
class ApprovalsOptions(Model):
    mode: Literal["manual", "auto"] = "manual"
    two_person: bool = False
    expire_after_s: PositiveFloat = 3600.0


@dataclass
class GrantOptions(Model):
    """Who holds one right: OS users and groups (names as `id` prints them)."""

    users: list[Annotated[str, Bounds(min_length=1, max_length=64)]] = field(default_factory=list)
    groups: list[Annotated[str, Bounds(min_length=1, max_length=64)]] = field(default_factory=list)


@dataclass
class AccessOptions(Model):
    """The rights of access.py. A right left unset is held by the owner of the state directory
    and the members of its group (the default: a team that shares a group shares the console);
    the owner holds every right whatever is set, since it owns the store itself. `allowed_signers`
    (a file of `ssh-keygen -Y verify`'s format, relative to the settings directory) lets an
    approval carry an SSH signature whose key's principal becomes the approver; operators on a
    `shared_accounts` account must sign, since their login says nothing about who they are."""

    view: GrantOptions | None = None
    operate: GrantOptions | None = None
    propose: GrantOptions | None = None
    approve: GrantOptions | None = None
    allowed_signers: str | None = None
    shared_accounts: list[str] = field(default_factory=list)


@dataclass
class JournalOptions(Model):
    max_age_days: PositiveFloat = 30.0
    max_rows: Annotated[int, Bounds(ge=100)] = 100_000


@dataclass
class LimitsOptions(Model):
    """Bounds on what a settings file may hold (input_limits.py says why). `settings_max_bytes`
    holds each domain file (app.yml itself is always read with the built-in defaults, since it
    is what sets them); `max_depth` holds the nesting of domain files and remote manifests. A
    remote manifest's size is capped per source (`remote.sources[].max_bytes`)."""

    settings_max_bytes: Annotated[int, Bounds(ge=1024)] = DEFAULT_MAX_BYTES
    max_depth: Annotated[int, Bounds(ge=8, le=MAX_DEPTH_CEILING)] = DEFAULT_MAX_DEPTH

    def input_limits(self) -> InputLimits:
        return InputLimits(self.settings_max_bytes, self.max_depth)


@dataclass
class TelemetryOptions(Model):
    """Where telemetry goes (docs/telemetry.md). The standard OTEL_* environment variables
    win over these (telemetry_config.py): OTEL_SERVICE_NAME over `service_name`,
    OTEL_EXPORTER_OTLP_ENDPOINT over `endpoint`. `upstream_names` also exports each metric
    under the name upstream Oneiric's runbooks and dashboards query."""

    exporter: Literal["none", "console", "otlp"] = "none"
    endpoint: str | None = None
    service_name: str = "oneiric"
    upstream_names: bool = False


# -- remote manifests (ARCHITECTURE §7; the machinery is oneiric_core/remote/) ---------------
_URI_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def _known_scheme(value: str) -> str:
    match = _URI_SCHEME.match(value)
    if match and match[1].lower() not in ("http", "https", "file"):
        raise ValueError(f"unsupported scheme '{match[1]}': use http://, https://, file: or a path")
    return value


def _raw_ed25519(value: str) -> str:
    import base64
    import binascii

    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("public_key is not valid base64") from None
    if len(raw) != 32:
        raise ValueError(f"public_key must be a raw 32-byte ed25519 key in base64, got {len(raw)} bytes")
    return value.strip()


@dataclass
class RemoteSourceOptions(Model):
    """One manifest source: `uri` is http(s)://..., file:PATH, file:///PATH or a plain path
    (relative paths are relative to the settings directory)."""

    name: KeyName
    uri: Annotated[str, Bounds(min_length=1), Check(_known_scheme)]
    interval_s: PositiveFloat = 300.0
    # None: required for http(s) sources, not for files (a file is as trusted as settings/).
    signature_required: bool | None = None
    timeout: PositiveFloat = 10.0
    max_bytes: Annotated[int, Bounds(gt=0)] = 4 * 1024 * 1024
    max_artifact_bytes: Annotated[int, Bounds(gt=0)] = 64 * 1024 * 1024
    # Extra attempts inside one sync, with backoff + jitter.
    retries: Annotated[int, Bounds(ge=0, le=10)] = 2
    backoff_s: PositiveFloat = 0.5

    @property
    def is_http(self) -> bool:
        return self.uri.lower().startswith(("http://", "https://"))

    @property
    def requires_signature(self) -> bool:
        return self.is_http if self.signature_required is None else self.signature_required


@dataclass
class TrustedKey(Model):
    """An ed25519 public key manifests may be signed with (`oneiric manifest keygen` prints one)."""

    id: Annotated[str, Bounds(min_length=1, max_length=200)]
    public_key: Annotated[str, Check(_raw_ed25519)]  # base64 of the raw 32-byte key


@dataclass
class BreakerOptions(Model):
    failures: Annotated[int, Bounds(ge=1)] = 3  # consecutive failed syncs that open the circuit
    reset_s: PositiveFloat = 60.0  # how long it stays open before one trial sync


@dataclass
class RemoteOptions(Model):
    sources: list[RemoteSourceOptions] = field(default_factory=list)
    trusted_keys: list[TrustedKey] = field(default_factory=list)
    threshold: Annotated[int, Bounds(ge=1)] = 1  # distinct trusted keys whose signatures must verify
    breaker: BreakerOptions = field(default_factory=BreakerOptions)

    def _after(self) -> None:
        for what, names in (("source name", [s.name for s in self.sources]),
                            ("trusted key id", [k.id for k in self.trusted_keys])):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"duplicate {what} {', '.join(repr(d) for d in dupes)}")
        needs = [s.name for s in self.sources if s.requires_signature]
        if needs and len(self.trusted_keys) < self.threshold:
            which = f"source {needs[0]!r} requires" if len(needs) == 1 else \
                f"sources {', '.join(repr(n) for n in needs)} require"
            raise ValueError(f"{which} signatures, but threshold {self.threshold} needs at least "
                             f"{self.threshold} trusted key(s) and {len(self.trusted_keys)} are configured")


# -- escalation (runbooks and incidents, ARCHITECTURE §8) -------------------------------------
@dataclass
class ContactOptions(Model):
    """Who to reach for one role: a name, an email and a paging target (all free text)."""

    name: str = ""
    email: str | None = None
    page: str | None = None  # a paging target: a PagerDuty service, a phone rota, ...
    chat: str | None = None
    responsibility: str = ""


@dataclass
class SeverityOptions(Model):
    """One severity level. `response_min` holds the response target (minutes) per runbook that
    states one; where they disagree, `EscalationOptions.response_source` picks the one in force."""

    name: str
    response_min: dict[str, float] = field(default_factory=dict)
    resolve_min: float | None = None
    notify: str = ""
    examples: list[str] = field(default_factory=list)
    escalate_to: list[str] = field(default_factory=list)  # "role" or "30m: role"


def _default_roles() -> dict[str, ContactOptions]:
    return {
        "on_call_engineer": ContactOptions(name="On-call engineer", email="pagerduty@example.com",
                                           page="oneiric-on-call", responsibility="immediate response"),
        "engineering_lead": ContactOptions(name="Engineering lead", email="lead@example.com",
                                           responsibility="escalation, decisions"),
        "product_owner": ContactOptions(name="Product owner", email="product@example.com",
                                        responsibility="communication"),
        "support": ContactOptions(name="Support team", email="support@example.com",
                                  responsibility="customer communication"),
    }


def _default_severities() -> dict[str, SeverityOptions]:
    rows = {  # incident-response runbook vs the runbook index (README): they disagree, both kept
        "P0": ("Critical", 5, 15, 60, "page on-call now", ["on_call_engineer", "30m: engineering_lead"]),
        "P1": ("High", 15, 60, 240, "critical channel + email", ["on_call_engineer", "30m: engineering_lead"]),
        "P2": ("Medium", 60, 240, 480, "warning channel", ["on_call_engineer", "30m: engineering_lead"]),
        "P3": ("Low", 240, 1440, 1440, "info channel", ["on_call_engineer"]),
    }
    return {sev: SeverityOptions(name=name, response_min={"incident-response": ir, "readme": rm}, resolve_min=res,
                                 notify=notify, escalate_to=chain)
            for sev, (name, ir, rm, res, notify, chain) in rows.items()}


@dataclass
class EscalationOptions(Model):
    response_source: str = "incident-response"
    roles: dict[str, ContactOptions] = field(default_factory=_default_roles)
    severities: dict[Literal["P0", "P1", "P2", "P3"], SeverityOptions] = field(default_factory=_default_severities)


def _default_allowlist() -> list[str]:
    return ["oneiric_core.providers."]


@dataclass
class AppSettings(Model):
    state_dir: str | None = None
    stack_order: list[str] = field(default_factory=list)
    factory_allowlist: list[str] = field(default_factory=_default_allowlist)
    read_only: bool = False
    keymap: dict[str, str] = field(default_factory=dict)
    lifecycle: LifecycleOptions = field(default_factory=LifecycleOptions)
    health: HealthOptions = field(default_factory=HealthOptions)
    approvals: ApprovalsOptions = field(default_factory=ApprovalsOptions)
    access: AccessOptions = field(default_factory=AccessOptions)
    journal: JournalOptions = field(default_factory=JournalOptions)
    limits: LimitsOptions = field(default_factory=LimitsOptions)
    telemetry: TelemetryOptions = field(default_factory=TelemetryOptions)
    remote: RemoteOptions = field(default_factory=RemoteOptions)
    escalation: EscalationOptions = field(default_factory=EscalationOptions)


Priority = Annotated[int, Bounds(ge=-1000, le=1000)]


@dataclass
class CandidateSpec(Model):
    """One candidate of a domain file. Empty fields (`settings:` with nothing under it) mean
    defaults as everywhere else, but that rule is applied by `DomainSettings` for the whole
    list in one pass: a hook per candidate cost 30 ms on 10,000 of them."""

    empty_means_default: ClassVar[bool] = False

    key: KeyName
    provider: ProviderName
    factory: FactoryRef
    priority: Priority = 0
    stack_level: Priority = 0
    settings: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class DomainSettings(Model):
    selections: dict[KeyName, ProviderName] = field(default_factory=dict)
    candidates: list[CandidateSpec] = field(default_factory=list)
    # provider_settings[key][provider] is merged over that candidate's own settings.
    provider_settings: dict[KeyName, dict[ProviderName, dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def _before(cls, data: dict[str, Any]) -> dict[str, Any]:
        data = drop_empty(cls, data)
        value = data.get("candidates")
        if not isinstance(value, list):
            return data
        try:  # the usual case, no empty field anywhere, in one C-level scan of every value
            if None not in itertools.chain.from_iterable(map(dict.values, value)):
                return data
        except TypeError:  # an item is not a mapping: validation words that
            pass
        candidates = [
            drop_empty(CandidateSpec, item) if isinstance(item, dict) and None in item.values() else item
            for item in value
        ]
        return {**data, "candidates": candidates}


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


def _model_at(model: Any, loc: tuple[Any, ...]) -> type[Model] | None:
    """The settings model that validates the value at `loc`, if there is one."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, Model):
            hints = typing.get_type_hints(current, include_extras=True)
            if not isinstance(part, str) or part not in hints:
                return None
            current = hints[part]
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
    if isinstance(current, type) and issubclass(current, Model):
        return current
    return None


def _describe_error(model: type[Model], error: dict[str, Any]) -> str:
    """One pydantic error (from `schema.validate(model, ...)`) as a sentence."""
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    where = _format_loc(loc)
    if kind == "extra_forbidden" and loc:
        name = loc[-1]
        parent = _format_loc(loc[:-1])
        reason = f"unknown setting '{name}'" + (f" under {parent}" if parent else "")
        owner = _model_at(model, loc[:-1])
        if owner is not None:
            import difflib

            known = schema.field_names(owner)
            close = difflib.get_close_matches(str(name), known, n=1)
            if close:
                reason += f" (did you mean '{close[0]}'?)"
            else:
                reason += f" (known settings: {', '.join(known)})"
        return reason
    if kind == "missing" and loc:
        parent = _format_loc(loc[:-1])
        return (f"{parent}: " if parent else "") + f"missing required setting '{loc[-1]}'"
    if kind == schema.PATTERN_ERROR:
        msg = _name_reason(error.get("ctx", {}).get("kind", "name"), error.get("input"))
    else:
        msg = str(error.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if loc and loc[-1] == "[key]":
        msg = f"invalid key: {msg}"
    return f"{where}: {msg}" if where else msg


def _sorted(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


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
    except Exception:
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
    run = "[ ?-]{%d}" % width
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
    from .settings_yaml import parse_careful

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
    """The careful path's parse (syntax, tags, nesting, duplicate keys, top-level shape): see settings_yaml."""
    from .settings_yaml import _parse_yaml as parse

    return parse(file, text, limits)


def _validate(
    file: Path, data: CommentedMap | None, model: type[Model], **options: Any
) -> tuple[Model | None, list[ConfigProblem]]:
    """The careful path's validation of parsed data, problems located by line: see settings_yaml."""
    from .settings_yaml import _validate as validate

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
        return None, _Read(None, [ConfigProblem(file, None, None, f"cannot read the file: {err.strerror or err}")], True)


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
    return result if raw is None else _parse_raw(file, raw, model, limits)


def limits_for(file: Path, app: AppSettings | None) -> InputLimits:
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


# --------------------------------------------------------------------------- editing


def edit_yaml(path: Path, mutate: Callable[[CommentedMap], None]) -> None:
    """Edit a settings file in place, keeping comments, key order and quoting.

    Refuses (ConfigError naming file:line:column) when the file does not parse now, and
    refuses when the result would not validate against the file's model; in both cases
    the file is left untouched. A missing file is created. The write is atomic and keeps
    the file's mode. (The ruamel round-trip machinery lives in settings_yaml.)
    """
    from .settings_yaml import edit_yaml as edit

    edit(path, mutate)


def set_selection(settings_dir: Path, domain: Domain | str, key: str, provider: str | None) -> Path:
    """Select `provider` for `key` in the domain's settings file (None removes the selection).

    Comments, key order and quoting are kept; the file is created if absent. Returns its path.
    """
    from .settings_yaml import set_selection as select

    return select(settings_dir, domain, key, provider)
