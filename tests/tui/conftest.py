"""Fixtures for console tests: a real engine on a private copy of the demo, driven by Pilot."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from oneiric_core.engine import Engine
from oneiric_tui.app import OneiricApp
from tests.helpers import demo_copy


@pytest.fixture
def make_app(tmp_path) -> Callable[..., OneiricApp]:
    settings = demo_copy(tmp_path)

    def make(*, read_only: bool = False, autostart: bool = True, **options: object) -> OneiricApp:
        """`options` go to OneiricApp (may_host, read_only_reason)."""
        engine = Engine(settings, state_dir=tmp_path / "state", actor="tester", read_only=read_only or None)
        return OneiricApp(engine, read_only=read_only, autostart=autostart, **options)  # type: ignore[arg-type]

    return make


async def until(pilot, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (letting the app run) until `predicate()` holds; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        await pilot.pause(0.05)


async def ready(pilot) -> OneiricApp:
    app = pilot.app
    await until(pilot, lambda: app.mode == "host" and len(app.statuses) == 8
                and all(s.state == "ready" for s in app.statuses.values()))
    await pilot.pause(0.2)
    return app
