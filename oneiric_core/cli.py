"""The `oneiric` command: quick looks and scripts over the same engine the console uses.

Every read command has `--json` with a stable shape (README "JSON shapes"); errors are one
sentence on stderr and an exit code from ARCHITECTURE §10, never a traceback unless
`--debug`. With no host running, commands compute from settings and the store.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .cli_output import console as _console
from .cli_output import json_text, say
from .errors import NotFound, OneiricError, UsageError
from .humanize import age, millis
from .text import one_line

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_UNHEALTHY, EXIT_SWAP, EXIT_REMOTE = range(7)
WAIT_S = 30.0  # how long a command waits for a running host's answer (--wait)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one sentence with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help').")


class _VersionAction(argparse.Action):
    """`--version`: the version is looked up only when asked (importlib.metadata costs
    milliseconds every other command would pay)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # type: ignore[override]
        from .cli_setup import version_line

        say(version_line())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    root = _Parser(prog="oneiric", description="Oneiric Console: operate Oneiric component runtimes.")
    root.add_argument("--version", action=_VersionAction, help="print the version and exit")
    root.add_argument("--settings", default=os.environ.get("ONEIRIC_SETTINGS", "settings"),
                      help="settings directory (default: ./settings or $ONEIRIC_SETTINGS)")
    root.add_argument("--state-dir", default=None, help="state directory (default: from app.yml, else .oneiric beside the settings)")
    root.add_argument("--read-only", action="store_true", help="refuse every change")
    root.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = root.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def cmd(name: str, help_text: str, *, json_flag: bool = True, ref: str | None = None) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if ref:
            p.add_argument("--domain", help="adapter, service, task, event, workflow or action")
            p.add_argument("--key", required=(ref == "required"), help="the component key, e.g. cache")
        if json_flag:
            p.add_argument("--json", action="store_true", help="print JSON (shape in the README)")
        return p

    def waits(p: argparse.ArgumentParser) -> None:
        p.add_argument("--wait", type=float, default=WAIT_S, metavar="SECONDS",
                       help=f"with a host running: how long to wait for its answer (default {WAIT_S:g})")

    p = cmd("console", "the operations console (Textual); hosts the state dir unless another process does",
            json_flag=False)
    p.add_argument("--theme", help="a Textual theme, e.g. ansi-dark (default: $TEXTUAL_THEME or textual-dark)")
    cmd("status", "every component: winner, serving provider, state, activity, health", ref="optional")
    p = cmd("list", "every registered candidate and how it ranks", ref="optional")
    p.add_argument("--shadowed", action="store_true", help="only candidates that do not win")
    cmd("explain", "why a provider wins a key: every candidate in rank order with the deciding rule", ref="required")
    p = cmd("health", "last known health, or probe now with --probe", ref="optional")
    p.add_argument("--probe", action="store_true", help="probe now: the running host's live providers "
                   "(journaled), else build each provider here, probe it and stop it")
    waits(p)
    cmd("activity", "paused, draining and drained keys")
    for name, text in (("pause", "stop new work on a key"), ("resume", "accept work on a key again")):
        p = cmd(name, text, ref="required")
        p.add_argument("--note", help="why (journaled)")
        waits(p)
    p = cmd("drain", "stop new work on a key and wait for in-flight work to finish", ref="required")
    p.add_argument("--note", help="why (journaled)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for drained (default 30)")
    waits(p)
    p = cmd("swap", "propose a swap of a key to another provider; applied as the approvals policy allows",
            ref="required")
    p.add_argument("--provider", required=True, help="the provider to swap to")
    p.add_argument("--force", action="store_true", help="bind it even if its health check fails, and swap a paused key")
    p.add_argument("--dry-run", action="store_true", help="print from, to and blockers; change nothing")
    p.add_argument("--reason", default="", help="why (shown to the approver, journaled)")
    p.add_argument("--sign", action="store_true",
                   help="sign the request with your ssh-agent key (app.yml access.allowed_signers)")
    p.add_argument("--sign-key", metavar="KEY", help="with --sign: which agent key (fingerprint or public key)")
    waits(p)
    p = cmd("approvals", "pending and recent swap proposals")
    p.add_argument("--limit", type=int, default=20, help="how many decided proposals to show (default 20)")
    for name, text in (("approve", "approve a pending proposal and apply it"),
                       ("reject", "reject a pending proposal")):
        p = cmd(name, text)
        p.add_argument("id", type=int, metavar="ID", help="the proposal number (see 'oneiric approvals')")
        p.add_argument("--comment", help="why (journaled)")
        p.add_argument("--sign", action="store_true",
                       help="sign the decision with your ssh-agent key (app.yml access.allowed_signers)")
        p.add_argument("--sign-key", metavar="KEY", help="with --sign: which agent key (fingerprint or public key)")
        waits(p)
    p = cmd("run", "the headless host (for systemd): hosts the state dir until SIGTERM, SIGINT or SIGHUP, "
            "printing every journal event as a JSON line", json_flag=False)
    p.add_argument("--stop-timeout", type=float, default=None, metavar="SECONDS",
                   help="on a signal: how long running commands get to finish, then how long providers "
                   "get to stop (default: lifecycle.cleanup_timeout in app.yml)")
    p = cmd("journal", "the event journal, oldest first; 'journal verify' checks its hash chain", ref="optional")
    p.add_argument("action", nargs="?", choices=("verify",), metavar="verify",
                   help="verify: walk the hash chain and name the first edited, deleted, inserted or "
                   "reordered row, or a truncation (exit 0 intact, 1 tampered)")
    p.add_argument("--limit", type=int, default=50, help="how many events (default 50)")
    p.add_argument("--kind", action="append", help="only this kind (repeatable)")
    p.add_argument("--grep", help="only events whose text contains this")
    p.add_argument("--follow", action="store_true", help="keep printing new events")
    from .remote.cli import add_parsers as add_remote_parsers

    add_remote_parsers(sub, cmd, waits)
    from .runbooks.cli import add_parsers as add_runbook_parsers

    add_runbook_parsers(sub)
    p = sub.add_parser("init", help="write a working settings directory (a copy of the demo) to edit from",
                       description="write a working settings directory (a copy of the demo) to edit from")
    p.add_argument("dir", nargs="?", metavar="DIR", help="where (default: --settings); new or empty")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty DIR, replacing the template's files (others are left alone)")
    cmd("version", "the installed version")
    config = sub.add_parser("config", help="settings checks")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", parser_class=_Parser)
    p = config_sub.add_parser("validate", help="parse and validate every settings file")
    p.add_argument("--json", action="store_true", help="print JSON")
    return root


