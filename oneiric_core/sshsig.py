"""SSH signatures over approvals: made with the operator's ssh-agent, checked against `allowed_signers`.

Why this exists: where several operators share one OS account, the uid the kernel reports says
nothing about which of them approved. A signature by a key that only one operator's ssh-agent
holds does. The format is OpenSSH's own, so nothing new has to be trusted or learnt:

- the signature is PROTOCOL.sshsig's (what `ssh-keygen -Y sign` writes and git's
  `gpg.format=ssh` uses): a signature made here verifies with `ssh-keygen -Y verify`, and one
  made by `ssh-keygen -Y sign` verifies here;
- the trust list is ssh-keygen(1)'s ALLOWED SIGNERS file, the one git's
  `gpg.ssh.allowedSignersFile` already points at; a line means the same here as there. A line
  ssh-keygen reports as malformed is refused here too, but where ssh-keygen then skips it, this
  module refuses the whole file: a skipped line silently changes who may approve;
- signing goes through the running ssh-agent (SSH_AUTH_SOCK), so the private key never enters
  this process; the agent protocol (draft-miller-ssh-agent) is spoken directly over its socket.

Read top to bottom: errors; the SSH wire encoding (RFC 4251 §5); public keys and their
signatures (RFC 8709 ed25519, RFC 5656 ECDSA, RFC 8332 RSA with SHA-2); the allowed signers
file; the SSHSIG blob, its armor and its signed data (PROTOCOL.sshsig §1-3); `verify`; the agent
and `agent_sign`.

`cryptography` is imported inside functions (it costs ~100 ms): importing this module is free.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import OneiricError

__all__ = [
    "AgentError", "AllowedSigner", "AllowedSignersError", "BadSignature", "KeyNotValidNow",
    "MalformedSignature", "NamespaceNotAllowed", "PublicKey", "SshSigError", "SshSignature",
    "UnknownSigner", "UnsupportedKey", "VerifiedSigner", "WrongNamespace", "agent_sign",
    "armor", "parse_allowed_signers", "parse_signature", "signed_data", "verify",
]


# -- errors -------------------------------------------------------------------------------------
# One class per thing an operator can fix differently; every message is one sentence.

class SshSigError(OneiricError):
    """Base of every error this module raises: callers catch one class."""


class AllowedSignersError(SshSigError):
    """The allowed signers file cannot be read or a line is malformed (message: `path:line: ...`)."""


class MalformedSignature(SshSigError):
    """The text is not an armored SSHSIG signature (PROTOCOL.sshsig §1, §2)."""


class UnsupportedKey(SshSigError):
    """A key type this module does not verify (certificates, security keys, DSA)."""


class WrongNamespace(SshSigError):
    """The signature was made for another namespace, i.e. another purpose (PROTOCOL.sshsig §2)."""


class BadSignature(SshSigError):
    """The signature does not match the message and key, or uses a refused algorithm."""


class UnknownSigner(SshSigError):
    """The signing key (or the key for the asked principal) is not in the allowed signers."""


class NamespaceNotAllowed(SshSigError):
    """The key is allowed, but its `namespaces=` option excludes this namespace."""


class KeyNotValidNow(SshSigError):
    """The key is allowed, but outside its `valid-after`/`valid-before` window."""


class AgentError(SshSigError):
    """No ssh-agent, an unreachable one, no usable key in it, or a refusal to sign."""


# -- SSH wire encoding (RFC 4251 §5) ------------------------------------------------------------

class _WireError(ValueError):
    """A structural defect in SSH-encoded bytes; callers turn it into their own sentence."""


_MAX_MPINT_BYTES = 16384 // 8 + 1   # OpenSSH's SSHBUF_MAX_BIGNUM (16384-bit RSA) plus a sign byte


class _Reader:
    """Reads SSH wire types from bytes, refusing anything truncated (never an IndexError)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def raw(self, n: int) -> bytes:
        if n > len(self._data) - self._pos:
            raise _WireError("it is truncated")
        chunk = self._data[self._pos:self._pos + n]
        self._pos += n
        return chunk

    def uint32(self) -> int:
        return struct.unpack(">I", self.raw(4))[0]

    def string(self) -> bytes:
        return self.raw(self.uint32())

    def text(self) -> str:
        """A string that is text (a name, a namespace): UTF-8 without NUL, as OpenSSH's cstring."""
        data = self.string()
        if b"\0" in data:
            raise _WireError("a name in it contains a NUL byte")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise _WireError("a name in it is not UTF-8") from None

    def mpint(self) -> int:
        data = self.string()
        if len(data) > _MAX_MPINT_BYTES:
            raise _WireError("a number in it is too large")
        if data and data[0] & 0x80:
            raise _WireError("a number in it is negative")
        return int.from_bytes(data, "big")

    def end(self) -> None:
        if self._pos != len(self._data):
            raise _WireError("it has trailing bytes")


def _uint32(n: int) -> bytes:
    return struct.pack(">I", n)


