"""LifecycleManager: build, health-gate, bind, clean up and roll back providers, one key at a time.

A swap (docs/architecture.md §3) never touches the instance that is serving until the new one
has been built and found healthy; binding is one reference assignment, so every `use()`
gets either the old instance or the new one, never none and never a stopped one. The old
instance is stopped only after its in-flight uses reach zero (or `cleanup_timeout`).
Sync factories, `start()`, `health()` and `stop()` run on a dedicated thread pool so a
provider that hangs costs a timeout, not a frozen event loop. Timeouts use
`asyncio.timeout()` rather than `wait_for`, which on Python 3.11 can swallow a cancellation.
Every call into provider code goes through provider_calls.py: whatever it raises,
BaseException included, is that provider's failure, and `health()`'s answer must be a
HealthResult (or a bool) to pass the gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .domains import Candidate, ComponentRef, Domain, HealthResult
from .errors import ComponentPaused, ComponentUnavailable, FactoryError, NotFound
from .events import Event, Severity
from .factories import load_factory
from .provider_calls import ProviderFault, call_provider, health_result, provider_attr
from .resolver import Resolver
from .text import clause
from .trace_context import NO_SPAN, NoSpan


class LifecycleState(enum.StrEnum):
    INACTIVE = "inactive"
    ACTIVATING = "activating"
    READY = "ready"
    FAILED = "failed"
    STOPPING = "stopping"


class SwapOutcome(enum.StrEnum):
    COMPLETE = "complete"        # the new provider is bound and serving
    ROLLED_BACK = "rolled-back"  # the new provider failed; the old one never stopped serving
    FAILED = "failed"            # the new provider failed and there was nothing to keep serving
    REFUSED = "refused"          # a blocker (pause, drain) stopped it before anything was built
    NOOP = "noop"                # already serving that candidate
    PLANNED = "planned"          # dry run: nothing changed


@dataclass(frozen=True)
class LifecycleOptions:
    activation_timeout: float = 30.0
    health_timeout: float = 5.0
    cleanup_timeout: float = 10.0


@dataclass(slots=True)  # one per key: thousands with 10,000 candidates
class SwapResult:
    ref: ComponentRef
    outcome: SwapOutcome
    from_provider: str | None
    to_provider: str
    to_source: str
    reason: str
    forced: bool = False
    blockers: list[str] = field(default_factory=list)
    health: HealthResult | None = None
    activation_ms: float | None = None
    health_ms: float | None = None
    cleanup_ms: float | None = None
    total_ms: float | None = None
    actor: str | None = None
    finished_at: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.outcome in (SwapOutcome.COMPLETE, SwapOutcome.NOOP, SwapOutcome.PLANNED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.ref.domain.value,
            "key": self.ref.key,
            "outcome": self.outcome.value,
            "from": self.from_provider,
            "to": self.to_provider,
            "to_source": self.to_source,
            "reason": self.reason,
            "forced": self.forced,
            "blockers": list(self.blockers),
            "health": None if self.health is None else {
                "status": self.health.status.value,
                "message": self.health.message,
                "latency_ms": self.health.latency_ms,
            },
            "activation_ms": self.activation_ms,
            "health_ms": self.health_ms,
            "cleanup_ms": self.cleanup_ms,
            "total_ms": self.total_ms,
            "actor": self.actor,
            "finished_at": self.finished_at,
        }


class Instance:
    """A built provider plus its in-flight counter.

    Once `retired`, `acquire()` refuses, so a caller that read the old reference just
    before the bind retries on the new one instead of using something about to stop.
    """

    __slots__ = ("candidate", "obj", "built_at", "retired", "stopped", "_inflight", "_lock", "_waiters")

    def __init__(self, candidate: Candidate, obj: Any) -> None:
        self.candidate = candidate
        self.obj = obj
        self.built_at = time.time()
        self.retired = False
        self.stopped = False
        self._inflight = 0
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @property
    def inflight(self) -> int:
        return self._inflight

    def acquire(self) -> bool:
        with self._lock:
            if self.retired:
                return False
            self._inflight += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._inflight -= 1
            if self._inflight or not self._waiters:
                return
            # Taken whole under the lock: a list still shared after it (as this once was)
            # could gain the waiter of a later wait_idle, which this release would then
            # resolve while another use, begun in between, was still in flight.
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            loop.call_soon_threadsafe(_resolve, fut)

    def retire(self) -> None:
        with self._lock:
            self.retired = True

    async def wait_idle(self, timeout: float | None) -> bool:
        """Wait until nothing is in flight; False if `timeout` passed first."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._inflight == 0:
                return True
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, fut))
        try:
            async with asyncio.timeout(timeout):
                await fut
            return True
        except TimeoutError:
            return self._inflight == 0


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


