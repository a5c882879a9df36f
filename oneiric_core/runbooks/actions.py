"""Remediations a tree can propose, executed through the engine's own paths.

A swap (and a force swap) is a proposal made with `engine.request_swap(source="runbook")`:
the approvals policy of app.yml applies exactly as for any other swap (manual mode waits for
an approver, two_person refuses the requester), and the walker waits for its outcome. Pause,
drain, resume, probe, sync and reload run when the operator confirms the step in the walker
(the walker records who), through the running host's command queue when this process is not
the host. `manual` is a step only the operator can do (edit a file, restart a service): the
operator says whether it was done.

`close-incident` closes the incident the walk records on (its `incident` parameter) with
the resolution, root cause and follow-ups the operator gives (the fields of `oneiric incident
close`); a walk that records on none (a look, a drill, `oneiric runbook walk`) has nothing to
close and says so.

Each action returns an ActionOutcome whose `outcome` word the tree branches on:
applied | failed | rejected | expired | pending (swap), done | failed (the others).

An action `mutates` when performing it changes something (the engine, or, for a manual step,
whatever the operator did outside): the first such step of a walk opens an incident
(walk_incident.py). A probe only looks, and closing an incident is no reason to open one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import OneiricError
from .facts import FactContext, MissingParam

if TYPE_CHECKING:
    from ..ports import FactsEngine


@dataclass
class ActionOutcome:
    outcome: str
    message: str
    proposal_id: int | None = None
    requested_by: str | None = None
    approved_by: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def pending(self) -> bool:
        return self.outcome == "pending"

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "message": self.message, "proposal": self.proposal_id,
                "requested_by": self.requested_by, "approved_by": self.approved_by}


@dataclass(frozen=True)
class Action:
    name: str
    fn: Callable[[FactContext, str], Awaitable[ActionOutcome]]
    changes: str
    needs: tuple[str, ...] = ()
    via_proposal: bool = False
    mutates: bool = True


ACTIONS: dict[str, Action] = {}


def action(name: str, changes: str, needs: tuple[str, ...] = (), *, via_proposal: bool = False,
           mutates: bool = True) -> Callable[[Any], Any]:
    def register(fn: Callable[[FactContext, str], Awaitable[ActionOutcome]]) -> Any:
        ACTIONS[name] = Action(name, fn, changes, needs, via_proposal, mutates)
        return fn

    return register


def _remote_host(engine: FactsEngine) -> bool:
    """True when another live process hosts the state dir: changes go through its socket."""
    if engine.is_host:
        return False
    _, alive = engine.host()
    return alive


async def _ask(engine: FactsEngine, kind: str, args: dict[str, Any]) -> ActionOutcome:
    from ..operator_port import connect

    result = await connect(engine).run(kind, **args)
    return ActionOutcome("done" if result.exit_code == 0 else "failed", result.message, data=dict(result.data or {}))


async def perform(name: str, ctx: FactContext, actor: str) -> ActionOutcome:
    spec = ACTIONS[name]
    for needed in spec.needs:
        ctx.param(needed)
    try:
        return await spec.fn(ctx, actor)
    except MissingParam:
        raise
    except OneiricError as exc:
        return ActionOutcome("failed", str(exc), requested_by=actor)


# -- swaps: proposals ------------------------------------------------------------------------------
async def _swap(ctx: FactContext, actor: str, force: bool) -> ActionOutcome:
    engine, ref = ctx.engine, ctx.ref
    provider = str(ctx.args.get("provider") or ctx.param("target"))
    reason = str(ctx.args.get("reason") or "runbook remediation")
    if _remote_host(engine):
        from ..operator_port import connect

        result = await connect(engine).swap(ref.domain.value, ref.key, provider, force=force, reason=reason,
                                            source="runbook")
        proposal = (result.data or {}).get("proposal") or {}
        if proposal.get("id") is not None:
            return proposal_outcome(engine, int(proposal["id"]))
        return ActionOutcome("done" if result.exit_code == 0 else "failed", result.message, requested_by=actor)
    record, _ = await engine.request_swap(ref.domain, ref.key, provider, force=force, source="runbook",
                                          reason=reason, actor=actor)
    assert record.id is not None  # request_swap stored it
    return proposal_outcome(engine, record.id)


def proposal_outcome(engine: FactsEngine, proposal_id: int) -> ActionOutcome:
    """Where a swap proposal stands, as an action outcome."""
    record = engine.store.get_proposal(proposal_id)
    if record is None:
        return ActionOutcome("failed", f"proposal #{proposal_id} is gone", proposal_id)
    base: dict[str, Any] = dict(proposal_id=record.id, requested_by=record.requested_by, approved_by=record.decided_by,
                data={"to": record.to_provider, "status": record.status, "swap_outcome": record.outcome})
    what = f"#{record.id} {record.domain}/{record.key} -> {record.to_provider}"
    if record.status in ("pending", "approved"):
        return ActionOutcome("pending", f"{what} is {record.status}; waiting for "
                             f"{'an approver' if record.status == 'pending' else 'the swap to finish'}", **base)
    if record.status == "applied":
        return ActionOutcome("applied", f"{what} applied ({record.outcome}), approved by {record.decided_by}", **base)
    if record.status in ("rejected", "expired"):
        return ActionOutcome(record.status, f"{what} {record.status}" +
                             (f" by {record.decided_by}" if record.decided_by else "") +
                             (f": {record.comment}" if record.comment else ""), **base)
    said = f"{what} {record.outcome or record.status}: {record.outcome_reason or ''}".rstrip(": ")
    return ActionOutcome("failed", said, **base)


@action("swap", "proposes swapping the key to {target}; applied when approved (health-gated, rolls back "
        "on failure)", ("domain", "key"), via_proposal=True)
async def act_swap(ctx: FactContext, actor: str) -> ActionOutcome:
    return await _swap(ctx, actor, force=False)


@action("force-swap", "proposes a FORCED swap to {target}: binds it even if its health check fails, and "
        "swaps a paused key", ("domain", "key"), via_proposal=True)
async def act_force_swap(ctx: FactContext, actor: str) -> ActionOutcome:
    return await _swap(ctx, actor, force=True)


# -- activity, probe, sync, reload -----------------------------------------------------------------
def _note(ctx: FactContext) -> str:
    return str(ctx.args.get("note") or "runbook step")


async def _set_activity(kind: str, ctx: FactContext, actor: str) -> ActionOutcome:
    """pause / resume: here when this process hosts, else through the host's command queue."""
    engine, ref = ctx.engine, ctx.ref
    if _remote_host(engine):
        return await _ask(engine, kind, {"domain": ref.domain.value, "key": ref.key, "note": _note(ctx)})
    change = engine.resume if kind == "resume" else engine.pause
    rec = change(ref.domain, ref.key, note=_note(ctx), actor=actor)
    message = f"{ref} is {rec.state}"
    if kind == "resume" and engine.is_host and getattr(engine, "started", False):
        message += await _until_started(engine, ref)
    return ActionOutcome("done", message, requested_by=actor, approved_by=actor)