def _string(data: bytes | str) -> bytes:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return _uint32(len(raw)) + raw


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _printable(text: str, limit: int = 80) -> str:
    """Text from a signature, an agent or a file as it may appear in a one-line message: control
    and other unprintable characters escaped (`\\n`, `\\x1b`), long text cut."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    return shown + ("..." if len(text) > limit else "")


_WHITESPACE = " \t\r\n"   # OpenSSH's WHITESPACE (misc.h); str.split() would also split on \x1c, \u2028...


def _fields(text: str, maxsplit: int) -> list[str]:
    """Whitespace-separated fields as OpenSSH sees them (at most maxsplit+1 of them)."""
    stripped = text.strip(_WHITESPACE)
    return re.split(r"[ \t\r\n]+", stripped, maxsplit=maxsplit) if stripped else []


# -- public keys and their signatures -----------------------------------------------------------

# The key types verified here, and the names ssh-keygen prints for them ("... with ED25519 key").
_KEY_LABELS = {
    "ssh-ed25519": "ED25519",
    "ecdsa-sha2-nistp256": "ECDSA",
    "ecdsa-sha2-nistp384": "ECDSA",
    "ecdsa-sha2-nistp521": "ECDSA",
    "ssh-rsa": "RSA",
}
SUPPORTED_KEY_TYPES = tuple(_KEY_LABELS)

# Key types OpenSSH knows that are refused here by name, so a line using one gets a sentence that
# says so rather than "not a key type". Security keys (sk-*) sign a different structure (with
# flags and a counter) that cannot be exercised without hardware; DSA is gone from OpenSSH.
_KNOWN_UNSUPPORTED_TYPES = frozenset({
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com", "ssh-dss", "ssh-xmss@openssh.com",
})
_CERT_SUFFIX = "-cert-v01@openssh.com"

# RFC 5656 §6.2.1: the ECDSA hash follows the curve size.
_ECDSA_CURVES = {  # key type -> (curve identifier in the key blob, curve name, hash name)
    "ecdsa-sha2-nistp256": ("nistp256", "SECP256R1", "SHA256"),
    "ecdsa-sha2-nistp384": ("nistp384", "SECP384R1", "SHA384"),
    "ecdsa-sha2-nistp521": ("nistp521", "SECP521R1", "SHA512"),
}

# RFC 8332 §3: RSA signs with SHA-2 here; "ssh-rsa" signatures (SHA-1) are refused, as OpenSSH's
# sshsig.c refuses them (RSA_SIGN_ALLOWED).
_RSA_SIGNATURE_HASHES = {"rsa-sha2-256": "SHA256", "rsa-sha2-512": "SHA512"}
_RSA_MIN_BITS = 1024   # OpenSSH's SSH_RSA_MINIMUM_MODULUS_SIZE


def _unsupported_type_sentence(key_type: str) -> str:
    if key_type.endswith(_CERT_SUFFIX):
        return (f"{_printable(key_type)} is an SSH certificate, which is not supported; use the plain key "
                f"({', '.join(SUPPORTED_KEY_TYPES)})")
    return f"key type {_printable(key_type)} is not supported (supported: {', '.join(SUPPORTED_KEY_TYPES)})"


@dataclass(frozen=True)
class PublicKey:
    """An SSH public key: its type and its canonical wire blob (RFC 4253 §6.6).

    Two keys are the same key exactly when their canonical blobs are equal, which is what
    allowed-signers matching needs (OpenSSH's sshkey_equal); the fingerprint is computed over
    that blob, so it is the one `ssh-keygen -l` prints.
    """

    key_type: str
    blob: bytes
    _crypto: Any = field(default=None, compare=False, repr=False, hash=False)

    @classmethod
    def from_blob(cls, blob: bytes) -> PublicKey:
        """Parse and check a wire-encoded key. UnsupportedKey for a type not verified here;
        _WireError for bytes that are not a valid key of their type."""
        reader = _Reader(blob)
        key_type = reader.text()
        if key_type not in _KEY_LABELS:
            raise UnsupportedKey(_unsupported_type_sentence(key_type) + ".")
        crypto = _load_crypto_key(key_type, reader)
        reader.end()
        return cls(key_type, _canonical_blob(crypto), crypto)

    @classmethod
    def from_openssh(cls, text: str) -> PublicKey:
        """A key in `authorized_keys`/`.pub` form: `type base64 [comment]`. _WireError or
        UnsupportedKey when it is not one."""
        fields = _fields(text, 2)
        if len(fields) < 2:
            raise _WireError("it is not of the form 'key-type base64-key'")
        key_type, encoded = fields[0], fields[1]
        if key_type not in _KEY_LABELS:
            raise UnsupportedKey(_unsupported_type_sentence(key_type) + ".")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except ValueError:   # binascii.Error, or non-ASCII text
            raise _WireError("its base64 is invalid") from None
        key = cls.from_blob(blob)
        if key.key_type != key_type:
            raise _WireError(f"it says {key_type} but its base64 holds a {key.key_type} key")
        return key

    @property
    def fingerprint(self) -> str:
        """`SHA256:` and unpadded base64 of the blob's SHA-256, as `ssh-keygen -l` prints it."""
        digest = hashlib.sha256(self.blob).digest()
        return "SHA256:" + _b64(digest).rstrip("=")

    @property
    def label(self) -> str:
        """The algorithm name ssh-keygen prints: ED25519, ECDSA or RSA."""
        return _KEY_LABELS[self.key_type]

    @property
    def openssh(self) -> str:
        """The key as one `.pub` line without comment (what an allowed_signers line holds)."""
        return f"{self.key_type} {_b64(self.blob)}"

    def verify_signature(self, signature: bytes, data: bytes) -> str:
        """Check an SSH signature blob (`string algorithm, string body`) over `data`; return the
        signature algorithm. BadSignature when it does not check out, with the reason."""
        from cryptography.exceptions import InvalidSignature

        try:
            reader = _Reader(signature)
            algorithm = reader.text()
            body = reader.string()
            reader.end()
        except _WireError as exc:
            raise BadSignature(f"the signature inside the SSH signature is malformed: {exc}.") from None
        try:
            _verify_with(self, algorithm, body, data)
        except InvalidSignature:
            raise BadSignature(
                f"the signature does not match the message for {self.label} key {self.fingerprint} "
                "(the message or the signature was changed)."
            ) from None
        return algorithm


def _load_crypto_key(key_type: str, reader: _Reader) -> Any:
    """The `cryptography` public key for a blob's fields (RFC 8709 §4, RFC 5656 §3.1,
    RFC 4253 §6.6). A field that is not a valid key becomes a _WireError."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    try:
        if key_type == "ssh-ed25519":
            raw = reader.string()
            if len(raw) != 32:
                raise _WireError("its ed25519 key is not 32 bytes")
            return ed25519.Ed25519PublicKey.from_public_bytes(raw)
        if key_type in _ECDSA_CURVES:
            curve_id, curve_name, _ = _ECDSA_CURVES[key_type]
            if reader.text() != curve_id:
                raise _WireError(f"its curve is not {curve_id}")
            curve = getattr(ec, curve_name)()
            point = reader.string()
            # OpenSSH takes only the uncompressed form (04 || x || y), though RFC 5656 allows both.
            if point[:1] != b"\x04" or len(point) != 1 + 2 * ((curve.key_size + 7) // 8):
                raise _WireError(f"its {curve_id} point is not in uncompressed form")
            return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
        exponent, modulus = reader.mpint(), reader.mpint()
        if modulus.bit_length() < _RSA_MIN_BITS:
            raise _WireError(f"its RSA modulus has fewer than {_RSA_MIN_BITS} bits")
        return rsa.RSAPublicNumbers(exponent, modulus).public_key()
    except _WireError:
        raise
    except (ValueError, UnsupportedAlgorithm, OverflowError):   # cryptography's "not a key"
        raise _WireError(f"it is not a valid {key_type} key") from None


def _canonical_blob(crypto: Any) -> bytes:
    """Re-encode the key the way OpenSSH writes it, so equal keys have equal blobs however they
    arrived (OpenSSH accepts an RSA mpint with superfluous leading zero bytes, and compares the
    numbers, not the bytes)."""
    from cryptography.hazmat.primitives import serialization

    line = crypto.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return base64.b64decode(line.split()[1])


def _verify_with(key: PublicKey, algorithm: str, body: bytes, data: bytes) -> None:
    """Raise InvalidSignature unless `body` signs `data` under `algorithm` with `key`; BadSignature
    for an algorithm that does not belong to the key or is refused."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    if key.key_type == "ssh-rsa":
        if algorithm == "ssh-rsa":
            raise BadSignature("the signature uses ssh-rsa (RSA with SHA-1), which is refused; "
                               "sign with rsa-sha2-512 as ssh-keygen -Y sign does.")
        if algorithm not in _RSA_SIGNATURE_HASHES:
            raise BadSignature(f"the signature algorithm {_printable(algorithm)} does not match the key type ssh-rsa.")
        size = (key._crypto.key_size + 7) // 8
        if len(body) > size:
            raise InvalidSignature
        # RFC 8332 §3 wants the full modulus length; OpenSSH accepts a shorter one and pads it.
        body = body.rjust(size, b"\0")
        digest = getattr(hashes, _RSA_SIGNATURE_HASHES[algorithm])()
        key._crypto.verify(body, data, padding.PKCS1v15(), digest)
        return
    if algorithm != key.key_type:
        raise BadSignature(f"the signature algorithm {_printable(algorithm)} does not match "
                           f"the key type {key.key_type}.")
    if key.key_type == "ssh-ed25519":
        if len(body) != 64:
            raise InvalidSignature
        key._crypto.verify(body, data)
        return
    # RFC 5656 §3.1.2: the body holds mpint r, mpint s; `cryptography` takes them as DER.
    try:
        reader = _Reader(body)
        r, s = reader.mpint(), reader.mpint()
        reader.end()
    except _WireError:
        raise InvalidSignature from None
    digest = getattr(hashes, _ECDSA_CURVES[key.key_type][2])()
    key._crypto.verify(encode_dss_signature(r, s), data, ec.ECDSA(digest))


# -- patterns (ssh_config(5) PATTERNS, OpenSSH match.c) -----------------------------------------

def _match_pattern(name: str, pattern: str) -> bool:
    """`*` matches any run of characters, `?` any one; everything else itself (case matters).
    Not fnmatch: `[` has no meaning in OpenSSH patterns."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name, re.DOTALL) is not None


def _match_pattern_list(name: str, patterns: Sequence[str]) -> bool:
    """OpenSSH's match_pattern_list: true when some pattern matches and no `!pattern` does."""
    positive = False
    for pattern in patterns:
        if pattern.startswith("!"):
            if _match_pattern(name, pattern[1:]):
                return False
        elif _match_pattern(name, pattern):
            positive = True
    return positive


# -- the allowed signers file (ssh-keygen(1) ALLOWED SIGNERS; OpenSSH sshsig.c) ------------------

@dataclass(frozen=True)
class AllowedSigner:
    """One line of an allowed signers file: who (principal patterns) may sign with which key,
    for which namespaces (None: any) and when. `source` is `path:line`, for messages."""

    principals: tuple[str, ...]
    key: PublicKey
    namespaces: tuple[str, ...] | None = None
    valid_after: datetime | None = None
    valid_before: datetime | None = None
    source: str = ""

    def matches_principal(self, principal: str) -> bool:
        return _match_pattern_list(principal, self.principals)

    def refusal(self, namespace: str, now: datetime) -> SshSigError | None:
        """Why this line does not allow a signature in `namespace` at `now`, or None when it
        does; the checks and their order are sshsig.c's check_allowed_keys_line."""
        if self.namespaces is not None and not _match_pattern_list(namespace, self.namespaces):
            allowed = _printable(",".join(self.namespaces))
            return NamespaceNotAllowed(
                f"{self.source}: key {self.key.fingerprint} may sign only in namespaces "
                f"\"{allowed}\", not in \"{_printable(namespace)}\".")
        moment = int(now.timestamp())   # ssh-keygen compares whole seconds
        if self.valid_after is not None and moment < int(self.valid_after.timestamp()):
            return KeyNotValidNow(
                f"{self.source}: key {self.key.fingerprint} is not valid until "
                f"{_show_time(self.valid_after)} (valid-after).")
        if self.valid_before is not None and moment > int(self.valid_before.timestamp()):
            return KeyNotValidNow(
                f"{self.source}: key {self.key.fingerprint} expired at "
                f"{_show_time(self.valid_before)} (valid-before).")
        return None


_SYNTAX = "principals [options] key-type base64-key"


def parse_allowed_signers(source: str | os.PathLike[str], *, name: str | None = None) -> list[AllowedSigner]:
    """Every signer in an allowed signers file, in file order.

    `source` is a path (`pathlib.Path` or any os.PathLike) to read, or a `str` holding the
    file's text; `name` is what messages call the text (default: the path, or "allowed_signers").
    Blank lines and `#` comments are skipped. A line ssh-keygen reports as malformed refuses the
    whole file, with AllowedSignersError `path:line: what is wrong.` (ssh-keygen skips such a line;
    see the module docstring for why this does not). One more thing is refused: `cert-authority`,
    because certificates are not verified here and silently dropping a trust line would leave the
    operators it names wondering why their signatures are unknown.
    """
    if isinstance(source, os.PathLike):
        path = Path(source)
        label = name or str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise AllowedSignersError(
                f"cannot read the allowed signers file {label}: {exc.strerror or exc}.") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            lineno = data.count(b"\n", 0, exc.start) + 1
            raise AllowedSignersError(f"{label}:{lineno}: the line is not UTF-8 text.") from None
    else:
        text, label = source, name or "allowed_signers"
        line = text.strip(_WHITESPACE)
        if "\n" not in text and "/" in line and len(_fields(line, 1)) == 1 and not line.startswith("#"):
            # One field that is not a comment never parses, so the hint hides nothing valid.
            raise AllowedSignersError(f"{label}:1: \"{_printable(line)}\" looks like a path; pass "
                                      "pathlib.Path(...) to read a file.")
    signers = []
    # split("\n"), not splitlines(): line numbers must be the ones ssh-keygen and editors show.
    for number, line in enumerate(text.split("\n"), start=1):
        signer = _parse_line(line, f"{label}:{number}")
        if signer is not None:
            signers.append(signer)
    return signers


def _parse_line(line: str, where: str) -> AllowedSigner | None:
    """One line, as sshsig.c's parse_principals_key_and_options reads it."""
    rest = line.lstrip(_WHITESPACE)
    if not rest or rest.startswith("#"):
        return None
    principals_field, rest = _principals_field(rest, where)
    if not principals_field:
        raise AllowedSignersError(f"{where}: the principals field is empty.")
    principals = tuple(principals_field.split(","))
    if not rest:
        raise AllowedSignersError(f"{where}: the line has only one field; expected '{_SYNTAX}'.")
    options = ""
    if not _is_key_type_name(_fields(rest, 1)[0]):
        options, rest = _options_field(rest, where)
        if not rest:
            raise AllowedSignersError(f"{where}: the key is missing after the options; expected '{_SYNTAX}'.")
    key = _key_field(rest, where, after_options=bool(options))
    namespaces, valid_after, valid_before = _parse_options(options, where)
    return AllowedSigner(principals, key, namespaces, valid_after, valid_before, where)


def _is_key_type_name(token: str) -> bool:
    return (token in _KEY_LABELS or token in _KNOWN_UNSUPPORTED_TYPES
            or token.endswith(_CERT_SUFFIX))


def _principals_field(text: str, where: str) -> tuple[str, str]:
    """The first field and what follows it (leading whitespace skipped), as OpenSSH's strdelimw
    splits it: up to whitespace, or through a double-quoted stretch (`"alice bob"`)."""
    for index, char in enumerate(text):
        if char in _WHITESPACE:
            return text[:index], text[index:].lstrip(_WHITESPACE)
        if char == '"':
            close = text.find('"', index + 1)
            if close < 0:
                raise AllowedSignersError(f"{where}: the principals field has an opening quote and no closing one.")
            return text[:index] + text[index + 1:close], text[close + 1:].lstrip(_WHITESPACE)
    raise AllowedSignersError(f"{where}: the line has only one field; expected '{_SYNTAX}'.")


def _options_field(text: str, where: str) -> tuple[str, str]:
    """The options (up to unquoted whitespace, `\\"` escaping a quote) and the rest, as
    OpenSSH's sshkey_advance_past_options."""
    quoted = False
    index = 0
    while index < len(text) and (quoted or text[index] not in " \t"):
        if text.startswith('\\"', index):
            index += 1
        elif text[index] == '"':
            quoted = not quoted
        index += 1
    if quoted:
        raise AllowedSignersError(f"{where}: the options have an opening quote and no closing one.")
    return text[:index], text[index:].lstrip(_WHITESPACE)


def _key_field(text: str, where: str, *, after_options: bool) -> PublicKey:
    """`key-type base64 [comment]`: the key type must be one verified here and the base64 must
    hold a valid key of that type."""
    fields = _fields(text, 2)
    key_type = fields[0]
    if not _is_key_type_name(key_type):
        hint = "; options are separated by commas, without spaces" if after_options else ""
        raise AllowedSignersError(
            f"{where}: \"{_printable(key_type, 40)}\" is not an SSH key type (expected one of "
            f"{', '.join(SUPPORTED_KEY_TYPES)}{hint}).")
    if len(fields) < 2:
        raise AllowedSignersError(f"{where}: the {key_type} key has no base64 key after it.")
    try:
        return PublicKey.from_openssh(f"{key_type} {fields[1]}")
    except UnsupportedKey as exc:
        raise AllowedSignersError(f"{where}: {exc}") from None
    except _WireError as exc:
        raise AllowedSignersError(f"{where}: the {key_type} key is invalid: {exc}.") from None


def _parse_options(options: str, where: str) -> tuple[tuple[str, ...] | None, datetime | None, datetime | None]:
    """The comma-separated options, as sshsig.c's sshsigopt_parse: keywords case-insensitive,
    values double-quoted, each option at most once, anything else refused."""
    namespaces: tuple[str, ...] | None = None
    times: dict[str, datetime] = {}
    rest = options
    while rest:
        lowered = rest.lower()
        if lowered.startswith("cert-authority"):
            raise AllowedSignersError(
                f"{where}: cert-authority lines are not supported (SSH certificates are not verified "
                "here); list each operator's own key instead.")
        if lowered.startswith("namespaces="):
            if namespaces is not None:
                raise AllowedSignersError(f"{where}: the namespaces option is given twice.")
            value, rest = _dequote(rest[len("namespaces="):], "namespaces", where)
            namespaces = tuple(value.split(","))
        elif lowered.startswith(("valid-after=", "valid-before=")):
            option = lowered.split("=", 1)[0]
            if option in times:
                raise AllowedSignersError(f"{where}: the {option} option is given twice.")
            value, rest = _dequote(rest[len(option) + 1:], option, where)
            times[option] = _parse_time(value, option, where)
        else:
            unknown = re.split(r"[,=]", rest, maxsplit=1)[0]
            raise AllowedSignersError(
                f"{where}: unknown option \"{_printable(unknown, 40)}\" "
                "(allowed: namespaces, valid-after, valid-before).")
        if rest == "":
            break
        if not rest.startswith(","):
            raise AllowedSignersError(f"{where}: the options must be separated by commas, without spaces.")
        rest = rest[1:]
        if rest == "":
            raise AllowedSignersError(f"{where}: the options end with a comma.")
    after, before = times.get("valid-after"), times.get("valid-before")
    if after is not None and before is not None and before <= after:
        raise AllowedSignersError(f"{where}: valid-before is not later than valid-after.")
    return namespaces, after, before


def _dequote(text: str, option: str, where: str) -> tuple[str, str]:
    """A double-quoted value (`\\"` is a quote) and the text after it, as OpenSSH's opt_dequote."""
    if not text.startswith('"'):
        raise AllowedSignersError(f"{where}: the {option} value must be in double quotes, "
                                  f"e.g. {option}=\"{'file,git' if option == 'namespaces' else '20250101'}\".")
    value = []
    index = 1
    while index < len(text) and text[index] != '"':
        if text.startswith('\\"', index):
            index += 1
        value.append(text[index])
        index += 1
    if index >= len(text):
        raise AllowedSignersError(f"{where}: the {option} value has no closing quote.")
    return "".join(value), text[index + 1:]


_TIME_FORMATS = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}


