"""ed25519 keys, manifest signatures, and their verification against trusted keys.

What is signed is the manifest without `signatures` in RFC 8785 canonical form
(`manifest.canonical_bytes`), so a signature made by any JCS implementation (e.g. npm
`canonicalize` and `openssl pkeyutl -sign -rawin`) verifies here.

Keys in app.yml are `{id, public_key}` with the raw 32-byte public key in base64; several may
be trusted at once (rotation). A manifest verifies when signatures from at least `threshold`
DISTINCT trusted keys check out: a key is counted once however many signatures name it, and
two ids configured with the same public key are one key. Signatures by keys that are not
trusted here are ignored (and reported), so a publisher can sign with an old and a new key
while consumers rotate.

`cryptography` is imported inside the functions (it costs ~100 ms to import): processes that
only read status never load it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .manifest import Signature, canonical_bytes

ALGORITHM = "ed25519"


def key_id_for(public_raw: bytes) -> str:
    """The default key id of a public key: `ed25519-` and 16 hex digits of its sha256."""
    return f"{ALGORITHM}-{hashlib.sha256(public_raw).hexdigest()[:16]}"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.strip(), validate=True)


# -- keys ---------------------------------------------------------------------------------------

def generate_private_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate()


def private_pem(private_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())


def public_raw(private_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_private_key(data: bytes) -> Any:
    """A PEM (PKCS#8) ed25519 private key, as `oneiric manifest keygen` writes it. ValueError
    with one sentence when it is something else."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ValueError("the private key is encrypted; give an unencrypted PEM key") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a PEM private key ({type(exc).__name__})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"the key is {type(key).__name__}, not an ed25519 private key")
    return key


def sign_bytes(private_key: Any, data: bytes) -> str:
    return b64(private_key.sign(data))


def sign_manifest(data: dict[str, Any], private_key: Any, key_id: str) -> dict[str, Any]:
    """`data` with this key's signature over its canonical bytes. An earlier signature with the
    same key id is replaced; other keys' signatures stay (they sign the same canonical bytes,
    which do not include `signatures`)."""
    signature = {"key_id": key_id, "algorithm": ALGORITHM, "signature": sign_bytes(private_key, canonical_bytes(data))}
    others = [s for s in data.get("signatures") or [] if not (isinstance(s, dict) and s.get("key_id") == key_id)]
    return {**data, "signatures": [*others, signature]}


# -- verification -----------------------------------------------------------------------------

@dataclass
class Verification:
    ok: bool
    status: str  # verified | unsigned | unverified | failed
    required: bool
    threshold: int
    key_ids: list[str] = field(default_factory=list)  # trusted keys whose signature verified
    invalid: list[str] = field(default_factory=list)  # trusted key ids whose signature did not
    unknown: list[str] = field(default_factory=list)  # key ids not trusted here (ignored)
    duplicates: list[str] = field(default_factory=list)  # signatures by a key already counted
    reason: str = ""
    # The trusted keys that verified it ({id: public_key}): kept with the cached manifest so a
    # later load can tell whether they are still trusted without checking signatures again.
    trusted: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "required": self.required, "threshold": self.threshold,
                "key_ids": list(self.key_ids), "invalid": list(self.invalid), "unknown": list(self.unknown),
                "duplicates": list(self.duplicates), "reason": self.reason}


def verify(data: dict[str, Any], signatures: Sequence[Signature], trusted: Mapping[str, str], *,
           threshold: int, required: bool, message: bytes | None = None) -> Verification:
    """Check `signatures` over the canonical bytes of `data` (RFC 8785; `message` when the
    caller has them already) against `trusted` ({id: base64 key}).

    Required: ok only with valid signatures from >= `threshold` distinct trusted keys. Not
    required: an unsigned manifest is ok ("unsigned"), and so is one signed only by keys not
    trusted here ("unverified"); but one whose every trusted-key signature fails is refused,
    because a signature that does not match means the content was changed."""
    result = Verification(False, "failed", required, threshold)
    if not signatures:
        result.ok = not required
        result.status = "unsigned"
        result.reason = ("the manifest is not signed, and this source requires signatures" if required
                         else "the manifest is not signed (this source does not require signatures)")
        return result
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if message is None:
        message = canonical_bytes(data)
    counted: set[bytes] = set()
    for sig in signatures:
        encoded = trusted.get(sig.key_id)
        if encoded is None:
            _add(result.unknown, sig.key_id)
            continue
        try:
            raw_key = unb64(encoded)
        except (binascii.Error, ValueError):
            _add(result.invalid, sig.key_id)
            continue
        if raw_key in counted:
            _add(result.duplicates, sig.key_id)
            continue
        try:
            Ed25519PublicKey.from_public_bytes(raw_key).verify(unb64(sig.signature), message)
        except (InvalidSignature, binascii.Error, ValueError):
            _add(result.invalid, sig.key_id)
            continue
        counted.add(raw_key)
        result.key_ids.append(sig.key_id)
        result.trusted[sig.key_id] = encoded
    valid = len(counted)
    if valid >= threshold:
        result.ok, result.status = True, "verified"
        result.reason = f"signed by {', '.join(result.key_ids)} ({valid} of threshold {threshold})"
        return result
    detail = _detail(result)
    if required:
        result.reason = (f"{valid} of the {threshold} distinct trusted key(s) required verified the manifest"
                         + (f" ({detail})" if detail else ""))
    elif result.invalid and not valid:
        result.reason = (f"the signature of trusted key {', '.join(result.invalid)} does not match the manifest "
                         "(changed after signing, or signed with another key)")
    else:
        result.ok, result.status = True, "unverified"
        result.reason = f"not verified ({detail or 'no trusted key signed it'}); this source does not require it"
    return result


def _add(items: list[str], value: str) -> None:
    if value not in items:
        items.append(value)


def _detail(result: Verification) -> str:
    parts = []
    if result.invalid:
        parts.append(f"did not match: {', '.join(result.invalid)}")
    if result.duplicates:
        parts.append(f"counted once: {', '.join(result.duplicates)} signed more than once")
    if result.unknown:
        parts.append(f"not trusted here: {', '.join(result.unknown)}")
    return "; ".join(parts)


def still_trusted(record: Mapping[str, str], trusted: Mapping[str, str], *, threshold: int) -> bool:
    """Whether keys that verified a cached manifest ({id: key}) are still trusted, with the same
    public keys, in number enough for `threshold`: a cached manifest is used without checking
    its signatures again only then."""
    keys = {value for kid, value in record.items() if trusted.get(kid) == value}
    return len(keys) >= threshold


__all__ = [
    "ALGORITHM", "Verification", "b64", "generate_private_key", "key_id_for", "load_private_key",
    "private_pem", "public_raw", "sign_manifest", "still_trusted", "unb64", "verify",
]
