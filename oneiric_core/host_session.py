"""Being the host: the lease, its heartbeat, and the socket other processes ask through.

Exactly one process hosts a state directory (docs/architecture.md §5). `HostSession` is everything
that makes the engine's process that one, kept out of engine.py so the engine stays about
components:

* the lease row, renewed every second; a crashed host's lease goes stale and is taken over;
* the Unix socket `host.sock` in the state directory. A client connects, sends one request
  as a JSON line, and gets back `taken` (with the id of the command row the host recorded)
  and then the result. The kernel says who connected (SO_PEERCRED): that principal, never
  anything the client claims, is what the rights and the two-person rule see. The socket is
  0660 and group-owned like the state directory, so by default only the directory's group
  can even connect;
* a tamper scan on every heartbeat: command rows and pending proposals whose seal does not
  match were written behind the host's back; they are journaled as `store-tampered` and
  never acted on (seal.py).

The wire format is in wire.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
import threading
import time
from typing import TYPE_CHECKING, Any

from .approvals import TAMPERED
from .commands import KEEP_FINISHED_S, CommandResult, Request, execute
from .errors import ExitCode, OneiricError, UsageError
from .events import Event, Severity
from .host_inbox import HostInbox
from .node_summary import REPORT_EVERY_S, summarize
from .principal import Principal
from .store import LEASE_STALE_AFTER_S, LeaseInfo, StoreError
from .trace_context import incoming
from .wire import MAX_REQUEST_BYTES, WIRE_VERSION, short_path, socket_path

if TYPE_CHECKING:
    from .ports import HostSessionEngine

REQUEST_READ_S = 5.0  # a client that connects and says nothing is dropped after this
HEARTBEAT_S = 1.0
PRUNE_EVERY_S = 3600.0
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class HostBusy(OneiricError):
    """Another live process already hosts this state directory."""

    def __init__(self, holder: LeaseInfo) -> None:
        self.holder = holder
        super().__init__(
            f"Another host (pid {holder.pid} on {holder.hostname}) already runs this state directory."
        )


class HostSession:
    def __init__(self, engine: HostSessionEngine) -> None:
        self._engine = engine
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._server: asyncio.base_events.Server | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self.cut_short_commands = False  # stop_serving cancelled a command still running at its timeout
        self._scanned_command = 0
        self._tampered: set[tuple[str, int]] = set()
        self._last_prune = time.monotonic()
        self._last_report = 0.0  # the node's summary (node_summary.py), first sent once activation is done
        self._prune_task: asyncio.Task[None] | None = None
        self._prune_stop = threading.Event()
        self.path = socket_path(engine.state_dir)
        # Set once every winner is activated: the socket listens from the moment the lease is
        # ours (a client never finds a live host with nothing answering), and requests taken
        # before then wait for it.
        self.ready = asyncio.Event()
        self.inbox = HostInbox(self, engine)  # a fleet store's requests for this node (host_inbox.py)

    # -- the lease -------------------------------------------------------------------------------
    def acquire(self) -> LeaseInfo | None:
        """Take the lease (a free or stale one, or one whose holder on this machine is gone);
        returns the previous holder when it was another process. Raises HostBusy."""
        store = self._engine.store
        previous = store.current_lease()
        acquired, holder = store.acquire_lease(os.getpid(), socket.gethostname(),
                                               stale_after_s=LEASE_STALE_AFTER_S, holder_dead=_holder_gone)
        if not acquired:
            assert holder is not None
            raise HostBusy(holder)
        ours = previous is not None and (previous.pid, previous.hostname) == (os.getpid(), socket.gethostname())
        return None if previous is None or ours else previous

    def start_heartbeat(self) -> None:
        self._heartbeat_task = asyncio.create_task(self._heartbeat(), name="oneiric-lease-heartbeat")

    async def _heartbeat(self) -> None:
        """Each second: renew the lease, report the node's figures now and then, start a prune
        now and then (off the loop), and look for rows written behind the host's back
        (commands, proposals, activity)."""
        engine = self._engine
        pid, host = os.getpid(), socket.gethostname()
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                if not engine.store.heartbeat(pid, host):
                    engine.emit(Event("host-stopped", "this host lost its lease to another process",
                                      Severity.ERROR, actor=engine.actor))
                    return
                engine.guard_activity()
                if time.monotonic() - self._last_report >= REPORT_EVERY_S and self.ready.is_set():
                    self._last_report = time.monotonic()
                    engine.store.report_node(pid, host, summarize(engine).to_dict())
                if time.monotonic() - self._last_prune >= PRUNE_EVERY_S:
                    self.start_pruning()
                self.scan_for_tampering()
            except StoreError as exc:
                engine.store_error = str(exc)

    # -- journal retention --------------------------------------------------------------------
    def start_pruning(self) -> None:
        """Apply the journal retention on a worker thread (retention.py), unless a prune still
        runs; the heartbeat never waits for it (the lease stays fresh however long it takes)."""
        self._last_prune = time.monotonic()
        if self._prune_task is None or self._prune_task.done():
            self._prune_task = asyncio.create_task(self._prune(), name="oneiric-journal-prune")

    async def _prune(self) -> None:
        engine = self._engine
        try:
            report = await asyncio.to_thread(engine.prune_journal, self._prune_stop)
        except StoreError as exc:
            engine.store_error = str(exc)
            return
        except Exception as exc:  # noqa: BLE001 - last line of defence: a bug here is journaled, the host stays up
            engine.emit(Event("store-error", f"journal retention failed: {type(exc).__name__}: {exc}",
                              Severity.ERROR, actor=engine.actor))
            return
        engine.journal_pruned(report)

    async def stop_pruning(self) -> None:
        """Ask a running prune to stop after its current step (a few tens of ms) and wait."""
        task, self._prune_task = self._prune_task, None
        if task is not None and not task.done():
            self._prune_stop.set()
            await asyncio.gather(task, return_exceptions=True)
        self._prune_stop.clear()

    def release(self) -> None:
        try:
            self._engine.store.release_lease(os.getpid(), socket.gethostname())
        except StoreError as exc:
            self._engine.store_error = str(exc)

    async def stop_heartbeat(self) -> None:
        await self.stop_pruning()
        task, self._heartbeat_task = self._heartbeat_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # -- the socket -------------------------------------------------------------------------------
    async def serve(self) -> None:
        """Close what a previous host left unanswered, then listen on host.sock."""
        engine = self._engine
        try:
            engine.store.fail_running_commands("The host stopped before answering this command; "
                                               "check the journal for what it did.")
            engine.store.prune_commands(KEEP_FINISHED_S)
            self._scanned_command = engine.store.last_command_id()
        except StoreError as exc:
            engine.store_error = str(exc)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a dead host's socket: we hold the lease, so it is nobody's
        with short_path(self.path) as name:
            self._server = await asyncio.start_unix_server(self._connection, path=name, limit=MAX_REQUEST_BYTES)
        try:
            os.chmod(self.path, 0o660)
            os.chown(self.path, -1, os.stat(engine.state_dir).st_gid)
        except OSError:
            pass  # not the directory's group: the socket keeps this process's group
        self.inbox.start()

    async def stop_serving(self, timeout: float | None) -> None:
        """Take no new requests; let running ones finish within `timeout`, then cancel them
        (each is answered as failed)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        await self.inbox.stop()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        running = set(self._running)
        if running:
            _, late = await asyncio.wait(running, timeout=timeout)
            self.cut_short_commands = self.cut_short_commands or bool(late)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away; the command (if taken) still ran and is recorded
        finally:
            if task is not None:
                self._running.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        engine = self._engine
        try:
            principal = self._peer(writer)
            line = await asyncio.wait_for(reader.readline(), REQUEST_READ_S)
            message = json.loads(line)
            if not isinstance(message, dict) or message.get("v") != WIRE_VERSION:
                raise UsageError(f"The request does not speak version {WIRE_VERSION} of the host's protocol; "
                                 "use the same version of oneiric as the host.")
            request = Request.from_wire(message)
            parent = incoming(message) if engine.telemetry is not None and engine.telemetry.tracing else None
            display = message.get("display")
            principal = principal.with_display(display if isinstance(display, str) else None)
        except (ValueError, asyncio.LimitOverrunError) as exc:
            await _send(writer, CommandResult(ExitCode.ERROR, f"The host could not read the request: {exc}.",
                                              status="failed").to_dict() | {"event": "result"})
            return
        except TimeoutError:
            return
        except OneiricError as exc:
            await _send(writer, CommandResult(exc.exit_code, str(exc), status="failed").to_dict() | {"event": "result"})
            return
        # A request waits, not taken, until the host has started its providers; one whose
        # client gave up (or died) meanwhile is never run: "not taken" must mean "did not run".
        await self.ready.wait()
        if reader.at_eof():
            return
        record = None
        if request.kind != "pending":
            try:
                record = engine.store.record_command(request.kind, request.args, principal.label, principal.id)
            except StoreError as exc:  # no record, no run: the trace is part of the promise
                await _send(writer, CommandResult(ExitCode.ERROR, f"The host cannot record the command, so it did not "
                                                  f"run it: {exc}.", status="failed").to_dict() | {"event": "result"})
                return
            await _send(writer, {"event": "taken", "id": record.id})
        try:
            result = await execute(engine, request, principal, parent=parent,
                                   command_id=record.id if record else None)
        except asyncio.CancelledError:
            result = CommandResult(ExitCode.ERROR, f"The host stopped before finishing command "
                                   f"#{record.id if record else '?'} ({request.kind}).", status="failed")
            self._finish(record, result)
            with contextlib.suppress(Exception):
                await _send(writer, result.to_dict() | {"event": "result", "id": record.id if record else None})
            raise
        self._finish(record, result)
        await _send(writer, result.to_dict() | {"event": "result", "id": record.id if record else None})

    def _peer(self, writer: asyncio.StreamWriter) -> Principal:
        sock = writer.get_extra_info("socket")
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        _pid, uid, gid = _PEERCRED.unpack(raw)
        return Principal.from_uid(uid, gid, via="peer credentials")

    def _finish(self, record: Any, result: CommandResult) -> None:
        if record is None:
            return
        try:
            self._engine.store.finish_command(record.id, result.status or "failed",
                                              {"message": result.message, "data": result.data}, result.exit_code)
        except StoreError as exc:
            self._engine.store_error = str(exc)

    # -- rows written behind the host's back ------------------------------------------------------
    def scan_for_tampering(self) -> None:
        """Journal (once) every command row and pending proposal whose seal does not match, and
        close it so nothing ever acts on it."""
        engine = self._engine
        store = engine.store
        if store.seal is None:
            return
        for command in store.commands_after(self._scanned_command):
            self._scanned_command = max(self._scanned_command, command.id or 0)
            if command.sealed is False:
                self._tampered_row("commands", command.id or 0, f"command #{command.id} ({command.kind}, "
                                   f"as {command.requested_by}) was not written by the host; it is never executed")
                store.finish_command(command.id or 0, "refused", {"message": "not written by the host", "data": {}},
                                     ExitCode.ERROR)
        for proposal in store.proposals(status="pending", limit=10_000):
            if proposal.sealed is False:
                self._tampered_row("proposals", proposal.id or 0, f"proposal #{proposal.id} ({proposal.domain}/"
                                   f"{proposal.key} -> {proposal.to_provider}) was changed outside the host; "
                                   "it can no longer be approved")
                proposal.status = TAMPERED  # sealed again as closed: journaled once, never decidable
                store.put_proposal(proposal)

    def _tampered_row(self, table: str, row_id: int, message: str) -> None:
        if (table, row_id) in self._tampered:
            return
        self._tampered.add((table, row_id))
        self._engine.emit(Event("store-tampered", message, Severity.ERROR, actor=self._engine.actor,
                                outcome="refused", data={"table": table, "id": row_id}))


async def _send(writer: asyncio.StreamWriter, payload: dict[str, Any]) -> None:
    writer.write(json.dumps(payload, default=str).encode() + b"\n")
    await writer.drain()


def _holder_gone(holder: LeaseInfo) -> bool:
    """True when the lease holder was a process of this machine that no longer exists (killed,
    crashed): a restarted host takes over at once instead of waiting for the lease to go
    stale. A holder on another machine, or a pid that is alive, is never judged gone."""
    from .identity import other_process_alive

    return holder.pid != os.getpid() and other_process_alive(holder.hostname, holder.pid) is False


__all__ = ["HEARTBEAT_S", "HostBusy", "HostSession"]
