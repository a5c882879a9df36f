"""How values go into the store's columns and come back out, the same for every backend:
domains as their singular value, JSON text, events and the chain's links."""

from __future__ import annotations

import json
from typing import Any

from ..domains import Domain
from ..errors import OneiricError
from ..events import Event, Severity
from .backend import Row
from .records import ChainLink


def _dom(value: Domain | str | None) -> str | None:
    """Store a domain as its singular value; accept `adapter`, `adapters` or a Domain."""
    if value is None:
        return None
    if isinstance(value, Domain):
        return value.value
    try:
        return Domain.parse(value).value
    except OneiricError:
        return str(value)


def _loads(text: str | None, default: Any) -> Any:
    if text is None:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _link(raw: Any) -> ChainLink | None:
    """A ChainLink from its meta JSON ({"id", "hash"[, "at"]}); None when it is not one."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), int) or not isinstance(raw.get("hash"), str):
        return None
    at = raw.get("at")
    return ChainLink(raw["id"], raw["hash"], float(at) if isinstance(at, (int, float)) else None)


def _event_from_row(row: Row) -> Event:
    domain: Domain | None = None
    if row["domain"]:
        try:
            domain = Domain.parse(row["domain"])
        except OneiricError:
            domain = None
    try:
        severity = Severity(row["severity"] or "info")
    except ValueError:
        severity = Severity.INFO
    data = _loads(row["data"], {})
    return Event(
        kind=row["kind"],
        message=row["message"] or "",
        severity=severity,
        domain=domain,
        key=row["key"],
        provider=row["provider"],
        actor=row["actor"],
        outcome=row["outcome"],
        duration_ms=row["duration_ms"],
        data=data if isinstance(data, dict) else {"value": data},
        ts=row["ts"],
        id=row["id"],
        node=row["node"],
    )


_PLAIN_TEXT = frozenset({str, type(None)})
# The `data` column's JSON, as json.dumps(data, default=str, separators=(",", ":")) writes it,
# from one encoder built once: json.dumps with options builds a new one per call, which cost
# as much as hashing the row does (bench/journal_append.py).
_DATA_JSON = json.JSONEncoder(default=str, separators=(",", ":")).encode


def _text(value: Any) -> str | None:
    """A TEXT column's value as SQLite will hand it back (a str subclass as its plain str)."""
    if value is None or type(value) is str:
        return value
    return str.__str__(value) if isinstance(value, str) else str(value)


def _event_params(event: Event) -> tuple[Any, ...]:
    """The stored columns (ts .. data) exactly as they will read back: the row's hash is
    computed from these, so nothing may change on the way through the database (a number in a
    TEXT column would come back as text, an int duration as a float, a NaN one as NULL).
    Written for the append path: the checks cost little when, as always, nothing is odd."""
    severity = event.severity.value if isinstance(event.severity, Severity) else str(event.severity)
    kind, key, provider, actor, outcome = event.kind, event.key, event.provider, event.actor, event.outcome
    if (kind.__class__ is not str or key.__class__ not in _PLAIN_TEXT or provider.__class__ not in _PLAIN_TEXT
            or actor.__class__ not in _PLAIN_TEXT or outcome.__class__ not in _PLAIN_TEXT):
        kind, key, provider, actor, outcome = (str(_text(kind)), _text(key), _text(provider), _text(actor),
                                               _text(outcome))
    message = event.message or ""
    if message.__class__ is not str:
        message = str(_text(message))
    duration = event.duration_ms
    if duration is not None and duration.__class__ is not float:
        duration = float(duration)
    return (
        float(event.ts), kind, severity, _dom(event.domain), key, provider, actor, outcome,
        None if duration != duration else duration,  # NaN: what the REAL column stores is NULL
        message, _DATA_JSON(event.data or {}),
    )
