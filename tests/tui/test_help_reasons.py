"""Help that teaches (issue 15 point 7): each disabled key is shown with its real reason, as
the screen's check says it (read-only, a client that may not change, nothing to act on), and
`/`, `S`, `ctrl+p` are listed beside the console's own keys."""

from __future__ import annotations

from oneiric_tui.screens.help import HelpScreen, help_sections
from tests.tui.conftest import ready, until
from tests.tui.test_console import screen_text


def rows_of(app) -> dict[str, list[str]]:
    """key -> [text, reason?] of the main view's help."""
    return {key: rest for s in help_sections(app, app.main) for key, *rest in s.keys}


async def test_a_read_only_client_console_shows_read_only_beside_each_change(make_app):
    from tests.helpers import start_host_process

    app = make_app(read_only=True, read_only_reason="this console was started with --read-only")
    host = start_host_process(app.engine.settings_dir, app.engine.state_dir)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.mode == "client" and len(app.statuses) == 8)
            await pilot.pause(0.2)
            rows = rows_of(app)
            reason = "read-only (this console was started with --read-only)"
            for key in ("s", "p/d/r" if "p/d/r" in rows else "p", "S", "y", "n"):
                assert rows[key][1:] == [reason], (key, rows[key])
            assert rows["h"][1:] == []  # a probe changes nothing: the host runs it for a client
            for key in ("/", "S", "^p", ":", "?"):
                assert key in rows, key
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen))
            text = screen_text(app)
            assert f"disabled: {reason}" in text
            assert "Cursor to parent" not in text and "shift+left" not in text
    finally:
        host.kill()
        host.wait()


async def test_approve_with_nothing_to_approve_says_so_in_the_help_and_when_pressed(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(pilot)
        rows = rows_of(app)
        assert rows["y"][1:] == ["no pending proposal"] and rows["n"][1:] == ["no pending proposal"]
        assert rows["p"][1:] == []  # the host may change: pause works
        await pilot.press("5", "y")
        await until(pilot, lambda: "y would approve: no pending proposal." in
                    [n.message for n in app._notifications])
        # once a proposal is pending the reason goes
        await app.engine.request_swap("adapter", "cache", "sqlite", actor="alice", source="cli")
        await until(pilot, lambda: rows_of(app)["y"][1:] == [])
