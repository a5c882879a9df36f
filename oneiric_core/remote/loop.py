"""RemoteManager: every remote source of app.yml, their refresh loops, and their status.

Every process builds one (it is cheap: nothing is fetched, no heavy import) and puts each
source's last good manifest in force from the cache, so `oneiric explain` in a CLI process
ranks the same candidates the host does. Only the host runs the loops:

* one asyncio task per source, started by `Engine.start` and stopped by `Engine.stop`; the
  first sync runs at once (start-up waits for it a few seconds at most, then the source
  goes on in the background with its cached manifest marked stale);
* after a good sync it sleeps `interval_s` (+-10% jitter); after a failure a backoff that
  grows with the consecutive failures, up to `interval_s`; while the circuit is open, until
  its trial time; never past the expiry of the manifest in force, so an expired manifest is
  withdrawn when it expires, not up to an interval later;
* nothing a sync can raise ends it (every failure is a result, counted and journaled), and
  `trigger()` wakes it at once;
* after every attempt the host writes the source's status to the store (status.py), which
  is what `oneiric remote-status` and an attached console show.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NotFound, RemoteSyncFailed, UsageError
from ..events import Event, Severity
from ..store import StoreError

if TYPE_CHECKING:
    from ..ports import RemoteEngine
    from ..registry import CandidateFields
    from ..settings import RemoteOptions
    from .registration import Applied, Registrar
    from .sync import RemoteSource, SyncContext, SyncOutcome, Trust

STARTUP_WAIT_S = 3.0  # how long Engine.start waits for the first sync of every source
MIN_DELAY_S = 0.01


ONE_SHOT = "manifest"  # the source `remote-sync --manifest URI` registers its entries under (remote:manifest)
ONE_SHOT_META = "remote_one_shot"  # {uri, pid, hostname}: the host that holds a one-shot source, for its clients


class RemoteManager:
    def __init__(self, engine: RemoteEngine) -> None:
        self._engine = engine
        self.options: RemoteOptions = engine.settings.app.remote
        self.sources: dict[str, RemoteSource] = {}
        self.running = False
        self.activated = False  # see mark_activated
        self.iterations: dict[str, int] = {}  # finished loop rounds per source
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._first: dict[str, asyncio.Event] = {}
        self._client: Any = None
        # Built with the first source: an engine without remote sources imports none of it.
        self._registrar: Registrar | None = None
        self._context: SyncContext | None = None
        for opts in self.options.sources:
            self._add(opts)
        self._adopt_one_shot()

    # -- configuration -----------------------------------------------------------------------------
    @property
    def registrar(self) -> Registrar:
        if self._registrar is None:
            from .registration import Registrar

            self._registrar = Registrar(self._engine)
            self._registrar.activated = self.activated
        return self._registrar

    def _ctx(self) -> SyncContext:
        if self._context is None:
            from .freshness import Ledger
            from .sync import SyncContext

            engine = self._engine
            self._context = SyncContext(
                settings_dir=Path(os.path.abspath(engine.settings_dir)),
                root=engine.state_dir / "remote",
                trust=self._trust,
                allowlist=lambda: self._engine.settings.app.factory_allowlist,
                client=self._http,
                emit=engine.emit,
                preview=self.registrar.preview,
                apply=self._apply,
                ledger=Ledger(lambda: self._engine.store),
                max_depth=lambda: self._engine.settings.app.limits.max_depth,
                telemetry=lambda: self._engine.telemetry,
            )
        return self._context

    def _trust(self) -> Trust:
        from .sync import Trust

        return Trust({k.id: k.public_key for k in self.options.trusted_keys}, self.options.threshold)

    def _add(self, opts: Any) -> RemoteSource:
        from .sync import RemoteSource

        src = self.sources[opts.name] = RemoteSource(opts, self.options.breaker, self._ctx())
        self.iterations.setdefault(opts.name, 0)
        recorded = self._recorded(opts.name)
        if recorded is not None:
            src.carry_on(recorded)
        rows = src.load_cached()
        if rows is not None:
            self.registrar.register(src.source, rows)
        return src

    def reconfigure(self, options: RemoteOptions) -> None:
        """Put a changed `remote:` section of app.yml in force on a running engine: new
        sources start, removed ones stop and their candidates leave the registry (what serves
        keeps serving, with a proposal to swap away), changed ones take their new options."""
        old = self.options
        self.options = options
        wanted = {s.name: s for s in options.sources}
        for name in [n for n in self.sources if n not in wanted]:
            src = self.sources.pop(name)
            task = self._tasks.pop(name, None)
            if task is not None:
                task.cancel()
            self._wake.pop(name, None)
            self._first.pop(name, None)
            self._withdraw(src, "it was removed from app.yml")
        for name, opts in wanted.items():
            existing = self.sources.get(name)
            if existing is None:
                src = self._add(opts)
                if self.running:
                    self._spawn(src)
            elif opts != existing.options or old.breaker != options.breaker:
                existing.reconfigure(opts, options.breaker)
                self.trigger(name)
        if old.trusted_keys != options.trusted_keys or old.threshold != options.threshold:
            for src in self.sources.values():
                if src.withdraw_untrusted():
                    self._withdraw(src, "its manifest is no longer trusted")
            self.trigger()

    def _withdraw(self, src: RemoteSource, why: str) -> None:
        """Remove a source's candidates; on a running host, what serves keeps serving and
        becomes a proposal to swap away (registration.py)."""
        if self.running:
            self._engine.spawn(self._apply(src.source, [], f"{src.source}: {why}"),
                                f"oneiric-remote-withdraw-{src.name}")
        else:
            self.registrar.register(src.source, [])

    # -- the host's loops ---------------------------------------------------------------------------
    async def start(self, wait_s: float = STARTUP_WAIT_S) -> None:
        """Start one refresh loop per source and wait (at most `wait_s`) for their first sync."""
        if self.running:
            return
        self.running = True
        for src in self.sources.values():
            src.report_cache_refusal()
            self._spawn(src)
        firsts = [event.wait() for event in self._first.values()]
        if firsts:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await asyncio.gather(*firsts)

    def mark_activated(self) -> None:
        """Every winner was activated: from now on a sync that moves a winner proposes a swap."""
        self.activated = True
        if self._registrar is not None:
            self._registrar.activated = True

    def _spawn(self, src: RemoteSource) -> None:
        self._wake[src.name] = asyncio.Event()
        self._first[src.name] = asyncio.Event()
        self._tasks[src.name] = asyncio.create_task(self._loop(src), name=f"oneiric-remote-{src.name}")

    async def stop(self) -> None:
        self.running = False
        self.activated = False
        if self._registrar is not None:
            self._registrar.activated = False
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for src in self.sources.values():
            src.status.next_attempt_at = None
            self._publish(src)
        await self.aclose()

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    def loop_alive(self, name: str) -> bool:
        task = self._tasks.get(name)
        return task is not None and not task.done()

    async def _loop(self, src: RemoteSource) -> None:
        name = src.name
        first_round = True
        while True:
            wake = self._wake.get(name)
            if wake is None:  # the source was removed
                return
            wake.clear()
            try:
                try:
                    # The first sync (start-up waits for it) makes one attempt: a source that is
                    # down falls back to its cache at once, and the backoff below retries it.
                    await src.sync(retries=0 if first_round else None)
                finally:
                    first_round = False
                    first = self._first.get(name)
                    if first is not None:
                        first.set()
                delay = self._delay(src)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - sync reports its own failures; a bug here is journaled, the loop survives
                delay = max(src.options.backoff_s, 1.0)
                self._engine.emit(Event("remote-sync-error", f"{src.source}: the refresh loop hit "
                                        f"{type(exc).__name__}: {exc}; it retries in {delay:g} s",
                                        Severity.ERROR, actor=src.source, data={"source": name}))
            self.iterations[name] = self.iterations.get(name, 0) + 1
            src.status.next_attempt_at = time.time() + delay
            with contextlib.suppress(Exception):  # StoreError is recorded by _publish; nothing stops the loop
                self._publish(src)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await wake.wait()

    def _delay(self, src: RemoteSource) -> float:
        from .fetch import backoff_delay

        opts = src.options
        if not src.breaker.allows():
            delay = (src.breaker.retry_at or time.time()) - time.time()
        elif src.status.consecutive_failures:
            delay = min(opts.interval_s, backoff_delay(src.status.consecutive_failures - 1, opts.backoff_s,
                                                       cap_s=opts.interval_s))
        else:
            delay = opts.interval_s * random.uniform(0.9, 1.1)
        expires = src.expires_ts()
        if expires is not None:  # wake when the manifest in force expires, to withdraw it then
            delay = min(delay, expires - time.time())
        return max(MIN_DELAY_S, delay)

    def trigger(self, name: str | None = None) -> bool:
        """Wake the refresh loop of `name` (every source when None) to sync now; False when no
        loop runs in this process (it is not the host)."""
        woke = False
        for source, event in self._wake.items():
            if name is None or source == name:
                event.set()
                woke = True
        return woke

    # -- syncing on request (the `sync` host command, the CLI without a host) -------------------
    def _targets(self, name: str | None) -> list[RemoteSource]:
        if name is None:
            return list(self.sources.values())
        src = self.sources.get(name.removeprefix("remote:"))
        if src is None:
            known = ", ".join(self.sources) or "none (app.yml has no remote sources)"
            raise NotFound(f"No remote source is named '{name}' (configured: {known}).")
        return [src]

    async def sync_now(self, name: str | None = None, *, dry_run: bool = False) -> list[SyncOutcome]:
        """Sync `name` (or every source) now, as an operator asked: it runs even while the
        circuit is open (as its trial). `dry_run` fetches and checks everything and returns
        what would be added, replaced and removed, changing nothing."""
        targets = self._targets(name)
        try:
            outcomes = list(await asyncio.gather(*(src.sync(dry_run=dry_run, manual=True) for src in targets)))
        finally:
            if not self.running:
                await self.aclose()
        if not dry_run:
            for src in targets:
                self._publish(src)
        return outcomes

    async def _apply(self, source: str, rows: Sequence[CandidateFields], why: str) -> Applied:
        return await self.registrar.apply(source, rows, why=why)

    def _http(self) -> Any:
        if self._client is None:
            from .fetch import new_http_client

            self._client = new_http_client()
        return self._client

    # -- status ---------------------------------------------------------------------------------------
    def _adopt_one_shot(self) -> None:
        """A client (and `oneiric list`) sees what the live host registered with `remote-sync
        --manifest`: the host records its URI in meta (ONE_SHOT_META), with its pid; anything
        a host no longer running recorded is not in force anywhere, and is left alone."""
        if ONE_SHOT in self.sources:
            return
        try:
            recorded = self._engine.store.get_meta(ONE_SHOT_META)
        except StoreError:
            return
        if not isinstance(recorded, dict) or not recorded.get("uri"):
            return
        lease, alive = self._engine.host()
        if lease is None or not alive or (lease.pid, lease.hostname) != (recorded.get("pid"), recorded.get("hostname")):
            return
        from ..settings import RemoteSourceOptions

        self._add(RemoteSourceOptions(name=ONE_SHOT, uri=str(recorded["uri"])))

    async def sync_once(self, uri: str, *, dry_run: bool = False) -> SyncOutcome:
        """Sync a manifest no app.yml source names (upstream's `remote-sync --manifest URI`):
        fetched, verified (signatures required for http(s), by app.yml's trusted keys and
        threshold) and registered as source `remote:ONE_SHOT` like any other, but nothing
        refreshes it, and it is gone when this host stops. A configured source of that name is
        refused instead of replaced."""
        from ..settings import RemoteSourceOptions

        if any(s.name == ONE_SHOT for s in self.options.sources):
            raise UsageError(f"app.yml already has a remote source named '{ONE_SHOT}'; sync it with --source "
                             f"{ONE_SHOT}, or rename it to use --manifest.")
        src = self.sources.get(ONE_SHOT)
        if src is not None and src.options.uri != uri and not dry_run:  # another one-shot: it takes the place
            self._withdraw(self.sources.pop(ONE_SHOT), f"remote-sync --manifest {uri} replaced it")
            src = None
        if src is None:
            from .sync import RemoteSource

            src = RemoteSource(RemoteSourceOptions(name=ONE_SHOT, uri=uri), self.options.breaker, self._ctx())
            if not dry_run:
                self.sources[ONE_SHOT] = src
        try:
            outcome = await src.sync(dry_run=dry_run, manual=True)
        finally:
            if not self.running:
                await self.aclose()
        if outcome.ok and not dry_run:
            self._publish(src)
            if self._engine.is_host:
                import os
                import socket

                self._engine.store.set_meta(ONE_SHOT_META, {"uri": uri, "pid": os.getpid(),
                                                            "hostname": socket.gethostname()})
        return outcome

    def _publish(self, src: RemoteSource) -> None:
        from .status import meta_key

        if self._engine.read_only and not self._engine.is_host:
            return
        try:
            self._engine.store.set_meta(self._engine.store.node_key(meta_key(src.name)), src.record())
        except StoreError as exc:
            self._engine.store_error = str(exc)

    def _recorded(self, name: str) -> dict[str, Any] | None:
        """The status the last process to sync `name` recorded in the store, if any."""
        from .status import meta_key

        try:
            recorded = self._engine.store.get_meta(self._engine.store.node_key(meta_key(name)))
        except StoreError as exc:
            self._engine.store_error = str(exc)
            return None
        return recorded if isinstance(recorded, dict) else None

    def statuses(self) -> list[dict[str, Any]]:
        """Every configured source's status: live in the host; elsewhere as the host (or the
        last process that synced) recorded it in the store."""
        from .status import SourceStatus

        now = time.time()
        out = []
        for src in self.sources.values():
            recorded = None if self.running else self._recorded(src.name)
            if recorded is not None:
                status = SourceStatus.from_dict(recorded)
                # What this process knows of its own configuration wins over an old record.
                status.uri, status.interval_s = src.options.uri, src.options.interval_s
                status.signature_required = src.options.requires_signature
            else:
                src.status.breaker = src.breaker.to_dict()
                status = src.status
            data = status.to_dict(now)
            data["accepted"] = self._accepted(src, data.get("accepted"))
            data["loop_running"] = self.loop_alive(src.name) if self.running else None
            out.append(data)
        return out

    def _accepted(self, src: RemoteSource, known: Any) -> dict[str, Any] | None:
        """The ledger's record of the source (the highest version ever accepted): read from
        the store, which every process shares; what the status knew when it cannot be read."""
        try:
            record = src.ctx.ledger.get(src.name)
        except RemoteSyncFailed:  # a status read never fails on it; a sync reports the store
            return known if isinstance(known, dict) else None
        return record.to_dict() if record is not None else None

    def source_of(self, name: str) -> RemoteSource:
        return self._targets(name)[0]


def remote_source_name(source: str) -> str | None:
    """`remote:acme` -> `acme`; None for any other candidate source."""
    return source.removeprefix("remote:") if source.startswith("remote:") else None


__all__ = ["ONE_SHOT", "STARTUP_WAIT_S", "RemoteManager", "remote_source_name"]

