"""`oneiric manifest keygen | pack | sign | verify`: producing a manifest that verifies.

    keygen  a new ed25519 key: the private key as PEM (PKCS#8, mode 0600, never overwritten
            unless --force), `<key>.pub` with its id and public key, and the lines to add to
            app.yml `remote.trusted_keys`
    pack    a manifest from a YAML/JSON list of entries (or a mapping with `entries:`), each
            checked as a sync would check it; refuses to write one a sync would reject; its
            integer version, and optionally its expiry (`--expires-in`)
    sign    adds (or replaces) this key's signature, after setting `expires_at` (and the
            version) when asked; the output is verified against the key before it is written,
            so `sign` can never produce a manifest that fails its own check, and it refuses
            to sign one without an expiry or already expired (a sync would refuse it)
    verify  checks the signatures against given keys or app.yml's trusted keys and threshold,
            the expiry, and the entries against the allow-list

Every file is written atomically (a temporary file renamed into place).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OneiricError, RemoteSyncFailed, UsageError
from ..schema import check
from .freshness import format_utc, when
from .manifest import ManifestError, describe_errors, load_document, parse_manifest


class ToolError(OneiricError):
    """A manifest tool could not do its job (a usage or file problem)."""


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path = path.resolve()
    if not path.parent.is_dir():  # `pack --out manifests/acme.json` in a fresh directory, as docs/remote.md does
        try:
            path.parent.mkdir(parents=True)
        except OSError as exc:
            raise ToolError(f"Cannot create the directory {path.parent} for {path.name}: {exc.strerror}.") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ToolError(f"{what} {path} does not exist.") from None
    except OSError as exc:
        raise ToolError(f"Cannot read {what} {path}: {exc.strerror or exc}.") from None


def manifest_json(data: Mapping[str, Any]) -> bytes:
    """How the tools write a manifest: readable JSON (what is signed is the canonical form)."""
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def public_file(private_path: Path) -> Path:
    return private_path.with_name(private_path.name + ".pub")


# -- keygen ---------------------------------------------------------------------------------------

@dataclass
class KeyInfo:
    key_id: str
    public_key: str
    private_path: Path
    public_path: Path

    def to_dict(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "public_key": self.public_key, "private_key_file": str(self.private_path),
                "public_key_file": str(self.public_path)}

    def app_yml(self) -> str:
        return (f"remote:\n  trusted_keys:\n    - id: {self.key_id}\n      public_key: {self.public_key}\n")


def keygen(out: Path, *, key_id: str | None = None, force: bool = False) -> KeyInfo:
    from .signing import b64, generate_private_key, key_id_for, private_pem, public_raw

    if out.exists() and not force:
        raise ToolError(f"{out} already exists; keygen never overwrites a key (use --force to replace it).")
    if not out.parent.is_dir():  # a new keys/ directory: private, like the key it holds
        try:
            out.parent.mkdir(mode=0o700, parents=True)
        except OSError as exc:
            raise ToolError(f"Cannot create the directory {out.parent} for the key: {exc.strerror}.") from None
    key = generate_private_key()
    raw = public_raw(key)
    kid = key_id or key_id_for(raw)
    if not kid.strip() or any(c.isspace() for c in kid):
        raise UsageError(f"The key id {kid!r} must be a non-empty word without spaces.")
    with contextlib.suppress(FileNotFoundError):
        if force:
            out.unlink()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, private_pem(key))
    finally:
        os.close(fd)
    info = KeyInfo(kid, b64(raw), out, public_file(out))
    _write(info.public_path, (json.dumps({"id": kid, "public_key": info.public_key}, indent=2) + "\n").encode())
    return info


# -- pack -------------------------------------------------------------------------------------------

def pack(entries_path: Path, *, name: str, version: int, out: Path | None, allowlist: Sequence[str],
         generated_at: str | None = None, expires_in: float | None = None) -> tuple[dict[str, Any], Path | None]:
    """A manifest (unsigned) around the entries in `entries_path`; refuses entries a sync would
    reject. `expires_in` (seconds from now) sets `expires_at`; `sign --expires-in` can too."""
    from .manifest import Manifest, check_entries

    try:
        data = load_document(_read(entries_path, "The entries file"), f"the entries file {entries_path}")
    except ManifestError as exc:
        raise ToolError(f"{str(exc)[0].upper()}{str(exc)[1:]}.") from None
    entries = data.get("entries") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ToolError(f"{entries_path} must hold a list of entries (or a mapping with `entries:`).")
    stamp = generated_at or datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace(
        "+00:00", "Z")
    manifest: dict[str, Any] = {"version": version, "name": name, "generated_at": stamp}
    if expires_in is not None:
        manifest["expires_at"] = format_utc(time.time() + expires_in)
    manifest.update(entries=entries, signatures=[])
    model, errors = check(Manifest, manifest)
    if model is None:
        raise ToolError(f"The manifest would be invalid: {describe_errors(errors)}.")
    _, rejected = check_entries(model, allowlist)
    if rejected:
        reasons = "; ".join(f"{r.label()}: {r.reason}" for r in rejected[:5])
        more = f" (and {len(rejected) - 5} more)" if len(rejected) > 5 else ""
        raise ToolError(f"{len(rejected)} entr{'y' if len(rejected) == 1 else 'ies'} would be rejected: "
                        f"{reasons}{more}.")
    if out is not None:
        _write(out, manifest_json(manifest))
    return manifest, out


# -- sign ---------------------------------------------------------------------------------------------

def _key_id(private_path: Path, raw_public: bytes, given: str | None) -> str:
    from .signing import key_id_for

    if given:
        return given
    pub = public_file(private_path)
    if pub.exists():
        try:
            recorded = json.loads(pub.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = None
        if isinstance(recorded, dict) and isinstance(recorded.get("id"), str):
            from .signing import b64

            if recorded.get("public_key") == b64(raw_public):
                return recorded["id"]
    return key_id_for(raw_public)


@dataclass
class Signed:
    key_id: str
    path: Path
    manifest: dict[str, Any]
    dropped: list[str]  # key ids whose signatures no longer matched the changed content

    @property
    def expires_at(self) -> str:
        return str(self.manifest["expires_at"])


def sign(manifest_path: Path, key_path: Path, *, key_id: str | None = None, out: Path | None = None,
         expires_in: float | None = None, version: int | None = None) -> Signed:
    """Sign `manifest_path` with the PEM key at `key_path`, after setting `expires_at` to
    `expires_in` seconds from now and `version` when given. Changing either changes the signed
    content, so the other keys' signatures are dropped (they would no longer verify) and named."""
    from .signing import b64, load_private_key, public_raw, sign_manifest, verify

    given = _read(manifest_path, "The manifest")
    try:
        before = load_document(given, f"the manifest {manifest_path}")
    except ManifestError as exc:
        raise ToolError(f"{str(exc)[0].upper()}{str(exc)[1:]}.") from None
    changes: dict[str, Any] = {}
    if version is not None:
        changes["version"] = version
    if expires_in is not None:
        changes["expires_at"] = format_utc(time.time() + expires_in)
    # The version is set before parsing: it may be what is wrong (an old string version).
    parsed = _parse(manifest_path, manifest_json({**before, **changes}) if changes and isinstance(before, dict)
                    else given)
    _check_expiry(manifest_path, parsed.model.expires_at)
    try:
        key = load_private_key(_read(key_path, "The private key"))
    except ValueError as exc:
        raise ToolError(f"{key_path}: {exc}.") from None
    raw = public_raw(key)
    kid = _key_id(key_path, raw, key_id)
    data = dict(parsed.data)
    dropped: list[str] = []
    if any(before.get(k) != v for k, v in changes.items()):
        dropped = [str(s.get("key_id")) for s in data.get("signatures") or []
                   if isinstance(s, dict) and s.get("key_id") != kid]
        data["signatures"] = []
    signed = sign_manifest(data, key, kid)
    body = manifest_json(signed)
    check = parse_manifest(body)  # what is written must verify against this very key
    result = verify(check.data, check.model.signatures, {kid: b64(raw)}, threshold=1, required=True)
    if not result.ok:  # pragma: no cover - would be a bug in canonical_bytes
        raise ToolError(f"The signed manifest does not verify ({result.reason}); nothing was written.")
    target = out or manifest_path
    _write(target, body)
    return Signed(kid, target, signed, dropped)


