"""What a fleet node's host does through the store, beside its socket: it takes the requests
written for its node (store/requests.py) and carries the fleet's rollouts a step at a time
(rollout.py).

A request is run as its socket runs the local ones: same rights check, same command record,
same `commands.execute`. Who asks is the database's word: the session role that wrote the
row, with the store's roles it is a member of (access.py gives rights by them).

One thread waits on the store's Listener (StoreWake) and wakes each loop at once when a
notice it cares about comes (a request for this node; a request answered or a rollout changed);
each loop also looks every LOOK_S in case a notice was lost (a dropped connection)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import TYPE_CHECKING

from .commands import CommandResult, Request, execute
from .errors import ExitCode, OneiricError
from .principal import DB_ROLE, Principal
from .rollout import RolloutCoordinator
from .store import CommandRecord, RequestRecord, StateStore, StoreError

if TYPE_CHECKING:
    from .host_session import HostSession
    from .ports import HostInboxEngine

LOOK_S = 2.0  # the safety net under the notices
WAKE_POLL_S = 0.5  # how often the listening thread checks it should stop

# A taken request's start: what it runs (request, principal, command row) or its answer already.
_Start = CommandResult | tuple[Request, Principal, CommandRecord]


class StoreWake:
    """One Listener for the host, in a thread: each watcher's event is set when a notice
    starting with one of its prefixes arrives (or the listener reconnected: anything may
    have been missed)."""

    def __init__(self, store: StateStore, loop: asyncio.AbstractEventLoop) -> None:
        self._store, self._loop = store, loop
        self._watchers: list[tuple[tuple[str, ...], asyncio.Event]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, *prefixes: str) -> asyncio.Event:
        event = asyncio.Event()
        self._watchers.append(((*prefixes, "reconnected"), event))
        return event

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen, name="oneiric-store-wake", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        try:
            listener = self._store.listen()
        except StoreError:
            return  # the loops still look every LOOK_S
        try:
            while not self._stop.is_set():
                notices = listener.wait(WAKE_POLL_S)
                for prefixes, event in self._watchers:
                    if any(n.startswith(prefixes) for n in notices):
                        self._loop.call_soon_threadsafe(event.set)
        finally:
            listener.close()

    async def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.to_thread(thread.join, WAKE_POLL_S * 4)


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
    event.clear()


class HostInbox:
    def __init__(self, session: HostSession, engine: HostInboxEngine) -> None:
        self._session = session
        self._engine = engine
        self._tasks: list[asyncio.Task[None]] = []
        self._wake: StoreWake | None = None

    def start(self) -> None:
        """On a fleet store only: a SQLite file's host takes requests over its socket alone."""
        if self._engine.store.backend.holds_one_node or self._wake is not None:
            return
        self._wake = StoreWake(self._engine.store, asyncio.get_running_loop())
        requests = self._wake.watch(f"request:{self._engine.node}:")
        rollouts = self._wake.watch("request-done:", "rollout:")
        self._wake.start()
        self._tasks = [asyncio.create_task(self._serve(requests), name="oneiric-inbox"),
                       asyncio.create_task(self._coordinate(rollouts), name="oneiric-rollouts")]

    async def _serve(self, wake: asyncio.Event) -> None:
        engine, session = self._engine, self._session
        await session.ready.wait()
        while True:
            try:
                taken = self._take()
            except StoreError as exc:
                engine.store_error = str(exc)
                taken = []
            for record, start in taken:
                task = asyncio.create_task(self._run(record, start), name=f"oneiric-request-{record.id}")
                session._running.add(task)
                task.add_done_callback(session._running.discard)
            await _wait(wake, LOOK_S)

    async def _coordinate(self, wake: asyncio.Event) -> None:
        """Carry the fleet's rollouts: at once when a step's answer comes or a rollout changes,
        and every second anyway (a soak ends, a coordinator went quiet)."""
        coordinator = RolloutCoordinator(self._engine)
        await self._session.ready.wait()
        while True:
            coordinator.tick()
            await _wait(wake, 1.0)

    def _principal(self, record: RequestRecord) -> Principal:
        kind, _, name = record.requested_by_id.partition(":")
        if kind != DB_ROLE or not name:
            raise OneiricError(f"request #{record.id} names no database role ('{record.requested_by_id}')")
        roles = self._engine.store.requests.roles_of(name)
        return Principal(DB_ROLE, name, groups=roles, via="database session role").with_display(record.display)

    def _take(self) -> list[tuple[RequestRecord, _Start]]:
        """Take this node's waiting requests and record each one's command row, in one commit
        (a PostgreSQL commit is most of a write's cost: issue 18, bench/rollout.py)."""
        store = self._engine.store
        with store.batch():
            return [(record, self._start(record)) for record in store.requests.take(self._engine.node)]

    def _start(self, record: RequestRecord) -> _Start:
        """What carrying `record` out starts from: its request, principal and command row, or
        the answer it gets without running (past its deadline, no database role, bad input)."""
        if record.deadline is not None and time.time() > record.deadline:
            return CommandResult(ExitCode.ERROR, f"Request #{record.id} ({record.kind}) was taken after its "
                                 "writer stopped waiting; it did not run.", status="refused")
        try:
            principal = self._principal(record)
            request = Request.from_wire({"kind": record.kind, "args": record.args})
        except OneiricError as exc:
            return CommandResult(exc.exit_code, str(exc), status="failed")
        command = self._engine.store.record_command(request.kind, request.args, principal.label, principal.id)
        return request, principal, command

    async def _run(self, record: RequestRecord, start: _Start) -> None:
        engine = self._engine
        command = None
        try:
            if isinstance(start, CommandResult):
                result = start
            else:
                request, principal, command = start
                result = await execute(engine, request, principal, command_id=command.id)
        except OneiricError as exc:
            result = CommandResult(exc.exit_code, str(exc), status="failed")
        except asyncio.CancelledError:
            result = CommandResult(ExitCode.ERROR, f"The host stopped before finishing request #{record.id} "
                                   f"({record.kind}).", status="failed")
            self._answer(record, command, result)
            raise
        self._answer(record, command, result)

    def _answer(self, record: RequestRecord, command: object, result: CommandResult) -> None:
        """The command row's result and the request's answer, in one commit (a PostgreSQL
        commit is most of a write's cost: issue 18, bench/rollout.py)."""
        store = self._engine.store
        try:
            with store.batch():
                self._session._finish(command, result)
                store.requests.finish(record.id, result.status or "failed",
                                      {"message": result.message, "data": result.data}, result.exit_code,
                                      getattr(command, "id", None))
        except StoreError as exc:
            self._engine.store_error = str(exc)

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        wake, self._wake = self._wake, None
        if wake is not None:
            await wake.stop()