# -- output helpers (what reaches the terminal goes through cli_output: plain text, §12) ------
def _table(*columns: str):
    from .cli_table import table

    return table(*columns)


def _print_json(data: Any) -> None:
    sys.stdout.write(json_text(data, indent=2) + "\n")


def _age(ts: float | None) -> str:
    text = age(ts)
    return "never" if text is None else f"{text} ago"


_ms = millis


# -- resolving --domain/--key ----------------------------------------------------------------------
def _pick_ref(engine, domain: str | None, key: str):
    """`--key cache` alone works when only one domain has that key."""
    return engine.find_ref(domain, key)


def _filter_refs(engine, domain: str | None, key: str | None):
    from .domains import Domain

    if key:
        return [_pick_ref(engine, domain, key)]
    refs = engine.resolver.refs()
    if domain:
        d = Domain.parse(domain)
        refs = [r for r in refs if r.domain == d]
    return refs


def _host_line(engine) -> str:
    from .store import LEASE_STALE_AFTER_S

    lease, alive = engine.host()
    if lease is not None and not alive and not lease.is_stale(time.time(), LEASE_STALE_AFTER_S):
        # a fresh lease whose pid is gone on this machine: killed or crashed, not stopped
        return (f"no host running: pid {lease.pid} on {lease.hostname} is gone without releasing its lease "
                "(killed or crashed); showing configuration and last known health")
    if lease is None or not alive:
        return "no host running: showing configuration and last known health"
    return f"host: pid {lease.pid} on {lease.hostname} (heartbeat {_age(lease.heartbeat_at)})"


