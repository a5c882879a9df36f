"""The manifest: its model, how its bytes are parsed, what is signed, and which entries may register.

A manifest is JSON or YAML:

    version: 3                       # an integer >= 1, raised with every change (freshness.py)
    name: acme-components
    generated_at: "2025-01-31T12:00:00Z"
    expires_at: "2025-03-01T12:00:00Z"  # RFC 3339 UTC; required where signatures are
    entries:
      - {domain: adapter, key: cache, provider: acme-redis,
         factory: oneiric_core.providers.cache_redis:create, priority: 0, stack_level: 0,
         settings: {...}, metadata: {...}, artifact: {uri: blobs/x.bin, sha256: <64 hex>}}
    signatures:
      - {key_id: acme-2025, algorithm: ed25519, signature: <base64>}

What is signed (`ParsedManifest.signed_bytes`) is the parsed manifest without `signatures`,
canonicalised by RFC 8785 (canonical.py): every other field, unknown ones included, is
covered, and the bytes do not depend on how the file was formatted (JSON or YAML, spacing,
key order, comments, `1.0` or `1`), so a publisher in any language with a JCS library signs
the same bytes we verify.

YAML is read by yaml-rs when it is installed (the `fast` extra), else by ruamel's safe loader
with timestamps kept as text: either way YAML 1.2, plain data only (no tags construct objects,
timestamps stay strings), so a manifest verifies the same with or without yaml-rs
(tests/test_settings_fastpath.py checks it with yaml-rs blocked). A value JSON cannot carry (a
non-string key, NaN) makes the manifest invalid, since it could not be signed unambiguously.

The top level is checked as a whole (a malformed manifest changes nothing); entries one by one:
a bad entry is rejected with a reason and the good ones still register.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal

from ..domains import Domain
from ..errors import NotFound, RemoteSyncFailed
from ..factories import module_allowed
from ..input_limits import DEFAULT_MAX_DEPTH, DEPTH_KEY, LimitExceeded, depth_beyond
from ..schema import Bounds, Check, Model, Pattern, check
from ..settings import CandidateSpec
from .canonical import CanonicalError, canonical_json
from .freshness import MAX_VERSION, Freshness, checked_utc

SHA256_PATTERN = r"^[0-9a-f]{64}$"
MAX_DEPTH = DEFAULT_MAX_DEPTH  # nesting deeper than this is refused (app.yml limits.max_depth changes it)
MAX_VALUES = 500_000  # values in a YAML document after alias expansion (a YAML bomb cannot hide in breadth)


class ManifestError(RemoteSyncFailed):
    """The manifest as a whole cannot be used (not UTF-8, not JSON/YAML, wrong shape)."""

    def __init__(self, message: str, kind: str = "parse") -> None:
        super().__init__(message, kind)


@dataclass
class Artifact(Model):
    uri: Annotated[str, Bounds(min_length=1, max_length=2048)]
    sha256: Annotated[str, Pattern(SHA256_PATTERN, "sha256 (64 lower-case hex digits)")]


@dataclass
class Signature(Model):
    key_id: Annotated[str, Bounds(min_length=1, max_length=200)]
    signature: Annotated[str, Bounds(min_length=1, max_length=200)]
    algorithm: Literal["ed25519"] = "ed25519"


@dataclass
class Entry(CandidateSpec):
    """A candidate as a settings domain file declares one, plus its domain and an optional
    artifact. Unlike a domain file's candidates, each entry is checked on its own, so the
    "empty means the default" rule is applied per entry."""

    empty_means_default: ClassVar[bool] = True

    domain: str = field(kw_only=True)
    artifact: Artifact | None = None


@dataclass
class Manifest(Model):
    version: Annotated[int, Bounds(ge=1, le=MAX_VERSION)]
    name: Annotated[str, Bounds(min_length=1, max_length=200)]
    generated_at: Annotated[str, Bounds(min_length=1, max_length=64)]
    entries: list[Any]  # checked one by one (`check_entries`): one bad entry rejects only itself
    signatures: list[Signature] = field(default_factory=list)
    expires_at: Annotated[str, Check(checked_utc)] | None = None


@dataclass(frozen=True)
class ParsedManifest:
    raw: bytes
    data: dict[str, Any]  # exactly what was parsed: what the signature covers
    model: Manifest
    digest: str  # sha256 of `raw`

    @cached_property
    def signed_bytes(self) -> bytes:
        """What the signatures cover (RFC 8785); computed once, for verifying and for the ledger."""
        return canonical_bytes(self.data)

    @cached_property
    def signed_digest(self) -> str:
        return hashlib.sha256(self.signed_bytes).hexdigest()

    @property
    def freshness(self) -> Freshness:
        return Freshness(self.model.version, self.signed_digest, self.model.expires_at)

    def summary(self) -> dict[str, Any]:
        return {"name": self.model.name, "version": self.model.version,
                "generated_at": self.model.generated_at, "expires_at": self.model.expires_at,
                "digest": self.digest, "signed_digest": self.signed_digest,
                "entries": len(self.model.entries), "size": len(self.raw)}


@dataclass(frozen=True)
class Rejection:
    index: int
    domain: str | None
    key: str | None
    provider: str | None
    reason: str

    def label(self) -> str:
        what = "/".join(p for p in (self.domain, self.key) if p) or "?"
        return f"entry #{self.index} ({what}{' ' + self.provider if self.provider else ''})"

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "domain": self.domain, "key": self.key, "provider": self.provider,
                "reason": self.reason}


@dataclass(frozen=True)
class Accepted:
    index: int
    domain: Domain
    entry: Entry


# -- parsing ---------------------------------------------------------------------------------------

def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def load_document(raw: bytes, what: str = "the manifest", *, max_depth: int = MAX_DEPTH) -> Any:
    """JSON (when it starts with `{` or `[`) or YAML bytes -> plain data (str keys; str, int,
    float, bool, None, lists, mappings), nesting at most `max_depth` levels (the top level is
    level 1). ManifestError names what is wrong."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{what} is not UTF-8 text (byte {exc.start})") from None
    stripped = text.lstrip()
    if not stripped:
        raise ManifestError(f"{what} is empty")
    if stripped[0] in "{[":
        try:
            data = json.loads(stripped, parse_constant=_refuse_constant)
        except RecursionError:  # json's C decoder is recursive: hundreds of levels
            raise _too_deep(what, None, max_depth=max_depth) from None
        except ValueError as exc:
            raise ManifestError(f"{what} is not valid JSON: {exc}") from None
        # Depth is bounded by the number of brackets: a small manifest is never walked.
        if stripped.count("[") + stripped.count("{") > max_depth:
            beyond = depth_beyond(data, max_depth)
            if beyond is not None:
                raise _too_deep(what, *beyond, max_depth=max_depth)
        return data
    data = _load_yaml(text, what, max_depth)
    _check_plain(data, 0, [0], max_depth, what)
    return data


