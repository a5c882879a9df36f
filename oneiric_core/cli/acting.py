"""The commands that change something (and a probe): pause, resume, drain, swap, approve,
reject, health --probe, remote-sync.

One way, whatever runs the host: a change is a request on the Operator port
(operator_port.py), sent over the host's socket while another process hosts, else run here,
where it changes the desired state and says so. The command's code is the same either way.
Before any settings are loaded, when the state store can be found cheaply and a host holds
it, the request goes straight to the host's socket (`via_host_quick`): a script's `oneiric
pause` does not pay for loading the settings the host already has.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NotFound
from .output import print_json, say
from .parser import Commands, waits
from .views import host_json, lease_json, overall_line, print_probe_table

if TYPE_CHECKING:
    from ..commands import CommandResult
    from ..engine import Engine
    from ..operator_port import Operator
    from ..store import StateStore


def add_parsers(commands: Commands) -> None:
    for name, text in (("pause", "stop new work on a key"), ("resume", "accept work on a key again")):
        p = commands.add(name, text, run=cmd_act, ref="required", positional_key=True,
                         example=[f"oneiric {name} cache --note 'redis maintenance'",
                                  f"oneiric {name} --domain adapter --key cache"])
        p.add_argument("--note", help="why (journaled)")
        waits(p)
    pause = commands.sub.choices["pause"]
    pause.add_argument("--resume", dest="resume_instead", action="store_true",
                       help="resume the key instead (upstream Oneiric's spelling of 'oneiric resume KEY')")
    p = commands.add("drain", "stop new work on a key and wait for in-flight work to finish", run=cmd_act,
                     ref="required", positional_key=True, example="oneiric drain cache --timeout 60")
    p.add_argument("--note", help="why (journaled)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for drained (default 30)")
    p.add_argument("--clear", "--resume", dest="resume_instead", action="store_true",
                   help="clear the drain: resume the key (upstream Oneiric's spelling of 'oneiric resume KEY')")
    waits(p)
    p = commands.add("swap", "propose a swap of a key to another provider; applied as the approvals policy allows",
                     run=cmd_act, ref="required", positional_key=True,
                     example=["oneiric swap cache --provider memory-large --dry-run",
                              "oneiric swap --key cache --provider redis --reason 'move to the shared cache'"])
    p.add_argument("--provider", required=True, help="the provider to swap to")
    p.add_argument("--force", action="store_true", help="bind it even if its health check fails, and swap a paused key")
    p.add_argument("--dry-run", action="store_true", help="print from, to and blockers; change nothing")
    p.add_argument("--reason", default="", help="why (shown to the approver, journaled)")
    p.add_argument("--sign", action="store_true",
                   help="sign the request with your ssh-agent key (app.yml access.allowed_signers)")
    p.add_argument("--sign-key", metavar="KEY", help="with --sign: which agent key (fingerprint or public key)")
    waits(p)
    for name, text in (("approve", "approve a pending proposal and apply it"),
                       ("reject", "reject a pending proposal")):
        p = commands.add(name, text, run=cmd_act, example=f"oneiric {name} 3 --comment 'checked with the owner'")
        p.add_argument("id", type=int, metavar="ID", help="the proposal number (see 'oneiric approvals')")
        p.add_argument("--comment", help="why (journaled)")
        p.add_argument("--sign", action="store_true",
                       help="sign the decision with your ssh-agent key (app.yml access.allowed_signers)")
        p.add_argument("--sign-key", metavar="KEY", help="with --sign: which agent key (fingerprint or public key)")
        waits(p)


def add_remote_sync(commands: Commands) -> None:
    p = commands.add("remote-sync", "sync remote manifests now: through the running host, else in this process",
                     run=cmd_act, example=["oneiric remote-sync --dry-run", "oneiric remote-sync --source demo",
                              "oneiric remote-sync --manifest https://manifests.example.com/acme.json"])
    p.add_argument("--source", metavar="NAME", help="only this source (default: every source in app.yml)")
    p.add_argument("--manifest", metavar="URI", help="one-shot: sync this manifest (URL or file), which no app.yml "
                   "source names, as source remote:manifest; verified by app.yml's trusted keys, never refreshed")
    p.add_argument("--dry-run", action="store_true",
                   help="fetch and check everything, print what would be added, replaced and removed; change nothing")
    waits(p)


def host_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]] | None:
    """The request for these arguments, or None when this command is not an action."""
    ref = {"domain": getattr(args, "domain", None), "key": getattr(args, "key", None)}
    if args.command in ("pause", "resume"):
        return args.command, {**ref, "note": args.note}
    if args.command == "drain":
        return "drain", {**ref, "note": args.note, "timeout": args.timeout}
    if args.command == "health" and args.probe:
        return "probe", ref
    if args.command == "swap":
        return "swap", {**ref, "provider": args.provider, "force": args.force or None,
                        "dry_run": args.dry_run or None, "reason": args.reason or None, "source": "cli"}
    if args.command in ("approve", "reject"):
        return args.command, {"id": args.id, "comment": args.comment}
    if args.command == "remote-sync":
        return "sync", {"source": args.source, "dry_run": args.dry_run or None, "manifest": args.manifest}
    return None


def _act(operator: Operator, args: argparse.Namespace, store: StateStore, host: dict[str, Any] | None) -> int:
    """Send this command's request through `operator` and print the answer; `host` is the
    live host's lease as `--json` shows it (None when this process runs the request)."""
    request = host_request(args)
    assert request is not None, "only the commands host_request knows come here"
    kind, payload = request
    if kind in ("approve", "reject") and args.sign:
        payload["signature"] = _sign(kind, args, store)
    elif kind == "swap" and args.sign and not args.dry_run:
        from ..approval_signing import sign_request

        payload["signature"], payload["signed_at"] = sign_request(payload, store, key=args.sign_key)
    patience = max(args.wait, args.timeout + 5) if kind == "drain" else args.wait
    result = operator.run_blocking(kind, wait=patience, **payload)
    where = (f"the running host (pid {host['pid']} on {host['hostname']})" if host and host.get("alive")
             else operator.describe() if operator.is_remote
             else "this process (no host is running)")
    return _print_result(args, result, where=where, host=host)


