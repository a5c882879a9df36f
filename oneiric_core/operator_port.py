"""The Operator port: the one way a front door acts, whatever process it runs in.

The console and the CLI hold an `Operator` and call `swap`, `approve`, `pause`, ... on it;
none of them asks whether it is the host. What differs is the transport underneath, chosen
once at start (and again when a console takes over from a host that went away), as httpx
puts a Client over a Transport:

* `InProcess`: this process's own engine runs the request (`commands.execute`). That is the
  host itself, or, when no host runs at all, a process changing the *desired* state (the
  settings selection, the activity table) for the next host to start from; only a principal
  who may write the state directory may do that.
* `OverSocket`: another process hosts; the request goes over its Unix socket and the host,
  which learns who is asking from the kernel, runs it (host_session.py).
* `OverStore`: another node of a fleet store; the request is a row for that node's host,
  which learns who is asking from the database (the session's role; store/requests.py).

Either way the answer is a `CommandResult`: one sentence, JSON data, an exit code.

On a fleet store a decision follows its proposal (`FleetRoute`): a proposal is its node's, and
only that node's host decides it, so `approve N` and `reject N` for another node's proposal go
through the store to that node's host whatever transport this process uses for its own node.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .commands import DEFAULT_WAIT_S, CommandResult, Request, execute
from .errors import ExitCode, OneiricError, ReadOnlyError, UsageError
from .principal import DISPLAY_ENV, NAMED, Principal, check_display
from .store import ProposalRecord, RequestRecord, StateStore

if TYPE_CHECKING:
    from .ports import OperatorEngine


class HostUnreachable(OneiricError):
    """A host holds the lease but its socket cannot be reached by this caller."""


class Transport(Protocol):
    """Carries a request to whoever runs it and brings its result back."""

    async def handle(self, request: Request, *, wait: float) -> CommandResult: ...

    def describe(self) -> str: ...


class InProcess:
    """This process's engine runs requests itself, as `principal` (its own OS account)."""

    def __init__(self, engine: OperatorEngine, principal: Principal | None = None) -> None:
        self.engine = engine
        self.principal = principal or engine.principal

    async def handle(self, request: Request, *, wait: float) -> CommandResult:
        if not self.engine.is_host and request.changes:
            self._may_change_desired_state(request)
        return await execute(self.engine, request, self.principal)

    def _may_change_desired_state(self, request: Request) -> None:
        """No host runs: changing the desired state means writing the store and settings
        directly, which only who may write the state directory can do; tell anyone else what
        to start instead of letting them fail half way."""
        state_dir = self.engine.state_dir
        if state_dir.exists() and not os.access(state_dir, os.W_OK | os.X_OK):
            from .access import StateOwner
            from .disk_faults import explain_write_failure

            disk = explain_write_failure(state_dir)
            if disk is not None:  # nobody could write it: not a matter of who runs this
                raise HostUnreachable(f"No host runs for {state_dir}, and {request.kind} cannot change the desired "
                                      f"state here: {disk}.")

            owner = StateOwner.of(state_dir)
            raise HostUnreachable(
                f"No host runs for {state_dir}, and {self.principal.name} cannot write it, so {request.kind} "
                f"cannot change the desired state here: start a host as its owner ({owner.user}), e.g. "
                "'systemctl start oneiric' or 'oneiric run', then try again.")

    def describe(self) -> str:
        return "this process (the host)" if self.engine.is_host else "this process (no host is running)"


