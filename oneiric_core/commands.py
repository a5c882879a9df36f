"""What an operator can ask of the engine, and the one place each request is carried out.

A request (`Request`: a kind and its arguments) comes from a front door through the
`Operator` port (operator_port.py): in the host's own process directly, from any other
process over the host's Unix socket (host_session.py), where the kernel tells the host who
sent it. Either way `execute` runs it: it checks the caller's right (access.py), runs the
handler on the engine and answers with a `CommandResult` (one sentence, JSON data and an
exit code of docs/architecture.md §10). A process that is not the host and finds none running runs
the same handlers on its own engine: they then change the desired state (settings,
activity) and say that it takes effect when a host starts.

The host records each request it takes as a sealed row in the store's `commands` table: a
record of who asked for what and what came of it, never an inbox (seal.py).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .access import Forbidden, Right
from .domains import Domain
from .errors import ExitCode, NotFound, OneiricError, ReadOnlyError, UsageError
from .principal import Principal
from .store import ProposalRecord, StoreError
from .text import clause

if TYPE_CHECKING:  # the engine is passed in; a client process never imports it for this module
    from .lifecycle import SwapResult
    from .ports import CommandsEngine


KEEP_FINISHED_S = 7 * 86400  # recorded commands are pruned after this
DEFAULT_WAIT_S = 30.0


@dataclass(frozen=True, slots=True)
class Request:
    """One thing an operator asks for: `kind` (swap, approve, ...) and its arguments."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)

    def right(self) -> Right:
        """The right this request needs; looking (a dry run) needs only `view`."""
        if self.args.get("dry_run") or self.kind == "pending":
            return Right.VIEW
        return _RIGHTS[self.kind]

    @property
    def changes(self) -> bool:
        return self.right() is not Right.VIEW and self.kind != "probe"

    def to_wire(self) -> dict[str, Any]:
        return {"kind": self.kind, "args": self.args}

    @classmethod
    def from_wire(cls, data: Any) -> Request:
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str) or \
                not isinstance(data.get("args", {}), dict):
            raise UsageError("The request is not of the form {\"kind\": ..., \"args\": {...}}.")
        kind = data["kind"]
        if kind not in _RIGHTS:
            raise UsageError(f"'{kind}' is not a host command: use one of {', '.join(KINDS)}.")
        return cls(kind, dict(data.get("args") or {}))


_RIGHTS: dict[str, Right] = {
    "swap": Right.PROPOSE, "approve": Right.APPROVE, "reject": Right.APPROVE, "rollout-step": Right.OPERATE,
    "pause": Right.OPERATE, "drain": Right.OPERATE, "resume": Right.OPERATE, "probe": Right.OPERATE,
    "reload": Right.OPERATE, "sync": Right.OPERATE, "pending": Right.VIEW,
}
KINDS = tuple(_RIGHTS)
_WHAT = {"swap": "ask for a swap", "approve": "approve a proposal", "reject": "reject a proposal",
         "rollout-step": "run a rollout's step on this node",
         "pause": "pause a component", "drain": "drain a component", "resume": "resume a component",
         "probe": "probe a component", "reload": "reload the settings", "sync": "sync remote sources",
         "pending": "see pending proposals"}


@dataclass(frozen=True)
class CommandResult:
    """What a command did, as the client prints it: one sentence, data, an exit code."""

    exit_code: int
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    status: str = ""  # done | failed | running (the client stopped waiting); "" if made here
    command_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.command_id, "status": self.status, "exit_code": self.exit_code,
                "message": self.message, "data": self.data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CommandResult:
        code = data.get("exit_code")
        return cls(int(code) if isinstance(code, int) else ExitCode.ERROR, str(data.get("message") or ""),
                   dict(data.get("data") or {}), str(data.get("status") or ""),
                   data.get("id") if isinstance(data.get("id"), int) else None)


# -- result sentences (shared with the CLI's no-host path) ---------------------------------------

def proposal_json(record: ProposalRecord) -> dict[str, Any]:
    return dataclasses.asdict(record)


def activity_json(record: Any) -> dict[str, Any]:
    return {"domain": record.domain, "key": record.key, "state": record.state, "note": record.note,
            "actor": record.actor, "updated_at": record.updated_at}