def _parse_time(value: str, option: str, where: str) -> datetime:
    """YYYYMMDD[HHMM[SS]], in UTC with a `Z` (or `UTC`) suffix and local time without, as
    OpenSSH's parse_absolute_time; returned timezone-aware."""
    digits, utc = value, False
    if len(value) > 1 and value[-1:] in ("Z", "z"):
        digits, utc = value[:-1], True
    elif len(value) > 3 and value[-3:].upper() == "UTC":
        digits, utc = value[:-3], True
    problem = (f"{where}: the {option} time \"{_printable(value, 40)}\" is not YYYYMMDD, YYYYMMDDHHMM or "
               "YYYYMMDDHHMMSS (optionally followed by Z for UTC).")
    if not re.fullmatch(r"[0-9]{8}|[0-9]{12}|[0-9]{14}", digits):
        raise AllowedSignersError(problem)
    try:
        naive = datetime.strptime(digits, _TIME_FORMATS[len(digits)])
        moment = naive.replace(tzinfo=UTC) if utc else naive.astimezone()
    except (ValueError, OverflowError, OSError):
        raise AllowedSignersError(problem) from None
    if moment.timestamp() <= 0:   # OpenSSH treats 0 as "not set" and refuses it
        raise AllowedSignersError(problem)
    return moment


