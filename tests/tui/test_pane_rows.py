"""The panes show the right rows, in the right order, after adds, updates and removals.

The health table puts each new row in its place (bisect) instead of sorting, redraws only the
rows it changes, and the console refreshes every component a slice at a time when there are
many: these tests check what is on screen and in the panes after each kind of change, at a
small N (no timings: bench/console.py --scale measures those).
"""

from __future__ import annotations

import random
import re

from textual.app import App, ComposeResult

from oneiric_core.domains import ComponentRef, Domain
from oneiric_core.engine import ComponentStatus
from oneiric_tui.widgets.component_tree import ComponentTree
from oneiric_tui.widgets.health_table import HealthTable, order
from tests.tui.conftest import until
from tests.tui.test_console import screen_text


def status(ref: ComponentRef, serving: str | None = "p", *, health: str = "ok", latency: float = 1.0,
           activity: str = "active") -> ComponentStatus:
    return ComponentStatus(ref, serving, "settings", None, None, 1, 0, serving, "settings" if serving else None,
                           "ready" if serving else "inactive", 0, activity, None, None, health, latency, "", None,
                           None, None)


class HealthOnly(App):
    def compose(self) -> ComposeResult:
        yield HealthTable(id="health")


def health_lines(app: App) -> list[str]:
    """The health table's rows as the screen shows them (first cell, provider, status word)."""
    rows = []
    for line in screen_text(app).splitlines():
        match = re.match(r"\s*((?:adapter|service|task|event|workflow|action)/\S+)\s+(\S+)\s+\S\s+(\w+)", line)
        if match:
            rows.append(match.groups())
    return rows


REFS = [ComponentRef(d, f"k{i:02d}") for d in (Domain.ACTION, Domain.ADAPTER, Domain.SERVICE) for i in range(8)]


async def test_rows_arrive_in_any_order_and_are_shown_in_the_tree_order() -> None:
    app = HealthOnly()
    async with app.run_test(size=(100, 40)) as pilot:
        table = app.query_one(HealthTable)
        shuffled = REFS[:]
        random.Random(7).shuffle(shuffled)
        for start in range(0, len(shuffled), 5):  # batches, as the console gets them
            table.sync([status(r) for r in shuffled[start:start + 5]], lambda ref: None, complete=False)
        await pilot.pause()
        want = sorted(REFS, key=order)
        assert table.refs == want
        assert [row[0] for row in health_lines(app)] == [str(r) for r in want]
        assert str(want[0]).startswith("adapter/") and str(want[-1]).startswith("action/")


async def test_an_update_redraws_its_row_and_a_removal_closes_the_gap() -> None:
    app = HealthOnly()
    async with app.run_test(size=(100, 40)) as pilot:
        table = app.query_one(HealthTable)
        table.sync([status(r) for r in REFS], lambda ref: None)
        await pilot.pause()
        changed = REFS[9]  # adapter/k01
        table.sync([status(changed, "other-provider", health="failed")], lambda ref: None, complete=False)
        await until(pilot, lambda: (str(changed), "other-provider", "FAILED") in health_lines(app))
        assert len(health_lines(app)) == len(REFS)

        # A key that stops serving leaves (complete=False), and so do keys no longer listed (complete).
        table.sync([status(REFS[0], None)], lambda ref: None, complete=False)
        kept = [r for r in REFS[1:] if r.domain is not Domain.SERVICE]
        table.sync([status(r) for r in kept if r != changed] + [status(changed, "other-provider", health="failed")],
                   lambda ref: None)
        await until(pilot, lambda: len(health_lines(app)) == len(kept))
        assert table.row_count == len(kept)
        assert [row[0] for row in health_lines(app)] == [str(r) for r in sorted(kept, key=order)]
        assert (str(changed), "other-provider", "FAILED") in health_lines(app)


async def test_the_cursor_stays_on_its_row_while_rows_arrive_above_it() -> None:
    app = HealthOnly()
    async with app.run_test(size=(100, 40)) as pilot:
        table = app.query_one(HealthTable)
        services = [r for r in REFS if r.domain is Domain.SERVICE]
        table.sync([status(r) for r in services], lambda ref: None)
        table.focus()
        await pilot.press("j", "j")  # service/k02
        assert table.cursor_key == services[2]
        table.sync([status(r) for r in REFS if r.domain is Domain.ADAPTER], lambda ref: None, complete=False)
        await pilot.pause()
        assert table.cursor_key == services[2]
        assert table.cursor_row == 8 + 2  # eight adapter rows came before it
        await pilot.press("G")
        assert table.cursor_key == services[-1]