def swap_result(record: ProposalRecord, result: SwapResult | None, *, offline: bool = False) -> CommandResult:
    """The answer to `swap` and `approve`: waiting, applied by a host, or (`offline`, no host
    running) selected in settings for the next host to start with."""
    ref, tag = f"{record.domain}/{record.key}", f"proposal #{record.id}"
    data = {"proposal": proposal_json(record), "swap": None if result is None else result.to_dict()}
    if result is None and record.status == "pending":
        waits = (f"Proposal #{record.id} ({ref}: {record.from_provider or 'nothing'} -> {record.to_provider}) "
                 f"waits for approval ('oneiric approve {record.id}')")
        if offline:
            return CommandResult(ExitCode.OK, f"{waits}; no host is running, so once approved it takes effect "
                                 "when a host starts.", data)
        return CommandResult(ExitCode.OK, f"{waits}.", data)
    if result is None:
        return CommandResult(ExitCode.OK if record.status == "applied" else ExitCode.SWAP_REFUSED,
                             f"{record.outcome_reason} ({tag}, approved by {record.decided_by}).", data)
    outcome = result.outcome.value
    if outcome == "complete":
        took = f" in {result.total_ms:.1f} ms" if result.total_ms is not None else ""
        return CommandResult(ExitCode.OK, f"Swapped {ref} {result.from_provider or 'nothing'} -> {result.to_provider}"
                             f"{took} ({tag}, approved by {record.decided_by}).", data)
    if outcome == "noop":
        return CommandResult(ExitCode.OK, f"{ref} already serves {result.to_provider}; nothing changed ({tag}).", data)
    if outcome == "rolled-back":
        return CommandResult(ExitCode.SWAP_REFUSED,
                             f"Swap of {ref} to {result.to_provider} rolled back: {clause(result.reason)}; "
                             f"{result.from_provider} keeps serving ({tag}).", data)
    if outcome == "refused":
        return CommandResult(ExitCode.SWAP_REFUSED,
                             f"Swap of {ref} to {result.to_provider} was {result.reason} ({tag}).", data)
    return CommandResult(ExitCode.SWAP_REFUSED,
                         f"Swap of {ref} to {result.to_provider} failed: {result.reason} ({tag}).", data)


def reject_result(record: ProposalRecord) -> CommandResult:
    return CommandResult(ExitCode.OK, f"Rejected proposal #{record.id} ({record.domain}/{record.key}: "
                         f"{record.from_provider or 'nothing'} -> {record.to_provider}).",
                         {"proposal": proposal_json(record)})


def plan_result(plan: SwapResult) -> CommandResult:
    """The answer to `swap --dry-run`: from, to, blockers; nothing changed."""
    blockers = "blocked by: " + "; ".join(plan.blockers) if plan.blockers else "nothing blocks it"
    return CommandResult(
        ExitCode.OK, f"Dry run, nothing changed: {plan.ref} {plan.from_provider or 'nothing'} -> {plan.to_provider} "
        f"({plan.to_source}); {blockers}.", {"plan": plan.to_dict()})


# -- carrying a request out -----------------------------------------------------------------------

Handler = Callable[["CommandsEngine", Request, Principal], Awaitable[CommandResult]]
_HANDLERS: dict[str, Handler] = {}


