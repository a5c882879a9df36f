"""The console driven from the keyboard with Pilot, over a real engine on the demo settings."""

from __future__ import annotations

import io
import re

from oneiric_tui.main_screen import MainScreen
from oneiric_tui.screens.approval_dialog import ApprovalDialog
from oneiric_tui.screens.confirm import ConfirmDialog
from oneiric_tui.screens.help import HelpScreen
from oneiric_tui.screens.swap_picker import SwapPicker
from oneiric_tui.widgets.approvals import ApprovalsTable
from oneiric_tui.widgets.component_tree import ComponentTree
from oneiric_tui.widgets.detail import DetailPane
from oneiric_tui.widgets.health_table import HealthTable
from oneiric_tui.widgets.swap_log import SwapLog
from tests.helpers import LOGIN
from tests.tui.conftest import ready, until

DEMO_KEYS = {"adapter/cache", "adapter/http", "adapter/storage", "service/scheduler", "task/runner",
             "event/bus", "workflow/runner", "action/compress"}


def screen_text(app) -> str:
    """What the terminal shows, as plain text (the SVG export carries every visible character)."""
    import html
    import re

    svg = app.export_screenshot()
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


def tree_labels(app) -> list[str]:
    tree = app.main.query_one(ComponentTree)
    out = []

    def walk(node):
        for child in node.children:
            out.append(str(child.label))
            walk(child)

    walk(tree.root)
    return out


def detail_text(app) -> str:
    from rich.console import Console

    shown = app.main.query_one(DetailPane).shown
    if shown is None:
        return ""
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(shown)
    return console.export_text()


async def to_cache(pilot) -> None:
    """Move the tree cursor to adapter/cache (the first key of the first domain)."""
    tree = pilot.app.main.query_one(ComponentTree)
    await pilot.press("1")
    tree.cursor_line = 1
    await until(pilot, lambda: str(pilot.app.main.current) == "adapter/cache"
                and "adapter/cache" in detail_text(pilot.app))