async def test_rows_arriving_below_a_full_table_can_all_be_scrolled_to() -> None:
    """Once the table is taller than its box, rows arriving below change only how far it
    scrolls (no layout of the screen): the last one can still be scrolled to and is drawn."""
    app = HealthOnly()
    async with app.run_test(size=(100, 12)) as pilot:
        table = app.query_one(HealthTable)
        many = [ComponentRef(Domain.SERVICE, f"k{i:03d}") for i in range(60)]
        table.sync([status(r) for r in many[:20]], lambda ref: None)
        await pilot.pause()
        for ref in many[20:]:  # one at a time, as activation brings them
            table.sync([status(ref)], lambda ref: None, complete=False)
        await pilot.pause()
        assert table.max_scroll_y == len(many) + 1 - table.scrollable_content_region.height
        table.focus()
        await pilot.press("G")
        await pilot.pause()
        assert table.cursor_key == many[-1]
        assert health_lines(app)[-1][0] == str(many[-1])


def services_yaml(keys: list[str]) -> str:
    lines = ["candidates:"]
    for key in keys:
        lines += [f"  - key: {key}", f"    provider: p-{key}",
                  "    factory: oneiric_core.providers.cache_memory:create"]
    return "\n".join(lines) + "\n"


async def test_many_keys_refreshed_a_slice_at_a_time_match_the_engine(tmp_path, monkeypatch) -> None:
    """A host with more keys than REFRESH_CHUNK refreshes every component over several turns
    of the loop; afterwards the tree's counts and the health rows are the engine's, keys that
    left the settings are gone and new ones are there."""
    import oneiric_tui.app as app_module
    from oneiric_core.engine import Engine
    from oneiric_tui.app import OneiricApp
    from tests.helpers import demo_copy

    monkeypatch.setattr(app_module, "REFRESH_CHUNK", 4)
    settings = demo_copy(tmp_path)
    services = settings / "services.yml"
    services.write_text(services_yaml([f"k{i:03d}" for i in range(12)]))
    app = OneiricApp(Engine(settings, state_dir=tmp_path / "state", actor="tester"))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.mode == "host" and len(app.statuses) >= 19
                    and all(s.state == "ready" for s in app.statuses.values()), timeout=30)
        tree = app.main.query_one(ComponentTree)
        health = app.main.query_one(HealthTable)

        def matches_engine() -> bool:
            statuses = app.engine.components()
            serving = [s.ref for s in statuses if s.serving]
            service_keys = sum(1 for s in statuses if s.ref.domain is Domain.SERVICE)
            label = str(tree._domains[Domain.SERVICE].label)
            return (health.refs == sorted(serving, key=order) and f"({service_keys} keys" in label
                    and set(app.statuses) == {s.ref for s in statuses})

        await until(pilot, matches_engine, timeout=20)
        assert sum(1 for r in health.refs if r.domain is Domain.SERVICE and r.key.startswith("k")) == 12

        # k000-k005 leave the settings and k100-k103 come: the watcher reloads, the console
        # refreshes every component (in slices of 4) and drops the keys that left.
        services.write_text(services_yaml([f"k{i:03d}" for i in (*range(6, 12), *range(100, 104))]))
        await until(pilot, lambda: any(r.key == "k100" for r in app.engine.resolver.refs()), timeout=20)
        await until(pilot, matches_engine, timeout=20)
        assert ComponentRef(Domain.SERVICE, "k103") in tree._keys  # registered, not started: no health row
        assert ComponentRef(Domain.SERVICE, "k000") not in app.statuses
        assert ComponentRef(Domain.SERVICE, "k000") not in tree._keys
        assert not any(r.key in ("k000", "k005") for r in health.refs)

        app.engine.pause("service", "k006")
        await until(pilot, lambda: "1 paused" in str(tree._domains[Domain.SERVICE].label))
        app.engine.resume("service", "k006")
        await until(pilot, lambda: "paused" not in str(tree._domains[Domain.SERVICE].label))