def _handles(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _HANDLERS[kind] = fn
        return fn
    return register


async def execute(engine: CommandsEngine, request: Request, principal: Principal, *, parent: Any = None,
                  command_id: int | None = None) -> CommandResult:
    """Run one request for `principal` on this engine; every failure becomes a result, never a
    raise (a provider's bug must not take down the host that runs it).

    On a host whose telemetry records spans, the request is a `host.command` span (the swap
    it runs is a child), parented on `parent`: the client's trace context, when its request
    carried one (trace_context.py)."""
    tel = engine.telemetry
    if tel is None or not tel.tracing:
        return await _execute(engine, request, principal)
    args = request.args
    with tel.server_span("host.command", {
            "oneiric.command.kind": request.kind, "oneiric.command.id": command_id, "enduser.id": principal.label,
            "oneiric.domain": args.get("domain") if isinstance(args.get("domain"), str) else None,
            "oneiric.key": args.get("key") if isinstance(args.get("key"), str) else None,
            "oneiric.provider": args.get("provider") if isinstance(args.get("provider"), str) else None,
    }, parent) as span:
        result = await _execute(engine, request, principal)
        span.set_attributes({"oneiric.command.exit_code": result.exit_code, "oneiric.command.status": result.status})
        if not result.ok:
            tel.failed(span, result.message)
        return result


async def _execute(engine: CommandsEngine, request: Request, principal: Principal) -> CommandResult:
    failures_before = engine.store_failures
    engine.running_command += 1
    try:
        engine.access.require(principal, request.right(), _WHAT[request.kind])
        if engine.read_only and request.changes:
            raise ReadOnlyError(f"Read-only mode: {request.kind} is disabled.")
        result = await _HANDLERS[request.kind](engine, request, principal)
        if request.changes and engine.store_failures > failures_before:
            result = _not_recorded(result, engine.store_error)
    except StoreError as exc:  # the change and its record were one write: neither happened
        result = CommandResult(exc.exit_code, f"Could not {_WHAT[request.kind]}: {exc}.")
    except Forbidden as exc:  # who was refused what is part of the audit trail
        from .events import Event, Severity

        engine.emit(Event("access-denied", str(exc), Severity.WARNING, actor=principal.label, outcome="refused",
                          data={"kind": request.kind, "principal": principal.id, "via": principal.via}))
        return CommandResult(exc.exit_code, str(exc), status="refused")
    except OneiricError as exc:
        result = CommandResult(exc.exit_code, str(exc))
    except Exception as exc:  # noqa: BLE001 - last line of defence: a bug must not kill the host; the client hears it
        result = CommandResult(ExitCode.ERROR, f"The host failed to run {request.kind}: {type(exc).__name__}: {exc}.")
    finally:
        engine.running_command -= 1
    return dataclasses.replace(result, status="done" if result.ok else "failed")


def _not_recorded(result: CommandResult, error: str | None) -> CommandResult:
    """What a command did while the store failed under it: done, perhaps, but not all of it
    recorded (the journal line, a snapshot), so never reported as a plain success."""
    done = result.message.rstrip(".")
    return CommandResult(ExitCode.ERROR if result.ok else result.exit_code,
                         f"{done}, but the state store did not record all of it: {error}.",
                         result.data, command_id=result.command_id)


def _arg(request: Request, name: str) -> Any:
    value = request.args.get(name)
    if value is None or value == "":
        raise UsageError(f"The {request.kind} command needs '{name}'.")
    return value


def _where(engine: CommandsEngine) -> str:
    """Who carried a request out, for its sentence."""
    import socket

    if engine.is_host:
        return f"the running host (pid {os.getpid()} on {socket.gethostname()})"
    return "this process (no host is running)"


@_handles("swap")
async def _swap(engine: CommandsEngine, request: Request, principal: Principal) -> CommandResult:
    a = request.args
    ref = engine.find_ref(a.get("domain"), _arg(request, "key"))
    if a.get("dry_run"):
        return plan_result(engine.plan_swap(ref.domain, ref.key, a.get("provider"), force=bool(a.get("force"))))
    requester = engine.signed_requester(principal, a)
    # `approve`: the requester approves in the same breath (the console's swap dialog is an
    # approval); two_person still refuses it in the engine, leaving the proposal pending.
    record, result = await engine.request_swap(
        ref.domain, ref.key, a.get("provider"), force=bool(a.get("force")),
        source=str(a.get("source") or "cli"), reason=a.get("reason") or "", actor=requester,
        approve=bool(a.get("approve")), to_source=a.get("to_source"))
    return swap_result(record, result, offline=not engine.is_host)


@_handles("rollout-step")
async def _rollout_step(engine: CommandsEngine, request: Request, principal: Principal) -> CommandResult:
    """A fleet rollout's swap on this node (rollout.py), sent by its coordinator: it runs only
    for a rollout the store holds as running (or swapping back), on a key and to a provider it
    names, as a proposal of the rollout's requester approved by its approver (the one approval
    covers every node; this node's approvals policy still judges it)."""
    from .principal import DB_ROLE

    a = request.args
    rollout = engine.store.rollouts.get(int(_arg(request, "rollout")))
    step = next((s for s in rollout.steps if s.node == engine.node), None) if rollout else None
    back = bool(a.get("rollback"))
    expected = (step.from_provider if back else rollout.provider) if rollout and step else None
    if rollout is None or step is None or rollout.status not in (("halting",) if back else ("running",)) or \
            step.status != ("rolling-back" if back else "swapping") or a.get("provider") != expected or \
            (a.get("domain"), a.get("key")) != (rollout.domain, rollout.key):
        raise UsageError(f"Rollout #{a.get('rollout')} has no step for node {engine.node} that this request "
                         "matches; it did not run.")

    def role(principal_id: str | None) -> Principal:
        return Principal(DB_ROLE, (principal_id or "").partition(":")[2] or "unknown", via="database session role")

    requester = role(rollout.requested_by_id).with_display(rollout.display)
    what = f"rollout #{rollout.id}" + (" (swapped back)" if back else "")
    ref = engine.find_ref(rollout.domain, rollout.key)
    record, result = await engine.request_swap(ref.domain, ref.key, str(expected), source=what,
                                               reason=rollout.reason or what, actor=requester,
                                               approver=role(rollout.decided_by_id),
                                               comment=f"{what}: approved once for every node")
    return swap_result(record, result, offline=not engine.is_host)


@_handles("approve")
async def _approve(engine: CommandsEngine, request: Request, principal: Principal) -> CommandResult:
    approver = engine.signed_approver("approve", int(_arg(request, "id")), principal, request.args.get("signature"))
    record, result = await engine.approve(int(_arg(request, "id")), actor=approver,
                                          comment=request.args.get("comment"))
    return swap_result(record, result, offline=not engine.is_host)


@_handles("reject")
async def _reject(engine: CommandsEngine, request: Request, principal: Principal) -> CommandResult:
    approver = engine.signed_approver("reject", int(_arg(request, "id")), principal, request.args.get("signature"))
    return reject_result(engine.reject(int(_arg(request, "id")), actor=approver,
                                       comment=request.args.get("comment")))


@_handles("pending")
async def _pending(engine: CommandsEngine, request: Request, principal: Principal) -> CommandResult:
    pending = engine.pending_proposals()
    return CommandResult(ExitCode.OK, f"{len(pending)} proposal(s) wait for approval.",
                         {"pending": [proposal_json(p) for p in pending]})


@_handles("pause")
@_handles("resume")
async def _pause_resume(engine: CommandsEngine, request: Request, principal: Principal) -> CommandResult:
    ref = engine.find_ref(request.args.get("domain"), _arg(request, "key"))
    action = engine.pause if request.kind == "pause" else engine.resume
    record = action(ref.domain, ref.key, note=request.args.get("note"), actor=principal.label)
    verb = "Paused" if request.kind == "pause" else "Resumed"
    then = f"{_where(engine)} applied it" if engine.is_host else \
        "no host is running, so it takes effect when a host starts"
    return CommandResult(ExitCode.OK, f"{verb} {ref} (by {record.actor}); {then}.", {"activity": activity_json(record)})


@_handles("drain")
async def _drain(engine: CommandsEngine, request: Request, principal: Principal) -> CommandResult:
    ref = engine.find_ref(request.args.get("domain"), _arg(request, "key"))
    timeout = float(request.args.get("timeout") or DEFAULT_WAIT_S)
    record = await engine.drain(ref.domain, ref.key, note=request.args.get("note"),
                                actor=principal.label, timeout=timeout)
    data = {"activity": activity_json(record)}
    if record.state == "drained":
        return CommandResult(ExitCode.OK, f"Drained {ref}: no work in flight (by {record.actor}).", data)
    return CommandResult(ExitCode.ERROR, f"{ref} is still {record.state} after {timeout:g}s; "
                         "in-flight work has not finished.", data)


@_handles("probe")
async def _probe(engine: CommandsEngine, request: Request, principal: Principal) -> CommandResult:
    """On the host: probe the LIVE instances (journaled). Elsewhere, with no host: build, probe
    and stop a copy of each winner in this process."""
    import asyncio

    domain, key = request.args.get("domain"), request.args.get("key")
    if key:
        refs = [engine.find_ref(domain, key)]
    else:
        wanted = Domain.parse(domain) if domain else None
        refs = [r for r in engine.resolver.refs() if wanted is None or r.domain == wanted]
    probe = _probe_live if engine.is_host else _probe_copy
    results = list(await asyncio.gather(*(probe(engine, ref, principal) for ref in refs)))
    if not engine.is_host:
        engine.lifecycle.close()
    failed = [f"{r['domain']}/{r['key']}" for r in results if r["status"] == "failed"]
    data = {"results": results}
    where = _where(engine)
    if len(results) == 1:  # one key: say what its health check said
        r = results[0]
        latency = f" in {r['latency_ms']:.1f} ms" if r.get("latency_ms") is not None else ""
        detail = f": {r['message']}" if r.get("message") else ""
        code = ExitCode.UNHEALTHY if failed else ExitCode.OK
        return CommandResult(code, f"Probed {r['domain']}/{r['key']} ({r['provider'] or 'nothing serving'}) in "
                             f"{where}: {r['status'].upper()}{latency}{detail}.", data)
    if failed:
        return CommandResult(ExitCode.UNHEALTHY, f"Probed {len(results)} component(s) in {where}: "
                             f"{len(failed)} unhealthy ({', '.join(failed)}).", data)
    return CommandResult(ExitCode.OK, f"Probed {len(results)} component(s) in {where}: none failed.", data)


async def _probe_live(engine: CommandsEngine, ref: Any, principal: Principal) -> dict[str, Any]:
    track = await engine.probe(ref.domain, ref.key, actor=principal.label, journal=True)
    if track is None:
        return {"domain": ref.domain.value, "key": ref.key, "provider": None, "status": "failed",
                "latency_ms": None, "message": "nothing is serving on the host", "checked_at": time.time()}
    return {"domain": ref.domain.value, "key": ref.key, "provider": track.provider,
            "status": track.status.value, "latency_ms": track.latency_ms,
            "message": track.message, "checked_at": track.checked_at}


async def _probe_copy(engine: CommandsEngine, ref: Any, principal: Principal) -> dict[str, Any]:
    from .domains import HealthResult

    try:
        cand, res = await engine.probe_candidate(ref.domain, ref.key)
        provider = cand.provider
    except NotFound as exc:  # selected in settings but nothing registered
        provider, res = None, HealthResult.failed(str(exc))
    return {"domain": ref.domain.value, "key": ref.key, "provider": provider, "status": res.status.value,
            "latency_ms": res.latency_ms, "message": res.message, "checked_at": time.time()}


@_handles("reload")
async def _reload(engine: CommandsEngine, request: Request, principal: Principal) -> CommandResult:
    problems = engine.reload_settings()
    data = {"problems": [p.to_dict() for p in problems]}
    if problems:
        return CommandResult(ExitCode.ERROR, f"Reloaded {engine.settings_dir} with {len(problems)} problem(s); "
                             "the last good version of each broken file stays in force.", data)
    return CommandResult(ExitCode.OK, f"Reloaded {engine.settings_dir}: every settings file is valid.", data)


@_handles("sync")
async def _sync(engine: CommandsEngine, request: Request, principal: Principal) -> CommandResult:
    """Sync remote sources now (`source`: one of them; `dry_run`: change nothing). With no host,
    the cache and status this writes are what the next host starts from."""
    dry_run = bool(request.args.get("dry_run"))
    uri = request.args.get("manifest")
    if uri:
        if request.args.get("source"):
            raise UsageError("Give --source NAME (a configured source) or --manifest URI (a one-shot sync), not both.")
        outcomes = [await engine.remote.sync_once(str(uri), dry_run=dry_run)]
        if outcomes[0].ok and not dry_run:
            kept = ("until the host stops" if engine.is_host else
                    "in this process only: no host is running, so nothing keeps them registered")
            result = sync_result(outcomes, where=_where(engine) if engine.is_host else "this process")
            note = (f"its entries stay registered {kept}; nothing refreshes them: add the source to app.yml "
                    "remote.sources to keep it")
            return dataclasses.replace(result, message=f"{result.message} ({note})", data={**result.data, "note": note})
    else:
        outcomes = await engine.remote.sync_now(request.args.get("source") or None, dry_run=dry_run)
    where = _where(engine)
    if not engine.is_host and not dry_run:
        where = "this process; no host is running, so the next host starts with it"
    elif not engine.is_host:
        where = "this process"
    return sync_result(outcomes, where=where)


def sync_result(outcomes: list[Any], *, where: str) -> CommandResult:
    """The answer to `remote-sync`: one sentence per source; exit 6 when any sync failed."""
    if not outcomes:
        return CommandResult(ExitCode.OK,
                             "No remote sources are configured (app.yml `remote.sources`); nothing to sync.",
                             {"results": []})
    failed = [o for o in outcomes if not o.ok]
    data = {"results": [o.to_dict() for o in outcomes]}
    text = " ".join(o.message() for o in outcomes)
    if failed:
        return CommandResult(ExitCode.REMOTE, f"{text} (on {where})", data)
    return CommandResult(ExitCode.OK, f"{text} (on {where})", data)


__all__ = [
    "CommandResult", "KINDS", "Request", "activity_json", "execute", "plan_result",
    "proposal_json", "reject_result", "swap_result", "sync_result",
]