def _host_json(engine) -> dict[str, Any] | None:
    lease, alive = engine.host()
    return _lease_json(lease, engine.store, alive=alive)


def _lease_json(lease, store, *, alive: bool) -> dict[str, Any] | None:
    if lease is None:
        return None
    head = store.published_head()  # what `journal verify` checks the journal reaches
    return {"pid": lease.pid, "hostname": lease.hostname, "alive": alive,
            "started_at": lease.started_at, "heartbeat_age_s": round(time.time() - lease.heartbeat_at, 3),
            "head": head.to_dict() if head else None}


# -- acting: one way, whatever runs the host ----------------------------------------------------
# A change (and a probe) is a request on the Operator port (operator_port.py): over the
# host's socket while another process hosts, else run here, where it changes the desired
# state and says so. The command's code is the same either way.

def _host_request(args) -> tuple[str, dict[str, Any]] | None:
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
        return "sync", {"source": args.source, "dry_run": args.dry_run or None}
    return None


def _act(operator, args, store, host: dict[str, Any] | None) -> int:
    """Send this command's request through `operator` and print the answer; `host` is the
    live host's lease as `--json` shows it (None when this process runs the request)."""
    kind, payload = _host_request(args)
    if kind in ("approve", "reject") and args.sign:
        payload["signature"] = _sign(kind, args, store)
    elif kind == "swap" and args.sign and not args.dry_run:
        from .approval_signing import sign_request

        payload["signature"], payload["signed_at"] = sign_request(payload, store, key=args.sign_key)
    patience = max(args.wait, args.timeout + 5) if kind == "drain" else args.wait
    result = operator.run_blocking(kind, wait=patience, **payload)
    where = (f"the running host (pid {host['pid']} on {host['hostname']})" if host and host.get("alive")
             else "this process (no host is running)")
    return _print_result(args, result, where=where, host=host)


def _sign(kind: str, args, store) -> str:
    """A decision signed by this operator's ssh-agent (approval_signing.py)."""
    from .approval_signing import sign_decision

    record = store.get_proposal(args.id)
    if record is None:
        raise NotFound(f"No proposal #{args.id} exists.")
    return sign_decision(kind, record, store, key=args.sign_key)


def _via_host_quick(args) -> int | None:
    """Before any settings are loaded, when the state store can be found cheaply and a host
    holds it: the request goes straight to the host's socket."""
    if _host_request(args) is None:
        return None
    path = _quick_store_path(args)
    if path is None or not path.is_file():
        return None
    from .identity import other_process_alive
    from .store import LEASE_STALE_AFTER_S, StateStore

    store = StateStore(path)
    try:
        lease = store.current_lease()
        if lease is None or lease.is_stale(time.time(), LEASE_STALE_AFTER_S) or \
                other_process_alive(lease.hostname, lease.pid) is False:
            return None
        from .operator_port import Operator, OverSocket, display_name
        from .wire import socket_path

        operator = Operator(OverSocket(socket_path(path.parent), display=display_name()), read_only=args.read_only)
        return _act(operator, args, store, _lease_json(lease, store, alive=True))
    finally:
        store.close()


def cmd_act(engine, args) -> int:
    """pause, resume, drain, swap, approve, reject, health --probe, remote-sync."""
    from .operator_port import connect

    return _act(connect(engine, read_only=args.read_only or None), args, engine.store, _host_json(engine))