async def _until_started(engine: FactsEngine, ref: Any) -> str:
    """A key paused since the host started was never activated; resuming starts it in the
    background. Wait for that start (bounded by activation_timeout), so the check after this
    step sees the key serving rather than still starting."""
    deadline = asyncio.get_running_loop().time() + float(engine.settings.app.lifecycle.activation_timeout) + 1.0
    while True:
        row = next(iter(engine.components([ref])), None)
        if row is None or row.winner is None or row.state not in ("inactive", "activating") \
                or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    if row is None:
        return ""
    return f"; {row.state}, serving {row.serving or 'nothing'}"


@action("resume", "accepts work on {domain}/{key} again (clears pause and drain)", ("domain", "key"))
async def act_resume(ctx: FactContext, actor: str) -> ActionOutcome:
    return await _set_activity("resume", ctx, actor)


@action("pause", "stops new work on {domain}/{key}; swaps are refused unless forced", ("domain", "key"))
async def act_pause(ctx: FactContext, actor: str) -> ActionOutcome:
    return await _set_activity("pause", ctx, actor)


@action("drain", "stops new work on {domain}/{key} and waits for in-flight work to finish", ("domain", "key"))
async def act_drain(ctx: FactContext, actor: str) -> ActionOutcome:
    engine, ref = ctx.engine, ctx.ref
    timeout = float(ctx.args.get("timeout", 30))
    if _remote_host(engine):
        return await _ask(engine, "drain", {"domain": ref.domain.value, "key": ref.key, "note": _note(ctx),
                                            "timeout": timeout})
    rec = await engine.drain(ref.domain, ref.key, note=_note(ctx), actor=actor, timeout=timeout)
    return ActionOutcome("done" if rec.state == "drained" else "failed", f"{ref} is {rec.state}",
                         requested_by=actor, approved_by=actor)


@action("probe", "runs the health check of what serves {domain}/{key} now (journaled)", ("domain", "key"),
        mutates=False)
async def act_probe(ctx: FactContext, actor: str) -> ActionOutcome:
    from .facts import key_probe

    result = await key_probe(ctx)
    return ActionOutcome("done" if result.value in ("ok", "degraded") else "failed", "; ".join(result.evidence),
                         requested_by=actor, approved_by=actor)