def _check_expiry(path: Path, expires_at: str | None) -> None:
    """`sign` refuses what a sync would refuse: no expiry, or one already past."""
    from .freshness import parse_utc

    if expires_at is None:
        raise ToolError(f"{path} has no expires_at; give --expires-in (e.g. 30d): a source that requires "
                        "signatures refuses a signed manifest that never expires.")
    ts = parse_utc(expires_at)  # the schema checked its form
    if ts <= time.time():
        raise ToolError(f"{path} expired at {when(ts)}; give --expires-in (and a higher --version if it was "
                        "published) to sign it with a new expiry.")


def _parse(path: Path, raw: bytes | None = None, *, upstream_ok: bool = False) -> Any:
    """The manifest at `path` (or `raw`); with `upstream_ok`, upstream Oneiric's format too
    (verify reads it; sign refuses it: `manifest import` makes it ours first)."""
    from . import upstream

    data = _read(path, "The manifest") if raw is None else raw
    try:
        foreign = upstream.parse(data)
        if foreign is not None and not upstream_ok:
            raise ToolError(f"{path} is an upstream Oneiric manifest: convert it with 'oneiric manifest import "
                            f"{path} --out FILE' first, then sign that.")
        return foreign or parse_manifest(data)
    except ManifestError as exc:
        raise ToolError(f"{path}: {exc}.") from None


