"""A fleet node's host takes the requests written for its node in the store (store/requests.py),
as its socket takes the local ones (host_session.py): same rights check, same command record,
same `commands.execute`. Who asks is the database's word: the session role that wrote the row,
with the store's roles it is a member of (access.py gives rights by them).

A thread waits on the store's Listener and wakes the loop at once when a request for this
node is written (the database NOTIFYs it, pg_migrations.py step 10); the loop also looks
every INBOX_LOOK_S in case a notice was lost (a dropped connection)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import TYPE_CHECKING

from .commands import CommandResult, Request, execute
from .errors import ExitCode, OneiricError
from .principal import DB_ROLE, Principal
from .store import RequestRecord, StoreError

if TYPE_CHECKING:
    from .host_session import HostSession

INBOX_LOOK_S = 2.0  # the safety net under the notices
WAKE_POLL_S = 0.5  # how often the listening thread checks it should stop


class HostInbox:
    def __init__(self, session: HostSession) -> None:
        self._session = session
        self._engine = session._engine
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        """On a fleet store only: a SQLite file's host takes requests over its socket alone."""
        if self._engine.store.backend.holds_one_node or self._task is not None:
            return
        wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._listen, args=(loop, wake), name="oneiric-inbox-listener",
                                        daemon=True)
        self._thread.start()
        self._task = asyncio.create_task(self._serve(wake), name="oneiric-inbox")

    def _listen(self, loop: asyncio.AbstractEventLoop, wake: asyncio.Event) -> None:
        prefix = f"request:{self._engine.node}:"
        try:
            listener = self._engine.store.listen()
        except StoreError:
            return  # the loop still looks every INBOX_LOOK_S
        try:
            while not self._stop.is_set():
                notices = listener.wait(WAKE_POLL_S)
                if any(n.startswith(prefix) or n == "reconnected" for n in notices):
                    loop.call_soon_threadsafe(wake.set)
        finally:
            listener.close()

    async def _serve(self, wake: asyncio.Event) -> None:
        engine, session = self._engine, self._session
        await session.ready.wait()
        while True:
            try:
                taken = engine.store.requests.take(engine.node)
            except StoreError as exc:
                engine.store_error = str(exc)
                taken = []
            for record in taken:
                task = asyncio.create_task(self._run(record), name=f"oneiric-request-{record.id}")
                session._running.add(task)
                task.add_done_callback(session._running.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), INBOX_LOOK_S)
            wake.clear()

    def _principal(self, record: RequestRecord) -> Principal:
        kind, _, name = record.requested_by_id.partition(":")
        if kind != DB_ROLE or not name:
            raise OneiricError(f"request #{record.id} names no database role ('{record.requested_by_id}')")
        roles = self._engine.store.requests.roles_of(name)
        return Principal(DB_ROLE, name, groups=roles, via="database session role").with_display(record.display)

    async def _run(self, record: RequestRecord) -> None:
        engine, store = self._engine, self._engine.store
        command = None
        try:
            if record.deadline is not None and time.time() > record.deadline:
                result = CommandResult(ExitCode.ERROR, f"Request #{record.id} ({record.kind}) was taken after its "
                                       "writer stopped waiting; it did not run.", status="refused")
            else:
                principal = self._principal(record)
                request = Request.from_wire({"kind": record.kind, "args": record.args})
                command = store.record_command(request.kind, request.args, principal.label, principal.id)
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
        self._session._finish(command, result)
        try:
            self._engine.store.requests.finish(record.id, result.status or "failed",
                                               {"message": result.message, "data": result.data}, result.exit_code,
                                               getattr(command, "id", None))
        except StoreError as exc:
            self._engine.store_error = str(exc)

    async def stop(self) -> None:
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.to_thread(thread.join, WAKE_POLL_S * 4)
