"""The settings models and the words for their problems.

What each settings file may hold (`AppSettings` for app.yml, `DomainSettings` for each domain
file), checked by `schema` (plain dataclasses validated in Python); and `ConfigProblem`, one
problem at a file:line:column, worded the same whichever path found it. Both readers use
these: the fast path (settings.py) and the careful path (settings_careful.py); neither imports
the other's module for them.
"""

from __future__ import annotations

import itertools
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from . import schema
from .domains import Domain
from .errors import ConfigError
from .input_limits import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DEPTH,
    MAX_DEPTH_CEILING,
    InputLimits,
)
from .schema import Bounds, Check, Model, Pattern, drop_empty

APP_FILE = "app.yml"
STATE_DIR_ENV = "ONEIRIC_STATE_DIR"
STORE_URL_ENV = "ONEIRIC_STORE_URL"
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


# -- remote manifests (docs/architecture.md §7; the machinery is oneiric_core/remote/) ---------------
_URI_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def _known_scheme(value: str) -> str:
    match = _URI_SCHEME.match(value)
    if match and match[1].lower() not in ("http", "https", "file"):
        raise ValueError(f"unsupported scheme '{match[1]}': use http://, https://, file: or a path")
    return value


def _http_url(value: str) -> str:
    match = _URI_SCHEME.match(value)
    if not match or match[1].lower() not in ("http", "https"):
        raise ValueError(f"'{value}' is not an http:// or https:// URL")
    return value


def _store_url(value: str) -> str:
    match = _URI_SCHEME.match(value)
    if not match or match[1].lower() not in ("postgresql", "postgres"):
        raise ValueError(f"'{_redact(value)}' is not a postgresql:// URL (leave store.url out to keep the "
                         "SQLite file in the state directory)")
    return value


def _redact(url: str) -> str:
    """A URL as an error may show it: a password in it is replaced."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


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


# -- escalation (runbooks and incidents, docs/architecture.md §8) -------------------------------------
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
    # How often the commander sends a status update (minutes); None: the default for the level
    # (runbooks/messages.py UPDATE_EVERY_MIN: P0 15, P1 30, P2 60, P3 240).
    update_min: PositiveFloat | None = None


@dataclass
class WebhookOptions(Model):
    """Where an incident's messages of one severity are posted (`oneiric incident message
    --send`): a plain JSON POST, or a Slack- or Teams-compatible incoming-webhook body."""

    url: Annotated[str, Bounds(min_length=1, max_length=2048), Check(_http_url)]
    format: Literal["json", "slack", "teams"] = "json"
    timeout_s: PositiveFloat = 5.0
    retries: Annotated[int, Bounds(ge=0, le=10)] = 2


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


IncidentSeverity = Literal["P0", "P1", "P2", "P3"]


def _default_severities() -> dict[IncidentSeverity, SeverityOptions]:
    # incident-response runbook vs the runbook index (README): they disagree, both kept
    rows: dict[IncidentSeverity, tuple[str, int, int, int, str, list[str]]] = {
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
    """Severities, contacts and webhooks of incidents (runbooks/escalation.py, messages.py).

    `lookback_min`: how far before an incident was opened its timeline, post-mortem and
    hand-off reach back for the journal events of the components involved (minutes). An
    incident is opened on purpose, often some time after what started it (the rollback, the
    failed sync): those events belong to its story. 30 by default; 0 shows only what happened
    once the incident was open."""

    response_source: str = "incident-response"
    lookback_min: Annotated[float, Bounds(ge=0, le=7 * 24 * 60)] = 30.0
    roles: dict[str, ContactOptions] = field(default_factory=_default_roles)
    severities: dict[IncidentSeverity, SeverityOptions] = field(default_factory=_default_severities)
    webhooks: dict[IncidentSeverity, WebhookOptions] = field(default_factory=dict)  # off by default


def _default_allowlist() -> list[str]:
    return ["oneiric_core.providers."]


@dataclass
class StoreOptions(Model):
    """Where the state store is: without a URL, `state.sqlite` in the state directory (one
    host); `postgresql://...`, a database that many hosts and consoles share (docs/fleet.md).
    $ONEIRIC_STORE_URL, when set, takes precedence."""

    url: Annotated[str, Bounds(min_length=1, max_length=2048), Check(_store_url)] | None = None


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
    store: StoreOptions = field(default_factory=StoreOptions)


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
    err.problems = list(problems)
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