def _show_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- the SSHSIG blob, its armor and its signed data (PROTOCOL.sshsig) ----------------------------

MAGIC = b"SSHSIG"                       # §2 MAGIC_PREAMBLE, also the start of §3's signed data
VERSION = 1                             # §2 SIG_VERSION; greater versions MUST be rejected
HASH_ALGORITHMS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}   # §2
DEFAULT_HASH = "sha512"                 # what ssh-keygen -Y sign uses (sshsig.c HASHALG_DEFAULT)
BEGIN = "-----BEGIN SSH SIGNATURE-----"  # §1
END = "-----END SSH SIGNATURE-----"
_ARMOR_WIDTH = 70                       # ssh-keygen wraps at 70 (sshbuf_dtob64), within §1's 76
_MAX_ARMOR_CHARS = 64 * 1024            # a 16384-bit RSA signature armors to under 6 KiB


@dataclass(frozen=True)
class SshSignature:
    """The fields of an SSHSIG blob (PROTOCOL.sshsig §2). `signature` is the SSH signature blob
    (algorithm and body) over `signed_data(namespace, hash_algorithm, message)`."""

    public_key: PublicKey
    namespace: str
    hash_algorithm: str
    signature: bytes

    def blob(self) -> bytes:
        """§2's blob; the reserved field is written empty, as ssh-keygen writes it."""
        return (MAGIC + _uint32(VERSION) + _string(self.public_key.blob) + _string(self.namespace)
                + _string(b"") + _string(self.hash_algorithm) + _string(self.signature))


