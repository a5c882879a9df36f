"""Upstream Oneiric's settings: found where an operator brings them, and translated.

Upstream reads one layered document (`settings/oneiric.yaml` or `.yml`, then
`settings/local.yaml`, deep-merged; `ONEIRIC_CONFIG` names one more file, applied last) with
every domain's `selections` and `provider_settings` beside `lifecycle`, `remote` and more. This
engine reads app.yml and one file per domain instead, so an upstream file in a settings
directory would be ignored without a word, and its selection would not apply. Two things here:

* `notices(settings_dir)`: one sentence for each upstream file or variable in sight
  (`oneiric config validate`, `oneiric status` and the console say them), so nothing is
  called valid that is not read.
* `translate(document)`: the same settings in this engine's files, with every field that has
  no equivalent named and why (`oneiric config import` writes and reports it). Upstream's
  `ONEIRIC_STACK_ORDER` ranks *packages* (a bare name gets 10 x its position, later higher;
  `name:N` explicit); ours lifts *sources*, earlier first. It is translated by its meaning: a
  candidate whose factory lives in a listed package gets that priority as its `stack_level`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .domains import Domain

UPSTREAM_FILES = ("oneiric.yaml", "oneiric.yml", "local.yaml")
CONFIG_ENV = "ONEIRIC_CONFIG"
STACK_ORDER_ENV = "ONEIRIC_STACK_ORDER"
TRUSTED_KEYS_ENV = "ONEIRIC_TRUSTED_PUBLIC_KEYS"
SOURCE_NAME = "upstream"  # the remote source an upstream `remote.manifest_url` becomes
# Our stack order's tokens name sources: these, `remote:NAME`, or a pattern of them.
_SOURCE_WORDS = ("builtin", "settings", "remote")

# Upstream sections with no equivalent here, and why (the import report says it).
NO_EQUIVALENT = {
    "app": "the service's name and environment: set OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES for telemetry",
    "secrets": "no secrets provider here: a provider reads its own secrets from its settings or environment",
    "logging": "`oneiric run` writes JSON lines to stdout for journald; ONEIRIC_LOG_LEVEL sets providers' logging",
    "plugins": "candidates are named in the domain files (factory: module:function), not loaded from entry points",
    "profile": "no profiles: the watcher, remote sync and supervision are set one by one (app.yml, the unit)",
    "runtime_paths": "every state file lives in the state directory (--state-dir, app.yml state_dir)",
    "runtime_supervisor":
        "systemd supervises the host (deploy/systemd/oneiric.service; the service-supervisor runbook)",
    "cache_dir": "the state directory holds the cache (--state-dir, app.yml state_dir)",
    "config_dir": "--settings names the settings directory",
}
_LIFECYCLE = ("activation_timeout", "health_timeout", "cleanup_timeout")
_LIFECYCLE_NONE = {"hook_timeout": "no lifecycle hooks here", "shield_tasks": "swaps are always shielded from "
                   "cancellation here"}


IMPORT_MARK = "# Imported from upstream Oneiric settings ("  # the first line `oneiric config import` writes


def notices(settings_dir: Path, environ: Mapping[str, str] | None = None) -> list[str]:
    """A sentence for each upstream settings file in `settings_dir` that has not been imported
    since it last changed, for ONEIRIC_CONFIG, and for an ONEIRIC_STACK_ORDER in upstream's
    form; none when there is nothing of upstream's left unread."""
    env = os.environ if environ is None else environ
    found = []
    for name in UPSTREAM_FILES:
        path = settings_dir / name
        if path.is_file() and not _imported(path, settings_dir / "app.yml"):
            found.append(f"{path} is an upstream Oneiric settings file, which this engine does not read (it reads "
                         f"app.yml and one file per domain): 'oneiric config import' writes its equivalent")
    named = env.get(CONFIG_ENV, "").strip()
    if named:
        found.append(f"{CONFIG_ENV}={named} names an upstream Oneiric settings file, which this engine does not read "
                     f"(it reads --settings DIR): 'oneiric config import --from {named}' writes its equivalent")
    order = env.get(STACK_ORDER_ENV, "").strip()
    foreign = [t for t in _tokens(order) if not _names_a_source(t[0])]
    if foreign:
        names = ", ".join(name for name, _ in foreign)
        found.append(f"{STACK_ORDER_ENV}={order} names {names}, which no source here is called: upstream Oneiric's "
                     "form ranks packages (later higher); here it lifts sources (builtin, settings, remote:NAME), "
                     "earlier first, so those entries do nothing; 'oneiric config import' translates it")
    return found


def _imported(upstream: Path, app_yml: Path) -> bool:
    """Whether app.yml was written by `oneiric config import` from `upstream`, after its last
    change (an edit since then is not read, and is said again)."""
    try:
        first = app_yml.open(encoding="utf-8").readline()
        return (first.startswith(IMPORT_MARK) and upstream.name in first
                and app_yml.stat().st_mtime >= upstream.stat().st_mtime)
    except (OSError, UnicodeDecodeError):
        return False