def _too_deep(what: str, depth: int | None, at: str = "", *, max_depth: int = MAX_DEPTH) -> ManifestError:
    exc = LimitExceeded("depth", what, depth, max_depth, DEPTH_KEY, f" (at {at})" if at else "")
    return ManifestError(f"{what}: {exc.reason()}", "too-deep")


def parse_manifest(raw: bytes, *, max_depth: int = MAX_DEPTH, source: str | None = None) -> ParsedManifest:
    """Bytes -> a manifest checked as a whole; ManifestError names what is wrong. `source`
    (its URI) is named by the refusals of a limit, which say where the input came from."""
    data = load_document(raw, f"the manifest from {source}" if source else "the manifest", max_depth=max_depth)
    if not isinstance(data, dict):
        raise ManifestError(f"the manifest must be a mapping at the top level, not {_kind(data)}", "schema")
    version = data.get("version")
    if isinstance(version, str):
        raise ManifestError(f"the manifest's version is the string {version!r}, but it must be an integer of at "
                            "least 1 (versions are compared to refuse rollbacks): pack it again with --version N "
                            "and sign it", "schema")
    model, errors = check(Manifest, data)
    if model is None:
        raise ManifestError(f"the manifest is invalid: {describe_errors(errors)}", "schema")
    parsed = ParsedManifest(raw, data, model, digest(raw))
    parsed.signed_bytes  # noqa: B018 - a value RFC 8785 refuses (a huge integer) is refused here, in one sentence
    return parsed


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed (it cannot be signed unambiguously)")