def signed_data(namespace: str, hash_algorithm: str, message: bytes) -> bytes:
    """What the key actually signs (PROTOCOL.sshsig §3): the message is hashed first, so only a
    digest reaches the signer (the agent, maybe over a forwarded socket), and the "SSHSIG"
    preamble keeps the signature from ever passing for an SSH login signature. The reserved
    field is empty whatever the blob carried: §3 says to ignore it, and OpenSSH does so."""
    digest = HASH_ALGORITHMS[hash_algorithm](message).digest()
    return MAGIC + _string(namespace) + _string(b"") + _string(hash_algorithm) + _string(digest)


def armor(signature: SshSignature) -> str:
    """PROTOCOL.sshsig §1 armor, byte for byte what `ssh-keygen -Y sign` writes: header line,
    base64 in lines of 70, footer line, final newline."""
    encoded = _b64(signature.blob())
    lines = [encoded[i:i + _ARMOR_WIDTH] for i in range(0, len(encoded), _ARMOR_WIDTH)]
    return BEGIN + "\n" + "\n".join(lines) + "\n" + END + "\n"


def parse_signature(armored: str | bytes) -> SshSignature:
    """The fields of an armored signature (PROTOCOL.sshsig §1, §2), checked for structure only:
    MalformedSignature (or UnsupportedKey for the key type) with one sentence when it is not
    one. It says nothing about whether the signature is genuine; `verify` does."""
    if isinstance(armored, bytes):
        try:
            armored = armored.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedSignature("the SSH signature contains bytes that are not ASCII.") from None
    if len(armored) > _MAX_ARMOR_CHARS:
        raise MalformedSignature(f"the SSH signature is longer than {_MAX_ARMOR_CHARS} characters.")
    # §1: the text starts with the header line and ends with the footer line (CRLF tolerated,
    # as OpenSSH tolerates it).
    if not armored.startswith((BEGIN + "\n", BEGIN + "\r\n")):
        raise MalformedSignature(f"the SSH signature does not start with a line {BEGIN}.")
    body_start = armored.index("\n") + 1
    footer = armored.find("\n" + END, body_start - 1)
    if footer < 0:
        raise MalformedSignature(f"the SSH signature has no line {END}.")
    if armored[footer + 1 + len(END):].strip(_WHITESPACE):
        raise MalformedSignature(f"the SSH signature has text after its line {END}.")
    encoded = "".join(armored[body_start:footer].split())
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedSignature("the SSH signature's base64 is invalid.") from None
    return _parse_blob(blob)