def _tokens(order: str) -> list[tuple[str, str]]:
    out = []
    for part in (p.strip() for p in order.split(",")):
        if part:
            name, sep, value = part.rpartition(":")
            out.append((name, value) if sep and value.strip().lstrip("-").isdigit() else (part, ""))
    return out


def _names_a_source(name: str) -> bool:
    head = name.split(":", 1)[0]
    return head in _SOURCE_WORDS or any(ch in name for ch in "*?[")


def package_priorities(order: str) -> dict[str, int]:
    """Upstream's ONEIRIC_STACK_ORDER as package -> priority: `name:N` as given, a bare name
    10 x its position counting from 1 (so later entries rank higher)."""
    out: dict[str, int] = {}
    for position, (name, value) in enumerate(_tokens(order), start=1):
        out[name] = int(value) if value else 10 * position
    return out


def read_document(source: Path) -> tuple[dict[str, Any], list[Path]]:
    """The upstream document at `source`: one file, or a directory's oneiric.yaml (or .yml)
    with its local.yaml merged over it, as upstream layers them. Raises ConfigError for a file
    that is not YAML or JSON or not a mapping; the paths read come back with it."""
    from .errors import ConfigError

    files = [source] if source.is_file() else \
        [p for p in (source / "oneiric.yaml", source / "oneiric.yml", source / "local.yaml") if p.is_file()]
    if source.is_dir() and (source / "oneiric.yaml").is_file() and (source / "oneiric.yml").is_file():
        files.remove(source / "oneiric.yml")  # upstream reads the first of the two
    if not files:
        raise ConfigError(f"No upstream Oneiric settings at {source}: expected a file, or a directory with "
                          "oneiric.yaml, oneiric.yml or local.yaml.")
    merged: dict[str, Any] = {}
    for path in files:
        merged = _deep_merge(merged, _load(path))
    return merged, files


def _load(path: Path) -> dict[str, Any]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from .errors import ConfigError

    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))  # JSON is YAML too
    except (OSError, UnicodeDecodeError, YAMLError) as exc:
        problem = getattr(exc, "problem", None) or getattr(exc, "strerror", None) or type(exc).__name__
        raise ConfigError(f"Cannot read the upstream settings file {path}: {problem}.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"The upstream settings file {path} holds a {type(data).__name__}, "
                          "not a mapping of sections.")
    return data


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Upstream's layering: mappings merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _deep_merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) \
            else value
    return out


@dataclass
class Translation:
    """An upstream document as this engine's files: app.yml's data, each domain file's, and
    what had no equivalent (dotted path -> why), with notes on what was changed in meaning."""

    app: dict[str, Any] = field(default_factory=dict)
    domains: dict[Domain, dict[str, Any]] = field(default_factory=dict)
    unmapped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    stack_levels: dict[str, int] = field(default_factory=dict)  # package -> stack_level

    def to_dict(self) -> dict[str, Any]:
        return {"app": self.app, "domains": {d.value: v for d, v in self.domains.items()},
                "unmapped": self.unmapped, "notes": self.notes, "stack_levels": self.stack_levels}


