"""The remote commands of `oneiric`: remote-status, remote-sync and manifest {keygen,pack,sign,verify}.

parser.py builds the command line and main.py dispatches; this module adds the remote
subcommands and implements them. Output follows the CLI's rules: `--json` with a stable shape (README "JSON
shapes"), one-sentence errors, exit 6 when a remote source or a manifest fails (§10).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ExitCode, RemoteSyncFailed, UsageError
from ..humanize import age
from .output import ago, json_text, print_json, say
from .parser import Commands
from .views import host_json, host_line

EXIT_OK, EXIT_REMOTE = ExitCode.OK, ExitCode.REMOTE

if TYPE_CHECKING:
    from ..commands import CommandResult
    from ..engine import Engine
    from ..settings import AppSettings


def add_parsers(commands: Commands) -> None:
    commands.add("remote-status", "per remote source: state, last success and its age, failures, circuit breaker, "
                 "manifest, signature, entries, rejected entries", run=cmd_remote_status,
                 example=["oneiric remote-status", "oneiric remote-status --json"])

    manifest, msub = commands.group("manifest", "make, sign and check remote manifests", dest="manifest_command",
                                    example=["oneiric manifest keygen --out keys/acme.pem",
                                             "oneiric manifest verify manifest.json"])
    manifest.handle(run_manifest, needs_engine=False)
    p = msub.add_parser("keygen", help="a new ed25519 signing key (private key file 0600 + its .pub)",
                        example="oneiric manifest keygen --out keys/acme.pem --key-id acme-2026")
    p.add_argument("--out", required=True, type=Path, metavar="FILE", help="where to write the private key (PEM)")
    p.add_argument("--key-id", help="the key's id in app.yml (default: ed25519- and 16 hex digits of its hash)")
    p.add_argument("--force", action="store_true", help="replace an existing key file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = msub.add_parser("pack", help="a manifest from a YAML/JSON list of entries",
                        example="oneiric manifest pack entries.yml --name acme --version 1 --out manifest.json")
    p.add_argument("entries", type=Path, nargs="?", metavar="ENTRIES",
                   help="YAML or JSON: a list of entries, or {entries: [...]} (or --input, upstream's spelling)")
    p.add_argument("--input", dest="entries_input", type=Path, metavar="FILE", help=argparse.SUPPRESS)
    p.add_argument("--name", help="the manifest's name (required)")
    p.add_argument("--version", type=_version, metavar="N",
                   help="the manifest's version (required): an integer >= 1, raised with every change (consumers "
                   "refuse a lower one, and the same one with other content)")
    p.add_argument("--generated-at", help="ISO 8601 time (default: now, UTC)")
    p.add_argument("--expires-in", type=_duration, metavar="DURATION",
                   help="set expires_at this far from now (30d, 12h, 90m; sign can set it too)")
    p.add_argument("--out", "--output", type=Path, metavar="FILE", help="write it here (default: print it)")
    p.add_argument("--stdout", action="store_true", help=argparse.SUPPRESS)  # upstream's: printing is the default
    p.add_argument("--compact", action="store_true", help="print it on one line (default: indented)")
    p.add_argument("--pretty", action="store_false", dest="compact", help=argparse.SUPPRESS)
    p = msub.add_parser("sign", help="add this key's ed25519 signature to a manifest",
                        example="oneiric manifest sign manifest.json --key keys/acme.pem --expires-in 30d")
    p.add_argument("manifest", type=Path, nargs="?", metavar="MANIFEST", help="the manifest (or --input)")
    p.add_argument("--input", dest="manifest_input", type=Path, metavar="FILE", help=argparse.SUPPRESS)
    p.add_argument("--key", "--private-key", dest="key", type=Path, metavar="FILE",
                   help="the private key (from keygen; required)")
    p.add_argument("--key-id", help="the key's id (default: from FILE.pub, else derived from the key)")
    p.add_argument("--expires-in", type=_duration, metavar="DURATION",
                   help="set expires_at this far from now before signing (30d, 12h, 90m); needed unless the "
                   "manifest has a future expires_at")
    p.add_argument("--expires-at", metavar="TIME", help="set expires_at to this ISO 8601 time instead")
    p.add_argument("--append", action="store_true", help=argparse.SUPPRESS)  # upstream's: signatures always add up
    p.add_argument("--version", type=_version, metavar="N", help="set the version before signing (raise it "
                   "when re-signing a published manifest)")
    p.add_argument("--out", "--output", type=Path, metavar="FILE",
                   help="write the signed manifest here (default: in place)")
    p = msub.add_parser("verify", help="check a manifest's signatures and entries",
                        example="oneiric manifest verify manifest.json --public-key keys/acme.pem.pub")
    p.add_argument("manifest", type=Path, metavar="MANIFEST")
    p.add_argument("--public-key", action="append", default=[], metavar="ID=BASE64|FILE.pub",
                   help="a trusted key (repeatable; default: app.yml remote.trusted_keys)")
    p.add_argument("--threshold", type=int, help="distinct keys needed (default: app.yml remote.threshold, "
                   "or 1 with --public-key)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = msub.add_parser("export", help="the candidates of this settings directory's domain files as a manifest, "
                        "unsigned (then sign it)", example="oneiric manifest export --name acme --version 4 "
                        "--out manifest.json")
    p.add_argument("--name", help="its name (default: the settings directory's name)")
    p.add_argument("--version", type=_version, metavar="N", default=1, help="its version (default 1)")
    p.add_argument("--out", "--output", type=Path, metavar="FILE", help="write it here (default: print it)")
    p = msub.add_parser("import", help="an upstream Oneiric manifest as ours, unsigned (then sign it), naming "
                        "every field not honoured", example="oneiric manifest import upstream.json --out manifest.json")
    p.add_argument("manifest", type=Path, metavar="MANIFEST", help="upstream Oneiric's manifest (JSON or YAML)")
    p.add_argument("--out", type=Path, metavar="FILE", help="write it here (default: print it)")
    p.add_argument("--version", type=_version, metavar="N", help="its version (default: signed_at as POSIX seconds)")
    p.add_argument("--name", help="its name (default: upstream's source field)")
    p.add_argument("--json", action="store_true", help="print JSON")


def _version(text: str) -> int:
    from ..remote.freshness import MAX_VERSION

    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_VERSION or not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"the version must be an integer of at least 1, not '{text}'")
    return value


def _duration(text: str) -> float:
    from ..remote.freshness import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _n(count: Any, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _in(ts: float | None) -> str:
    if ts is None:
        return "-"
    now = time.time()
    return "now" if ts <= now else f"in {age(now, now=ts)}"


# -- remote-status ------------------------------------------------------------------------------------

def cmd_remote_status(engine: Engine, args: argparse.Namespace) -> int:
    sources = engine.remote.statuses()
    failing = [s for s in sources if s["consecutive_failures"] or s["breaker"].get("state") != "closed"]
    if args.json:
        print_json({"host": host_json(engine), "sources": sources})
        return EXIT_REMOTE if failing else EXIT_OK
    if not sources:
        say("No remote sources are configured (app.yml `remote.sources`).")
        return EXIT_OK
    lease, alive = engine.host()
    if lease is None or not alive:
        say("no host running: showing what the last sync recorded (the next host starts from the cached manifests)")
    else:
        say(host_line(engine))
    for s in sources:
        say()
        _print_source(s)
    return EXIT_REMOTE if failing else EXIT_OK


def _print_source(s: dict[str, Any]) -> None:
    sig_rule = "signatures required" if s["signature_required"] else "signatures optional"
    say(f"{s['name']}: {s['state'].upper()}  {s['uri']}  (every {s['interval_s']:g} s; {sig_rule})")
    reported = s.get("reported_by") or {}
    if reported:
        say(f"  reported by pid {reported.get('pid')} on {reported.get('hostname')} {ago(reported.get('updated_at'))}")
    next_at = f"; next attempt {_in(s['next_attempt_at'])}" if s.get("next_attempt_at") else ""
    say(f"  last attempt {ago(s['last_attempt_at'])}; last success {ago(s['last_success_at'])}{next_at}")
    say(f"  failures: {s['consecutive_failures']} consecutive, {s['total_failures']} total; "
          f"{s['total_syncs']} good sync(s)")
    b = s["breaker"]
    line = f"  breaker: {b.get('state', 'closed')}"
    if b.get("state") in ("open", "half-open"):
        line += f" (trial sync {_in(b.get('retry_at'))})"
    if b.get("threshold"):
        line += f"; opens after {b['threshold']} failed syncs, trial after {b.get('reset_s', 0):g} s"
    say(line)
    m = s.get("manifest")
    if m:
        src = {"cache": "the cache (last good)", "fetched": "the source"}.get(s.get("in_force") or "", "?")
        say(f"  manifest: {m.get('name')} v{m.get('version')}, generated {m.get('generated_at')}, "
              f"sha256 {str(m.get('digest', ''))[:16]}..., {_n(m.get('entries'), 'entry', 'entries')}, from {src}"
              + (" (STALE)" if s.get("stale") else ""))
        say(f"  expires: {_expiry(m.get('expires_at'))}")
    else:
        say("  manifest: none in force")
    accepted = s.get("accepted")
    if accepted:
        v = accepted.get("version")
        expiry = "" if m else f", expires {_expiry(accepted.get('expires_at'))}"
        say(f"  accepted: v{v} is the highest version ever accepted (signed sha256 "
            f"{str(accepted.get('signed_digest', ''))[:16]}...{expiry}); a lower one, or v{v} with other content, "
              "is refused")
    else:
        say("  accepted: no version accepted yet")
    sig = s.get("signature")
    if sig:
        keys = ", ".join(sig.get("key_ids") or []) or "-"
        say(f"  signature: {sig.get('status')} (keys: {keys}; threshold {sig.get('threshold')}): {sig.get('reason')}")
    entries = s.get("entries") or {}
    say("  entries: " + (", ".join(f"{d} {n}" for d, n in entries.items()) if entries else "none"))
    rejected = s.get("rejected") or []
    if rejected:
        say(f"  rejected: {len(rejected)}")
        for r in rejected:
            what = "/".join(p for p in (r.get("domain"), r.get("key")) if p) or "?"
            say(f"    #{r.get('index')} {what} {r.get('provider') or ''}: {r.get('reason')}".replace("  ", " "))
    else:
        say("  rejected: none")
    if s.get("last_error"):
        say(f"  last error ({s.get('last_error_kind')}, {ago(s.get('last_error_at'))}): {s['last_error']}")


def _expiry(expires_at: Any) -> str:
    """`2036-11-30T00:00:00Z (in 3650.0d)`, `... EXPIRED (2.0h ago)` or `never (no expires_at)`."""
    from ..remote.freshness import parse_utc, when

    if not isinstance(expires_at, str):
        return "never (no expires_at)"
    try:
        ts = parse_utc(expires_at)
    except ValueError:
        return f"{expires_at} (unreadable)"
    text = when(ts)
    return text.replace(" (", " EXPIRED (", 1) if ts <= time.time() else text


# -- remote-sync ---------------------------------------------------------------------------------------

def print_sync(result: CommandResult) -> None:
    """remote-sync's text output: the sentence per source, then what changes (dry run) or changed."""
    results = result.data.get("results") or []
    if not results:
        if result.ok:
            say(result.message)
        else:
            say(f"oneiric: {result.message}", err=True)
        return
    for r in results:
        say(r["message"], err=not (r["ok"] or r.get("skipped")))
        for mark, name in (("+", "added"), ("~", "replaced"), ("-", "removed")):
            for label in r.get(name) or []:
                say(f"  {mark} {label}")
            more = (r.get("counts") or {}).get(name, 0) - len(r.get(name) or [])
            if more > 0:
                say(f"  {mark} ... and {more} more")
        for rej in r.get("rejected") or []:
            what = "/".join(p for p in (rej.get("domain"), rej.get("key")) if p) or "?"
            say(f"  rejected #{rej.get('index')} {what} {rej.get('provider') or ''}: {rej.get('reason')}")
        for note in r.get("notes") or []:
            say(f"  note: {note}")
        if r.get("proposals"):
            say(f"  swap proposals: {', '.join('#' + str(p) for p in r['proposals'])} "
                  "(see 'oneiric approvals')")
    if result.data.get("note"):
        say(f"note: {result.data['note']}")