def _load_yaml(text: str, what: str, max_depth: int = MAX_DEPTH) -> Any:
    try:
        import yaml_rs
    except ImportError:  # without the `fast` extra
        try:
            return _ruamel_plain().load(text)
        except RecursionError:
            raise _too_deep(what, None, max_depth=max_depth) from None
        except Exception as exc:  # noqa: BLE001 - outside text: ruamel raises TypeError, IndexError, AttributeError too on malformed text
            raise ManifestError(f"{what} is neither JSON nor valid YAML: {exc}") from None
    try:
        return yaml_rs.loads(text, parse_datetime=False,
                             duplicate_key_policy=yaml_rs.DuplicateKeyPolicy.Error)
    except Exception as exc:  # noqa: BLE001 - outside text: yaml-rs raises TypeError too (an unhashable key)
        lines = str(exc).strip().splitlines()
        if lines and lines[-1].strip() == "recursion limit exceeded":  # yaml-rs stops at 256 flow levels
            raise _too_deep(what, None, max_depth=max_depth) from None
        reason = lines[0] if lines else type(exc).__name__
        raise ManifestError(f"{what} is neither JSON nor valid YAML: {reason}") from None


def _ruamel_plain() -> Any:
    """ruamel's safe loader reading timestamps as the text they are, as yaml-rs does with
    `parse_datetime=False` (a datetime is no JSON value: `expires_at: 2099-01-01T00:00:00Z`
    would make the manifest invalid). Duplicate keys are an error in both."""
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import SafeConstructor

    class PlainConstructor(SafeConstructor):
        pass

    # add_constructor copies the table onto the subclass: SafeConstructor itself is unchanged.
    PlainConstructor.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)
    yaml = YAML(typ="safe", pure=True)
    yaml.Constructor = PlainConstructor
    return yaml


def _check_plain(value: Any, depth: int, count: list[int], max_depth: int = MAX_DEPTH,
                 what: str = "the manifest", path: tuple[Any, ...] = ()) -> None:
    """Only what JSON can carry (str keys; str, int, float, bool, None, lists, mappings), at
    most `max_depth` levels deep. Recursive, but never deeper than `max_depth`."""
    if depth >= max_depth and isinstance(value, (dict, list)):  # the top level is level 1
        at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[:4]).lstrip(".")
        raise _too_deep(what, depth + 1, at + ("..." if len(path) > 4 else ""), max_depth=max_depth)
    count[0] += 1
    if count[0] > MAX_VALUES:
        raise ManifestError(f"{what} holds more than {MAX_VALUES:,} values once its YAML aliases are expanded")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ManifestError(f"the manifest has a non-string key {key!r}; keys must be strings")
            _check_plain(item, depth + 1, count, max_depth, what, path + (key,) if len(path) < 5 else path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_plain(item, depth + 1, count, max_depth, what, path + (index,) if len(path) < 5 else path)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ManifestError(f"the manifest holds {value!r}, which JSON cannot carry")
    elif value is not None and not isinstance(value, (str, int, bool)):
        raise ManifestError(f"the manifest holds a {type(value).__name__} value, which JSON cannot carry")


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean",
            type(None): "empty"}.get(type(value), type(value).__name__)


