"""The command queue: how a client process asks the host to act, and how the host answers.

A client (a CLI command) `submit`s a row to the store's `commands` table and `wait`s for its
result. The host runs a `CommandLoop` on its event loop: it takes pending commands in id
order, runs each on its live engine and writes back a `CommandResult` (one sentence, JSON
data and an exit code of ARCHITECTURE §10). A table rather than a socket because every
process already shares the store, a queue there outlives a host restart, and every request
leaves a trace of who asked for what.

Why it is cheap: `PRAGMA data_version` changes only when another connection commits, so an
idle host spends one pragma per `HOST_POLL_S`, and a submitted command is picked up within
that. Why nothing runs by surprise: a client that stops waiting withdraws its command
(`expired`), and each command carries a deadline after which the host will not start it.

The client half imports neither the Engine, the settings models nor asyncio (the host half
imports it where it runs): `oneiric pause` against a running host is one store write and a
few reads in a process that starts fast.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .domains import Domain
from .errors import NotFound, OneiricError, SwapRefused, Unhealthy, UsageError
from .store import CommandRecord, ProposalRecord, StateStore, StoreError

if TYPE_CHECKING:  # the host half gets the engine passed in; clients never import it
    from .engine import Engine
    from .lifecycle import SwapResult

# Exit codes (ARCHITECTURE §10), the same numbers cli.py prints.
EXIT_OK = 0
EXIT_ERROR = OneiricError.exit_code
EXIT_NOT_FOUND = NotFound.exit_code
EXIT_UNHEALTHY = Unhealthy.exit_code
EXIT_SWAP = SwapRefused.exit_code
EXIT_REMOTE = 6

KINDS = ("swap", "approve", "reject", "pause", "drain", "resume", "probe", "reload", "sync")
FINAL = ("done", "failed", "expired")

HOST_POLL_S = 0.025  # how often the host looks for new commands (one PRAGMA when idle)
MAX_RUNNING = 16  # commands the host runs at once (a long drain must not hold up a pause)
KEEP_FINISHED_S = 7 * 86400  # finished commands are pruned after this
DEFAULT_WAIT_S = 30.0

Command = CommandRecord  # a queued request: kind, args, requested_by, status, result, ...


@dataclass(frozen=True)
class CommandResult:
    """What a command did, as the client prints it: one sentence, data, an exit code."""

    exit_code: int
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    status: str = ""  # done | failed | expired | running (the client stopped waiting); "" if made here
    command_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.command_id, "status": self.status, "exit_code": self.exit_code,
                "message": self.message, "data": self.data}

    @classmethod
    def from_record(cls, record: Command) -> CommandResult:
        if record.status == "expired":
            return cls(EXIT_ERROR, f"The host did not take command #{record.id} ({record.kind}) in time; "
                       "it was withdrawn and will not run.", status="expired", command_id=record.id)
        result = record.result or {}
        code = EXIT_ERROR if record.exit_code is None else record.exit_code
        return cls(code, str(result.get("message") or ""), dict(result.get("data") or {}),
                   record.status, record.id)


# -- the client half ---------------------------------------------------------------------------

def submit(store: StateStore, kind: str, args: dict[str, Any], actor: str, *,
           timeout: float = DEFAULT_WAIT_S) -> Command:
    """Queue `kind` for the host, on behalf of `actor`; the host will not start it after
    `timeout` seconds (by then this client has stopped waiting)."""
    if kind not in KINDS:
        raise UsageError(f"'{kind}' is not a host command: use one of {', '.join(KINDS)}.")
    return store.add_command(kind, args, actor, deadline=time.time() + timeout)


def wait(store: StateStore, command_id: int, timeout: float, *, poll_s: float = 0.005) -> CommandResult:
    """The host's answer to a command, or, after `timeout` seconds, a result saying it
    did not come; a command the host had not started by then is withdrawn so that it never
    runs later by surprise (also when the wait is interrupted with Ctrl-C)."""
    started = time.monotonic()
    deadline = started + timeout
    try:
        while True:
            record = store.get_command(command_id)
            if record is None:
                raise NotFound(f"No command #{command_id} is queued in {store.path}.")
            if record.status in FINAL:
                return CommandResult.from_record(record)
            if time.monotonic() >= deadline:
                return _gave_up(store, record, timeout)
            # Most answers come within a few host polls: look often at first (a WAL read is
            # cheap), then every 50 ms for the long ones (a drain, a slow provider).
            time.sleep(poll_s if time.monotonic() < started + 2 else 0.05)
    except KeyboardInterrupt:
        store.expire_command(command_id)
        raise


def _gave_up(store: StateStore, record: Command, timeout: float) -> CommandResult:
    if store.expire_command(record.id):
        return CommandResult(
            EXIT_ERROR, f"The host did not take command #{record.id} ({record.kind}) within {timeout:g}s; "
            "it was withdrawn and will not run.", status="expired", command_id=record.id)
    latest = store.get_command(record.id)
    if latest is not None and latest.status in FINAL:  # answered (or expired by the host) just now
        return CommandResult.from_record(latest)
    return CommandResult(
        EXIT_ERROR, f"The host is still running command #{record.id} ({record.kind}) after {timeout:g}s; "
        "its outcome will be in the journal.", status="running", command_id=record.id)


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
            return CommandResult(EXIT_OK, f"{waits}; no host is running, so once approved it takes effect "
                                 "when a host starts.", data)
        return CommandResult(EXIT_OK, f"{waits}.", data)
    if result is None:
        return CommandResult(EXIT_OK if record.status == "applied" else EXIT_SWAP,
                             f"{record.outcome_reason} ({tag}, approved by {record.decided_by}).", data)
    outcome = result.outcome.value
    if outcome == "complete":
        took = f" in {result.total_ms:.1f} ms" if result.total_ms is not None else ""
        return CommandResult(EXIT_OK, f"Swapped {ref} {result.from_provider or 'nothing'} -> {result.to_provider}"
                             f"{took} ({tag}, approved by {record.decided_by}).", data)
    if outcome == "noop":
        return CommandResult(EXIT_OK, f"{ref} already serves {result.to_provider}; nothing changed ({tag}).", data)
    if outcome == "rolled-back":
        return CommandResult(EXIT_SWAP, f"Swap of {ref} to {result.to_provider} rolled back: {result.reason}; "
                             f"{result.from_provider} keeps serving ({tag}).", data)
    if outcome == "refused":
        return CommandResult(EXIT_SWAP, f"Swap of {ref} to {result.to_provider} was {result.reason} ({tag}).", data)
    return CommandResult(EXIT_SWAP, f"Swap of {ref} to {result.to_provider} failed: {result.reason} ({tag}).", data)


def reject_result(record: ProposalRecord) -> CommandResult:
    return CommandResult(EXIT_OK, f"Rejected proposal #{record.id} ({record.domain}/{record.key}: "
                         f"{record.from_provider or 'nothing'} -> {record.to_provider}).",
                         {"proposal": proposal_json(record)})


def plan_result(plan: SwapResult) -> CommandResult:
    """The answer to `swap --dry-run`: from, to, blockers; nothing changed."""
    blockers = "blocked by: " + "; ".join(plan.blockers) if plan.blockers else "nothing blocks it"
    return CommandResult(
        EXIT_OK, f"Dry run, nothing changed: {plan.ref} {plan.from_provider or 'nothing'} -> {plan.to_provider} "
        f"({plan.to_source}); {blockers}.", {"plan": plan.to_dict()})


# -- the host half -------------------------------------------------------------------------------

Handler = Callable[["Engine", Command], Awaitable[CommandResult]]
_HANDLERS: dict[str, Handler] = {}


def _handles(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _HANDLERS[kind] = fn
        return fn
    return register


async def execute(engine: Engine, command: Command) -> CommandResult:
    """Run one command on the host's engine; every failure becomes a result, never a raise."""
    handler = _HANDLERS.get(command.kind)
    try:
        if handler is None:
            raise UsageError(f"'{command.kind}' is not a host command: use one of {', '.join(KINDS)}.")
        result = await handler(engine, command)
    except OneiricError as exc:
        result = CommandResult(exc.exit_code, str(exc))
    except Exception as exc:  # a bug must not kill the loop: report it to the client instead
        result = CommandResult(EXIT_ERROR, f"The host failed to run {command.kind}: {type(exc).__name__}: {exc}.")
    return dataclasses.replace(result, status="done" if result.ok else "failed", command_id=command.id)