def _quick_store_path(args) -> Path | None:
    """Where the engine would put the state store, without loading the settings models:
    --state-dir, $ONEIRIC_STATE_DIR, app.yml `state_dir` (relative to the settings' parent),
    else .oneiric beside the settings (SettingsSnapshot.state_dir has the same rule). None
    when app.yml cannot be read simply: the full path then decides (and reports problems)."""
    if args.state_dir:
        return Path(args.state_dir).resolve() / "state.sqlite"
    env = os.environ.get("ONEIRIC_STATE_DIR", "").strip()
    if env:
        return Path(os.path.abspath(os.path.expanduser(env))) / "state.sqlite"
    settings = Path(os.path.abspath(os.path.expanduser(args.settings)))
    from .input_limits import LimitExceeded, read_capped

    try:
        text = read_capped(settings / "app.yml").decode("utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError, LimitExceeded):
        return None
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
    except Exception:
        return _UNREADABLE
    value = data.get("state_dir") if isinstance(data, dict) else None
    return value if value is None or isinstance(value, str) else _UNREADABLE


def _print_result(args, result, *, where: str = "", host: dict[str, Any] | None = None) -> int:
    """Print a command's answer: the data as JSON (same shapes whoever ran it) or the
    sentence; a failure's sentence goes to stderr. Returns the exit code."""
    if args.json and result.data:
        if args.command == "health":
            _print_json({"probed": True, "host": host, "results": result.data.get("results", [])})
        elif args.command in ("pause", "resume", "drain"):
            _print_json(result.data)
        else:
            _print_json({"message": result.message, **result.data})
    elif args.command == "remote-sync":
        from .remote.cli import print_sync

        print_sync(result)
        return result.exit_code
    elif args.command == "health" and result.data:
        results = result.data.get("results", [])
        out = _print_probe_table(results, f"probed by {where}")
        failed = [f"{r['domain']}/{r['key']}" for r in results if r["status"] == "failed"]
        if failed:
            out.print(f"{len(failed)} unhealthy: " + ", ".join(failed))
    elif result.ok:
        say(result.message)
    if not result.ok:
        say(f"oneiric: {result.message}", err=True)
    return result.exit_code


# -- commands ------------------------------------------------------------------------------------
def cmd_status(engine, args) -> int:
    refs = set(_filter_refs(engine, args.domain, args.key))
    rows = [c for c in engine.components() if c.ref in refs]
    problems = engine.settings.problems
    from .private_files import audit

    from . import retention

    wide = audit(engine.state_dir)  # state files others may read or the group may write
    if args.json:
        _print_json({
            "settings_dir": str(engine.settings_dir), "state_dir": str(engine.state_dir),
            "host": _host_json(engine), "read_only": engine.read_only,
            "watcher": engine.watcher_status().to_dict(), "telemetry": engine.telemetry_status().to_dict(),
            "journal_retention": retention.last_report(engine.store),
            "config_problems": [p.to_dict() for p in problems],
            "warnings": [w.to_dict() for w in wide],
            "components": [c.to_dict() for c in rows],
        })
        return EXIT_OK
    out = _console()
    out.print(f"settings: {engine.settings_dir}   state: {engine.state_dir}")
    out.print(_host_line(engine))
    for w in wide:
        out.print(f"warning: {w.sentence()}", markup=False, style="yellow", soft_wrap=True)
    out.print(f"settings watcher: {engine.watcher_status().describe()}", markup=False)
    held = retention.status_line(engine.store)  # an open incident holds the journal's retention back
    if held:
        out.print(held, markup=False, style="yellow", soft_wrap=True)
    telemetry = engine.telemetry_status()
    out.print(telemetry.describe(), markup=False, style="red" if telemetry.problem else None, soft_wrap=True)
    for p in problems:
        out.print(f"config invalid: {p}; {engine.settings.fallback(p)}", markup=False, style="red")
    table = _table("COMPONENT", "WINNER", "SERVING", "STATE", "ACTIVITY", "HEALTH", "NOTES")
    for c in rows:
        notes = []
        if c.misconfigured:
            notes.append(f"MISCONFIGURED: selects '{c.selection}', not registered")
        elif c.selection:
            notes.append("selected")
        if c.shadowed:
            notes.append(f"{c.shadowed} shadowed")
        if c.last_error:
            notes.append(f"last error: {c.last_error}")
        if c.proposal:
            prop = c.proposal
            notes.append(f"proposal #{prop['id']} pending: {prop['from'] or 'nothing'} -> {prop['to']} "
                         f"({prop['source']})")
        latency = f" {c.latency_ms:.1f}ms" if c.latency_ms is not None else ""
        table.add_row(
            str(c.ref), f"{c.winner} ({c.winner_source})" if c.winner else "-",
            c.serving or "-", c.state, c.activity, f"{c.health}{latency}", "; ".join(notes),
        )
    out.print(table)
    return EXIT_OK


def cmd_list(engine, args) -> int:
    rows = []
    for ref in _filter_refs(engine, args.domain, args.key):
        for r in engine.explain(ref.domain, ref.key).ranked:
            if args.shadowed and r.winner:
                continue
            rows.append({"domain": ref.domain.value, "key": ref.key, **r.to_dict()})
    if args.json:
        _print_json({"candidates": rows})
        return EXIT_OK
    table = _table("COMPONENT", "PROVIDER", "SOURCE", "PRIO", "STACK", "", "WHY")
    for r in rows:
        mark = "* winner" if r["winner"] else "- shadowed"
        table.add_row(f"{r['domain']}/{r['key']}", r["provider"], r["source"], str(r["priority"]),
                      str(r["effective_stack_level"]), mark, r["reason"])
    _console().print(table)
    return EXIT_OK


def cmd_explain(engine, args) -> int:
    ref = _pick_ref(engine, args.domain, args.key)
    exp = engine.explain(ref.domain, ref.key)
    if args.json:
        _print_json(exp.to_dict())
        return EXIT_OK
    out = _console()
    winner = exp.winner
    out.print(f"{ref}: {winner.provider} ({winner.source}) wins" if winner else f"{ref}: no candidate")
    if exp.misconfigured and winner is None:
        out.print(f"MISCONFIGURED: {exp.misconfigured}; nothing can serve this key", markup=False, style="red")
    elif exp.misconfigured:
        out.print(f"MISCONFIGURED: {exp.misconfigured}; ranking picked a fallback", markup=False, style="red")
    elif exp.selection:
        out.print(f"selection: {exp.selection} ({exp.selection_file})")
    else:
        out.print(f"selection: none in {exp.selection_file}")
    table = _table("#", "PROVIDER", "SOURCE", "PRIO", "STACK", "REASON")
    for r in exp.ranked:
        c = r.candidate
        table.add_row(str(r.rank), c.provider, c.source, str(c.priority), str(r.effective_stack_level), r.reason)
    out.print(table)
    out.print("factories:")
    for r in exp.ranked:
        out.print(f"  {r.candidate.provider}: {r.candidate.factory}")
    return EXIT_OK


def cmd_health(engine, args) -> int:
    """Last known health (a probe, `--probe`, is an action: cmd_act)."""
    refs = _filter_refs(engine, args.domain, args.key)
    wanted = {(r.domain.value, r.key) for r in refs}
    results = []
    for c in engine.components():
        if (c.ref.domain.value, c.ref.key) in wanted:
            results.append({"domain": c.ref.domain.value, "key": c.ref.key,
                            "provider": c.serving or c.winner, "status": c.health,
                            "latency_ms": c.latency_ms, "message": c.health_message,
                            "checked_at": c.health_checked_at})
    failed = [r for r in results if r["status"] == "failed"]
    if args.json:
        _print_json({"probed": False, "host": _host_json(engine), "results": results})
    else:
        out = _print_probe_table(results, _host_line(engine))
        if failed:
            out.print(f"{len(failed)} unhealthy: " + ", ".join(f"{r['domain']}/{r['key']}" for r in failed))
    return EXIT_UNHEALTHY if failed else EXIT_OK


def _print_probe_table(results: list[dict[str, Any]], header: str):
    out = _console()
    out.print(header, markup=False)
    table = _table("COMPONENT", "PROVIDER", "HEALTH", "LATENCY", "CHECKED", "MESSAGE")
    for r in results:
        table.add_row(f"{r['domain']}/{r['key']}", r["provider"] or "-", r["status"].upper(),
                      _ms(r["latency_ms"]), _age(r["checked_at"]), r["message"])
    out.print(table)
    return out


def _activity_json(rec) -> dict[str, Any]:
    return {"domain": rec.domain, "key": rec.key, "state": rec.state, "note": rec.note,
            "actor": rec.actor, "updated_at": rec.updated_at}


def cmd_activity(engine, args) -> int:
    records = engine.activity.all()
    totals = {s: sum(1 for r in records if r.state == s) for s in ("paused", "draining", "drained")}
    if args.json:
        _print_json({"activity": [_activity_json(r) for r in records], "totals": totals})
        return EXIT_OK
    out = _console()
    if not records:
        out.print("Every key accepts work: nothing is paused, draining or drained.")
        return EXIT_OK
    table = _table("COMPONENT", "STATE", "BY", "SINCE", "NOTE")
    for r in records:
        table.add_row(f"{r.domain}/{r.key}", r.state.upper(), r.actor or "-", _age(r.updated_at), r.note or "")
    out.print(table)
    out.print(", ".join(f"{n} {s}" for s, n in totals.items()))
    return EXIT_OK


def _event_row(e) -> list[str]:
    symbol = {"info": "i", "warning": "!", "error": "x"}[e.severity.value]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.ts))
    return [stamp, symbol, e.kind, e.ref_text or "-", e.actor or "-", e.message]


