"""Rolling swaps over a fleet (issue 18 point 6): one key to one provider on many nodes, the
canary first, then batch by batch, each batch soaked (its nodes must stay live and healthy for
a while) before the next starts; the first failure halts it, and the nodes done so far are
swapped back unless told not to.

A rollout is rows in the store (store/rollouts.py), approved once for every node. No process
owns it: every live host runs a RolloutCoordinator, the first to claim a rollout carries it
(its claim renewed at every step), and when that host dies or hangs another claims it after
COORDINATOR_STALE_S and goes on from the rows. Each node's swap is a request for that node's
host (store/requests.py), which runs it through its own lifecycle and health gate and
journals it on its node (commands.py `rollout-step`)."""

from __future__ import annotations

import fnmatch
import math
import re
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .events import Event, Severity
from .fleet import node_state
from .store import LeaseInfo, RolloutRecord, RolloutStep, StoreError

if TYPE_CHECKING:
    from .ports import RolloutEngine

COORDINATOR_STALE_S = 5.0  # a coordinator silent this long has died or hung: another host takes over
STEP_WAIT_S = 120.0  # how long a node's host may take to run its swap (build, start, health gate)
TICK_S = 0.5  # how often a host looks at the fleet's rollouts (it also wakes on their notices)


@dataclass(frozen=True, slots=True)
class RolloutOptions:
    canary: int = 1  # nodes in the first batch
    batch: str = "1"  # nodes per later batch: a count, or a share of the rest ("25%")
    soak_s: float = 30.0  # how long a batch must stay live and healthy
    max_unhealthy: int = 0  # unhealthy nodes a batch may end its soak with
    rollback: bool = True  # on a halt, swap the nodes done so far back

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RolloutOptions:
        base = cls()
        return cls(int(raw.get("canary", base.canary)), str(raw.get("batch", base.batch)),
                   float(raw.get("soak_s", base.soak_s)), int(raw.get("max_unhealthy", base.max_unhealthy)),
                   bool(raw.get("rollback", base.rollback)))


