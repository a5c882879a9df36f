"""Proposals and the approval policy, enforced by the engine."""

from __future__ import annotations

import pytest

from oneiric_core.engine import Engine
from oneiric_core.errors import NotFound, SwapRefused
from oneiric_core.lifecycle import SwapOutcome
from tests.helpers import settings_with


async def test_a_manual_proposal_waits_then_applies_on_approval(engine):
    record, result = await engine.request_swap("adapter", "cache", "sqlite", reason="warm cache", actor="alice")
    assert result is None and record.status == "pending"
    assert [p.id for p in engine.approvals.pending()] == [record.id]
    with engine.use("adapter", "cache") as cache:
        assert type(cache).__module__.endswith("cache_memory")  # nothing changed yet
    decided, result = await engine.approve(record.id, actor="bob", comment="ok")
    assert result.outcome == SwapOutcome.COMPLETE and result.actor == "bob"
    stored = engine.approvals.get(record.id)
    assert (stored.status, stored.decided_by, stored.outcome) == ("applied", "bob", "complete")
    kinds = [e.kind for e in engine.journal(kinds=["swap-requested", "swap-approved", "swap-complete"], key="cache")]
    assert kinds[-3:] == ["swap-requested", "swap-approved", "swap-complete"]
    requested = engine.journal(kinds=["swap-requested"])[-1]
    assert requested.actor == "alice" and "warm cache" in requested.message


async def test_an_approved_swap_that_rolls_back_is_recorded_failed(engine):
    record, result = await engine.request_swap("adapter", "cache", "redis", actor="alice", approve=True)
    assert result.outcome == SwapOutcome.ROLLED_BACK
    stored = engine.approvals.get(record.id)
    assert stored.status == "failed" and "health check failed" in stored.outcome_reason


async def test_reject_and_double_decisions(engine):
    record, _ = await engine.request_swap("adapter", "cache", "sqlite", actor="alice")
    engine.reject(record.id, actor="bob", comment="not during the sale")
    assert engine.approvals.get(record.id).status == "rejected"
    with pytest.raises(SwapRefused, match="is rejected"):
        await engine.approve(record.id, actor="carol")
    with pytest.raises(NotFound):
        engine.reject(9999, actor="bob")


async def test_two_person_rule_is_enforced_by_the_engine(tmp_path):
    settings = settings_with(tmp_path, "approvals:\n  two_person: true\n")
    eng = Engine(settings, state_dir=tmp_path / "state", actor="alice@10.0.0.1")
    await eng.start()
    try:
        record, result = await eng.request_swap("adapter", "cache", "sqlite", approve=True)
        assert result is None  # approving your own request is not allowed: it waits
        with pytest.raises(SwapRefused, match="two-person rule"):
            await eng.approve(record.id, actor="alice@10.9.9.9")
        _, result = await eng.approve(record.id, actor="bob")
        assert result.outcome == SwapOutcome.COMPLETE
    finally:
        await eng.stop()
        eng.close()


async def test_expired_proposals_cannot_be_approved(engine):
    record, _ = await engine.request_swap("adapter", "cache", "sqlite", actor="alice")
    engine.approvals.expire_due(now=record.expires_at + 1)
    assert engine.approvals.get(record.id).status == "expired"
    assert engine.journal(kinds=["swap-expired"])[-1].data["proposal"] == record.id
    with pytest.raises(SwapRefused, match="is expired"):
        await engine.approve(record.id, actor="bob")


async def test_auto_mode_applies_at_once(tmp_path):
    settings = settings_with(tmp_path, "approvals:\n  mode: auto\n")
    eng = Engine(settings, state_dir=tmp_path / "state", actor="alice")
    await eng.start()
    try:
        record, result = await eng.request_swap("adapter", "cache", "sqlite")
        assert result.outcome == SwapOutcome.COMPLETE
        assert eng.approvals.get(record.id).decided_by == "policy:auto"
    finally:
        await eng.stop()
        eng.close()