def cmd_journal_verify(engine, args) -> int:
    from .journal_chain import verify

    if args.follow or args.kind or args.grep or args.key or args.domain:
        raise UsageError("journal verify checks the whole chain: it takes no filter and no --follow.")
    verdict = verify(engine.store)
    if args.json:
        _print_json(verdict.to_dict())
    else:
        say(verdict.sentence())
    return EXIT_OK if verdict.intact else EXIT_ERROR


def cmd_journal(engine, args) -> int:
    if args.action == "verify":
        return cmd_journal_verify(engine, args)
    filters: dict[str, Any] = {"kinds": args.kind, "text": args.grep}
    if args.key or args.domain:
        refs = _filter_refs(engine, args.domain, args.key)
        if args.key:
            filters.update(domain=refs[0].domain.value, key=refs[0].key)
        else:
            from .domains import Domain

            filters["domain"] = Domain.parse(args.domain).value
    events = engine.journal(limit=args.limit, **filters)
    if args.json and not args.follow:
        _print_json({"events": [e.to_dict() for e in events]})
        return EXIT_OK
    emit: Callable[[Any], None]
    if args.json:
        emit = lambda e: say(json_text(e.to_dict()), flush=True)  # noqa: E731
    else:
        emit = lambda e: say("  ".join(one_line(cell) for cell in _event_row(e)), flush=True)  # noqa: E731
    if not args.follow:
        table = _table("TIME", "", "KIND", "COMPONENT", "ACTOR", "MESSAGE")
        for e in events:
            table.add_row(*_event_row(e))
        _console().print(table)
        return EXIT_OK
    for e in events:
        emit(e)
    last = events[-1].id if events else engine.store.last_journal_id()
    while True:
        time.sleep(0.25)
        for e in engine.journal(limit=1000, after_id=last, **filters):
            emit(e)
            last = e.id