# -- manifest ----------------------------------------------------------------------------------------

def run_manifest(args: argparse.Namespace) -> int:
    from ..remote import tools

    action = getattr(args, "manifest_command", None)
    if action == "keygen":
        info = tools.keygen(args.out, key_id=args.key_id, force=args.force)
        if args.json:
            print_json(info.to_dict())
        else:
            say(f"Wrote the private key to {info.private_path} (mode 0600; keep it secret, never commit it) "
                  f"and the public key to {info.public_path}.")
            say(f"key id:     {info.key_id}")
            say(f"public key: {info.public_key}")
            say("Trust it in app.yml:")
            say(info.app_yml().rstrip())
        return EXIT_OK
    if action == "pack":
        args.entries = _one(args.entries, args.entries_input, "the entries file", "ENTRIES or --input FILE")
        if not args.name or args.version is None:
            raise UsageError("A manifest here carries a name and a version, raised with every change so consumers "
                             "refuse a rollback (upstream's have neither): add --name NAME --version N.")
        allowlist = _app(args).factory_allowlist
        manifest, out = tools.pack(args.entries, name=args.name, version=args.version, out=args.out,
                                   allowlist=allowlist, generated_at=args.generated_at, expires_in=args.expires_in)
        if out is None:  # the same JSON, never a raw control character
            sys.stdout.write(json_text(manifest, **({"separators": (",", ":")} if args.compact else {"indent": 2}))
                             + "\n")
        else:
            expiry = f"expires {manifest['expires_at']}" if "expires_at" in manifest else "no expiry yet"
            say(f"Wrote {out}: {manifest['name']} v{manifest['version']} with "
                f"{_n(len(manifest['entries']), 'entry', 'entries')}, {expiry}, unsigned (next: oneiric manifest "
                f"sign {out} --key KEY{'' if 'expires_at' in manifest else ' --expires-in 30d'}).")
        return EXIT_OK
    if action == "sign":
        args.manifest = _one(args.manifest, args.manifest_input, "the manifest", "MANIFEST or --input FILE")
        if args.key is None:
            raise UsageError("manifest sign needs the private key: --key FILE (or --private-key FILE).")
        expires_in = args.expires_in
        if args.expires_at:
            from ..remote.upstream import iso_to_utc

            expires_in = iso_to_utc(args.expires_at, "--expires-at")[0] - time.time()
        signed = tools.sign(args.manifest, args.key, key_id=args.key_id, out=args.out, expires_in=expires_in,
                            version=args.version)
        m = signed.manifest
        say(f"Signed {signed.path} with key {signed.key_id}: {m['name']} v{m['version']}, expires "
            f"{_expiry(signed.expires_at)}; {_n(len(m['signatures']), 'signature', 'signatures')}, and it "
              "verifies against that key.")
        if signed.dropped:
            say(f"Dropped the signature(s) of {', '.join(signed.dropped)}: the content they signed changed "
                  "(version or expiry); they must sign again.")
        return EXIT_OK
    if action == "verify":
        return _verify(args)
    if action == "export":
        manifest = tools.export_settings(Path(args.settings), name=args.name, version=args.version, out=args.out)
        if args.out is None:
            sys.stdout.write(json_text(manifest, indent=2) + "\n")
        else:
            say(f"Wrote {args.out}: {manifest['name']} v{manifest['version']} with "
                f"{_n(len(manifest['entries']), 'entry', 'entries')} from {args.settings}, unsigned (next: oneiric "
                f"manifest sign {args.out} --key KEY --expires-in 30d).")
        return EXIT_OK
    if action == "import":
        manifest, notes, out = tools.import_upstream(args.manifest, version=args.version, name=args.name, out=args.out)
        if args.json:
            print_json({"manifest": manifest, "not_honoured": notes, "out": None if out is None else str(out)})
            return EXIT_OK
        if out is None:
            sys.stdout.write(json_text(manifest, indent=2) + "\n")
        else:
            say(f"Wrote {out}: {manifest['name']} v{manifest['version']} with "
                f"{_n(len(manifest['entries']), 'entry', 'entries')}, unsigned (next: oneiric manifest sign {out} "
                "--key KEY --expires-in 30d).")
        for note in notes:
            say(f"not honoured: {note}", err=out is None)
        return EXIT_OK
    raise UsageError("manifest needs an action: keygen, pack, sign, verify or import (see 'oneiric manifest --help').")