def translate(document: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Translation:
    """`document` (read_document's) in this engine's terms."""
    env = os.environ if environ is None else environ
    out = Translation()
    for section, value in document.items():
        domain = _domain_section(section)
        if domain is not None:
            _domain(out, domain, section, value)
        elif section == "lifecycle":
            _lifecycle(out, value)
        elif section == "remote":
            _remote(out, value, env)
        elif section in NO_EQUIVALENT:
            out.unmapped[section] = NO_EQUIVALENT[section]
        else:
            out.unmapped[str(section)] = "not an upstream Oneiric section this import knows"
    order = env.get(STACK_ORDER_ENV, "").strip()
    if order and any(not _names_a_source(name) for name, _ in _tokens(order)):
        out.stack_levels = package_priorities(order)
        out.notes.append(f"{STACK_ORDER_ENV}={order} ranks packages, later higher. Its meaning here: give each "
                         "candidate whose factory is in one of these packages that stack_level in its domain file ("
                         + ", ".join(f"{p} {n}" for p, n in out.stack_levels.items()) + "), and unset the "
                         "variable: here it lifts sources (builtin, settings, remote:NAME), not packages.")
    return out


def _domain_section(section: Any) -> Domain | None:
    for domain in Domain:
        if section == domain.settings_file.removesuffix(".yml"):
            return domain
    return None


def _domain(out: Translation, domain: Domain, section: str, value: Any) -> None:
    if not isinstance(value, dict):
        out.unmapped[section] = f"a {type(value).__name__}, not a mapping"
        return
    selections = {str(k): str(v) for k, v in (value.get("selections") or {}).items() if v is not None}
    target: dict[str, Any] = {}
    if selections:
        target["selections"] = selections
    for provider, settings in (value.get("provider_settings") or {}).items():
        keys = [k for k, p in selections.items() if p == provider]
        if not keys:
            out.unmapped[f"{section}.provider_settings.{provider}"] = \
                f"no key selects {provider}, so there is no key to give these settings to"
            continue
        for key in keys:
            target.setdefault("provider_settings", {}).setdefault(key, {})[str(provider)] = settings
    for name in value:
        if name not in ("selections", "provider_settings"):
            out.unmapped[f"{section}.{name}"] = "no equivalent in a domain file"
    if target:
        out.domains[domain] = target


def _lifecycle(out: Translation, value: Any) -> None:
    if not isinstance(value, dict):
        out.unmapped["lifecycle"] = f"a {type(value).__name__}, not a mapping"
        return
    kept = {k: value[k] for k in _LIFECYCLE if value.get(k) is not None}
    if kept:
        out.app["lifecycle"] = kept
    for name in value:
        if name not in _LIFECYCLE:
            out.unmapped[f"lifecycle.{name}"] = _LIFECYCLE_NONE.get(name, "no equivalent in app.yml lifecycle")


def _remote(out: Translation, value: Any, env: Mapping[str, str]) -> None:
    if not isinstance(value, dict):
        out.unmapped["remote"] = f"a {type(value).__name__}, not a mapping"
        return
    url = value.get("manifest_url")
    if not value.get("enabled") or not url:
        if url:
            out.notes.append("remote.enabled is false upstream: the manifest source is not written (add it to "
                             "app.yml remote.sources to sync it)")
        for name in value:
            if name not in ("enabled", "manifest_url"):
                out.unmapped[f"remote.{name}"] = "remote sync is off upstream"
        return
    source: dict[str, Any] = {"name": SOURCE_NAME, "uri": str(url)}
    if value.get("refresh_interval") is not None:
        source["interval_s"] = float(value["refresh_interval"])
    else:
        out.unmapped["remote.refresh_interval"] = "refresh off: here a source always refreshes (interval_s, 300 s)"
    if value.get("signature_required") is not None:
        source["signature_required"] = bool(value["signature_required"])
    if value.get("max_retries") is not None:  # upstream counts every attempt, ours the extra ones
        source["retries"] = max(0, min(10, int(value["max_retries"]) - 1))
    if value.get("retry_base_delay") is not None:
        source["backoff_s"] = float(value["retry_base_delay"])
    remote: dict[str, Any] = {"sources": [source]}
    breaker = {k2: value[k1] for k1, k2 in (("circuit_breaker_threshold", "failures"),
                                            ("circuit_breaker_reset", "reset_s")) if value.get(k1) is not None}
    if breaker:
        remote["breaker"] = breaker
    if value.get("signature_threshold") is not None:
        remote["threshold"] = int(value["signature_threshold"])
        out.notes.append("signature_threshold counts distinct trusted keys here, not signatures (one key's "
                         "signature listed twice counts once)")
    keys = [k.strip() for k in env.get(TRUSTED_KEYS_ENV, "").split(",") if k.strip()]
    if keys:
        remote["trusted_keys"] = [{"id": _key_id(k), "public_key": k} for k in keys]
        out.notes.append(f"{TRUSTED_KEYS_ENV}: {len(keys)} key(s) written as remote.trusted_keys with ids derived from "
                         "each key (upstream keys have none)")
    handled = {"enabled", "manifest_url", "refresh_interval", "signature_required", "max_retries", "retry_base_delay",
               "circuit_breaker_threshold", "circuit_breaker_reset", "signature_threshold"}
    why = {"verify_tls": "TLS is always verified here", "cache_dir": NO_EQUIVALENT["cache_dir"],
           "auth": "no request headers for a source here: serve the manifest where the host can read it",
           "retry_max_delay": "backoff grows from backoff_s with jitter, without a ceiling setting",
           "retry_jitter": "jitter is built in", "latency_budget_ms": "the source's timeout bounds it (timeout)",
           "allow_file_uris": "file sources are always allowed here: a file is as trusted as the settings",
           "allowed_file_uri_roots": "file sources are always allowed here",
           "signature_max_age_seconds": "freshness is the manifest's own expires_at and version here",
           "signature_require_expiry": "every signed manifest must carry expires_at here"}
    for name in value:
        if name not in handled:
            out.unmapped[f"remote.{name}"] = why.get(name, "no equivalent in app.yml remote")
    out.app["remote"] = remote


def _key_id(public_key: str) -> str:
    import base64
    import binascii

    from .remote.signing import key_id_for

    try:
        return key_id_for(base64.b64decode(public_key, validate=True))
    except (binascii.Error, ValueError):
        return "upstream-key"