# -- verify ---------------------------------------------------------------------------------------------

def parse_key_args(values: Sequence[str]) -> dict[str, str]:
    """`--public-key ID=BASE64` (repeatable) or `--public-key FILE.pub` (as keygen writes it)."""
    keys: dict[str, str] = {}
    for value in values:
        if "=" in value and not Path(value).exists():
            kid, _, key = value.partition("=")
            keys[kid.strip()] = key.strip()
            continue
        path = Path(value)
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))
            keys[str(recorded["id"])] = str(recorded["public_key"])
        except (OSError, ValueError, KeyError, TypeError):
            raise UsageError(f"--public-key {value}: give ID=BASE64 or a .pub file written by keygen.") from None
    return keys


def verify_file(manifest_path: Path, keys: Mapping[str, str], *, threshold: int, allowlist: Sequence[str],
                required: bool = True) -> dict[str, Any]:
    """Verify a manifest file; returns the report. Raises RemoteSyncFailed (exit 6) when the
    signatures do not verify."""
    from . import upstream
    from .fetch import Location, artifact_refusal
    from .freshness import EXPIRED
    from .manifest import check_entries
    from .signing import verify

    parsed = _parse(manifest_path, upstream_ok=True)
    if isinstance(parsed, upstream.UpstreamManifest):  # upstream Oneiric's format, by its own rules
        result = upstream.verify(parsed.original, keys, threshold=threshold, required=required)
    else:
        result = verify(parsed.data, parsed.model.signatures, keys, threshold=threshold, required=required,
                        message=parsed.signed_bytes)
    location = Location("file", path=manifest_path.resolve())
    accepted, rejected = check_entries(parsed.model, allowlist,
                                       artifact_check=lambda uri: artifact_refusal(location, uri))
    expiry = expiry_report(parsed.freshness.expires_ts)
    report = {"file": str(manifest_path), "manifest": parsed.summary(), "signature": result.to_dict(),
              "expiry": expiry, "accepted": len(accepted), "rejected": [r.to_dict() for r in rejected], "ok": True}
    err: RemoteSyncFailed | None = None
    if not result.ok:
        err = RemoteSyncFailed(f"{manifest_path} does not verify: {result.reason}.", "signature")
    elif expiry["state"] == "expired":
        err = RemoteSyncFailed(f"{manifest_path} ({parsed.model.name} v{parsed.model.version}) is signed but "
                               f"expired at {when(expiry['ts'])}: a sync refuses it; sign it again with "
                               "--expires-in and a higher --version.", EXPIRED)
    elif expiry["state"] == "none" and required:
        err = RemoteSyncFailed(f"{manifest_path} has no expires_at: a source that requires signatures refuses "
                               "it; sign it again with --expires-in (e.g. 30d).", "schema")
    report["ok"] = err is None
    if err is not None:
        err.report = report
        raise err
    return report