def _sign(kind: str, args: argparse.Namespace, store: StateStore) -> str:
    """A decision signed by this operator's ssh-agent (approval_signing.py)."""
    from ..approval_signing import sign_decision

    record = store.find_proposal(args.id)  # any node's: the decision goes to its node's host
    if record is None:
        raise NotFound(f"No proposal #{args.id} exists.")
    return sign_decision(kind, record, store, key=args.sign_key)


def via_host_quick(args: argparse.Namespace) -> int | None:
    """Before any settings are loaded, when the state store can be found cheaply and a host
    holds it: the request goes straight to the host's socket."""
    if host_request(args) is None or getattr(args, "target_node", None):
        return None
    path = _quick_store_path(args)
    if path is None or not path.is_file():
        return None
    from ..identity import other_process_alive
    from ..store import LEASE_STALE_AFTER_S, StateStore

    store = StateStore(path)
    try:
        lease = store.current_lease()
        if lease is None or lease.is_stale(time.time(), LEASE_STALE_AFTER_S) or \
                other_process_alive(lease.hostname, lease.pid) is False:
            return None
        from ..operator_port import Operator, OverSocket, display_name
        from ..wire import socket_path

        operator = Operator(OverSocket(socket_path(path.parent), display=display_name()), read_only=args.read_only)
        return _act(operator, args, store, lease_json(lease, store, alive=True))
    finally:
        store.close()


def cmd_act(engine: Engine, args: argparse.Namespace) -> int:
    """pause, resume, drain, swap, approve, reject, health --probe, remote-sync."""
    from ..operator_port import connect

    node = getattr(args, "target_node", None)
    operator = connect(engine, read_only=args.read_only or None, node=node)
    return _act(operator, args, engine.store, None if node and node != engine.node else host_json(engine))