def _arg(command: Command, name: str) -> Any:
    value = command.args.get(name)
    if value is None or value == "":
        raise UsageError(f"The {command.kind} command needs '{name}'.")
    return value


def _host_text() -> str:
    import socket

    return f"the running host (pid {os.getpid()} on {socket.gethostname()})"


@_handles("swap")
async def _swap(engine: Engine, command: Command) -> CommandResult:
    a = command.args
    ref = engine.find_ref(a.get("domain"), _arg(command, "key"))
    if a.get("dry_run"):
        plan = await engine.swap(ref.domain, ref.key, a.get("provider"), force=bool(a.get("force")),
                                 dry_run=True, actor=command.requested_by)
        return plan_result(plan)
    # `approve`: the requester approves in the same breath (the console's swap dialog is an
    # approval); two_person still refuses it in the engine, leaving the proposal pending.
    record, result = await engine.request_swap(
        ref.domain, ref.key, a.get("provider"), force=bool(a.get("force")),
        source=str(a.get("source") or "cli"), reason=a.get("reason") or "", actor=command.requested_by,
        approve=bool(a.get("approve")), to_source=a.get("to_source"))
    return swap_result(record, result)


@_handles("approve")
async def _approve(engine: Engine, command: Command) -> CommandResult:
    record, result = await engine.approve(int(_arg(command, "id")), actor=command.requested_by,
                                          comment=command.args.get("comment"))
    return swap_result(record, result)