class OverSocket:
    """Requests go to the host over its Unix socket; the kernel tells the host who we are.

    The exchange itself is blocking (a plain socket): a CLI command then needs no event loop
    at all, and the console runs it in a thread."""

    def __init__(self, path: Path, *, display: str | None = None) -> None:
        self.path = Path(path)
        self.display = display

    async def handle(self, request: Request, *, wait: float) -> CommandResult:
        import asyncio

        return await asyncio.to_thread(self.exchange, request, wait=wait)

    def exchange(self, request: Request, *, wait: float) -> CommandResult:
        import socket

        from .trace_context import outgoing
        from .wire import WIRE_VERSION, short_path

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                with short_path(self.path) as name:
                    sock.connect(name)
            except PermissionError as exc:
                raise HostUnreachable(
                    f"{Principal.of_process().name} may not connect to the host's socket {self.path} "
                    f"({exc.strerror}): by default only the state directory's group may act; ask its owner "
                    "to add you to that group or to app.yml access.") from exc
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                raise HostUnreachable(
                    f"A host holds the lease of {self.path.parent}, but nothing answers on {self.path} "
                    f"({exc.strerror}): it may be starting, stopping or an older version; try again in a "
                    "moment or see 'oneiric status'.") from exc
            # The trace of the span active here, if any: the host's span for this command joins it.
            payload = {"v": WIRE_VERSION, **request.to_wire(), "display": self.display, **outgoing()}
            sock.sendall(json.dumps(payload, default=str).encode() + b"\n")
            return self._answer(sock, request, wait)
        finally:
            sock.close()

    def _answer(self, sock: Any, request: Request, wait: float) -> CommandResult:
        import time

        taken: int | None = None
        deadline = time.monotonic() + wait
        reader = sock.makefile("rb")
        while True:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                line = reader.readline()
            except TimeoutError:
                if taken is None:  # closing the connection now withdraws it (host_session._answer)
                    return CommandResult(ExitCode.ERROR, f"The host did not take the {request.kind} command within "
                                         f"{wait:g}s (it is still starting its providers); it did not run.",
                                         status="not-run")
                return CommandResult(ExitCode.ERROR, f"The host is still running command #{taken} ({request.kind}) "
                                     f"after {wait:g}s; its outcome will be in the journal ('oneiric journal').",
                                     status="running", command_id=taken)
            except OSError:
                line = b""
            if not line:  # the host went away: say whether the command was taken
                if taken is None:
                    return CommandResult(ExitCode.ERROR, f"The host closed the connection before taking the "
                                         f"{request.kind} command; it did not run.", status="not-run")
                return CommandResult(ExitCode.ERROR, f"The host stopped before answering command #{taken} "
                                     f"({request.kind}): it was taken and may have run; check 'oneiric journal'.",
                                     status="lost", command_id=taken)
            message = json.loads(line)
            if message.get("event") == "taken":
                taken = message.get("id")
                continue
            return CommandResult.from_dict(message)

    def describe(self) -> str:
        return f"the host, through {self.path}"


class OverStore:
    """Requests go to another node's host through a fleet store (store/requests.py): written
    as a row the database stamps with this session's role, taken by that node's host, which
    writes the result. The same promise as the socket: a request no host took before `wait`
    ran out is withdrawn, so "not taken" always means "did not run"."""

    def __init__(self, store: StateStore, node: str, *, display: str | None = None) -> None:
        self.store, self.node, self.display = store, node, display

    async def handle(self, request: Request, *, wait: float) -> CommandResult:
        import asyncio

        return await asyncio.to_thread(self.exchange, request, wait=wait)

    def exchange(self, request: Request, *, wait: float) -> CommandResult:
        import time

        listener = self.store.listen()  # before the write: the answer cannot come before we listen
        try:
            deadline = time.time() + wait
            request_id = self.store.requests.submit(self.node, request.kind, request.args, self.display, deadline)
            while True:
                record = self.store.requests.get(request_id)
                if record is not None and record.finished:
                    return CommandResult.from_dict({**(record.result or {}), "exit_code": record.exit_code,
                                                    "status": record.status, "id": record.command_id})
                left = deadline - time.time()
                if left <= 0:
                    return self._gave_up(request, request_id, record)
                listener.wait(min(left, 1.0))
        finally:
            listener.close()

    def _gave_up(self, request: Request, request_id: int, record: RequestRecord | None) -> CommandResult:
        if self.store.requests.withdraw(request_id):
            return CommandResult(ExitCode.ERROR, f"No host of node {self.node} took the {request.kind} request "
                                 f"#{request_id} in time (see 'oneiric nodes'); it was withdrawn and did not run.",
                                 status="not-run")
        return CommandResult(ExitCode.ERROR, f"The host of node {self.node} is still running request #{request_id} "
                             f"({request.kind}); its outcome will be in the journal ('oneiric journal').",
                             status="running", command_id=record.command_id if record else None)

    def describe(self) -> str:
        return f"the host of node {self.node}, through the store {self.store.where}"