def _parse_blob(blob: bytes) -> SshSignature:
    reader = _Reader(blob)
    try:
        if reader.raw(len(MAGIC)) != MAGIC:
            raise MalformedSignature("the SSH signature does not start with the SSHSIG preamble.")
        version = reader.uint32()
        if version != VERSION:
            raise MalformedSignature(f"the SSH signature has version {version}; only version {VERSION} is supported.")
        key_blob = reader.string()
        namespace = reader.text()
        reader.string()   # reserved: §2 says to ignore its contents
        hash_algorithm = reader.text()
        signature = reader.string()
        reader.end()
        public_key = PublicKey.from_blob(key_blob)
    except _WireError as exc:
        raise MalformedSignature(f"the SSH signature is malformed: {exc}.") from None
    if not namespace:
        raise MalformedSignature("the SSH signature has an empty namespace, which PROTOCOL.sshsig forbids.")
    if hash_algorithm not in HASH_ALGORITHMS:
        raise MalformedSignature(
            f"the SSH signature uses hash algorithm \"{_printable(hash_algorithm)}\"; "
            "only sha256 and sha512 are allowed.")
    return SshSignature(public_key, namespace, hash_algorithm, signature)


# -- verify -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VerifiedSigner:
    """Who made a signature that checked out. `principals` are those of the allowed signers line
    that admitted the key (as `ssh-keygen -Y find-principals` prints them), or just the principal
    `verify` was asked about. `fingerprint` is what `ssh-keygen -l` prints."""

    principals: tuple[str, ...]
    key_type: str
    fingerprint: str
    namespace: str
    signature_algorithm: str
    source: str

    @property
    def principal(self) -> str:
        """The first principal: the approver, where a line names one operator."""
        return self.principals[0]