def describe_errors(errors: list[dict[str, Any]], limit: int = 3) -> str:
    """pydantic's errors (`schema.check`) in one line."""
    parts = []
    for error in errors[:limit]:
        loc = ".".join(str(p) for p in error.get("loc", ()))
        msg = str(error.get("msg", "invalid"))
        if error.get("type") == "extra_forbidden":
            msg = "unknown field"
        elif error.get("type") == "missing":
            msg = "missing"
        elif error.get("type") == "value_error":  # a Check's own sentence
            msg = msg.removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    more = len(errors) - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def canonical_bytes(data: dict[str, Any]) -> bytes:
    """What is signed: the manifest without `signatures`, canonicalised by RFC 8785 (UTF-8)."""
    body = {k: v for k, v in data.items() if k != "signatures"}
    try:
        return canonical_json(body)
    except CanonicalError as exc:
        raise ManifestError(f"the manifest cannot be canonicalised for signing (RFC 8785): {exc}") from None


# -- entries -----------------------------------------------------------------------------------------

ArtifactCheck = Callable[[str], "str | None"]  # artifact uri -> reason it is refused, or None


def check_entries(model: Manifest, allowlist: Sequence[str], *,
                  artifact_check: ArtifactCheck | None = None) -> tuple[list[Accepted], list[Rejection]]:
    """Each entry on its own: a known domain, a valid shape, a factory inside the allow-list,
    a safe artifact URI, not a duplicate of an earlier entry. Returns (accepted, rejected)."""
    accepted: list[Accepted] = []
    rejected: list[Rejection] = []
    seen: dict[tuple[Domain, str, str], int] = {}
    allow = tuple(allowlist)
    modules_ok: dict[str, bool] = {}
    domains: dict[str, Domain | str] = {}  # what each domain text parses to (or why it does not)
    for index, raw in enumerate(model.entries):
        if not isinstance(raw, dict):
            rejected.append(Rejection(index, None, None, None, f"an entry must be a mapping, not {_kind(raw)}"))
            continue
        domain_text, key_text, provider_text = raw.get("domain"), raw.get("key"), raw.get("provider")
        names = (domain_text if isinstance(domain_text, str) else None, key_text if isinstance(key_text, str) else None,
                 provider_text if isinstance(provider_text, str) else None)
        entry, errors = check(Entry, raw)
        if entry is None:
            rejected.append(Rejection(index, *names, describe_errors(errors)))
            continue
        domain = domains.get(entry.domain)
        if domain is None:
            try:
                domain = domains[entry.domain] = Domain.parse(entry.domain)
            except NotFound as exc:
                domain = domains[entry.domain] = str(exc).rstrip(".")
        if not isinstance(domain, Domain):
            rejected.append(Rejection(index, *names, domain))
            continue
        module = entry.factory.partition(":")[0]
        allowed = modules_ok.get(module)
        if allowed is None:
            allowed = modules_ok[module] = module_allowed(module, allow)
        if not allowed:
            listed = ", ".join(allow) if allow else "nothing (the allow-list is empty)"
            rejected.append(Rejection(index, *names, f"factory module '{module}' is not in app.yml "
                                      f"factory_allowlist (allowed: {listed})"))
            continue
        if entry.artifact is not None and artifact_check is not None:
            refused = artifact_check(entry.artifact.uri)
            if refused:
                rejected.append(Rejection(index, *names, f"artifact refused: {refused}"))
                continue
        ident = (domain, entry.key, entry.provider)
        if ident in seen:
            rejected.append(Rejection(index, *names, f"duplicate of entry #{seen[ident]} "
                                      f"({domain.value}/{entry.key} {entry.provider})"))
            continue
        seen[ident] = index
        accepted.append(Accepted(index, domain, entry))
    return accepted, rejected


def per_domain(accepted: Sequence[Accepted]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in accepted:
        out[item.domain.value] = out.get(item.domain.value, 0) + 1
    return out


__all__ = [
    "Accepted", "Artifact", "Entry", "Manifest", "ManifestError", "ParsedManifest", "Rejection", "Signature",
    "canonical_bytes", "check_entries", "describe_errors", "digest", "load_document", "parse_manifest",
    "per_domain",
]