DECISIONS = ("approve", "reject")


class FleetRoute:
    """Where a decision goes on a fleet store: proposal ids are one sequence in the store and a
    proposal carries its node, whose host alone decides it (with that node's rules: the
    two-person rule, signed approvals, its journal). A decision on another node's proposal is
    a request for that node's host (OverStore); when no host of that node is live, one
    sentence says so before anything is written."""

    def __init__(self, store: StateStore, node: str, *, display: str | None = None) -> None:
        self.store, self.node, self.display = store, node, display

    def transport_for(self, request: Request) -> OverStore | None:
        """The transport to another node's host for this request, or None: it stays here."""
        if request.kind not in DECISIONS:
            return None
        given = request.args.get("id")
        if not isinstance(given, (int, str)) or not str(given).isdigit():
            return None  # the handler says what is wrong with it
        proposal_id = int(given)
        record = self.store.find_proposal(proposal_id)
        if record is None or not record.node or record.node == self.node:
            return None
        self._require_live(record)
        return OverStore(self.store, record.node, display=self.display)

    def _require_live(self, record: ProposalRecord) -> None:
        import time

        from .fleet import node_state
        from .humanize import age

        now = time.time()
        lease = next((n for n in self.store.nodes() if n.node == record.node), None)
        state = node_state(lease, now) if lease is not None else None
        if state == "live":
            return
        if lease is None:
            why = "no host of it ever ran"
        elif state == "stopped":
            why = f"its host stopped {age(lease.stopped_at, now)} ago"
        else:
            why = f"its host's last heartbeat was {age(lease.heartbeat_at, now)} ago"
        raise HostUnreachable(
            f"Proposal #{record.id} is node {record.node}'s, and no host of {record.node} is running ({why}; see "
            f"'oneiric nodes'): only that node's host can decide it, so nothing was decided; start it and try again.")


class Operator:
    """What an operator can do, as typed calls; each becomes one Request on the transport
    (or, on a fleet store, a decision on another node's proposal on that node's: `route`)."""

    def __init__(self, transport: Transport, *, read_only: bool = False, wait: float = DEFAULT_WAIT_S,
                 route: FleetRoute | None = None) -> None:
        self.transport = transport
        self.read_only = read_only
        self.wait = wait
        self.route = route

    @property
    def is_remote(self) -> bool:
        return isinstance(self.transport, (OverSocket, OverStore))

    def _request(self, kind: str, args: dict[str, Any]) -> Request:
        request = Request(kind, {k: v for k, v in args.items() if v is not None})
        request.right()  # an unknown kind is a UsageError before anything is sent
        if self.read_only and request.changes:
            raise ReadOnlyError(f"Read-only mode: {kind} is disabled.")
        return request

    def _transport_for(self, request: Request) -> Transport:
        routed = self.route.transport_for(request) if self.route is not None else None
        return routed or self.transport

    async def run(self, kind: str, wait: float | None = None, **args: Any) -> CommandResult:
        request = self._request(kind, args)
        return await self._transport_for(request).handle(request, wait=self.wait if wait is None else wait)

    def run_blocking(self, kind: str, wait: float | None = None, **args: Any) -> CommandResult:
        """`run` for a process with no event loop (the CLI): over the socket, no loop is made."""
        request = self._request(kind, args)
        transport = self._transport_for(request)
        if isinstance(transport, (OverSocket, OverStore)):
            return transport.exchange(request, wait=self.wait if wait is None else wait)
        import asyncio

        return asyncio.run(self.run(kind, wait, **args))

    async def swap(self, domain: str | None, key: str, provider: str | None = None, *, force: bool = False,
                   dry_run: bool = False, reason: str | None = None, approve: bool = False,
                   to_source: str | None = None, source: str = "cli") -> CommandResult:
        return await self.run("swap", domain=domain, key=key, provider=provider, force=force or None,
                              dry_run=dry_run or None, reason=reason, approve=approve or None,
                              to_source=to_source, source=source)

    async def approve(self, proposal_id: int, *, comment: str | None = None,
                      signature: str | None = None) -> CommandResult:
        return await self.run("approve", id=proposal_id, comment=comment, signature=signature)

    async def reject(self, proposal_id: int, *, comment: str | None = None,
                     signature: str | None = None) -> CommandResult:
        return await self.run("reject", id=proposal_id, comment=comment, signature=signature)

    async def pause(self, domain: str | None, key: str, *, note: str | None = None) -> CommandResult:
        return await self.run("pause", domain=domain, key=key, note=note)

    async def resume(self, domain: str | None, key: str, *, note: str | None = None) -> CommandResult:
        return await self.run("resume", domain=domain, key=key, note=note)

    async def drain(self, domain: str | None, key: str, *, note: str | None = None,
                    timeout: float = DEFAULT_WAIT_S) -> CommandResult:
        return await self.run("drain", wait=max(self.wait, timeout + 5), domain=domain, key=key, note=note,
                              timeout=timeout)

    async def probe(self, domain: str | None = None, key: str | None = None) -> CommandResult:
        return await self.run("probe", domain=domain, key=key)

    async def sync(self, source: str | None = None, *, dry_run: bool = False) -> CommandResult:
        return await self.run("sync", source=source, dry_run=dry_run or None)

    async def reload(self) -> CommandResult:
        return await self.run("reload")

    async def pending(self) -> list[ProposalRecord]:
        result = await self.run("pending")
        if not result.ok:
            raise OneiricError(result.message)
        fields = set(ProposalRecord.__dataclass_fields__)
        return [ProposalRecord(**{k: v for k, v in p.items() if k in fields}) for p in result.data.get("pending", [])]

    def describe(self) -> str:
        return self.transport.describe()


