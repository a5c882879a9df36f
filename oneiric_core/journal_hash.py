"""What a journal row's hash covers: the one definition the store (when it appends) and
`journal_chain` (when it verifies) share, so the two can never drift apart.

A row's hash is the SHA-256 (lower-case hex) of these bytes, one after the other:

    b"oneiric-journal/1"                       the format's name
    struct "<qdd": id, ts, duration_ms         little-endian int64 and two IEEE-754 doubles;
                                               a NULL duration_ms as the quiet NaN 0x7ff8000000000000
    0xFF prev_hash 0xFF kind 0xFF severity 0xFF domain 0xFF key 0xFF provider 0xFF actor
         0xFF outcome 0xFF message 0xFF data   each text as its UTF-8 bytes, a NULL as the one byte 0xFE

* `prev_hash` is the hash of the row before it (or of the anchor, see store.py), as hex text;
* the other members are the row's columns exactly as the store keeps them (and reads them
  back): `data` the JSON *text* the row stores (not re-encoded: what is on disk is what is
  covered). The REAL columns never hold a NaN (SQLite keeps one as NULL), so the NaN that
  stands for NULL is never a value;
* 0xFF and 0xFE never occur in UTF-8, so the separators and the NULL mark cannot be forged
  by any text, and the encoding is unambiguous with no escaping: any language reproduces it
  with a byte join.

A row someone wrote around the store with a value of another type (a BLOB where text
belongs) still gets a hash, from its repr after the byte 0xFD, which no append produces: it
verifies as edited, never as a crash.

Why not a JSON array (as `oneiric_core.remote.canonical` does for manifests): escaping every
string and printing both floats in shortest decimal form cost more than the SHA-256 itself,
on every append (bench/journal_append.py); this form costs a third of that. A different
encoding would be a new format name, with the rows before the switch kept as they are.

Per node ("oneiric-journal/2", schema 13, issue 18): the rows from the store's
`journal_node_chains` start on (store/records.py NODE_CHAINS_META) chain per node, each onto
the previous row of its own node, and their hash also covers the node:

    b"oneiric-journal/2"  the same bytes as above  0xFF node   (a NULL node as 0xFE)

so a row cannot be moved to another node (or its node edited) without its hash breaking.
The rows before that start keep format 1 and the one global chain they were written in
(`row_hash`); `node_row_hash` is the hash of the rows after it.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from typing import Any

FORMAT = "oneiric-journal/1"
NODE_FORMAT = "oneiric-journal/2"  # a chain per node, the node covered (schema 13)
# The prev_hash of the first row of a chain that starts from nothing.
GENESIS = "0" * 64
# The row's columns in the order `row_hash` takes them (after prev_hash).
FIELDS = ("id", "ts", "kind", "severity", "domain", "key", "provider", "actor", "outcome", "duration_ms",
          "message", "data")

SEPARATOR = b"\xff"
NULL = b"\xfe"
FOREIGN = b"\xfd"  # before the repr of a value of a type the store never writes
NULL_DURATION = float("nan")  # packs as 0x7ff8000000000000
_NUMBERS = struct.Struct("<qdd")
# Hashing starts from a copy of the format's state: a copy skips the digest lookup that a
# new hashlib.sha256() makes (in OpenSSL 3, a fetch), which costs as much as the hashing.
_PREFIX = hashlib.sha256(FORMAT.encode("ascii"))
_NODE_PREFIX = hashlib.sha256(NODE_FORMAT.encode("ascii"))


def _text(value: Any) -> bytes:
    if value is None:
        return NULL
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return FOREIGN + repr(value).encode("utf-8", "backslashreplace")


def _number(value: Any, *, nullable: bool) -> tuple[float, bytes]:
    """A REAL column's value for the packed part, or NaN plus a FOREIGN mark for the texts."""
    if value is None and nullable:
        return NULL_DURATION, b""
    if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
        try:
            return float(value), b""
        except OverflowError:
            pass
    return NULL_DURATION, FOREIGN + repr(value).encode("utf-8", "backslashreplace")


def _slow(prev_hash: Any, row_id: Any, columns: Sequence[Any]) -> bytes:
    """The same bytes for any values at all (the fast path takes only what the store writes)."""
    ts, kind, severity, domain, key, provider, actor, outcome, duration, message, data = columns
    ts_value, ts_mark = _number(ts, nullable=False)
    duration_value, duration_mark = _number(duration, nullable=True)
    plain_id = isinstance(row_id, int) and not isinstance(row_id, bool) and -(1 << 63) <= row_id < (1 << 63)
    id_mark = b"" if plain_id else FOREIGN + repr(row_id).encode("utf-8", "backslashreplace")
    numbers = _NUMBERS.pack(row_id if plain_id else 0, ts_value, duration_value)
    texts = SEPARATOR.join(_text(v) for v in (prev_hash, kind, severity, domain, key, provider, actor, outcome,
                                              message, data))
    return numbers + id_mark + ts_mark + duration_mark + SEPARATOR + texts


def canonical(prev_hash: str, row_id: int, columns: Sequence[Any]) -> bytes:
    """The bytes hashed after FORMAT for row `row_id` chained after `prev_hash`; `columns`
    are its other values in FIELDS order (ts .. data)."""
    ts, kind, severity, domain, key, provider, actor, outcome, duration, message, data = columns
    try:
        if ts.__class__ is not float or (duration is not None and duration.__class__ is not float):
            raise TypeError
        return _NUMBERS.pack(row_id, ts, NULL_DURATION if duration is None else duration) + SEPARATOR.join((
            b"", prev_hash.encode(), kind.encode(), severity.encode(),
            NULL if domain is None else domain.encode(), NULL if key is None else key.encode(),
            NULL if provider is None else provider.encode(), NULL if actor is None else actor.encode(),
            NULL if outcome is None else outcome.encode(), message.encode(), data.encode()))
    except (AttributeError, TypeError, UnicodeError, struct.error, OverflowError):
        return _slow(prev_hash, row_id, columns)


def row_hash(prev_hash: str, row_id: int, columns: Sequence[Any]) -> str:
    """The hash of row `row_id` chained after `prev_hash`; `columns` are its other values
    in FIELDS order (ts .. data)."""
    digest = _PREFIX.copy()
    digest.update(canonical(prev_hash, row_id, columns))
    return digest.hexdigest()


def node_row_hash(prev_hash: str, row_id: int, columns: Sequence[Any], node: Any) -> str:
    """The format-2 hash of row `row_id` of `node`, chained after `prev_hash` (the hash of that
    node's previous row, or of its start): format 1's bytes, then 0xFF and the node."""
    digest = _NODE_PREFIX.copy()
    digest.update(canonical(prev_hash, row_id, columns))
    digest.update(SEPARATOR + (node.encode("utf-8", "surrogatepass") if node.__class__ is str else _text(node)))
    return digest.hexdigest()


__all__ = ["FIELDS", "FORMAT", "GENESIS", "NODE_FORMAT", "NULL", "SEPARATOR", "canonical", "node_row_hash",
           "row_hash"]