def verify(
    armored_signature: str | bytes,
    message: bytes,
    namespace: str,
    signers: Sequence[AllowedSigner],
    *,
    principal: str | None = None,
    now: datetime | None = None,
) -> VerifiedSigner:
    """Check that `armored_signature` is a signature over `message` for `namespace` by a key the
    allowed `signers` admit for that namespace at `now` (default: the current time).

    With `principal`, only lines whose principal patterns match it count (`ssh-keygen -Y verify
    -I principal`); without, any line holding the key does (`-Y find-principals`). The order is
    ssh-keygen's: the structure, the namespace, the signature itself, then the allowed signers,
    so an allowed-signers refusal is only ever about a genuine signature. Each failure is its
    own SshSigError subclass with one sentence.
    """
    if not namespace:
        raise WrongNamespace("the namespace to verify against is empty; PROTOCOL.sshsig requires one.")
    parsed = parse_signature(armored_signature)
    if parsed.namespace != namespace:
        raise WrongNamespace(
            f"the signature was made for namespace \"{_printable(parsed.namespace)}\", "
            f"not \"{_printable(namespace)}\".")
    data = signed_data(parsed.namespace, parsed.hash_algorithm, message)
    algorithm = parsed.public_key.verify_signature(parsed.signature, data)
    signer = _admitting_signer(parsed.public_key, namespace, signers, principal,
                               now or datetime.now(UTC))
    return VerifiedSigner(
        principals=(principal,) if principal is not None else signer.principals,
        key_type=parsed.public_key.key_type,
        fingerprint=parsed.public_key.fingerprint,
        namespace=namespace,
        signature_algorithm=algorithm,
        source=signer.source,
    )


def _admitting_signer(key: PublicKey, namespace: str, signers: Sequence[AllowedSigner],
                      principal: str | None, now: datetime) -> AllowedSigner:
    """The first line that holds `key` (for `principal`) and allows `namespace` at `now`, as
    sshsig.c tries line after line. When lines hold the key but none allows it, the first one's
    reason is raised: it says more than "unknown key"."""
    candidates = [s for s in signers
                  if s.key == key and (principal is None or s.matches_principal(principal))]
    if not candidates:
        who = f" for principal \"{_printable(principal)}\"" if principal is not None else ""
        raise UnknownSigner(
            f"the {key.label} key {key.fingerprint} that made the signature is not in the allowed signers{who}.")
    refusals = []
    for candidate in candidates:
        refusal = candidate.refusal(namespace, now)
        if refusal is None:
            return candidate
        refusals.append(refusal)
    raise refusals[0]


# -- the ssh-agent (draft-miller-ssh-agent) ------------------------------------------------------

SSH_AGENT_FAILURE = 5
SSH2_AGENTC_REQUEST_IDENTITIES = 11
SSH2_AGENT_IDENTITIES_ANSWER = 12
SSH2_AGENTC_SIGN_REQUEST = 13
SSH2_AGENT_SIGN_RESPONSE = 14
_FAILURE_REPLIES = {SSH_AGENT_FAILURE, 28, 30, 102}   # OpenSSH authfd.c's agent_failed()
SSH_AGENT_RSA_SHA2_256 = 0x02
SSH_AGENT_RSA_SHA2_512 = 0x04
_MAX_AGENT_REPLY = 256 * 1024   # OpenSSH's MAX_AGENT_REPLY_LEN
_MAX_AGENT_IDENTITIES = 2048    # OpenSSH's MAX_AGENT_IDENTITIES


@dataclass(frozen=True)
class AgentIdentity:
    """A key the agent holds. `key` is None for a type not verified here (a certificate, a
    security key); `blob` is exactly what the agent sent, and what a sign request names."""

    blob: bytes
    comment: str
    key_type: str
    key: PublicKey | None

    def describe(self) -> str:
        """`SHA256:... comment (ED25519)`, the way `ssh-add -l` lists a key."""
        name = self.key.fingerprint if self.key is not None else _printable(self.key_type)
        kind = self.key.label if self.key is not None else "not supported"
        return " ".join(part for part in (name, _printable(self.comment), f"({kind})") if part)


class _Agent:
    """One connection to an ssh-agent: framed requests (uint32 length, byte type, contents) and
    their replies, with one sentence for every way the agent can fail to answer."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.settimeout(timeout)
        try:
            self._socket.connect(path)
        except OSError as exc:
            self._socket.close()
            raise AgentError(f"cannot reach the ssh-agent at {path} (SSH_AUTH_SOCK): "
                             f"{exc.strerror or exc}.") from None

    def __enter__(self) -> _Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self._socket.close()

    def request(self, message_type: int, payload: bytes) -> tuple[int, bytes]:
        body = bytes([message_type]) + payload
        try:
            self._socket.sendall(_uint32(len(body)) + body)
            length = struct.unpack(">I", self._receive(4))[0]
            if not 1 <= length <= _MAX_AGENT_REPLY:
                raise AgentError(f"the ssh-agent at {self.path} sent a reply of {length} bytes, "
                                 "which is not a valid agent reply.")
            reply = self._receive(length)
        except TimeoutError:
            raise AgentError(f"the ssh-agent at {self.path} did not answer within "
                             f"{self._socket.gettimeout():g} s (it may be waiting for a confirmation).") from None
        except OSError as exc:
            raise AgentError(f"the connection to the ssh-agent at {self.path} failed: "
                             f"{exc.strerror or exc}.") from None
        return reply[0], reply[1:]

    def _receive(self, n: int) -> bytes:
        chunks, remaining = [], n
        while remaining:
            chunk = self._socket.recv(remaining)
            if not chunk:
                raise AgentError(f"the ssh-agent at {self.path} closed the connection mid-reply.")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def identities(self) -> list[AgentIdentity]:
        """SSH2_AGENTC_REQUEST_IDENTITIES: every key the agent holds, in its order."""
        kind, payload = self.request(SSH2_AGENTC_REQUEST_IDENTITIES, b"")
        if kind != SSH2_AGENT_IDENTITIES_ANSWER:
            raise AgentError(f"the ssh-agent at {self.path} refused to list its keys.")
        try:
            reader = _Reader(payload)
            count = reader.uint32()
            if count > _MAX_AGENT_IDENTITIES:
                raise _WireError(f"it claims {count} keys")
            identities = []
            for _ in range(count):
                blob, comment = reader.string(), reader.string().decode("utf-8", "replace")
                identities.append(_identity(blob, comment))
            reader.end()
        except _WireError as exc:
            raise AgentError(f"the ssh-agent at {self.path} sent a malformed key list: {exc}.") from None
        return identities

    def sign(self, identity: AgentIdentity, data: bytes, flags: int) -> bytes:
        """SSH2_AGENTC_SIGN_REQUEST: the agent's SSH signature blob over `data`."""
        kind, payload = self.request(SSH2_AGENTC_SIGN_REQUEST,
                                     _string(identity.blob) + _string(data) + _uint32(flags))
        if kind in _FAILURE_REPLIES:
            raise AgentError(f"the ssh-agent at {self.path} refused to sign with {identity.describe()} "
                             "(it may be locked, or the confirmation was declined).")
        if kind != SSH2_AGENT_SIGN_RESPONSE:
            raise AgentError(f"the ssh-agent at {self.path} answered a sign request with message type {kind}.")
        try:
            reader = _Reader(payload)
            signature = reader.string()
            reader.end()
        except _WireError as exc:
            raise AgentError(f"the ssh-agent at {self.path} sent a malformed signature: {exc}.") from None
        return signature


