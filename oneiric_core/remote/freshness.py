"""TUF's rollback and freeze rules for manifests: a monotonic `version` and a signed `expires_at`.

A valid signature says who wrote a manifest, not that it is the latest one. Without these
rules, whoever can answer for a source (a compromised mirror, a proxy, a stale CDN) could serve
last month's validly signed manifest and undo every change since (a rollback attack), or keep
serving one manifest forever so that a fix never arrives (a freeze attack). The Update
Framework's client workflow (TUF specification §5: rollback checks on versions, expiry checks
on every role) answers both, and so do we:

* `version` is an integer >= 1 that the publisher raises with every change of signed content.
* Per source, the **ledger** (meta `remote_accepted:<source>` in the store, so a restart does
  not forget) keeps the highest version ever accepted and the SHA-256 of its signed bytes
  (RFC 8785, `ParsedManifest.signed_digest`). A lower version is refused; so is the same
  version with other signed bytes. The same version with the same bytes (an unchanged
  re-fetch, a re-formatted file, one more signature during a key rotation) is fine.
* `expires_at` is an RFC 3339 UTC time (`2030-01-31T12:00:00Z`) inside the signed bytes. A
  manifest is refused once it has passed, whether fetched or the cached last good one at
  start-up. A source that requires signatures refuses a manifest without one: a signed
  manifest that never expires could be replayed forever.

Rollback is judged before expiry, as TUF does: a replayed old manifest is usually expired too,
and "rollback" is the word the operator needs. The ledger is keyed by source name, so a source
whose publisher must start over (a new publisher whose versions begin at 1) gets a new name in
app.yml; nothing else resets it.
"""

from __future__ import annotations

import datetime
import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from ..errors import RemoteSyncFailed

LEDGER_PREFIX = "remote_accepted:"
MAX_VERSION = 2**53 - 1  # RFC 8785 numbers: beyond this an integer has no exact JSON double
ROLLBACK, EXPIRED = "rollback", "expired"  # RemoteSyncFailed kinds
EVENT_KINDS = {ROLLBACK: "manifest-rollback-refused", EXPIRED: "manifest-expired"}

_UTC = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?[Zz]$")
_DURATION_PART = re.compile(r"(\d+)\s*([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_DURATION_S = 100 * 365 * 86400


# -- times ------------------------------------------------------------------------------------------

def parse_utc(text: str) -> float:
    """An RFC 3339 UTC time (`...Z`) -> POSIX seconds; ValueError with one sentence."""
    match = _UTC.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not an RFC 3339 UTC time such as 2030-01-31T12:00:00Z")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = float(match.group(7) or 0)
    try:
        moment = datetime.datetime(year, month, day, hour, minute, min(second, 59), tzinfo=datetime.UTC)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid date and time") from None
    return moment.timestamp() + fraction + (1 if second == 60 else 0)  # a leap second is the next one


def checked_utc(text: str) -> str:
    """The `expires_at` field check (schema `Check`): the text itself when it parses."""
    parse_utc(text)
    return text


def format_utc(ts: float) -> str:
    return datetime.datetime.fromtimestamp(int(ts), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration(text: str) -> float:
    """`30d`, `12h`, `90m`, `45s`, `2w`, or several (`1d12h`) -> seconds; ValueError naming it."""
    compact = text.strip().lower() if isinstance(text, str) else ""
    parts = _DURATION_PART.findall(compact)
    if not parts or _DURATION_PART.sub("", compact).strip():
        raise ValueError(f"'{text}' is not a duration: give a number and a unit (s, m, h, d or w), "
                         "such as 30d, 12h or 90m")
    seconds = float(sum(int(n) * _UNIT_S[unit] for n, unit in parts))
    if seconds <= 0:
        raise ValueError(f"the duration '{text}' must be longer than zero")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"the duration '{text}' is longer than 100 years")
    return seconds


def when(ts: float, now: float | None = None) -> str:
    """`2030-01-31T12:00:00Z (in 3 d)` / `(5 h ago)`: a time an operator reads at once."""
    from ..humanize import age

    now = time.time() if now is None else now
    text = age(min(ts, now), now=max(ts, now)) or "0s"
    return f"{format_utc(ts)} ({'in ' + text if ts > now else text + ' ago'})"


# -- the ledger ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AcceptedVersion:
    """The highest version of a source ever accepted, and what it signed."""

    version: int
    signed_digest: str  # sha256 of its RFC 8785 signed bytes
    expires_at: str | None
    accepted_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Any) -> AcceptedVersion:
        """ValueError when the stored record is not one (edited by hand, another format)."""
        if not isinstance(raw, dict):
            raise ValueError("it is not a mapping")
        version, digest, expires, accepted = (raw.get(k) for k in ("version", "signed_digest", "expires_at",
                                                                    "accepted_at"))
        if type(version) is not int or version < 1 or not isinstance(digest, str) or len(digest) != 64:
            raise ValueError("its version or digest is missing or malformed")
        if expires is not None and not isinstance(expires, str):
            raise ValueError("its expires_at is not a string")
        if not isinstance(accepted, (int, float)) or not math.isfinite(accepted):
            accepted = 0.0
        return cls(version, digest, expires, float(accepted))