def display_name() -> str | None:
    """ONEIRIC_OPERATOR, checked: a display name that could impersonate is refused in one sentence."""
    return check_display(os.environ.get(DISPLAY_ENV))


def connect(engine: OperatorEngine, *, read_only: bool | None = None, wait: float = DEFAULT_WAIT_S,
            node: str | None = None) -> Operator:
    """The Operator for this engine's process: in-process when it hosts or no host runs,
    over the socket when another process hosts, through the store for another `node`."""
    read_only = engine.read_only if read_only is None else read_only
    fleet = not engine.store.backend.holds_one_node
    if node is not None and node != engine.node and not fleet:
        raise UsageError(f"The store {engine.store.where} is one node's (a SQLite file): there is no node "
                         f"{node} to act on; a fleet shares a PostgreSQL store (docs/fleet.md).")
    # What this process calls its operator (ONEIRIC_OPERATOR, or a name its own code gave the
    # engine) travels as display only: the host learns who we are from the kernel or the database.
    claimed = (engine.principal.name if engine.principal.kind == NAMED else display_name()) if fleet else None
    route = FleetRoute(engine.store, engine.node, display=claimed) if fleet else None
    if node is not None and node != engine.node:
        return Operator(OverStore(engine.store, node, display=claimed), read_only=read_only, wait=wait, route=route)
    if engine.is_host:
        return Operator(InProcess(engine), read_only=read_only, wait=wait, route=route)
    _, alive = engine.host()
    if alive:
        from .wire import socket_path

        path = socket_path(engine.state_dir)
        if fleet and not path.exists():
            # This node's host runs elsewhere (another machine, another state directory): its
            # socket is there, its inbox is in the store.
            return Operator(OverStore(engine.store, engine.node, display=claimed), read_only=read_only, wait=wait,
                            route=route)
        claimed = engine.principal.name if engine.principal.kind == NAMED else display_name()
        return Operator(OverSocket(path, display=claimed), read_only=read_only, wait=wait, route=route)
    return Operator(InProcess(engine, engine.principal.with_display(display_name())),
                    read_only=read_only, wait=wait, route=route)


__all__ = ["DECISIONS", "FleetRoute", "HostUnreachable", "InProcess", "Operator", "OverSocket", "OverStore",
           "Transport", "connect", "display_name"]
