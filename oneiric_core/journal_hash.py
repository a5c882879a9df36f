"""What a journal row's hash covers: the one definition the store (when it appends) and
`journal_chain` (when it verifies) share, so the two can never drift apart.

A row's hash is the SHA-256 (lower-case hex) of the UTF-8 bytes of one JSON array:

    ["oneiric-journal/1", prev_hash, id, ts, kind, severity, domain, key, provider, actor,
     outcome, duration_ms, message, data]

* `prev_hash` is the hash of the row before it (or of the anchor, see store.py), as hex text;
* the other members are the row's columns exactly as the store keeps them (and reads them
  back): `id` an integer, `ts` and `duration_ms` floats (or null), the text columns strings
  (or null), `data` the JSON *text* the row stores (not re-encoded: what is on disk is what
  is covered);
* the encoding is canonical: an array (so no key order to agree on), no whitespace, strings
  as UTF-8 rather than \\u escapes, floats in their shortest round-trip form. JSON has no NaN
  or Infinity; a non-finite float (which SQLite can hold in a REAL column) is encoded as the
  string "nan", "inf" or "-inf" instead, so an odd row never stops the chain.

The array's first member names this format: a different encoding (RFC 8785 from
`oneiric_core.remote.canonical`, say) would be "oneiric-journal/2", swapped in `canonical`
alone, with the rows before the switch anchored as they are (a new anchor; see store.py).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

FORMAT = "oneiric-journal/1"
# The prev_hash of the first row of a chain that starts from nothing.
GENESIS = "0" * 64
# The row's columns in the order the array carries them (after FORMAT and prev_hash).
FIELDS = ("id", "ts", "kind", "severity", "domain", "key", "provider", "actor", "outcome", "duration_ms",
          "message", "data")

# The encoder is built once: json.dumps with options builds a new one per call, which costs
# as much as the hash itself on the append path. The C encoder is called directly where it
# exists (no circular-reference markers: the members are flat), the same output either way.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_C_ENCODE = None if json.encoder.c_make_encoder is None else json.encoder.c_make_encoder(
    None, None, json.encoder.encode_basestring, None, ":", ",", False, False, False)


def _encode(members: list[Any]) -> str:
    return "".join(_C_ENCODE(members, 0)) if _C_ENCODE is not None else _ENCODER.encode(members)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # 'nan', 'inf', '-inf'
    return value


def canonical(members: Sequence[Any]) -> bytes:
    """The canonical bytes of a JSON array of plain values (str, int, float, None)."""
    try:
        text = _encode(members if isinstance(members, list) else list(members))
    except ValueError:  # a NaN or an infinity: JSON cannot say it, the string form can
        text = _encode([_finite(v) for v in members])
    return text.encode("utf-8")


def row_hash(prev_hash: str, row_id: int, columns: Sequence[Any]) -> str:
    """The hash of row `row_id` chained after `prev_hash`; `columns` are its other values
    in FIELDS order (ts .. data)."""
    return hashlib.sha256(canonical([FORMAT, prev_hash, row_id, *columns])).hexdigest()


__all__ = ["FIELDS", "FORMAT", "GENESIS", "canonical", "row_hash"]
