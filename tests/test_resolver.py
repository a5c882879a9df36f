"""Precedence, explain and registry replace semantics."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from oneiric_core.domains import Candidate, ComponentRef, Domain
from oneiric_core.errors import NotFound
from oneiric_core.registry import CandidateRegistry
from oneiric_core.resolver import Resolver, Rung, StackOrder

A = Domain.ADAPTER


def cand(provider: str, *, key: str = "cache", priority: int = 0, stack: int = 0, source: str = "builtin") -> Candidate:
    return Candidate(A, key, provider, f"pkg.mod:{provider.replace('-', '_')}", priority, stack, source)


def resolver_with(*cands: Candidate, selection: str | None = None, stack_order=()) -> Resolver:
    reg = CandidateRegistry()
    reg.register_many(cands)
    sel = {A: {"cache": selection}} if selection else {}
    return Resolver(reg, selections=sel, stack_order=StackOrder.parse(list(stack_order)))


def test_selection_beats_stack_level_priority_and_order():
    r = resolver_with(cand("memory", priority=50, stack=50), cand("sqlite"), selection="sqlite")
    exp = r.explain(A, "cache")
    assert r.resolve(A, "cache").provider == "sqlite"
    assert exp.ranked[0].rung == Rung.SELECTION
    assert exp.ranked[0].reason == "selected in settings/adapters.yml"
    assert exp.ranked[1].reason == "shadowed: settings/adapters.yml selects 'sqlite'"


def test_stack_level_beats_priority():
    r = resolver_with(cand("memory", priority=50), cand("sqlite", stack=20))
    exp = r.explain(A, "cache")
    assert exp.winner.provider == "sqlite"
    assert exp.ranked[0].rung == Rung.STACK_LEVEL
    assert exp.ranked[0].reason == "stack_level 20 > 0 (memory)"
    assert exp.ranked[1].reason == "shadowed: stack_level 0 < 20 (sqlite)"


def test_priority_beats_registration_order():
    r = resolver_with(cand("memory", priority=10), cand("sqlite", priority=3))
    exp = r.explain(A, "cache")
    assert exp.winner.provider == "memory"
    assert exp.ranked[0].reason == "priority 10 > 3 (sqlite)"
    assert exp.ranked[1].rung == Rung.PRIORITY


def test_later_registration_wins_a_full_tie():
    r = resolver_with(cand("memory"), cand("sqlite"))
    exp = r.explain(A, "cache")
    assert exp.winner.provider == "sqlite"
    assert exp.ranked[0].rung == Rung.REGISTRATION
    assert exp.ranked[0].reason.startswith("ties with ") and "registered later (#2 > #1)" in exp.ranked[0].reason
    assert exp.ranked[1].reason.startswith("shadowed: ties with ") and "registered later (#2 > #1) and wins" \
        in exp.ranked[1].reason


def test_only_candidate():
    r = resolver_with(cand("memory"))
    assert r.explain(A, "cache").ranked[0].reason == "only candidate"


def test_stack_order_lifts_a_source_above_a_higher_stack_level():
    cands = (cand("memory", stack=50), cand("remote-redis", source="remote:acme"))
    assert resolver_with(*cands).resolve(A, "cache").provider == "memory"
    lifted = resolver_with(*cands, stack_order=["remote:*", "builtin"])
    exp = lifted.explain(A, "cache")
    assert exp.winner.provider == "remote-redis"
    # remote:* is listed first of two: +200; builtin second: +100.
    assert exp.ranked[0].effective_stack_level == 200
    assert "from stack_order 'remote:*'" in exp.ranked[0].reason
    explicit = resolver_with(*cands, stack_order=["remote:10"])
    assert explicit.resolve(A, "cache").provider == "memory"  # 10 < 50


def test_stack_order_first_listed_is_highest():
    cands = (cand("a", source="settings"), cand("b", source="builtin"))
    assert resolver_with(*cands, stack_order=["settings", "builtin"]).resolve(A, "cache").provider == "a"
    assert resolver_with(*cands, stack_order=["builtin", "settings"]).resolve(A, "cache").provider == "b"


def test_misconfigured_selection_falls_back_and_says_so():
    r = resolver_with(cand("memory", priority=5), cand("sqlite"), selection="nosuch")
    exp = r.explain(A, "cache")
    assert exp.misconfigured is not None and "'nosuch'" in exp.misconfigured
    assert r.resolve(A, "cache").provider == "memory"
    assert exp.ranked[0].reason.startswith("fallback: selection 'nosuch' is not registered; priority 5 > 0")
    assert exp.to_dict()["misconfigured"] == exp.misconfigured


def test_misconfigured_clears_when_the_provider_registers():
    reg = CandidateRegistry()
    reg.register(cand("memory"))
    r = Resolver(reg, selections={A: {"cache": "redis"}})
    assert r.explain(A, "cache").misconfigured
    reg.register(cand("redis"))
    assert r.explain(A, "cache").misconfigured is None
    assert r.resolve(A, "cache").provider == "redis"


def test_unknown_key_is_not_found_with_known_keys_listed():
    r = resolver_with(cand("memory"))
    with pytest.raises(NotFound, match="adapter/queue.*Known adapter keys: cache"):
        r.resolve(A, "queue")
    with pytest.raises(NotFound):
        r.explain(A, "queue")


def test_registering_the_same_tuple_replaces_in_place():
    reg = CandidateRegistry()
    first = reg.register(cand("memory", priority=1))
    reg.register(cand("sqlite", priority=1))
    again = reg.register(cand("memory", priority=1))
    assert len(reg) == 2
    assert again.seq == first.seq  # replacement keeps its place in registration order
    r = Resolver(reg)
    assert r.resolve(A, "cache").provider == "sqlite"


def test_same_provider_from_two_sources_is_two_candidates():
    reg = CandidateRegistry()
    reg.register_many([cand("memory"), cand("memory", source="settings")])
    assert len(reg.candidates(ComponentRef(A, "cache"))) == 2


def test_replace_source_never_duplicates_and_reports_the_diff():
    reg = CandidateRegistry()
    reg.register(cand("memory"))
    batch = [cand("x", source="remote:a"), cand("y", source="remote:a")]
    diff = reg.replace_source("remote:a", batch)
    assert [c.provider for c in diff.added] == ["x", "y"]
    for _ in range(5):
        diff = reg.replace_source("remote:a", batch)
        assert not diff.changed
    assert len(reg) == 3
    diff = reg.replace_source("remote:a", [cand("y", source="remote:a", priority=4)])
    assert [c.provider for c in diff.removed] == ["x"]
    assert [c.provider for c in diff.replaced] == ["y"]
    assert {c.provider for c in reg.all()} == {"memory", "y"}


def test_removing_the_winner_recomputes():
    reg = CandidateRegistry()
    reg.register_many([cand("memory"), cand("sqlite", priority=9)])
    r = Resolver(reg)
    assert r.resolve(A, "cache").provider == "sqlite"
    reg.remove((A, "cache", "sqlite", "builtin"))
    assert r.resolve(A, "cache").provider == "memory"
    reg.remove((A, "cache", "memory", "builtin"))
    with pytest.raises(NotFound):
        r.resolve(A, "cache")


def test_selection_change_recomputes_and_reports_changed_refs():
    reg = CandidateRegistry()
    reg.register_many([cand("memory"), cand("sqlite")])
    r = Resolver(reg, selections={A: {"cache": "memory"}})
    assert r.resolve(A, "cache").provider == "memory"
    changed = r.set_selections({A: {"cache": "sqlite"}})
    assert changed == {ComponentRef(A, "cache")}
    assert r.resolve(A, "cache").provider == "sqlite"


def test_refs_follow_registrations_removals_and_selections():
    """refs() is kept between changes: every change shows in the next call, and a caller
    changing the list it got changes nothing for the next caller."""
    reg = CandidateRegistry()
    reg.register_many([cand("memory")])
    r = Resolver(reg)
    assert r.refs() == [ComponentRef(A, "cache")]
    reg.register_many([cand("memory", key="blob")])
    assert r.refs() == [ComponentRef(A, "blob"), ComponentRef(A, "cache")]
    got = r.refs()
    got.clear()
    assert r.refs() == [ComponentRef(A, "blob"), ComponentRef(A, "cache")]
    r.set_selections({Domain.SERVICE: {"queue": "nothing-registered"}})  # a selection alone is a key
    assert ComponentRef(Domain.SERVICE, "queue") in r.refs()
    reg.remove((A, "blob", "memory", "builtin"))
    assert ComponentRef(A, "blob") not in r.refs()


def test_resolve_accepts_plain_strings_and_counts():
    r = resolver_with(cand("memory"))
    assert r.resolve("adapter", "cache").provider == "memory"
    assert r.resolutions["adapter"] == 1


candidate_lists = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "d", "e"]), st.integers(-3, 3), st.integers(-3, 3),
              st.sampled_from(["builtin", "settings", "remote:x"])),
    min_size=1, max_size=12,
)


@hsettings(max_examples=200, deadline=None)
@given(candidate_lists, st.one_of(st.none(), st.sampled_from(["a", "b", "z"])),
       st.lists(st.sampled_from(["builtin", "settings", "remote:x", "remote"]), max_size=3, unique=True))
def test_ranking_matches_the_documented_precedence(rows, selection, order):
    reg = CandidateRegistry()
    for provider, prio, stack, source in rows:
        reg.register(cand(provider, priority=prio, stack=stack, source=source))
    stack_order = StackOrder.parse(order)
    r = Resolver(reg, selections={A: {"cache": selection}} if selection else {}, stack_order=stack_order)
    exp = r.explain(A, "cache")

    def key(c: Candidate):
        return (c.provider == selection, c.stack_level + stack_order.lift(c.source)[0], c.priority, c.seq)

    expected = sorted(reg.candidates(ComponentRef(A, "cache")), key=key, reverse=True)
    assert [rc.candidate.ident for rc in exp.ranked] == [c.ident for c in expected]
    assert r.resolve(A, "cache").ident == expected[0].ident
    assert (exp.misconfigured is not None) == \
        (selection is not None and not any(c.provider == selection for c in expected))
    assert all(rc.reason for rc in exp.ranked)