@action("sync", "fetches and verifies the remote manifests now (even with the circuit open, as its trial)")
async def act_sync(ctx: FactContext, actor: str) -> ActionOutcome:
    engine = ctx.engine
    source = ctx.params.get("source")
    if _remote_host(engine):
        return await _ask(engine, "sync", {"source": source, "dry_run": False})
    outcomes = await engine.remote.sync_now(source)
    failed = [o for o in outcomes if not o.ok]
    text = " ".join(o.message() for o in outcomes) or "No remote source is configured."
    return ActionOutcome("failed" if failed else "done", text, requested_by=actor, approved_by=actor)


@action("reload-config", "reloads every settings file; a broken file keeps its last good version")
async def act_reload(ctx: FactContext, actor: str) -> ActionOutcome:
    engine = ctx.engine
    if _remote_host(engine):
        return await _ask(engine, "reload", {})
    problems = engine.reload_settings()
    if problems:
        return ActionOutcome("failed", "; ".join(str(p) for p in problems), requested_by=actor, approved_by=actor)
    return ActionOutcome("done", "settings reloaded; every file is valid", requested_by=actor, approved_by=actor)


@action("clear-artifact", "deletes the one cached artifact {artifact} (content-addressed; nothing else) so the "
        "next sync fetches it again", ("artifact",))
async def act_clear_artifact(ctx: FactContext, actor: str) -> ActionOutcome:
    import re

    sha = str(ctx.param("artifact")).lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        return ActionOutcome("failed", f"'{sha}' is not a sha256 digest; nothing was deleted.")
    path = ctx.engine.state_dir / "remote" / "artifacts" / sha
    if not path.is_file():
        return ActionOutcome("done", f"artifact {sha[:12]} is not cached; nothing to delete.", requested_by=actor)
    path.unlink()
    from ..events import Event, Severity

    ctx.engine.emit(Event("digest-check-failed", f"cached artifact {sha[:12]} deleted by {actor} (runbook) to be "
                          "fetched again", Severity.WARNING, actor=actor, outcome="cleared", data={"sha256": sha}))
    return ActionOutcome("done", f"deleted cached artifact {sha[:12]}", requested_by=actor, approved_by=actor)


@action("write-selection", "writes '{key}: {target}' as the selection into settings/{domain}s.yml (comments "
        "kept), so a restart keeps it (what e on the key in the main view does)", ("domain", "key", "target"))
async def act_write_selection(ctx: FactContext, actor: str) -> ActionOutcome:
    provider = str(ctx.args.get("provider") or ctx.param("target"))
    ref = ctx.ref
    engine = ctx.engine
    path = await asyncio.to_thread(engine.edit_selection, ref.domain, ref.key, provider, actor=actor)
    if engine.is_host:  # read it now, as the watcher would a moment later, so the next check sees it
        engine.settings_file_changed(path)
    return ActionOutcome("done", f"wrote the selection {ref.key}: {provider} to {path.name}", requested_by=actor,
                         approved_by=actor)


@action("approve-proposal", "approves proposal #{proposal} through the approvals policy, as the Approvals pane "
        "and 'oneiric approve' do (a policy needing two people refuses the one who asked)", ("proposal",))
async def act_approve_proposal(ctx: FactContext, actor: str) -> ActionOutcome:
    outcome = await _ask(ctx.engine, "approve", {"id": int(str(ctx.param("proposal")).lstrip("#"))})
    outcome.requested_by = outcome.approved_by = actor
    return outcome


@action("manual", "a step only the operator can do (edit a file, restart a service): confirm when done")
async def act_manual(ctx: FactContext, actor: str) -> ActionOutcome:
    return ActionOutcome("done", f"{actor} confirmed the step was done", requested_by=actor, approved_by=actor)


@action("close-incident", "closes this walk's incident with the resolution, root cause and follow-ups you give",
        mutates=False)
async def act_close_incident(ctx: FactContext, actor: str) -> ActionOutcome:
    from .incidents import Incidents

    incident = ctx.params.get("incident")
    if incident in (None, ""):
        return ActionOutcome("done", "this walk records on no incident; nothing to close", requested_by=actor)
    incidents = Incidents(ctx.engine)
    current = incidents.get(int(incident))
    if current.status == "closed":
        return ActionOutcome("done", f"incident #{current.id} was already closed: {current.resolution}",
                             requested_by=actor)
    resolution = str(ctx.param("resolution"))
    follow_ups = ctx.params.get("follow_ups") or []
    if isinstance(follow_ups, str):
        follow_ups = [f.strip() for f in follow_ups.split(";") if f.strip()]
    root_cause = ctx.params.get("root_cause")
    inc = incidents.close(int(incident), resolution, actor=actor,
                                      root_cause=str(root_cause) if root_cause else None, follow_ups=list(follow_ups))
    return ActionOutcome("done", f"incident #{inc.id} closed: {inc.resolution}", requested_by=actor, approved_by=actor)