def cmd_approvals(engine, args) -> int:
    from .commands import proposal_json

    pending = engine.pending_proposals()  # with no host, retires (and journals) the expired ones first
    decided = [p for p in engine.approvals.recent(200) if p.status != "pending"][-max(args.limit, 0):]
    if args.json:
        _print_json({"pending": [proposal_json(p) for p in pending],
                     "recent": [proposal_json(p) for p in decided]})
        return EXIT_OK
    out = _console()
    policy = engine.approvals
    out.print(f"policy: mode {policy.mode}, two-person rule {'on' if policy.two_person else 'off'}, "
              f"proposals expire after {policy.expire_after_s:g}s", markup=False)
    if pending:
        table = _table("ID", "COMPONENT", "FROM -> TO", "BY", "ASKED", "EXPIRES", "REASON")
        for p in pending:
            now = time.time()
            expires = f"in {age(now, now=p.expires_at)}" if p.expires_at else "never"
            table.add_row(str(p.id), f"{p.domain}/{p.key}", f"{p.from_provider or '-'} -> {p.to_provider}"
                          + (" (force)" if p.force else ""), p.requested_by, _age(p.created_at), expires,
                          p.reason or f"from {p.source}")
        out.print(table)
    else:
        out.print("No proposal waits for approval.")
    if decided:
        table = _table("ID", "COMPONENT", "FROM -> TO", "STATUS", "DECIDED BY", "OUTCOME")
        for p in decided:
            table.add_row(str(p.id), f"{p.domain}/{p.key}", f"{p.from_provider or '-'} -> {p.to_provider}",
                          p.status.upper(), p.decided_by or "-", p.outcome_reason or p.comment or "")
        out.print(table)
    return EXIT_OK


