"""The bulk registration path a settings load takes: field tuples in, the same registry out."""

from __future__ import annotations

import dataclasses
import gc

import pytest

from oneiric_core.bulk import gc_paused
from oneiric_core.domains import Candidate, ComponentRef, Domain, new_candidate
from oneiric_core.registry import CandidateRegistry
from oneiric_core.resolver import Resolver, StackOrder


def fields(key: str, provider: str, priority: int = 0, settings: dict | None = None):
    return (Domain.ADAPTER, key, provider, "a.b:c", priority, 0, settings or {}, {})


def test_new_candidate_is_the_same_frozen_candidate() -> None:
    args = (Domain.TASK, "k", "p", "a.b:c", 3, -2, "settings", {"x": 1}, {"team": "t"}, 7)
    fast, slow = new_candidate(*args), Candidate(*args)
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert dataclasses.asdict(fast) == dataclasses.asdict(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.priority = 1  # type: ignore[misc]


def test_fields_and_candidates_register_alike() -> None:
    by_fields, by_candidates = CandidateRegistry(), CandidateRegistry()
    rows = [fields("cache", "memory"), fields("cache", "redis", 2), fields("queue", "inline")]
    diff_a = by_fields.replace_source_fields("settings", rows)
    diff_b = by_candidates.replace_source("settings", [
        Candidate(d, k, p, f, pr, sl, "settings", s, m) for d, k, p, f, pr, sl, s, m in rows])
    assert by_fields.all() == by_candidates.all()
    assert [c.seq for c in by_fields.all()] == [c.seq for c in by_candidates.all()] == [1, 2, 3]
    assert diff_a.added == diff_b.added and not diff_a.replaced and not diff_a.removed


def test_a_reload_that_changes_nothing_builds_nothing_and_tells_no_one() -> None:
    registry = CandidateRegistry()
    heard: list[set[ComponentRef]] = []
    registry.add_listener(heard.append)
    registry.replace_source_fields("settings", [fields("cache", "memory"), fields("cache", "redis", 2)])
    before = registry.all()
    diff = registry.replace_source_fields("settings", [fields("cache", "memory"), fields("cache", "redis", 2)])
    assert not diff.changed and len(heard) == 1
    assert all(a is b for a, b in zip(before, registry.all(), strict=True))

    diff = registry.replace_source_fields("settings", [fields("cache", "redis", 5, {"db": 1})])
    assert [c.provider for c in diff.removed] == ["memory"]
    assert [(c.provider, c.priority, c.seq) for c in diff.replaced] == [("redis", 5, 2)]
    assert heard[-1] == {ComponentRef(Domain.ADAPTER, "cache")}


def test_winners_follow_bulk_registration_and_stack_order() -> None:
    registry = CandidateRegistry()
    resolver = Resolver(registry)
    registry.replace_source_fields("settings", [fields("cache", "memory", 1), fields("cache", "redis", 0)])
    assert resolver.resolve(Domain.ADAPTER, "cache").provider == "memory"
    registry.replace_source("builtin", [Candidate(Domain.ADAPTER, "cache", "local", "a.b:c", 0)])
    resolver.set_stack_order(StackOrder.parse(["builtin"]))
    assert resolver.resolve(Domain.ADAPTER, "cache").provider == "local"
    resolver.set_stack_order(StackOrder.parse(["builtin"]))  # the same order: nothing to re-rank
    assert [r.candidate.provider for r in resolver.explain(Domain.ADAPTER, "cache").ranked] == [
        "local", "memory", "redis"]


def test_gc_paused_restores_the_collector_state() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # a caller that turned it off keeps it off
    finally:
        gc.enable()
