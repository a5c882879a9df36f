"""Upstream Oneiric's manifests as a source format: recognised, verified by upstream's rules,
and mapped onto ours with nothing silently dropped.

Upstream's manifest (v1 and v2 shapes) has `source` and `entries` at the top, one signature
(`signature` + `signature_algorithm`) or a list (`signatures`, each `{signature, algorithm,
key_id?}`), `signed_at` and `expires_at` (ISO 8601; a time without an offset is UTC), and no
`version`, `name` or `generated_at`. Its entries carry the artifact flat (`uri`, `sha256`)
and some twenty fields of their own (`version`, `capabilities`, `requires`, `event_*`, `dag`,
...) and no `settings`.

* **Signed bytes** are upstream's, not RFC 8785: the document without its signature fields as
  Python's `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=True)`, in UTF-8.
* **Key ids are optional.** A signature naming a trusted key id is checked with that key; one
  without (or naming an id not trusted here) is tried against every trusted key. As for our
  own manifests, the threshold counts distinct keys, not signatures.
* **Freshness**: upstream has no version; `signed_at` becomes the version (its POSIX second),
  so a replayed older manifest is refused here as a rollback (upstream accepts it until it
  expires). One without `signed_at` is version 1: changing it needs a `signed_at`.
* **Nothing dropped**: an entry's fields this engine cannot honour are kept under its
  metadata's `upstream` key and named, per entry, in `not_honoured` (remote-status shows them);
  an entry with a `uri` but no `sha256` is rejected, since an artifact is only used by digest.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .manifest import MAX_DEPTH, Manifest, ManifestError, ParsedManifest, describe_errors, digest, load_document
from .signing import Signature, Verification

FORMAT = "oneiric-0.33"  # how remote-status names the format
SIGNATURE_FIELDS = ("signature", "signature_algorithm", "signatures")
TOP_LEVEL = {"source", "entries", "signed_at", "expires_at", *SIGNATURE_FIELDS}
# Entry fields with an equivalent here; every other one is kept in metadata and named.
ENTRY_FIELDS = {"domain", "key", "provider", "factory", "priority", "stack_level", "metadata", "uri", "sha256"}
DEFAULT_NAME = "upstream"


def is_upstream(data: Any) -> bool:
    """Upstream's shape: entries at the top, none of our version/name/generated_at, and one
    of upstream's own fields (or nothing but entries)."""
    return (isinstance(data, dict) and "entries" in data and not {"version", "name", "generated_at"} & set(data)
            and (bool({"source", "signature", "signed_at"} & set(data)) or set(data) <= TOP_LEVEL))