def cmd_run(args) -> int:
    from .host import run_host

    return run_host(args.settings, state_dir=args.state_dir, read_only=args.read_only or None,
                    stop_timeout=args.stop_timeout)


def cmd_config_validate(args) -> int:
    from .config_check import validate_settings

    found = validate_settings(Path(args.settings))
    problems = found.problems
    if args.json:
        _print_json({"settings_dir": args.settings, "valid": not problems,
                     "problems": [p.to_dict() for p in problems], "warnings": found.warnings})
    elif problems:
        for p in problems:
            say(p)
        for warning in found.warnings:
            say(f"warning: {warning}")
        consequences = []
        if found.files:
            consequences.append("the engine keeps the last good version of each broken file in force "
                                "(defaults if it never loaded one)")
        if found.factories:
            consequences.append("a candidate whose factory cannot be built fails when the host activates it")
        if found.telemetry:
            consequences.append("the host keeps its telemetry in memory and exports nothing")
        say(f"{len(problems)} problem(s). Until they are fixed, {'; '.join(consequences)}.")
    else:
        for warning in found.warnings:
            say(f"warning: {warning}")
        say(f"{args.settings}: every settings file is valid" + (" (see the warnings above)." if found.warnings
                                                                 else "."))
    return EXIT_ERROR if problems else EXIT_OK


def cmd_console(args) -> int:
    """Start the console. It lives in the `oneiric_tui` package, loaded by name here: the engine
    modules never import the UI (tests/test_layering.py)."""
    import importlib

    if args.theme:
        os.environ["TEXTUAL_THEME"] = args.theme
    console = importlib.import_module("oneiric_tui.app")
    return console.run_console(args.settings, state_dir=args.state_dir, read_only=args.read_only)


def _remote_cli():
    from .remote import cli as remote_cli

    return remote_cli


def _runbook_cli():
    from .runbooks import cli as runbook_cli

    return runbook_cli


COMMANDS: dict[str, Callable[[Any, Any], int]] = {
    "status": cmd_status, "list": cmd_list, "explain": cmd_explain,
    "health": lambda engine, args: (cmd_act if args.probe else cmd_health)(engine, args),
    "activity": cmd_activity, "pause": cmd_act, "resume": cmd_act, "drain": cmd_act,
    "journal": cmd_journal, "swap": cmd_act, "approvals": cmd_approvals, "approve": cmd_act, "reject": cmd_act,
    "remote-status": lambda engine, args: _remote_cli().cmd_remote_status(engine, args),
    "remote-sync": cmd_act,
    "runbook": lambda engine, args: _runbook_cli().cmd_runbook(engine, args),
    "incident": lambda engine, args: _runbook_cli().cmd_incident(engine, args),
}


def run(argv: Sequence[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command in ("init", "version"):
        from . import cli_setup

        return cli_setup.cmd_init(args) if args.command == "init" else cli_setup.cmd_version(args)
    if args.command == "config":
        if args.config_command != "validate":
            raise UsageError("config needs an action: validate (see 'oneiric config --help').")
        return cmd_config_validate(args)
    if args.command == "console":
        return cmd_console(args)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "manifest":
        return _remote_cli().run_manifest(args)
    if (code := _via_host_quick(args)) is not None:
        return code
    from .engine import Engine

    engine = Engine(args.settings, state_dir=args.state_dir, read_only=args.read_only or None)
    try:
        return COMMANDS[args.command](engine, args)
    finally:
        engine.close()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        code = run(argv)
    except OneiricError as exc:
        if debug:
            raise
        say(f"oneiric: {exc}", err=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = EXIT_OK
    except Exception as exc:  # the last line of defence: one sentence, no traceback
        if debug:
            raise
        say(f"oneiric: unexpected error: {type(exc).__name__}: {exc} (run with --debug for details).", err=True)
        code = EXIT_ERROR
    return code


if __name__ == "__main__":
    sys.exit(main())
