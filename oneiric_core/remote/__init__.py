"""Remote manifests (docs/architecture.md §7): components delivered by signed manifests over HTTP(S) or from disk.

One module, one job:

  manifest.py      the manifest model, parsing (JSON, or YAML without object tags), the signed
                   bytes, and which entries may register (domain, allow-list, shape)
  canonical.py     RFC 8785 (JCS): the canonical JSON those signed bytes are
  freshness.py     TUF's rollback and freeze rules: integer versions, expires_at, and the ledger
                   of the highest version accepted per source (in the store)
  signing.py       ed25519 keys, signing, and verification against trusted keys with a threshold
                   of distinct keys
  fetch.py         where a URI points (http(s) or a file) and fetching it: timeout, size cap,
                   ETag, retries with backoff and jitter; artifact URIs that cannot escape
  cache.py         the last good manifest per source and content-addressed artifacts
  breaker.py       the circuit breaker per source (closed / open / half-open)
  sync.py          one source's sync: fetch -> parse -> verify -> version/expiry -> check entries ->
                   artifacts -> register; every failure journaled and changing nothing
  registration.py  candidates from entries, the dry-run diff, proposals for what disappears
  loop.py          RemoteManager: every source of app.yml, the refresh loops, status for clients
  status.py        the per-source status record the host keeps in the store (meta)
  tools.py         keygen / sign / verify / pack for `oneiric manifest`

Nothing here is imported by `oneiric status`: httpx and cryptography are imported inside the
functions that use them.
"""

SOURCE_PREFIX = "remote:"


def source_id(name: str) -> str:
    """The registry source of a remote source's candidates: `remote:<name>`."""
    return SOURCE_PREFIX + name