def signed_bytes(data: Mapping[str, Any]) -> bytes:
    """What upstream signs: the document without its signature fields, as Python's json with
    sorted keys, compact separators and every non-ASCII character escaped."""
    body = {k: v for k, v in data.items() if k not in SIGNATURE_FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("utf-8")


def iso_to_utc(text: Any, what: str) -> tuple[float, str]:
    """An upstream ISO 8601 time (no offset meaning UTC) -> (POSIX seconds, RFC 3339 UTC text)."""
    try:
        moment = datetime.datetime.fromisoformat(str(text))
    except ValueError:
        raise ManifestError(f"the upstream manifest's {what} {text!r} is not an ISO 8601 time", "schema") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    ts = moment.timestamp()
    return ts, datetime.datetime.fromtimestamp(int(ts), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class UpstreamSignature:
    signature: str
    key_id: str | None
    algorithm: str


def signatures_of(data: Mapping[str, Any]) -> list[UpstreamSignature]:
    found = []
    if isinstance(data.get("signature"), str):
        found.append(UpstreamSignature(data["signature"], None, str(data.get("signature_algorithm") or "ed25519")))
    for item in data.get("signatures") or []:
        if isinstance(item, dict) and isinstance(item.get("signature"), str):
            kid = item.get("key_id")
            found.append(UpstreamSignature(item["signature"], str(kid) if kid else None,
                                           str(item.get("algorithm") or "ed25519")))
    return found


def verify(data: Mapping[str, Any], trusted: Mapping[str, str], *, threshold: int, required: bool) -> Verification:
    """Upstream's signatures over upstream's bytes, counted as ours are (distinct trusted keys)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from .signing import unb64

    result = Verification(False, "failed", required, threshold)
    sigs = signatures_of(data)
    if not sigs:
        result.ok, result.status = not required, "unsigned"
        result.reason = ("the upstream manifest is not signed, and this source requires signatures" if required
                         else "the upstream manifest is not signed (this source does not require signatures)")
        return result
    message = signed_bytes(data)
    counted: set[str] = set()
    for sig in sigs:
        if sig.algorithm != "ed25519":
            result.invalid.append(f"{sig.key_id or 'unnamed'} ({sig.algorithm})")
            continue
        candidates = [sig.key_id] if sig.key_id is not None and sig.key_id in trusted else list(trusted)
        matched = None
        for kid in candidates:
            try:
                Ed25519PublicKey.from_public_bytes(unb64(trusted[kid])).verify(unb64(sig.signature), message)
            except (InvalidSignature, ValueError):
                continue
            matched = kid
            break
        if matched is None:
            (result.invalid if sig.key_id in trusted else result.unknown).append(sig.key_id or "unnamed")
        elif matched in counted:
            result.duplicates.append(matched)
        else:
            counted.add(matched)
            result.key_ids.append(matched)
            result.trusted[matched] = trusted[matched]
    if len(counted) >= threshold:
        result.ok, result.status = True, "verified"
        result.reason = (f"upstream signature(s) by {', '.join(result.key_ids)} "
                         f"({len(counted)} of threshold {threshold})")
    elif not required and not counted and not result.invalid:
        result.ok, result.status = True, "unverified"
        result.reason = "signed only by keys not trusted here (this source does not require signatures)"
    else:
        result.reason = (f"{len(counted)} of the {threshold} distinct trusted key(s) required verified the upstream "
                         "manifest" + ("; no trusted key verifies the signature(s) of "
                                       f"{', '.join(result.invalid + result.unknown)}"
                                       if result.invalid or result.unknown else ""))
    return result


@dataclass(frozen=True)
class Converted:
    """An upstream manifest as ours: the data our model takes, and what was not honoured."""

    data: dict[str, Any]
    not_honoured: list[str] = field(default_factory=list)  # "entry #2 (adapter/cache redis): capabilities, dag"


def convert(data: Mapping[str, Any], *, version: int | None = None, name: str | None = None) -> Converted:
    """Upstream's document in our manifest's fields (no signatures: those are upstream's, over
    upstream's bytes). `version` defaults to signed_at's POSIX second, else 1."""
    notes: list[str] = []
    signed_ts, signed_text = (iso_to_utc(data["signed_at"], "signed_at") if data.get("signed_at")
                              else (None, "1970-01-01T00:00:00Z"))
    out: dict[str, Any] = {"version": version or (max(1, int(signed_ts)) if signed_ts else 1),
                           "name": name or str(data.get("source") or DEFAULT_NAME), "generated_at": signed_text}
    if data.get("expires_at"):
        out["expires_at"] = iso_to_utc(data["expires_at"], "expires_at")[1]
    extra_top = sorted(set(data) - TOP_LEVEL)
    if extra_top:
        notes.append(f"top level: {', '.join(extra_top)} (kept unsigned here; no equivalent)")
        out["metadata"] = {"upstream": {k: data[k] for k in extra_top}}
    entries = []
    for index, raw in enumerate(data.get("entries") or []):
        if not isinstance(raw, dict):
            entries.append(raw)  # our entry check rejects it with its reason
            continue
        entry: dict[str, Any] = {k: raw[k] for k in ("domain", "key", "provider", "factory", "priority",
                                                     "stack_level") if k in raw}
        metadata = dict(raw.get("metadata") or {}) if isinstance(raw.get("metadata"), dict) else {}
        if raw.get("uri") is not None or raw.get("sha256") is not None:
            entry["artifact"] = {"uri": raw.get("uri"), "sha256": raw.get("sha256")}
        kept = {k: v for k, v in raw.items() if k not in ENTRY_FIELDS}
        if kept:
            metadata["upstream"] = kept
            label = "/".join(str(raw.get(k)) for k in ("domain", "key") if raw.get(k))
            notes.append(f"entry #{index} ({label} {raw.get('provider', '')}): {', '.join(sorted(kept))} kept as "
                         "metadata, not honoured".replace(" )", ")"))
        if metadata:
            entry["metadata"] = metadata
        entries.append(entry)
    out["entries"] = entries
    return Converted(out, notes)


@dataclass(frozen=True)
class UpstreamManifest(ParsedManifest):
    """An upstream manifest, converted: `data` is the converted document (what our entry
    checks, freshness and ledger use), `original` what was fetched and signed."""

    original: dict[str, Any] = field(default_factory=dict)
    not_honoured: tuple[str, ...] = ()

    @cached_property
    def signed_bytes(self) -> bytes:  # the ledger's digest: upstream's bytes, what the signatures cover
        return signed_bytes(self.original)

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "format": FORMAT, "not_honoured": list(self.not_honoured)}


def parse(raw: bytes, *, max_depth: int = MAX_DEPTH, source: str | None = None) -> UpstreamManifest | None:
    """`raw` as an upstream manifest, converted; None when it is not upstream's shape (the
    caller parses it as ours). ManifestError names what is wrong with one that is."""
    from ..schema import check

    data = load_document(raw, f"the manifest from {source}" if source else "the manifest", max_depth=max_depth)
    if not is_upstream(data):
        return None
    converted = convert(data)
    model, errors = check(Manifest, converted.data)
    if model is None:
        raise ManifestError(f"the upstream manifest is invalid: {describe_errors(errors)}", "schema")
    return UpstreamManifest(raw, converted.data, model, digest(raw), original=dict(data),
                            not_honoured=tuple(converted.not_honoured))


__all__ = ["FORMAT", "Converted", "Signature", "UpstreamManifest", "convert", "is_upstream", "parse", "signed_bytes",
           "verify"]