async def test_every_pane_is_present_and_populated(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        labels = tree_labels(app)
        for domain in ("adapters", "services", "tasks", "events", "workflows", "actions"):
            assert any(label.startswith(domain) for label in labels)
        assert any(label.startswith("cache  memory  + OK") for label in labels)
        health = main.query_one(HealthTable)
        assert health.row_count == 8
        assert {str(r) for r in health.refs} == DEMO_KEYS
        log = main.query_one(SwapLog)
        assert sum(1 for e in log.visible_events() if e.kind == "swap-complete") == 8
        assert main.query_one(ApprovalsTable).row_count == 0
        text = screen_text(app)
        for title in ("1 Components", "2 Explain", "3 Health", "4 Swap log", "5 Approvals"):
            assert title in text
        assert "HOST" in text and "operator tester" in text and "approvals manual" in text and "0 pending" in text


async def test_navigating_the_tree_updates_the_explain_pane(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await to_cache(pilot)
        text = " ".join(detail_text(app).split())
        assert "adapter/cache" in text and "memory-large" in text and "selected in" in text
        await pilot.press("j")  # adapter/http
        await until(pilot, lambda: "adapter/http" in detail_text(app))
        assert "only candidate" in detail_text(app)


async def test_enter_on_a_key_shows_its_candidates_ranked_and_follows_a_swap(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await to_cache(pilot)
        before = tree_labels(app)
        assert not any("(builtin)" in label for label in before)  # candidates are built on first open
        await pilot.press("enter")
        await until(pilot, lambda: any("sqlite (builtin)" in label for label in tree_labels(app)))
        labels = tree_labels(app)
        start = labels.index(next(label for label in labels if label.startswith("cache  memory")))
        leaves = labels[start + 1:start + 6]
        assert leaves[0].startswith("* memory (builtin)")  # the winner is listed first
        assert any(label.startswith("* memory") and "winner" in label and "serving" in label for label in leaves)
        assert any(label.startswith("- sqlite (builtin)") and "shadowed" in label and "serving" not in label
                   for label in leaves)
        await _swap_to(pilot, "sqlite")
        await pilot.press("y")
        await until(pilot, lambda: any(label.startswith("- sqlite (builtin)") and "serving" in label
                                       for label in tree_labels(app)))
        assert not any(label.startswith("* memory") and "serving" in label for label in tree_labels(app))


async def _swap_to(pilot, provider: str, *, keep: bool = False) -> None:
    app = pilot.app
    await to_cache(pilot)
    await pilot.press("s")
    await until(pilot, lambda: isinstance(app.screen, SwapPicker))
    picker = app.screen
    options = picker.query_one("OptionList")
    index = next(i for i, o in enumerate(picker.options) if o.provider == provider)
    options.highlighted = index
    if keep:
        await pilot.press("w")
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, ApprovalDialog))


async def test_swap_to_a_healthy_provider_changes_tree_log_and_health(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(pilot)
        await _swap_to(pilot, "sqlite")
        await pilot.press("y")
        await until(pilot, lambda: app.statuses[app.main.current].serving == "sqlite")
        await until(pilot, lambda: any(label.startswith("cache  sqlite") for label in tree_labels(app)))
        log = app.main.query_one(SwapLog)
        await until(pilot, lambda: any(e.kind == "swap-complete" and e.provider == "sqlite"
                                       for e in log.visible_events()))
        kinds = [e.kind for e in log.visible_events()]
        assert "swap-requested" in kinds and "swap-approved" in kinds
        health = app.main.query_one(HealthTable)
        await until(pilot, lambda: health.cell(app.main.current, "provider") == "sqlite")
        done = next(n.message for n in app._notifications if "now served by sqlite" in n.message)
        # sqlite was chosen against the ranking (memory is selected): say a restart undoes it
        assert "still rank memory first" in done and "Press e" in done


async def test_a_swap_kept_with_w_becomes_the_selection_in_settings(make_app):
    """`w` in the picker: once the swap completes its provider is written into the settings
    file, so a restart keeps it; the watcher sees it already serves and proposes nothing."""
    app = make_app()
    adapters = app.engine.settings_dir / "adapters.yml"
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(pilot)
        before = app.engine.store.last_journal_id()
        await _swap_to(pilot, "sqlite", keep=True)
        assert "yes: written into" in screen_text(app)  # the dialog says it will be kept
        await pilot.press("y")
        await until(pilot, lambda: app.statuses[app.main.current].serving == "sqlite")
        await until(pilot, lambda: "cache: sqlite" in adapters.read_text())
        # The reload of the written file journals config-changed and, in the same step, turns
        # each winner it changed into a proposal: once it is journaled, none may be pending.
        await until(pilot, lambda: any(e.data.get("file", "").endswith("adapters.yml")
                                       for e in app.engine.journal(after_id=before, kinds=["config-changed"])))
        assert app.engine.explain("adapter", "cache").winner.provider == "sqlite"
        assert app.engine.approvals.pending() == []
        done = next(n.message for n in app._notifications if "now served by sqlite" in n.message)
        assert "Press e" not in done
        assert any("Wrote the selection cache: sqlite" in n.message for n in app._notifications)


async def test_swap_to_the_unhealthy_demo_provider_rolls_back(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(pilot)
        await _swap_to(pilot, "redis")
        await pilot.press("y")
        log = app.main.query_one(SwapLog)
        await until(pilot, lambda: any(e.kind == "swap-rollback" for e in log.visible_events()))
        await until(pilot, lambda: any("rolled back" in n.title.lower() for n in app._notifications))
        assert app.statuses[app.main.current].serving == "memory"
        with app.engine.use("adapter", "cache") as cache:
            assert type(cache).__module__.endswith("cache_memory")
        assert "127.0.0.1:6399" in detail_text(app)


async def test_enter_on_the_dialog_never_approves_and_esc_cancels(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        before = app.engine.store.last_journal_id()
        await _swap_to(pilot, "sqlite")
        assert app.focused.id == "cancel"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        await _swap_to(pilot, "sqlite")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SwapPicker))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        await _swaps_settled(pilot)
        assert app.engine.journal(after_id=before, kinds=["swap-requested", "swap-started"]) == []
        assert app.statuses[app.main.current].serving == "memory"


async def _swaps_settled(pilot) -> None:
    """A barrier for a negative check: the keys pressed so far are handled (their dialogs'
    callbacks have run) and every swap they started has finished. A swap started by one of
    them has journaled swap-requested by then; none started, nothing to wait for."""
    app = pilot.app
    await pilot.pause()
    swaps = [w for w in app.workers if w.group == "swaps"]
    if swaps:  # (an empty list would wait for every worker, the app's lifelong ones too)
        await app.workers.wait_for_complete(swaps)


async def _confirm(pilot, key: str) -> None:
    app = pilot.app
    await pilot.press(key)
    await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
    assert app.focused.id == "cancel"
    await pilot.press("y")
    await until(pilot, lambda: isinstance(app.screen, MainScreen))


async def test_pause_drain_and_resume_from_the_keyboard(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await to_cache(pilot)
        ref = app.main.current
        await _confirm(pilot, "p")
        await until(pilot, lambda: app.statuses[ref].activity == "paused")
        await until(pilot, lambda: any("PAUSED" in label and label.startswith("cache") for label in tree_labels(app)))
        paused = app.engine.journal(kinds=["activity-changed"])[-1]
        assert paused.actor == "tester" and paused.outcome == "paused"
        await _confirm(pilot, "r")
        await until(pilot, lambda: app.statuses[ref].activity == "active")
        await _confirm(pilot, "d")
        await until(pilot, lambda: app.statuses[ref].activity == "drained")
        assert [e.outcome for e in app.engine.journal(kinds=["activity-changed"])][-2:] == ["draining", "drained"]
        await _confirm(pilot, "r")
        await until(pilot, lambda: app.statuses[ref].activity == "active")


async def test_h_probes_at_once_without_a_dialog_and_journals_it(make_app):
    """A probe changes nothing, so `h` asks nothing: the journal shows the probe at once."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await to_cache(pilot)
        await pilot.press("h")
        await until(pilot, lambda: bool(app.engine.journal(kinds=["health-probed"])) or
                    not isinstance(app.screen, MainScreen))
        assert isinstance(app.screen, MainScreen)  # no dialog came up
        probed = app.engine.journal(kinds=["health-probed"])[-1]
        assert probed.actor == "tester" and probed.outcome == "ok" and probed.key == "cache"


async def test_read_only_blocks_every_mutating_key(make_app):
    app = make_app(read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await to_cache(pilot)
        before = app.engine.store.last_journal_id()
        settings_before = (app.engine.settings_dir / "adapters.yml").read_text()
        for key in ("s", "e", "p", "d", "r"):
            await pilot.press(key)
            await pilot.pause()  # the key is handled; its action would have pushed its dialog at once
            assert isinstance(app.screen, MainScreen), key
        assert app.engine.journal(after_id=before) == []
        assert (app.engine.settings_dir / "adapters.yml").read_text() == settings_before
        main = app.main
        for action in ("swap", "edit_selection", "pause", "drain", "resume", "sync_remote"):
            assert main.check_action(action, ()) is None  # shown dimmed, inert
        titles = [c.title for c in app.get_system_commands(main)]
        assert not any(t.startswith(("Swap ", "Pause ", "Drain ", "Resume ")) for t in titles)
        assert any(t.startswith("Probe ") for t in titles)
        assert "READ-ONLY" in screen_text(app)


async def test_the_filter_narrows_the_log(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await app.engine._swap_now("adapter", "cache", "redis")
        log = app.main.query_one(SwapLog)
        await until(pilot, lambda: any(e.kind == "swap-rollback" for e in log.visible_events()))
        total = len(log.visible_events())
        await pilot.press("4", "slash")
        for ch in "kind:swap-rollback":
            await pilot.press(ch if ch != ":" else "colon")
        await pilot.press("enter")
        await until(pilot, lambda: len(log.visible_events()) < total)
        visible = log.visible_events()
        assert len(visible) == 1 < total and visible[0].kind == "swap-rollback"
        assert log.lines.events == visible
        assert "swap-rollback" in screen_text(app) and "swap-complete" not in screen_text(app)
        await pilot.press("escape")
        await until(pilot, lambda: len(log.visible_events()) == total)
        assert len(log.visible_events()) == total == len(log.lines)


async def test_help_lists_the_keys(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = screen_text(app)
        for word in ("Swap", "Pause", "Drain", "Resume", "Probe", "Quit", "Components", "Move around"):
            assert word in text
        from oneiric_tui.screens.help import help_sections

        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        move = help_sections(app)[0]
        assert move.title == "Move around"
        assert ("j/k/down/up", "Down / up a line") in move.keys and ("g/G", "First / last line") in move.keys
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))


async def test_80x24_has_every_pane_reachable(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        main = app.main
        assert main.has_class("-narrow")
        panes = ("tree", "detail", "health", "log", "approvals", "remote")
        for number, pane in enumerate(panes, start=1):
            await pilot.press(str(number))
            widget = main.query_one(f"#{pane}")
            await until(pilot, lambda w=widget: w.display and w.region.height >= 5)  # laid out anew
            assert widget.display and widget.region.height >= 5 and widget.region.width >= 70, pane
            others = [p for p in panes if p != pane]
            assert not any(main.query_one(f"#{o}").region.height for o in others)
        await pilot.press("tab")
        await until(pilot, lambda: main.active_pane() == "tree")


async def test_quit_stops_the_engine_and_releases_the_lease(make_app):
    from oneiric_core.store import StateStore

    app = make_app()
    state = app.engine.state_dir
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: app.engine.started is False)
    assert app.return_code == 0
    store = StateStore(state / "state.sqlite")
    try:
        assert store.current_lease() is None
        assert store.journal(limit=1)[-1].kind == "host-stopped"
    finally:
        store.close()


async def test_with_another_host_the_console_attaches_as_a_client_and_sends_commands(make_app, tmp_path):
    from tests.helpers import shown, start_host_process

    app = make_app()
    host = start_host_process(app.engine.settings_dir, app.engine.state_dir)
    try:
        async with app.run_test(size=(120, 40), notifications=True) as pilot:
            await until(pilot, lambda: app.mode == "client")
            await until(pilot, lambda: app.statuses and app.statuses[next(iter(app.statuses))].state == "ready")
            cache = next(s for s in app.statuses.values() if str(s.ref) == "adapter/cache")
            assert cache.serving == "sqlite"  # the other host's state, read from the store
            # the header repaints after the mode changes (a loaded machine may take a while)
            await until(pilot, lambda: f"CLIENT attached to pid {host.pid}" in screen_text(app))
            assert "READ-ONLY" not in screen_text(app)
            assert any("your actions are sent to it as commands" in n.message for n in app._notifications)
            # pause, sent to the host as a command; the host's journal says who asked
            await to_cache(pilot)
            await pilot.press("p")
            await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            await pilot.press("y")
            await until(pilot, lambda: app.statuses[app.main.current].activity == "paused")
            await until(pilot, lambda: any("PAUSED" in label for label in tree_labels(app)))
            paused = app.engine.journal(kinds=["activity-changed"])[-1]
            assert paused.actor == shown("tester") and "paused" in paused.message  # root, verified; tester, shown
            await pilot.press("r")
            await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            await pilot.press("y")
            await until(pilot, lambda: app.statuses[app.main.current].activity == "active")
            # a swap through the picker and the dialog, applied by the host
            await _swap_to(pilot, "memory")
            await pilot.press("y")
            await until(pilot, lambda: app.statuses[app.main.current].serving == "memory")
            # the same notification as in host mode: the answer's data, whoever ran the swap
            await until(pilot, lambda: any("adapter/cache now served by memory" in n.message
                                           for n in app._notifications))
            done = [e for e in app.engine.journal(kinds=["swap-complete"]) if e.provider == "memory"]
            assert done and done[-1].actor == shown("tester")
            # the host dies: the console notices and takes over as the host
            host.kill()
            host.wait()
            await until(pilot, lambda: app.mode == "host", timeout=20)
            await until(pilot, lambda: all(s.state == "ready" for s in app.statuses.values()))
            assert any("takes over as the host" in n.message for n in app._notifications)
            started = app.engine.journal(kinds=["host-started"])[-1]
            assert f"taking over from pid {host.pid}" in started.message
            assert "CLIENT" not in screen_text(app) and "HOST" in screen_text(app)
    finally:
        host.kill()
        host.wait()


async def test_read_only_client_blocks_every_mutating_key(make_app, tmp_path):
    from tests.helpers import start_host_process

    app = make_app(read_only=True)
    host = start_host_process(app.engine.settings_dir, app.engine.state_dir)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.mode == "client")
            for action in ("swap", "pause", "drain", "resume", "approve_selected", "reject_selected"):
                assert app.main.check_action(action, ()) is None
            await pilot.press("s")
            await pilot.pause()  # the key is handled; a swap picker would have been pushed at once
            assert isinstance(app.screen, MainScreen)
    finally:
        host.kill()
        host.wait()


async def test_keys_can_be_remapped_from_app_yml(make_app):
    app = make_app()
    app_yml = app.engine.settings_dir / "app.yml"
    app_yml.write_text(app_yml.read_text() + "keymap:\n  component.swap: w\n")
    app.engine.settings = app.engine._loader.load()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await to_cache(pilot)
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, SwapPicker))


async def test_no_color_and_ansi_dark_still_say_everything_in_words(make_app, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.theme = "ansi-dark"
        await ready(pilot)
        app.engine.pause("adapter", "cache")
        # On screen, not only in the label: the line is redrawn on the tree's next refresh.
        await until(pilot, lambda: "cache  memory  = PAUSED" in screen_text(app))
        text = screen_text(app)
        assert app.no_color
        for words in ("cache  memory  = PAUSED", "+ OK", "1 Components", "HOST"):
            assert words in text, words


async def test_quitting_while_providers_are_still_starting_exits_cleanly(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app._starter is not None)
        await pilot.press("q")  # the engine is still activating providers
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: app.engine.started is False)
    assert app.return_code in (0, None)
    assert app.engine.started is False


async def test_a_settings_edit_on_disk_shows_as_a_proposal_and_y_approves_it(make_app):
    """The watcher turns the edit into a proposal (manual mode); the tree, the explain pane
    and the approvals pane show it live; `a` opens the queue and `y` approves it."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await to_cache(pilot)
        adapters = app.engine.settings_dir / "adapters.yml"
        adapters.write_text(adapters.read_text().replace("cache: memory", "cache: sqlite"))
        approvals = app.main.query_one(ApprovalsTable)
        await until(pilot, lambda: approvals.row_count == 1)
        await until(pilot, lambda: any(label.startswith("cache  memory") and "PROPOSED" in label
                                       and "-> sqlite" in label
                                       for label in tree_labels(app)))
        await until(pilot, lambda: "waiting for approval" in detail_text(app))
        assert app.statuses[app.main.current].serving == "memory"  # nothing changes before approval
        assert "settings-watcher" in screen_text(app)
        await pilot.press("a")
        assert app.main.active_pane() == "approvals"
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: app.statuses[app.main.current].serving == "sqlite")
        await until(pilot, lambda: approvals.row_count == 0)
        assert not any("PROPOSED" in label for label in tree_labels(app))


async def test_a_swap_proposed_from_the_cli_in_another_process_appears_live(make_app):
    """The console hosts; `oneiric swap` in another process goes through the command queue
    and its proposal shows in the approvals pane (and the tree) without any key press."""
    import asyncio
    import os
    import sys

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        env = {**os.environ, "ONEIRIC_OPERATOR": "alice"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "oneiric_core.cli", "--settings", str(app.engine.settings_dir),
            "--state-dir", str(app.engine.state_dir), "swap", "--domain", "adapter", "--key", "cache",
            "--provider", "sqlite", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert "waits for approval" in out.decode()
        approvals = app.main.query_one(ApprovalsTable)
        await until(pilot, lambda: approvals.row_count == 1)
        assert f"{LOGIN} (alice) via cli" in screen_text(app)
        await until(pilot, lambda: any("PROPOSED" in label and "-> sqlite" in label for label in tree_labels(app)))
        assert app.statuses[next(r for r in app.statuses if str(r) == "adapter/cache")].serving == "memory"


async def test_e_writes_the_selection_to_the_settings_file_and_the_watcher_proposes_it(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(pilot)
        await to_cache(pilot)
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, SwapPicker))
        picker = app.screen
        assert "permanent" in str(picker.query_one("#title").render())
        picker.query_one("OptionList").highlighted = next(
            i for i, o in enumerate(picker.options) if o.provider == "sqlite")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        adapters = app.engine.settings_dir / "adapters.yml"
        await until(pilot, lambda: "cache: sqlite" in adapters.read_text())
        text = adapters.read_text()
        assert text.startswith("# Adapters: which provider serves each adapter key.")  # comments kept
        approvals = app.main.query_one(ApprovalsTable)
        await until(pilot, lambda: approvals.row_count == 1)  # the watcher made it a proposal
        edited = app.engine.journal(kinds=["selection-edited"])
        assert edited and edited[-1].actor == "tester" and edited[-1].provider == "sqlite"
        assert app.statuses[app.main.current].serving == "memory"  # manual mode: nothing applied yet


async def test_a_domain_with_hundreds_of_keys_starts_collapsed_and_opens_on_enter(tmp_path):
    """Large domains start closed with their counts (their key nodes are built on first
    open); small ones open as usual; a key in a closed domain can still be selected."""
    from oneiric_core.domains import ComponentRef, Domain
    from oneiric_core.engine import Engine
    from oneiric_tui.app import OneiricApp
    from tests.helpers import demo_copy, many_candidates

    settings = demo_copy(tmp_path)
    (settings / "services.yml").write_text(many_candidates(150))
    (settings / "events.yml").write_text(many_candidates(150))
    app = OneiricApp(Engine(settings, state_dir=tmp_path / "state", actor="tester"), autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: any(label.startswith("services") for label in tree_labels(app)))  # mounted
        tree = app.main.query_one(ComponentTree)
        labels = tree_labels(app)
        services = next(label for label in labels if label.startswith("services"))
        assert "151 keys" in services  # the demo's scheduler plus 150
        assert not any(label.startswith("k000") for label in labels)  # not built yet
        assert any(label.startswith("cache  memory") for label in labels)  # small domains are open
        services_node = next(n for n in tree.root.children if str(n.label).startswith("services"))
        tree.move_cursor(services_node)
        await pilot.press("enter")
        await until(pilot, lambda: any(label.startswith("k149") for label in tree_labels(app)))
        # selecting a key of a domain never opened (the palette does this) opens it first
        assert not any(str(n.label).startswith("k") for n in tree._domains[Domain.EVENT].children)
        tree.select_ref(next(r for r in app.statuses if r.key == "k120" and r.domain == Domain.EVENT))
        await until(pilot, lambda: tree.cursor_node is not None
                    and getattr(tree.cursor_node.data, "ref", None) == ComponentRef(Domain.EVENT, "k120"))
        await until(pilot, lambda: "event/k120" in detail_text(app))


async def test_the_remote_pane_shows_each_source_and_S_syncs_it(tmp_path):
    """Pane 6 on the demo's signed file source: healthy after start, its candidates in the
    tree with their source; a tampered manifest makes `S` report the failure in one sentence,
    the row goes STALE with the error, and the last good entries stay registered."""
    import json

    from oneiric_core.engine import Engine
    from oneiric_tui.app import OneiricApp
    from oneiric_tui.widgets.remote_table import RemoteTable
    from tests.helpers import DEMO, FAST_APP, demo_copy

    settings = demo_copy(tmp_path, fast=False)
    remote = (DEMO / "app.yml").read_text().split("\nremote:", 1)[1]
    (settings / "app.yml").write_text(FAST_APP + "remote:" + remote)
    app = OneiricApp(Engine(settings, state_dir=tmp_path / "state", actor="tester"))
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(pilot)
        table = app.main.query_one(RemoteTable)
        await until(pilot, lambda: table._rows.get("demo") is not None and str(table._rows["demo"][1]) == "+ OK")
        assert table._rows["demo"][3] == "2"
        await to_cache(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: any("memory-remote (remote:demo)" in label for label in tree_labels(app)))
        # tamper with the manifest on disk: the next sync fails verification
        manifest = settings / "manifests" / "demo.json"
        data = json.loads(manifest.read_text())
        data["entries"][0]["priority"] = 99
        manifest.write_text(json.dumps(data))
        await pilot.press("6")
        assert app.main.active_pane() == "remote"
        await pilot.press("S")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: any("sync failed" in n.message and "remote:demo" in n.message
                                       for n in app._notifications))
        await until(pilot, lambda: str(table._rows["demo"][1]) == "~ STALE")
        assert str(table._rows["demo"][4]) != "-"  # the last error is shown
        # z: the whole width for the error, cut with an ellipsis to it, never a scrollbar
        await pilot.press("z")
        await until(pilot, lambda: table.size.width > 100 and table.max_scroll_x == 0
                    and len(str(table._rows["demo"][4])) > 20)
        await pilot.press("z")
        assert "STALE" in screen_text(app)
        assert any("memory-remote (remote:demo)" in label for label in tree_labels(app))  # last good stays
        assert app.engine.journal(kinds=["signature-verification-failed"])


async def test_health_rows_off_screen_are_current_once_scrolled_into_view(tmp_path):
    """The health table redraws only the rows on screen; a row further down shows the newest
    status, latency and trend as soon as it scrolls into view."""
    from oneiric_core.engine import Engine
    from oneiric_tui import format as fmt
    from oneiric_tui.app import OneiricApp
    from tests.helpers import demo_copy, many_candidates

    settings = demo_copy(tmp_path)
    (settings / "services.yml").write_text(many_candidates(200))
    app = OneiricApp(Engine(settings, state_dir=tmp_path / "state", actor="tester"))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.mode == "host" and len(app.statuses) == 208
                    and all(s.state == "ready" for s in app.statuses.values()), timeout=30)
        health = app.main.query_one(HealthTable)
        await until(pilot, lambda: health.row_count == 208)
        assert [str(r) for r in health.refs[:5]] == ["adapter/cache", "adapter/http", "adapter/storage",
                                                     "service/k000", "service/k001"]  # the tree's order
        last = health.refs[-1]
        for _ in range(3):  # new samples for every key, the last row's included
            await app.engine.health.probe_all()
        await pilot.press("3", "G")
        await until(pilot, lambda: health.scroll_y > 0)
        assert len(app.engine.health.track(last).samples) >= 4

        def shows_newest() -> bool:  # the newest figures: the monitor may probe again meanwhile
            track = app.engine.health.track(last)
            want = re.compile(rf"{re.escape(fmt.ms(track.latency_ms))} +"
                              rf"{re.escape(fmt.sparkline([s.latency_ms for s in track.samples], 16))}")
            return any(str(last) in line and want.search(line) for line in screen_text(app).splitlines())

        await until(pilot, shows_newest)


async def test_a_kept_swap_in_client_mode_is_written_once_the_host_applied_it(make_app):
    from tests.helpers import start_host_process

    app = make_app()
    adapters = app.engine.settings_dir / "adapters.yml"
    host = start_host_process(app.engine.settings_dir, app.engine.state_dir)
    try:
        async with app.run_test(size=(120, 40), notifications=True) as pilot:
            await until(pilot, lambda: app.mode == "client")
            await until(pilot, lambda: app.statuses and all(s.state == "ready" for s in app.statuses.values()))
            await _swap_to(pilot, "memory-large", keep=True)
            await pilot.press("y")
            await until(pilot, lambda: app.statuses[app.main.current].serving == "memory-large")
            await until(pilot, lambda: "cache: memory-large" in adapters.read_text())
    finally:
        host.kill()
        host.wait()