def _quick_store_path(args: argparse.Namespace) -> Path | None:
    """Where the engine would put the state store, without loading the settings models:
    --state-dir, $ONEIRIC_STATE_DIR, app.yml `state_dir` (relative to the settings' parent),
    else .oneiric beside the settings (SettingsSnapshot.state_dir has the same rule). None
    when app.yml cannot be read simply, or when the store may be a database (store.url,
    $ONEIRIC_STORE_URL): the full path then decides (and reports problems)."""
    if os.environ.get("ONEIRIC_STORE_URL", "").strip():
        return None
    settings = Path(os.path.abspath(os.path.expanduser(args.settings)))
    from ..input_limits import LimitExceeded, read_capped

    try:
        text = read_capped(settings / "app.yml").decode("utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError, LimitExceeded):
        return None
    if re.search(r"^store\s*:", text, re.MULTILINE):
        return None
    if args.state_dir:
        return Path(args.state_dir).resolve() / "state.sqlite"
    env = os.environ.get("ONEIRIC_STATE_DIR", "").strip()
    if env:
        return Path(os.path.abspath(os.path.expanduser(env))) / "state.sqlite"
    configured = _app_state_dir(text)
    if configured is _UNREADABLE:
        return None
    if not configured:
        return settings.parent / ".oneiric" / "state.sqlite"
    state = Path(os.path.expanduser(configured))
    return Path(os.path.abspath(state if state.is_absolute() else settings.parent / state)) / "state.sqlite"


_UNREADABLE = object()
# `state_dir: some/path` on one line, as app.yml writes it: a plain scalar that YAML reads as
# that very string (no quotes, flow, anchors or tags), with an optional comment.
_PLAIN_STATE_DIR = re.compile(r"state_dir:[ \t]*(?P<value>[\w./~-]*)[ \t]*(?:#.*)?")
_NOT_A_STRING = re.compile(r"~|null|true|false|[-+]?[\d._]+(?:e[-+]?\d+)?", re.IGNORECASE)


def _app_state_dir(text: str) -> Any:
    """app.yml's `state_dir` (None when unset), or _UNREADABLE. One plain line is read
    directly; anything else goes through YAML (ruamel's C loader costs ~25 ms to import)."""
    lines = [line for line in text.splitlines() if "state_dir" in line]
    if not lines:
        return None
    if len(lines) == 1 and (match := _PLAIN_STATE_DIR.fullmatch(lines[0].rstrip())):
        value = match["value"]
        if not value:
            return None
        if not _NOT_A_STRING.fullmatch(value):
            return value
    try:
        from ruamel.yaml import YAML

        data = YAML(typ="safe").load(text)
    except Exception:  # noqa: BLE001 - outside text: ruamel raises TypeError, IndexError, AttributeError too on malformed text
        return _UNREADABLE
    value = data.get("state_dir") if isinstance(data, dict) else None
    return value if value is None or isinstance(value, str) else _UNREADABLE


def _print_result(args: argparse.Namespace, result: CommandResult, *, where: str = "",
                  host: dict[str, Any] | None = None) -> int:
    """Print a command's answer: the data as JSON (same shapes whoever ran it) or the
    sentence; a failure's sentence goes to stderr. Returns the exit code."""
    if args.json and result.data:
        if args.command == "health":
            print_json({"probed": True, "host": host, "results": result.data.get("results", [])})
        elif args.command in ("pause", "resume", "drain"):
            print_json(result.data)
        else:
            print_json({"message": result.message, **result.data})
    elif args.command == "remote-sync":
        from .remote import print_sync

        print_sync(result)
        return result.exit_code
    elif args.command == "health" and result.data:
        results = result.data.get("results", [])
        out = print_probe_table(results, f"probed by {where}")
        failed = [f"{r['domain']}/{r['key']}" for r in results if r["status"] == "failed"]
        if failed:
            out.print(f"{len(failed)} unhealthy: " + ", ".join(failed))
        out.print(overall_line(results))
    elif result.ok:
        say(result.message)
    if not result.ok:
        say(f"oneiric: {result.message}", err=True)
    return result.exit_code