@dataclass(slots=True)  # one per key: thousands with 10,000 candidates
class Slot:
    """Everything the lifecycle knows about one key."""

    ref: ComponentRef
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    current: Instance | None = None
    state: LifecycleState = LifecycleState.INACTIVE
    pending: Candidate | None = None
    last_error: str | None = None
    last_swap: SwapResult | None = None
    swaps_ok: int = 0
    swaps_failed: int = 0

    @property
    def provider(self) -> str | None:
        return self.current.candidate.provider if self.current else None

    @property
    def inflight(self) -> int:
        return self.current.inflight if self.current else 0


class _PhaseFailed(Exception):
    """A swap phase failed; the message is the operator-facing reason."""


class _Use:
    """`with engine.use(d, k) as provider:` (or `async with`): counts the use as in flight."""

    __slots__ = ("_manager", "_ref", "_instance")

    def __init__(self, manager: LifecycleManager, ref: ComponentRef) -> None:
        self._manager = manager
        self._ref = ref
        self._instance: Instance | None = None

    def __enter__(self) -> Any:
        self._instance = self._manager._acquire(self._ref)
        return self._instance.obj

    def __exit__(self, *exc: object) -> None:
        assert self._instance is not None
        self._instance.release()

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__()


Emit = Callable[[Event], object]  # what it returns is not used