@_handles("reject")
async def _reject(engine: Engine, command: Command) -> CommandResult:
    return reject_result(engine.reject(int(_arg(command, "id")), actor=command.requested_by,
                                       comment=command.args.get("comment")))


@_handles("pause")
@_handles("resume")
async def _pause_resume(engine: Engine, command: Command) -> CommandResult:
    ref = engine.find_ref(command.args.get("domain"), _arg(command, "key"))
    action = engine.pause if command.kind == "pause" else engine.resume
    record = action(ref.domain, ref.key, note=command.args.get("note"), actor=command.requested_by)
    verb = "Paused" if command.kind == "pause" else "Resumed"
    return CommandResult(EXIT_OK, f"{verb} {ref} (by {record.actor}); {_host_text()} applied it.",
                         {"activity": activity_json(record)})


@_handles("drain")
async def _drain(engine: Engine, command: Command) -> CommandResult:
    ref = engine.find_ref(command.args.get("domain"), _arg(command, "key"))
    timeout = float(command.args.get("timeout") or DEFAULT_WAIT_S)
    record = await engine.drain(ref.domain, ref.key, note=command.args.get("note"),
                                actor=command.requested_by, timeout=timeout)
    data = {"activity": activity_json(record)}
    if record.state == "drained":
        return CommandResult(EXIT_OK, f"Drained {ref}: no work in flight (by {record.actor}).", data)
    return CommandResult(EXIT_ERROR, f"{ref} is still {record.state} after {timeout:g}s; "
                         "in-flight work has not finished.", data)


@_handles("probe")
async def _probe(engine: Engine, command: Command) -> CommandResult:
    """Probe the LIVE instances of the host (journaled), not freshly built copies."""
    domain, key = command.args.get("domain"), command.args.get("key")
    if key:
        refs = [engine.find_ref(domain, key)]
    else:
        wanted = Domain.parse(domain) if domain else None
        refs = [r for r in engine.resolver.refs() if wanted is None or r.domain == wanted]
    import asyncio

    tracks = await asyncio.gather(*(engine.probe(r.domain, r.key, actor=command.requested_by, journal=True)
                                    for r in refs))
    results = []
    for ref, track in zip(refs, tracks):
        if track is None:
            results.append({"domain": ref.domain.value, "key": ref.key, "provider": None, "status": "failed",
                            "latency_ms": None, "message": "nothing is serving on the host",
                            "checked_at": time.time()})
        else:
            results.append({"domain": ref.domain.value, "key": ref.key, "provider": track.provider,
                            "status": track.status.value, "latency_ms": track.latency_ms,
                            "message": track.message, "checked_at": track.checked_at})
    failed = [f"{r['domain']}/{r['key']}" for r in results if r["status"] == "failed"]
    data = {"results": results}
    if failed:
        return CommandResult(EXIT_UNHEALTHY, f"Probed {len(results)} component(s) on {_host_text()}: "
                             f"{len(failed)} unhealthy ({', '.join(failed)}).", data)
    return CommandResult(EXIT_OK, f"Probed {len(results)} component(s) on {_host_text()}: none failed.", data)