def _identity(blob: bytes, comment: str) -> AgentIdentity:
    try:
        key_type = _Reader(blob).text()
    except _WireError:
        key_type = "unknown"
    try:
        key = PublicKey.from_blob(blob)
    except (UnsupportedKey, _WireError):
        key = None
    return AgentIdentity(blob, comment, key_type, key)


def _choose_identity(identities: list[AgentIdentity], wanted: str | None,
                     path: str) -> tuple[AgentIdentity, PublicKey]:
    """The identity `wanted` names (a `SHA256:` fingerprint or a public key line), or the only
    usable one; otherwise a sentence listing what the agent holds, so the operator can choose."""
    usable = [(identity, identity.key) for identity in identities if identity.key is not None]
    held = "; ".join(identity.describe() for identity in identities)
    if wanted is not None:
        wanted = wanted.strip()
        if wanted.startswith("SHA256:"):
            matches = [pair for pair in usable if pair[1].fingerprint == wanted]
        else:
            try:
                chosen = PublicKey.from_openssh(wanted)
            except (UnsupportedKey, _WireError) as exc:
                raise AgentError(f"the key to sign with must be a SHA256: fingerprint or a public key "
                                 f"line ({exc}).") from None
            matches = [pair for pair in usable if pair[1] == chosen]
        if not matches:
            raise AgentError(f"the ssh-agent at {path} holds no usable key matching {_printable(wanted)}; "
                             f"it holds: {held or 'no keys'}.")
        return matches[0]
    if not identities:
        raise AgentError(f"the ssh-agent at {path} holds no keys; add yours with ssh-add.")
    if not usable:
        raise AgentError(f"the ssh-agent at {path} holds no key of a supported type "
                         f"({', '.join(SUPPORTED_KEY_TYPES)}); it holds: {held}.")
    if len(usable) > 1:
        raise AgentError(f"the ssh-agent at {path} holds {len(usable)} keys; choose one by its "
                         f"fingerprint: {'; '.join(identity.describe() for identity, _ in usable)}.")
    return usable[0]


def agent_sign(
    message: bytes,
    namespace: str,
    *,
    key: str | None = None,
    socket_path: str | None = None,
    hash_algorithm: str = DEFAULT_HASH,
    timeout: float = 60.0,
) -> str:
    """Sign `message` for `namespace` with a key in the running ssh-agent and return the armored
    signature, exactly as `ssh-keygen -Y sign -n namespace` would write it.

    `key` picks the agent's identity by `SHA256:` fingerprint or public key line; it may be left
    out when the agent holds one usable key. `socket_path` defaults to SSH_AUTH_SOCK. RSA keys
    sign with rsa-sha2-512 (rsa-sha2-256 for a sha256 hash), as OpenSSH's sshsig.c asks. The agent's
    signature is checked here before it is returned, so an agent that signs with SHA-1 or sends
    garbage is an AgentError now rather than a refusal at the approver's end. The timeout is
    generous because an agent may ask the operator to confirm (`ssh-add -c`).
    """
    if not namespace:
        raise AgentError("the namespace to sign in is empty; PROTOCOL.sshsig requires one.")
    if hash_algorithm not in HASH_ALGORITHMS:
        raise AgentError(f"hash algorithm {hash_algorithm!r} is not sha256 or sha512.")
    path = socket_path or os.environ.get("SSH_AUTH_SOCK")
    if not path:
        raise AgentError("SSH_AUTH_SOCK is unset, so there is no ssh-agent to sign with; start one "
                         "(eval \"$(ssh-agent)\") and add your key with ssh-add.")
    data = signed_data(namespace, hash_algorithm, message)
    with _Agent(path, timeout) as agent:
        identity, public_key = _choose_identity(agent.identities(), key, path)
        flags = 0
        if public_key.key_type == "ssh-rsa":
            flags = SSH_AGENT_RSA_SHA2_256 if hash_algorithm == "sha256" else SSH_AGENT_RSA_SHA2_512
        signature = agent.sign(identity, data, flags)
    try:
        public_key.verify_signature(signature, data)
    except BadSignature as exc:
        raise AgentError(f"the ssh-agent at {path} returned a signature that does not check out: {exc}") from None
    return armor(SshSignature(public_key, namespace, hash_algorithm, signature))