class MetaStore(Protocol):
    def get_meta(self, key: str, default: Any = None) -> Any: ...
    def set_meta(self, key: str, value: Any) -> None: ...


class Ledger:
    """The accepted versions in the store's meta table, one record per source."""

    def __init__(self, store: Callable[[], MetaStore]) -> None:
        self._store = store

    @staticmethod
    def key(source: str) -> str:
        return LEDGER_PREFIX + source

    def get(self, source: str) -> AcceptedVersion | None:
        """Raises RemoteSyncFailed (kind `store`) when it cannot be read: without it a
        rollback could not be told apart, so a sync fails closed."""
        from ..store import StoreError

        try:
            raw = self._store().get_meta(self.key(source))
        except StoreError as exc:
            raise RemoteSyncFailed(f"cannot read the accepted version from the store ({exc})", "store") from None
        if raw is None:
            return None
        try:
            return AcceptedVersion.from_dict(raw)
        except ValueError as exc:
            raise RemoteSyncFailed(f"the accepted-version record '{self.key(source)}' in the store is unusable "
                                   f"({exc}); restore it, or rename the source to start its ledger afresh",
                                   "store") from None

    def put(self, source: str, accepted: AcceptedVersion) -> None:
        from ..store import StoreError

        try:
            self._store().set_meta(self.key(source), accepted.to_dict())
        except StoreError as exc:
            raise RemoteSyncFailed(f"cannot record the accepted version in the store ({exc})", "store") from None


# -- the rules ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Freshness:
    """What the rules need of a manifest."""

    version: int
    signed_digest: str
    expires_at: str | None

    @property
    def expires_ts(self) -> float | None:
        return None if self.expires_at is None else parse_utc(self.expires_at)

    def expired(self, now: float) -> bool:
        ts = self.expires_ts
        return ts is not None and now >= ts


def highest(*records: AcceptedVersion | None) -> AcceptedVersion | None:
    """The highest of the ledger's record and what is in force (a store without a record yet,
    after an upgrade, still has the manifest in force to compare with)."""
    known = [r for r in records if r is not None]
    return max(known, key=lambda r: r.version) if known else None


def judge(manifest: Freshness, accepted: AcceptedVersion | None, *, now: float, what: str = "the manifest",
          expiry_required: bool = False) -> None:
    """Raise RemoteSyncFailed (kind ROLLBACK or EXPIRED, or `schema` for a missing expiry) when
    `manifest` may not be put in force after `accepted`."""
    if accepted is not None:
        since = f"accepted {format_utc(accepted.accepted_at)}" if accepted.accepted_at else "accepted earlier"
        if manifest.version < accepted.version:
            raise RemoteSyncFailed(f"{what} is version {manifest.version}, older than version {accepted.version} "
                                   f"({since}): refused as a rollback", ROLLBACK)
        if manifest.version == accepted.version and manifest.signed_digest != accepted.signed_digest:
            raise RemoteSyncFailed(f"{what} is version {manifest.version} again ({since}) but signs other content "
                                   f"(sha256 {manifest.signed_digest[:12]}..., "
                                   f"accepted {accepted.signed_digest[:12]}...): "
                                   "refused as a rollback; a publisher raises the version for every change", ROLLBACK)
    if manifest.expires_at is None:
        if expiry_required:
            raise RemoteSyncFailed(f"{what} has no expires_at, and this source requires signed manifests, which must "
                                   "expire (sign it with 'oneiric manifest sign --expires-in 30d')", "schema")
        return
    ts = manifest.expires_ts
    assert ts is not None
    if now >= ts:
        raise RemoteSyncFailed(f"{what} (version {manifest.version}) expired at {when(ts, now)}: refused; the "
                               "publisher must sign a fresh one", EXPIRED)


__all__ = [
    "EVENT_KINDS", "EXPIRED", "LEDGER_PREFIX", "MAX_VERSION", "ROLLBACK", "AcceptedVersion", "Freshness", "Ledger",
    "checked_utc", "format_utc", "highest", "judge", "parse_duration", "parse_utc", "when",
]