def _verify(args: argparse.Namespace) -> int:
    from ..remote import tools

    app = _app(args)
    if args.public_key:
        keys = tools.parse_key_args(args.public_key)
        threshold = args.threshold or 1
    else:
        keys = {k.id: k.public_key for k in app.remote.trusted_keys}
        threshold = args.threshold or app.remote.threshold
        if not keys:
            raise UsageError("No trusted keys: give --public-key ID=BASE64 (or a .pub file), or list "
                             "remote.trusted_keys in app.yml.")
    if threshold < 1:
        raise UsageError("--threshold must be at least 1.")
    try:
        report = tools.verify_file(args.manifest, keys, threshold=threshold, allowlist=app.factory_allowlist)
    except RemoteSyncFailed as exc:
        refused = getattr(exc, "report", None)  # what verify_file found, when it got that far
        if args.json and refused is not None:
            print_json(refused)
        raise
    if args.json:
        print_json(report)
    else:
        m = report["manifest"]
        say(f"{args.manifest}: {m['name']} v{m['version']} verifies: {report['signature']['reason']}.")
        say(f"expires: {_expiry(m.get('expires_at'))}")
        say(f"entries: {report['accepted']} accepted, {len(report['rejected'])} rejected")
        for r in report["rejected"]:
            say(f"  rejected #{r['index']}: {r['reason']}")
        if m.get("format"):
            say(f"format: {m['format']} (upstream Oneiric), verified by its rules")
        for note in m.get("not_honoured") or []:
            say(f"  not honoured: {note}")
    return EXIT_OK


def _one(given: Any, flagged: Any, what: str, how: str) -> Any:
    """A file given as the word or as upstream's flag (--input), never both."""
    if given is not None and flagged is not None and given != flagged:
        raise UsageError(f"{what} is given twice ({given} and --input {flagged}); give it once.")
    if given is None and flagged is None:
        raise UsageError(f"Give {what}: {how}.")
    return given if given is not None else flagged


def _app(args: argparse.Namespace) -> AppSettings:
    """app.yml of --settings (defaults when there is none); a broken app.yml is an error."""
    from ..settings import APP_FILE, AppSettings, load_file

    directory = Path(args.settings)
    if not (directory / APP_FILE).exists():
        return AppSettings()
    app = load_file(directory / APP_FILE, AppSettings)
    assert isinstance(app, AppSettings)
    return app


__all__ = ["add_parsers", "cmd_remote_status", "print_sync", "run_manifest"]