class LifecycleManager:
    def __init__(
        self,
        resolver: Resolver,
        options: LifecycleOptions,
        *,
        allowlist: list[str],
        state_dir: Path,
        emit: Emit,
        blocker: Callable[[ComponentRef], str | None] | None = None,
        on_change: Callable[[Slot], None] | None = None,
        on_health: Callable[[ComponentRef, str, HealthResult], None] | None = None,
        on_gate: Callable[[ComponentRef, str, HealthResult], None] | None = None,
        telemetry: Any | None = None,
        batch: Callable[[], contextlib.AbstractContextManager[object]] | None = None,
    ) -> None:
        self._resolver = resolver
        self._batch = batch or contextlib.nullcontext
        self.options = options
        self._allowlist = list(allowlist)
        self._state_dir = state_dir
        self._emit = emit
        self._blocker = blocker or (lambda ref: None)
        self._on_change = on_change or (lambda slot: None)
        self._on_health = on_health or (lambda ref, provider, result: None)
        self._on_gate = on_gate or (lambda ref, provider, result: None)
        self._telemetry = telemetry
        self._slots: dict[ComponentRef, Slot] = {}
        self._executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="oneiric-provider")

    def use_telemetry(self, telemetry: Any | None) -> None:
        """Record swaps as spans and metrics on `telemetry` (the host's, from its start);
        None records nothing. A manager is built before the host knows its telemetry."""
        self._telemetry = telemetry

    # -- reads -----------------------------------------------------------------------------
    def slot(self, ref: ComponentRef) -> Slot:
        slot = self._slots.get(ref)
        if slot is None:
            slot = self._slots[ref] = Slot(ref)
        return slot

    def find_slot(self, ref: ComponentRef) -> Slot | None:
        return self._slots.get(ref)

    def slots(self) -> list[Slot]:
        return list(self._slots.values())

    # -- in-flight work ----------------------------------------------------------------------
    def use(self, domain: Domain | str, key: str) -> _Use:
        return _Use(self, ComponentRef(Domain.parse(domain), key))

    def _acquire(self, ref: ComponentRef) -> Instance:
        blocked = self._blocker(ref)
        if blocked:
            raise ComponentPaused(blocked)
        slot = self._slots.get(ref)
        if slot is None or slot.current is None:
            self._resolver.explain(ref.domain, ref.key)  # raises NotFound for unknown keys
            state = slot.state.value if slot else LifecycleState.INACTIVE.value
            detail = f": {slot.last_error}" if slot and slot.last_error else ""
            raise ComponentUnavailable(f"{ref} has no serving instance (state {state}{detail}).")
        while True:
            instance = slot.current
            if instance is None:
                raise ComponentUnavailable(f"{ref} is stopping.")
            if instance.acquire():
                return instance
            if instance is slot.current:  # retired but still bound: the engine is stopping
                raise ComponentUnavailable(f"{ref} is stopping.")

    # -- swaps -----------------------------------------------------------------------------
    def target(self, ref: ComponentRef, provider: str | None, source: str | None) -> Candidate:
        """The candidate a swap of `ref` to `provider` (from `source`) would bind: the winner
        when both are None; NotFound or a clear refusal otherwise."""
        return self._target(ref, provider, source)

    def _target(self, ref: ComponentRef, provider: str | None, source: str | None) -> Candidate:
        explanation = self._resolver.explain(ref.domain, ref.key)  # NotFound for unknown keys
        if provider is None and source is None:
            if explanation.winner is None:
                raise NotFound(f"No candidate is registered for {ref}.")
            return explanation.winner
        for ranked in explanation.ranked:
            cand = ranked.candidate
            if (provider is None or cand.provider == provider) and (source is None or cand.source == source):
                return cand
        names = ", ".join(sorted({r.candidate.provider for r in explanation.ranked})) or "none"
        wanted = provider if source is None else f"{provider or '*'} from {source}"
        raise NotFound(f"Provider '{wanted}' is not registered for {ref} (registered: {names}).")

    def plan(
        self, ref: ComponentRef, provider: str | None = None, *, source: str | None = None,
        force: bool = False, actor: str | None = None,
    ) -> SwapResult:
        """The dry run: what a swap would do and what would stop it; changes nothing."""
        target = self._target(ref, provider, source)
        return self._plan(self.slot(ref), target, force, actor)

    def _plan(self, slot: Slot, target: Candidate, force: bool, actor: str | None) -> SwapResult:
        blockers: list[str] = []
        blocked = self._blocker(slot.ref)
        if blocked:
            blockers.append(blocked)
        if slot.lock.locked():
            blockers.append(f"another swap of {slot.ref} is in progress")
        current = slot.current.candidate if slot.current else None
        if current is not None and current.ident == target.ident and not force:
            reason = f"{slot.ref} already serves {target.label()}"
        else:
            # Where the target stands in the ranking: a swap to anything but the winner is a
            # choice made by hand against it, and the operator approving it should see that.
            ranked = self._resolver.explain(slot.ref.domain, slot.ref.key).ranked
            rank, why = next(((i, r.reason) for i, r in enumerate(ranked, 1) if r.candidate.ident == target.ident),
                             (None, ""))
            if rank == 1:
                note = f"{target.provider} is the ranking's winner ({why})"
            elif rank is not None:
                note = f"overrides the ranking: {target.provider} ranks #{rank} ({why})"
            else:
                note = why
            reason = f"{current.provider if current else 'nothing'} -> {target.provider}: {note}"
        return SwapResult(
            slot.ref, SwapOutcome.PLANNED, current.provider if current else None,
            target.provider, target.source, reason, forced=force, blockers=blockers, actor=actor,
        )

    async def swap(
        self,
        ref: ComponentRef,
        provider: str | None = None,
        *,
        source: str | None = None,
        force: bool = False,
        dry_run: bool = False,
        actor: str | None = None,
    ) -> SwapResult:
        """Swap `ref` to `provider` (or to the resolver's winner). Never raises for a failed swap:
        the result says complete, rolled-back, failed, refused or noop. Unknown keys or
        providers raise NotFound."""
        target = self._target(ref, provider, source)
        slot = self.slot(ref)
        if dry_run:
            return self._plan(slot, target, force, actor)
        async with slot.lock:
            blocked = self._blocker(ref)
            current = slot.current
            if blocked and not force:
                result = SwapResult(
                    ref, SwapOutcome.REFUSED, slot.provider, target.provider, target.source,
                    f"refused: {blocked}", blockers=[blocked], actor=actor,
                )
                self._emit(Event(
                    "swap-failed", f"Swap of {ref} to {target.provider} refused: {blocked}",
                    Severity.WARNING, ref.domain, ref.key, target.provider, actor, "refused",
                    data={"from": slot.provider, "to": target.provider, "blockers": [blocked]},
                ))
                self._record(result, current is None)
                return result
            if (current is not None and current.candidate.ident == target.ident
                    and slot.state == LifecycleState.READY and not force):
                return SwapResult(
                    ref, SwapOutcome.NOOP, current.candidate.provider, target.provider, target.source,
                    f"{ref} already serves {target.label()}", actor=actor,
                )
            return await self._execute(slot, target, force, actor)

    async def activate(self, ref: ComponentRef, *, actor: str | None = None) -> SwapResult:
        """Bring up the resolver's winner when nothing serves the key yet."""
        slot = self.slot(ref)
        if slot.current is not None:
            cur = slot.current.candidate
            return SwapResult(ref, SwapOutcome.NOOP, cur.provider, cur.provider, cur.source,
                              f"{ref} already serves {cur.label()}", actor=actor)
        return await self.swap(ref, actor=actor)

    async def _execute(self, slot: Slot, target: Candidate, force: bool, actor: str | None) -> SwapResult:
        """The swap itself, in a `lifecycle.swap` span (`lifecycle.activate` when nothing
        served the key) with its phases as children, when telemetry records spans."""
        tel = self._telemetry
        if tel is None or not tel.tracing:
            return await self._phases(slot, target, force, actor, _NO_TRACE)
        old = slot.current
        ref = slot.ref
        attrs = {"oneiric.domain": ref.domain.value, "oneiric.key": ref.key, "oneiric.provider": target.provider}
        with tel.span("lifecycle.activate" if old is None else "lifecycle.swap", attrs, **{
                "oneiric.provider.source": target.source, "oneiric.swap.from": old.candidate.provider if old else None,
                "oneiric.swap.forced": force, "enduser.id": actor}) as span:
            result = await self._phases(slot, target, force, actor, _Trace(tel, attrs))
            span.set_attribute("oneiric.swap.outcome", result.outcome.value)
            if not result.ok:
                tel.failed(span, result.reason)
            return result

    async def _phases(self, slot: Slot, target: Candidate, force: bool, actor: str | None,
                      trace: _Trace | _NoTrace) -> SwapResult:
        ref = slot.ref
        old = slot.current
        old_provider = old.candidate.provider if old else None
        activation = old is None
        t0 = time.perf_counter()
        with self._batch():
            self._mark_started(slot, target, old_provider, force, actor, activation)
        activation_ms = health_ms = None
        gate_result: HealthResult | None = None  # the health gate's answer, journaled with the outcome
        obj: Any = None
        try:
            t1 = time.perf_counter()
            with trace.span("lifecycle.build"):
                obj = await self._build(target)
            t2 = time.perf_counter()
            activation_ms = (t2 - t1) * 1000
            with trace.span("lifecycle.health_gate") as gate:
                health = await self._check(obj)
                health_ms = (time.perf_counter() - t2) * 1000
                gate.set_attribute("oneiric.health.status", health.status.value)
                if not health.healthy:
                    trace.failed(gate, health.message or health.status.value)
            gate_result = health
            self._on_gate(ref, target.provider, health)
            if not health.healthy and not force:
                await self._stop_quietly(ref, target.provider, obj)
                obj = None
                raise _PhaseFailed(f"health check failed: {health.message or health.status.value}")
        except _PhaseFailed as exc:
            return self._failed(slot, target, old, str(exc), force, actor, t0, activation_ms, health_ms, gate_result)
        except asyncio.CancelledError:
            if obj is not None:
                await asyncio.shield(self._stop_quietly(ref, target.provider, obj))
            slot.state = LifecycleState.READY if old else LifecycleState.INACTIVE
            slot.pending = None
            self._on_change(slot)
            raise

        # Bind: one reference assignment. Before it every use() gets `old`, after it the new one.
        with trace.span("lifecycle.bind"):
            slot.current = Instance(target, obj)
            slot.state = LifecycleState.READY
            slot.pending = None
            slot.last_error = None
            with self._batch():
                self._on_health(ref, target.provider, health)
                self._on_change(slot)

        cleanup_ms = None
        if old is not None:
            t2 = time.perf_counter()
            with trace.span("lifecycle.cleanup", **{"oneiric.provider": old.candidate.provider}) as cleanup:
                error = await self._retire(ref, old, actor)
                if error:
                    trace.failed(cleanup, error)
            cleanup_ms = (time.perf_counter() - t2) * 1000
        total_ms = (time.perf_counter() - t0) * 1000
        result = SwapResult(
            ref, SwapOutcome.COMPLETE, old_provider, target.provider, target.source,
            "activated" if activation else "swapped", forced=force, health=health,
            activation_ms=activation_ms, health_ms=health_ms, cleanup_ms=cleanup_ms,
            total_ms=total_ms, actor=actor,
        )
        slot.last_swap = result
        slot.swaps_ok += 1
        verb = f"activated with {target.label()}" if activation else (
            f"swapped {old_provider} -> {target.provider}" + (" (forced)" if force else ""))
        unhealthy = "" if health.healthy else f"; bound although unhealthy: {health.message}"
        with self._batch():
            self._on_change(slot)
            self._emit(Event(
                "swap-complete", f"{ref} {verb} in {total_ms:.1f} ms{unhealthy}",
                Severity.INFO if health.healthy else Severity.WARNING,
                ref.domain, ref.key, target.provider, actor, "complete", total_ms,
                data=_timings(result),
            ))
        self._record(result, activation)
        return result

    def _mark_started(self, slot: Slot, target: Candidate, old_provider: str | None, force: bool,
                      actor: str | None, activation: bool) -> None:
        ref = slot.ref
        if not activation:
            self._emit(Event(
                "swap-started", f"Swap of {ref} started: {old_provider} -> {target.provider}"
                + (" (forced)" if force else ""),
                Severity.INFO, ref.domain, ref.key, target.provider, actor,
                data={"from": old_provider, "to": target.provider, "source": target.source, "force": force},
            ))
        slot.state = LifecycleState.ACTIVATING
        slot.pending = target
        self._on_change(slot)

    def _failed(self, slot: Slot, target: Candidate, old: Instance | None, reason: str, force: bool,
                actor: str | None, t0: float, activation_ms: float | None, health_ms: float | None,
                gate: HealthResult | None = None) -> SwapResult:
        ref = slot.ref
        total_ms = (time.perf_counter() - t0) * 1000
        slot.pending = None
        slot.last_error = reason
        slot.swaps_failed += 1
        if old is not None:
            slot.state = LifecycleState.READY  # the old instance never stopped serving
            outcome, kind, sev = SwapOutcome.ROLLED_BACK, "swap-rollback", Severity.WARNING
            message = (f"Swap of {ref} to {target.provider} rolled back: {clause(reason)}; "
                       f"{old.candidate.provider} keeps serving")
        else:
            slot.state = LifecycleState.FAILED
            outcome, kind, sev = SwapOutcome.FAILED, "swap-failed", Severity.ERROR
            message = f"Activation of {ref} with {target.provider} failed: {reason}"
        result = SwapResult(
            ref, outcome, old.candidate.provider if old else None, target.provider, target.source,
            reason, forced=force, health=gate, activation_ms=activation_ms, health_ms=health_ms,
            total_ms=total_ms, actor=actor,
        )
        slot.last_swap = result
        with self._batch():
            self._on_change(slot)
            self._emit(Event(kind, message, sev, ref.domain, ref.key, target.provider, actor,
                             outcome.value, total_ms, data=_timings(result)))
        self._record(result, old is None)
        return result

    def _record(self, result: SwapResult, activation: bool) -> None:
        if self._telemetry is not None:
            self._telemetry.record_swap(
                domain=result.ref.domain.value, key=result.ref.key, provider=result.to_provider,
                outcome=result.outcome.value, duration_s=(result.total_ms or 0.0) / 1000.0,
                operation="activate" if activation else "swap",
            )

    # -- phases ----------------------------------------------------------------------------
    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Provider code: anything it raises comes out as ProviderFault (provider_calls.py)."""
        return await call_provider(fn, *args, executor=self._executor)

    async def _build(self, cand: Candidate) -> Any:
        try:
            factory = load_factory(cand.factory, self._allowlist)
        except FactoryError as exc:
            raise _PhaseFailed(str(exc).rstrip(".")) from exc
        settings = {**cand.settings, "state_dir": str(self._state_dir)}
        built: list[Any] = []

        async def build() -> Any:
            try:
                obj = await self._call(factory, settings)
            except ProviderFault as exc:
                raise _PhaseFailed(f"factory raised {exc}") from exc
            if obj is None:
                raise _PhaseFailed(f"factory {cand.factory} returned None, not a provider")
            built.append(obj)
            try:
                start = provider_attr(obj, "start")
                if start is not None:
                    await self._call(start)
            except ProviderFault as exc:
                raise _PhaseFailed(f"start() raised {exc}") from exc
            return obj

        timeout = self.options.activation_timeout
        try:
            async with asyncio.timeout(timeout):
                return await build()
        except TimeoutError:
            if built:  # built but start() hung: stop it in the background
                asyncio.ensure_future(self._stop_quietly(cand.ref, cand.provider, built[0]))
            raise _PhaseFailed(f"activation timed out after {timeout:g}s") from None
        except _PhaseFailed:
            if built:
                await self._stop_quietly(cand.ref, cand.provider, built[0])
            raise
        except asyncio.CancelledError:  # ours (the host stopping): what was built is stopped all the same
            if built:
                await asyncio.shield(self._stop_quietly(cand.ref, cand.provider, built[0]))
            raise

    async def _check(self, obj: Any) -> HealthResult:
        timeout = self.options.health_timeout
        t0 = time.perf_counter()
        try:
            fn = provider_attr(obj, "health")
            if fn is None:
                return HealthResult.ok("provider has no health check", 0.0)
            async with asyncio.timeout(timeout):
                raw = await self._call(fn)
        except TimeoutError:
            return HealthResult.failed(f"health check timed out after {timeout:g}s", timeout * 1000)
        except ProviderFault as exc:
            return HealthResult.failed(f"health check raised {exc}", (time.perf_counter() - t0) * 1000)
        return health_result(raw, (time.perf_counter() - t0) * 1000)

    async def probe(self, ref: ComponentRef) -> tuple[str, HealthResult] | None:
        """Health-check the serving instance now; None when nothing serves the key."""
        slot = self._slots.get(ref)
        instance = slot.current if slot else None
        if instance is None or not instance.acquire():
            return None
        try:
            result = await self._check(instance.obj)
        finally:
            instance.release()
        self._on_health(ref, instance.candidate.provider, result)
        return instance.candidate.provider, result

    async def probe_candidate(self, cand: Candidate) -> HealthResult:
        """Build a candidate, probe it and stop it: `health --probe` with no host running."""
        try:
            obj = await self._build(cand)
        except _PhaseFailed as exc:
            return HealthResult.failed(str(exc))
        try:
            return await self._check(obj)
        finally:
            await self._stop_quietly(cand.ref, cand.provider, obj)

    async def _stop(self, obj: Any) -> None:
        fn = provider_attr(obj, "stop")
        if fn is None:
            fn = provider_attr(obj, "close")
        if fn is not None:
            async with asyncio.timeout(self.options.cleanup_timeout):
                await self._call(fn)

    async def _stop_quietly(self, ref: ComponentRef, provider: str, obj: Any) -> str | None:
        try:
            await self._stop(obj)
        except TimeoutError:
            error = f"stop() timed out after {self.options.cleanup_timeout:g}s"
        except ProviderFault as exc:
            error = f"stop() raised {exc}"
        except Exception as exc:  # noqa: BLE001 - last line of defence: not the provider's; say so, keep the cleanup
            error = f"stopping it failed: {type(exc).__name__}: {exc}"
        else:
            return None
        self._emit(Event("cleanup-failed", f"Cleanup of {provider} for {ref} failed: {error}",
                         Severity.WARNING, ref.domain, ref.key, provider, outcome="failed"))
        return error

    async def _retire(self, ref: ComponentRef, old: Instance, actor: str | None) -> str | None:
        """Stop `old` once its in-flight uses are done (or cleanup_timeout passed); returns
        what went wrong stopping it, None when nothing did."""
        old.retire()
        idle = await old.wait_idle(self.options.cleanup_timeout)
        if not idle:
            self._emit(Event(
                "cleanup-failed",
                f"{old.inflight} uses of {old.candidate.provider} for {ref} were still in flight after "
                f"{self.options.cleanup_timeout:g}s; stopping it anyway",
                Severity.WARNING, ref.domain, ref.key, old.candidate.provider, actor, "timeout",
            ))
        error = await self._stop_quietly(ref, old.candidate.provider, old.obj)
        old.stopped = True
        if error is None and not idle:
            error = f"{old.inflight} uses were still in flight after {self.options.cleanup_timeout:g}s"
        return error

    async def stop_all(self) -> None:
        """Stop every serving instance (engine shutdown), each after its in-flight work drains."""

        async def stop_one(slot: Slot) -> None:
            async with slot.lock:
                instance = slot.current
                if instance is None:
                    return
                slot.state = LifecycleState.STOPPING
                self._on_change(slot)
                await self._retire(slot.ref, instance, None)
                slot.current = None
                slot.state = LifecycleState.INACTIVE
                self._on_change(slot)

        await asyncio.gather(*(stop_one(s) for s in list(self._slots.values())))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class _NoTrace:
    """The phases' tracer when nothing records spans: every span is NO_SPAN."""

    __slots__ = ()

    def span(self, name: str, **attributes: Any) -> NoSpan:
        return NO_SPAN

    def failed(self, span: Any, reason: str | None) -> None:
        return None


_NO_TRACE = _NoTrace()


class _Trace:
    """The phases' tracer under a swap span: each phase a child span naming the component."""

    __slots__ = ("_telemetry", "_attrs")

    def __init__(self, telemetry: Any, attrs: dict[str, Any]) -> None:
        self._telemetry = telemetry
        self._attrs = attrs

    def span(self, name: str, **attributes: Any) -> Any:
        return self._telemetry.span(name, {**self._attrs, **attributes})

    def failed(self, span: Any, reason: str | None) -> None:
        self._telemetry.failed(span, reason)


def _timings(result: SwapResult) -> dict[str, Any]:
    """A swap's journaled data. `gate` is the health gate's answer (None when the build failed
    before it ran): what a candidate's last known health is read from later, in any process
    (candidate_record.py), since the host's memory of it ends with the host."""
    gate = result.health
    return {
        "from": result.from_provider, "to": result.to_provider, "source": result.to_source,
        "force": result.forced, "activation_ms": result.activation_ms, "health_ms": result.health_ms,
        "cleanup_ms": result.cleanup_ms, "total_ms": result.total_ms, "reason": result.reason,
        "gate": None if gate is None else {"status": gate.status.value, "message": gate.message,
                                           "latency_ms": gate.latency_ms},
    }