def parse_duration(text: str) -> float:
    """`30s`, `2m`, `1h`, or plain seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if not match:
        raise UsageError(f"'{text}' is not a duration: use seconds, or 30s, 2m, 1h.")
    value, unit = float(match[1]), match[2] or "s"
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


def batch_size(spec: str, remaining: int) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*(%?)\s*", spec)
    if not match or int(match[1]) <= 0 or (match[2] and int(match[1]) > 100):
        raise UsageError(f"'{spec}' is not a batch size: use a count of nodes (2) or a share of them (25%).")
    if match[2]:
        return max(1, math.ceil(remaining * int(match[1]) / 100))
    return int(match[1])


def select_nodes(leases: list[LeaseInfo], selector: str | None, now: float) -> list[str]:
    """The nodes a rollout goes over: the live nodes matching `selector` (comma-separated
    shell patterns, `web-*,db-1`; every node when None), by name. A matching node that is not
    live is refused: a rollout that skipped it would report a fleet it did not reach."""
    patterns = [p.strip() for p in (selector or "*").split(",") if p.strip()]
    chosen = [lease for lease in leases if any(fnmatch.fnmatchcase(lease.node, p) for p in patterns)]
    down = [f"{lease.node} ({node_state(lease, now)})" for lease in chosen
            if lease.stopped_at is None and node_state(lease, now) != "live"]
    if down:
        raise UsageError(f"Not every node the rollout would reach is live: {', '.join(down)}; wait for it, or "
                         "leave it out with --nodes.")
    names = sorted(lease.node for lease in chosen if node_state(lease, now) == "live")
    if not names:
        raise UsageError(f"No live node matches --nodes '{selector or '*'}' ('oneiric nodes' lists them).")
    return names


def plan_batches(nodes: list[str], options: RolloutOptions) -> list[list[str]]:
    """The canary first, then batches of `options.batch` of the rest."""
    if options.canary < 1:
        raise UsageError("--canary must be at least 1: a rollout starts on one node before the others.")
    plan = [nodes[: options.canary]]
    rest = nodes[options.canary:]
    size = batch_size(options.batch, len(rest)) if rest else 1
    plan += [rest[i:i + size] for i in range(0, len(rest), size)]
    return [batch for batch in plan if batch]


def start_rollout(engine: RolloutEngine, key: str, provider: str, options: RolloutOptions, *, nodes: str | None = None,
                  reason: str = "", display: str | None = None) -> RolloutRecord:
    """Write a rollout of `key` (domain/key or key) to `provider` over the live nodes matching
    `nodes`, waiting for its one approval (approved at once under `approvals.mode: auto`).
    The CLI and the console start rollouts through this; the hosts carry them out."""
    engine.store.rollouts.require_fleet("start a rollout")
    domain, _, name = key.rpartition("/")
    ref = engine.find_ref(domain or None, name)
    candidates = {r.candidate.provider for r in engine.explain(ref.domain, ref.key).ranked}
    if provider not in candidates:
        raise UsageError(f"{ref} has no candidate '{provider}' here: its candidates are "
                         f"{', '.join(sorted(candidates))}.")
    if options.max_unhealthy < 0:
        raise UsageError("--max-unhealthy cannot be negative.")
    plan = plan_batches(select_nodes(engine.store.nodes(), nodes, time.time()), options)
    rollout_id = engine.store.rollouts.create(ref.domain.value, ref.key, provider, plan, options.to_dict(), reason,
                                              display if display is not None else engine.principal.label)
    if engine.settings.app.approvals.mode == "auto":
        engine.store.rollouts.decide(rollout_id, "approved", two_person=False)
    rollout = engine.store.rollouts.get(rollout_id)
    assert rollout is not None  # just written
    return rollout


def decide_rollout(engine: RolloutEngine, rollout_id: int, verdict: str) -> str:
    """Approve or reject a pending rollout as this process's database role; one sentence saying
    what came of it (UsageError when it was not decided)."""
    two_person = engine.settings.app.approvals.two_person
    answer = engine.store.rollouts.decide(rollout_id, verdict, two_person=two_person)
    if answer == "same person":
        raise UsageError(f"Rollout #{rollout_id} was asked for by you; the two-person rule needs another "
                         "operator to approve it.")
    if answer == "missing":
        raise UsageError(f"No rollout #{rollout_id} exists.")
    if answer != "decided":
        raise UsageError(f"Rollout #{rollout_id} is {answer}, not waiting for a decision.")
    return f"Rollout #{rollout_id} {verdict}." + (" The hosts carry it out." if verdict == "approved" else "")


def describe_plan(r: RolloutRecord) -> str:
    batches = " | ".join(", ".join(b) + (" (canary)" if i == 0 else "") for i, b in enumerate(r.plan))
    soak = RolloutOptions.from_dict(r.options).soak_s
    return (f"Rollout #{r.id}: {r.ref} to {r.provider} over {sum(len(b) for b in r.plan)} node(s) in "
            f"{len(r.plan)} batch(es): {batches}; soak {soak:g}s.")


def progress_line(r: RolloutRecord) -> str:
    done = sum(1 for s in r.steps if s.status == "done")
    where = f"batch {r.batch + 1}/{len(r.plan)}" if r.status in ("running", "halting") else r.status
    why = f": {r.halted_reason}" if r.halted_reason else ""
    return f"#{r.id} {r.ref} -> {r.provider}  {where}  {done}/{len(r.steps)} nodes done{why}"


class RolloutCoordinator:
    """A host's part in the fleet's rollouts: claim the ones nobody carries, carry them a step."""

    def __init__(self, engine: RolloutEngine) -> None:
        self._engine = engine

    def tick(self) -> None:
        """One look at every active rollout; blocking store calls (a few rows each)."""
        engine = self._engine
        store = engine.store
        if store.backend.holds_one_node:
            return
        for rollout in store.rollouts.active():
            try:
                self._claim_and_advance(rollout)
            except StoreError as exc:
                engine.store_error = str(exc)

    def _claim_and_advance(self, rollout: RolloutRecord) -> None:
        """The claim and every step it carries now, in one transaction: one commit, its
        notices sent at it (a PostgreSQL commit is most of a write's cost, bench/rollout.py).
        A batch that ends starts the next at once, not at the next wake-up."""
        store, engine = self._engine.store, self._engine
        with store.batch():
            if not store.rollouts.claim(rollout.id, engine.node, COORDINATOR_STALE_S):
                return
            while self._advance(rollout):
                fresh = store.rollouts.get(rollout.id)
                if fresh is None:
                    break
                rollout = fresh

    # -- one step of one rollout -------------------------------------------------------------
    def _advance(self, r: RolloutRecord) -> bool:
        """Carry `r` as far as it goes now; True when a batch ended and the next may start."""
        store, node = self._engine.store, self._engine.node
        now = time.time()
        options = RolloutOptions.from_dict(r.options)
        if r.status == "approved":
            store.rollouts.update(r.id, node=node, status="running", batch=0)
            self._event(r, "rollout-started", f"Rollout #{r.id}: {r.ref} to {r.provider} over "
                        f"{sum(len(b) for b in r.plan)} nodes in {len(r.plan)} batches, canary "
                        f"{', '.join(r.plan[0])} (coordinated from {node}).")
            r.status = "running"
        if r.status == "halting":
            self._roll_back(r, now)
            return False
        leases = {lease.node: lease for lease in store.nodes()}
        batch = [s for s in r.steps if s.batch == r.batch]
        for step in batch:
            lease = leases.get(step.node)
            state = "missing" if lease is None else node_state(lease, now)
            if step.status in ("pending", "swapping", "soaking") and state != "live":
                self._halt(r, f"node {step.node} is {state} (its host stopped heartbeating)", now)
                return False
            if step.status == "pending":
                self._start_step(r, step, now)
            elif step.status == "swapping":
                if not self._step_answered(r, step, now):
                    return False
        if any(s.status != "soaking" for s in batch):
            return False
        if now - max(s.soak_from or now for s in batch) < options.soak_s:
            return False
        unhealthy = [s.node for s in batch if self._health(s, r) != "ok"]
        if len(unhealthy) > options.max_unhealthy:
            self._halt(r, f"unhealthy after the soak on {', '.join(unhealthy)} (at most {options.max_unhealthy} "
                       "allowed)", now)
            return False
        for step in batch:
            store.rollouts.update_step(step, status="done", finished_at=now)
        if r.batch + 1 >= len(r.plan):
            store.rollouts.update(r.id, node=node, status="done")
            self._event(r, "rollout-complete", f"Rollout #{r.id}: {r.ref} serves {r.provider} on every node "
                        f"({sum(len(b) for b in r.plan)}).", outcome="complete")
            return False
        store.rollouts.update(r.id, node=node, batch=r.batch + 1)
        self._event(r, "rollout-batch-done", f"Rollout #{r.id}: batch {r.batch + 1} of {len(r.plan)} "
                    f"({', '.join(s.node for s in batch)}) done and soaked; batch {r.batch + 2} next.")
        return True

    def _start_step(self, r: RolloutRecord, step: RolloutStep, now: float) -> None:
        store = self._engine.store
        serving = store.lifecycle_of(step.node, r.domain, r.key)
        request_id = store.requests.submit(step.node, "rollout-step", {
            "rollout": r.id, "domain": r.domain, "key": r.key, "provider": r.provider},
            f"rollout #{r.id}", now + STEP_WAIT_S)
        store.rollouts.update_step(step, status="swapping", request_id=request_id, started_at=now,
                                   from_provider=serving.provider if serving else None)

    def _step_answered(self, r: RolloutRecord, step: RolloutStep, now: float) -> bool:
        """True when the node's swap is done and soaking; False while it runs (or it failed: halted)."""
        store = self._engine.store
        record = store.requests.get(step.request_id or 0)
        if record is None or not record.finished:
            if now - (step.started_at or now) > STEP_WAIT_S:
                self._halt(r, f"node {step.node} did not run its swap within {STEP_WAIT_S:g}s", now)
            return False
        message = str((record.result or {}).get("message") or record.status)
        if record.exit_code != 0:
            store.rollouts.update_step(step, status="failed", message=message, finished_at=now)
            self._halt(r, f"the swap failed on {step.node}: {message}", now)
            return False
        store.rollouts.update_step(step, status="soaking", soak_from=now, message=message)
        return True

    def _health(self, step: RolloutStep, r: RolloutRecord) -> str:
        """The node's health of the key at the end of its soak: its host's last check of the
        new provider when one ran since the swap, else the swap's own health gate (it passed)."""
        snap = self._engine.store.health_of(step.node, r.domain, r.key)
        if snap is not None and snap.provider == r.provider and snap.checked_at >= (step.soak_from or 0.0):
            return str(snap.status)
        return "ok"

    def _halt(self, r: RolloutRecord, reason: str, now: float) -> None:
        """Stop at the first failure: no further step starts, a request no host took yet is
        withdrawn, and (unless told not to) every node that swapped, or still may, goes back."""
        store, node = self._engine.store, self._engine.node
        for step in r.steps:
            if step.status == "pending":
                store.rollouts.update_step(step, status="skipped", finished_at=now)
            elif step.status == "swapping" and step.request_id and store.requests.withdraw(step.request_id):
                store.rollouts.update_step(step, status="failed", finished_at=now,
                                           message="withdrawn before its host took it")
        done = [s for s in r.steps if s.status in ("soaking", "done")]
        underway = any(s.status == "swapping" for s in r.steps)
        status = "halting" if RolloutOptions.from_dict(r.options).rollback and (done or underway) else "halted"
        store.rollouts.update(r.id, node=node, status=status, halted_reason=reason)
        back = f"; swapping {', '.join(s.node for s in done)} back" if status == "halting" and done else ""
        self._event(r, "rollout-halted", f"Rollout #{r.id} of {r.ref} to {r.provider} halted: {reason}{back}.",
                    Severity.ERROR, outcome="halted")
        r.status = status
        if status == "halting":
            for step in done:
                self._start_rollback(r, step, now)

    def _start_rollback(self, r: RolloutRecord, step: RolloutStep, now: float) -> None:
        if not step.from_provider:
            self._engine.store.rollouts.update_step(step, status="rollback-failed", finished_at=now,
                                                    message="nothing served there before the rollout")
            return
        request_id = self._engine.store.requests.submit(step.node, "rollout-step", {
            "rollout": r.id, "domain": r.domain, "key": r.key, "provider": step.from_provider, "rollback": True},
            f"rollout #{r.id} (rollback)", now + STEP_WAIT_S)
        self._engine.store.rollouts.update_step(step, status="rolling-back", request_id=request_id, started_at=now)

    def _roll_back(self, r: RolloutRecord, now: float) -> None:
        store = self._engine.store
        for step in (s for s in r.steps if s.status == "swapping"):  # under way when it halted
            record = store.requests.get(step.request_id or 0)
            if record is not None and record.finished:
                if record.exit_code == 0:
                    self._start_rollback(r, step, now)
                else:
                    store.rollouts.update_step(step, status="failed", finished_at=now,
                                               message=str((record.result or {}).get("message") or record.status))
            elif now - (step.started_at or now) > STEP_WAIT_S:
                store.rollouts.update_step(step, status="failed", finished_at=now,
                                           message=f"its host did not answer within {STEP_WAIT_S:g}s")
        for step in (s for s in r.steps if s.status == "rolling-back"):
            record = store.requests.get(step.request_id or 0)
            if record is None or not record.finished:
                if now - (step.started_at or now) > STEP_WAIT_S:
                    store.rollouts.update_step(step, status="rollback-failed", finished_at=now,
                                               message=f"its host did not answer within {STEP_WAIT_S:g}s")
                continue
            ok = record.exit_code == 0
            store.rollouts.update_step(step, status="rolled-back" if ok else "rollback-failed", finished_at=now,
                                       message=str((record.result or {}).get("message") or record.status))
        if not any(s.status in ("rolling-back", "swapping") for s in r.steps):
            store.rollouts.update(r.id, node=self._engine.node, status="halted")
            back = [s.node for s in r.steps if s.status == "rolled-back"]
            failed = [s.node for s in r.steps if s.status == "rollback-failed"]
            self._event(r, "rollout-rolled-back", f"Rollout #{r.id}: swapped back on {', '.join(back) or 'none'}"
                        + (f"; could not on {', '.join(failed)}" if failed else "") + ".",
                        Severity.WARNING if not failed else Severity.ERROR, outcome="rolled-back")

    def _event(self, r: RolloutRecord, kind: str, message: str, severity: Severity = Severity.INFO,
               outcome: str | None = None) -> None:
        from .domains import Domain

        self._engine.emit(Event(kind, message, severity, Domain.parse(r.domain), r.key, r.provider,
                                actor=self._engine.actor, outcome=outcome, data={"rollout": r.id}))