def expiry_report(ts: float | None, now: float | None = None) -> dict[str, Any]:
    """{state: valid | expired | none, at, ts, seconds_left} of an `expires_at`."""
    now = time.time() if now is None else now
    if ts is None:
        return {"state": "none", "at": None, "ts": None, "seconds_left": None}
    return {"state": "expired" if now >= ts else "valid", "at": format_utc(ts), "ts": ts,
            "seconds_left": round(ts - now, 3)}


def export_settings(settings_dir: Path, *, name: str | None, version: int, out: Path | None) -> dict[str, Any]:
    """The candidates of `settings_dir`'s domain files (with their provider settings merged in,
    as the engine builds them) as a manifest, unsigned."""
    from ..settings import SettingsLoader

    snapshot = SettingsLoader(settings_dir).load()
    if snapshot.problems:
        raise ToolError(f"{settings_dir} has settings problems ({snapshot.problems[0]}); fix them before exporting.")
    entries = []
    for domain, layer in snapshot.domains.items():
        for spec in layer.candidates:
            merged = {**spec.settings, **layer.provider_settings.get(spec.key, {}).get(spec.provider, {})}
            entry: dict[str, Any] = {"domain": domain.value, "key": spec.key, "provider": spec.provider,
                                     "factory": spec.factory, "priority": spec.priority,
                                     "stack_level": spec.stack_level}
            if merged:
                entry["settings"] = merged
            if spec.metadata:
                entry["metadata"] = dict(spec.metadata)
            entries.append(entry)
    manifest = {"version": version, "name": name or settings_dir.resolve().name,
                "generated_at": format_utc(time.time()), "entries": entries}
    if out is not None:
        _write(out, manifest_json(manifest))
    return manifest


def import_upstream(path: Path, *, version: int | None = None, name: str | None = None,
                    out: Path | None = None) -> tuple[dict[str, Any], list[str], Path | None]:
    """Upstream Oneiric's manifest at `path` as ours, unsigned (sign it with `manifest sign`):
    the manifest, what was not honoured, and where it was written (None: not written)."""
    from . import upstream

    try:
        data = load_document(_read(path, "The manifest"), f"the manifest {path}")
    except ManifestError as exc:
        raise ToolError(f"{path}: {exc}.") from None
    if not upstream.is_upstream(data):
        raise ToolError(f"{path} is not an upstream Oneiric manifest (it has version, name or generated_at, or no "
                        "entries): it is ours already.")
    try:
        converted = upstream.convert(data, version=version, name=name)
    except ManifestError as exc:
        raise ToolError(f"{path}: {exc}.") from None
    manifest = converted.data
    if out is not None:
        _write(out, manifest_json(manifest))
    return manifest, converted.not_honoured, out


__all__ = ["KeyInfo", "Signed", "ToolError", "expiry_report", "export_settings", "import_upstream", "keygen",
           "manifest_json", "pack",
           "parse_key_args", "sign", "verify_file"]
