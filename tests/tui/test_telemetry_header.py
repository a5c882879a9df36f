"""The console's header says when a configured telemetry exporter fails, and stops saying it."""

from __future__ import annotations

import os

import pytest

from oneiric_core.engine import Engine
from oneiric_tui.app import OneiricApp
from tests.helpers import FAST_APP, demo_copy
from tests.otlp_receiver import Receiver
from tests.tui.conftest import until
from tests.tui.test_safe_text import drawn


def header(app) -> str:
    return drawn(app.main.query_one("#status-bar"))


@pytest.fixture(autouse=True)
def quick_exports(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    for name in ("OTEL_METRIC_EXPORT_INTERVAL", "OTEL_BSP_SCHEDULE_DELAY", "OTEL_BLRP_SCHEDULE_DELAY"):
        monkeypatch.setenv(name, "200")


async def test_the_header_marks_a_failing_exporter_until_it_exports_again(tmp_path) -> None:
    with Receiver() as receiver:
        receiver.answer = 404
        settings = demo_copy(tmp_path)
        (settings / "app.yml").write_text(FAST_APP + f"telemetry:\n  exporter: otlp\n  endpoint: {receiver.url}\n")
        app = OneiricApp(Engine(settings, state_dir=tmp_path / "state", actor="tester"))
        async with app.run_test(size=(200, 40)) as pilot:
            await until(pilot, lambda: "telemetry: export failing" in header(app), timeout=20)
            receiver.answer = 200
            await app.engine._swap_now("adapter", "cache", "sqlite")  # new spans and logs to export
            await until(pilot, lambda: "telemetry" not in header(app), timeout=20)
            assert app.engine.journal(kinds="telemetry-export-recovered")


async def test_a_quiet_exporter_has_no_marker(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(200, 40)) as pilot:
        await until(pilot, lambda: app.mode == "host")
        # the header drawn as host: the marker, were there one, is drawn with it
        await until(pilot, lambda: "HOST" in header(app))
        assert "telemetry" not in header(app)