@_handles("reload")
async def _reload(engine: Engine, command: Command) -> CommandResult:
    problems = engine.reload_settings()
    data = {"problems": [p.to_dict() for p in problems]}
    if problems:
        return CommandResult(EXIT_ERROR, f"Reloaded {engine.settings_dir} with {len(problems)} problem(s); "
                             "the last good version of each broken file stays in force.", data)
    return CommandResult(EXIT_OK, f"Reloaded {engine.settings_dir}: every settings file is valid.", data)


@_handles("sync")
async def _sync(engine: Engine, command: Command) -> CommandResult:
    """Sync remote sources now (`source`: one of them; `dry_run`: change nothing)."""
    outcomes = await engine.remote.sync_now(command.args.get("source") or None,
                                            dry_run=bool(command.args.get("dry_run")))
    return sync_result(outcomes, where=_host_text())


def sync_result(outcomes: list[Any], *, where: str) -> CommandResult:
    """The answer to `remote-sync`: one sentence per source; exit 6 when any sync failed."""
    if not outcomes:
        return CommandResult(EXIT_OK, "No remote sources are configured (app.yml `remote.sources`); nothing to sync.",
                             {"results": []})
    failed = [o for o in outcomes if not o.ok]
    data = {"results": [o.to_dict() for o in outcomes]}
    text = " ".join(o.message() for o in outcomes)
    if failed:
        return CommandResult(EXIT_REMOTE, f"{text} (on {where})", data)
    return CommandResult(EXIT_OK, f"{text} (on {where})", data)


class CommandLoop:
    """The host's half: polls the queue and runs each command as its own task, started in id
    order (so a pause queued after a swap starts after it), at most MAX_RUNNING at once."""

    def __init__(self, engine: Engine, *, poll_s: float = HOST_POLL_S, max_running: int = MAX_RUNNING) -> None:
        self._engine = engine
        self._poll_s = poll_s
        self._max_running = max_running
        self._running: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._backlog = False  # pending commands left behind because MAX_RUNNING were running

    def start(self) -> None:
        """Close what a previous host left running, then start polling."""
        import asyncio

        store = self._engine.store
        try:
            store.fail_running_commands("The host stopped before answering this command; "
                                        "check the journal for what it did.")
            store.prune_commands(KEEP_FINISHED_S)
        except StoreError as exc:
            self._engine.store_error = str(exc)
        self._task = asyncio.create_task(self._poll(), name="oneiric-commands")

    async def stop(self, timeout: float | None = None) -> None:
        """Take no new commands; let running ones finish within `timeout`, then cancel them
        (each cancelled command is answered as failed)."""
        import asyncio

        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        running = set(self._running)
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=timeout)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def _poll(self) -> None:
        import asyncio

        store = self._engine.store
        seen: int | None = None
        while True:
            try:
                version = store.data_version()
                if version != seen or self._backlog:
                    seen = version
                    self._backlog = self._take_pending()
            except StoreError as exc:
                self._engine.store_error = str(exc)
            await asyncio.sleep(self._poll_s)

    def _take_pending(self) -> bool:
        """Start pending commands in id order; True when some had to wait for a free slot."""
        import asyncio

        store = self._engine.store
        while len(self._running) < self._max_running:
            command = store.claim_command()
            if command is None:
                return False
            task = asyncio.create_task(self._run(command), name=f"oneiric-command-{command.id}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return True

    async def _run(self, command: Command) -> None:
        import asyncio

        try:
            result = await execute(self._engine, command)
        except asyncio.CancelledError:
            self._finish(command, CommandResult(EXIT_ERROR, f"The host stopped before finishing command "
                                                f"#{command.id} ({command.kind}).", status="failed"))
            raise
        self._finish(command, result)

    def _finish(self, command: Command, result: CommandResult) -> None:
        try:
            self._engine.store.finish_command(command.id, result.status or "failed",
                                              {"message": result.message, "data": result.data}, result.exit_code)
        except StoreError as exc:
            self._engine.store_error = str(exc)


__all__ = [
    "Command", "CommandLoop", "CommandResult", "KINDS", "activity_json", "execute", "plan_result",
    "proposal_json", "reject_result", "submit", "swap_result", "sync_result", "wait",
]
