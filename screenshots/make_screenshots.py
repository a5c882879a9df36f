"""Regenerate the SVG screenshots of the console's main views from the demo settings.

Each session runs the real console (`OneiricApp`, host mode, actor "operator") headless
with `App.run_test(size=...)` on a private copy of `settings/` in a temporary directory
(state there too), drives it with a Pilot and writes SVGs with `App.save_screenshot`:

  main-120x40.svg          the main view once the engine hosts and every component is
                           ready, adapter/cache highlighted in the tree
  main-80x24.svg           the same in the narrow layout
  swap-picker-120x40.svg   `s` on adapter/cache
  approval-120x40.svg      redis chosen in the picker (enter): the approval dialog
  rollback-120x40.svg      approved with `y`; redis fails its health gate (nothing listens
                           on the demo's port 6399), the swap rolls back and the swap log
                           shows the swap-rollback event
  help-120x40.svg          `?`
  incident-120x40.svg      `esc`, then `i` and the Hot-swap failed runbook on adapter/cache
                           after that rollback: the walk runs its checks (last swap, the
                           health gate's error, the provider's settings, the backend) and
                           stops at the question only the operator can answer

The sessions run from inside the temporary directory with a relative settings path, so
the explain pane shows `settings/adapters.yml` rather than a temporary path. COLUMNS is
set to the terminal width so Rich wraps swap-log lines as on a real terminal (headless it
would wrap them at 80). Process ids, times and latencies are real, so the files change on
every run. Toasts are off (the run_test default): they would cover the swap log.

Usage:  .venv/bin/python screenshots/make_screenshots.py [--out DIR]   (default: this directory)
"""

from __future__ import annotations

import os

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")  # read when textual is imported

import argparse  # noqa: E402
import asyncio  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from oneiric_core.engine import Engine  # noqa: E402
from oneiric_tui.app import OneiricApp  # noqa: E402
from oneiric_tui.screens.approval_dialog import ApprovalDialog  # noqa: E402
from oneiric_tui.screens.help import HelpScreen  # noqa: E402
from oneiric_tui.screens.incident import IncidentScreen  # noqa: E402
from oneiric_tui.screens.swap_picker import SwapPicker  # noqa: E402
from oneiric_tui.widgets.component_tree import ComponentTree  # noqa: E402
from oneiric_tui.widgets.swap_log import SwapLog  # noqa: E402

FILES = ("main-120x40.svg", "main-80x24.svg", "swap-picker-120x40.svg", "approval-120x40.svg",
         "rollback-120x40.svg", "help-120x40.svg", "incident-120x40.svg")
TIMEOUT_S = 20.0


async def until(pilot, predicate: Callable[[], bool], what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        await pilot.pause(0.05)


def make_app(workdir: Path, size: tuple[int, int]) -> OneiricApp:
    os.environ["COLUMNS"], os.environ["LINES"] = str(size[0]), str(size[1])  # read by App()'s Rich console
    engine = Engine("settings", state_dir=workdir / "state" / f"{size[0]}x{size[1]}", actor="operator")
    return OneiricApp(engine)


async def main_view_ready(pilot) -> None:
    """Host mode, every component ready, adapter/cache highlighted, quiet for a moment."""
    app: OneiricApp = pilot.app
    await until(pilot, lambda: app.mode == "host" and bool(app.statuses)
                and all(s.state == "ready" for s in app.statuses.values()), "the engine to be ready")
    tree = app.main.query_one(ComponentTree)
    tree.cursor_line = 1
    await until(pilot, lambda: app.main.current is not None and str(app.main.current) == "adapter/cache",
                "adapter/cache to be highlighted")
    await pilot.pause(0.3)


def save(app: OneiricApp, out: Path, name: str, written: list[Path]) -> None:
    app.save_screenshot(name, str(out))
    written.append(out / name)


async def wide_session(workdir: Path, out: Path, written: list[Path]) -> None:
    size = (120, 40)
    app = make_app(workdir, size)
    async with app.run_test(size=size) as pilot:
        await main_view_ready(pilot)
        save(app, out, "main-120x40.svg", written)

        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SwapPicker), "the swap picker")
        await pilot.pause(0.2)
        save(app, out, "swap-picker-120x40.svg", written)

        picker = app.screen
        redis = next(i for i, option in enumerate(picker.options) if option.provider == "redis")
        picker.query_one("#candidates").highlighted = redis
        await pilot.pause(0.1)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ApprovalDialog), "the approval dialog")
        await pilot.pause(0.2)
        save(app, out, "approval-120x40.svg", written)

        await pilot.press("y")
        log = app.main.query_one(SwapLog)
        await until(pilot, lambda: any(e.kind == "swap-rollback" for e in log.visible_events()),
                    "the swap-rollback event in the swap log")
        await until(pilot, lambda: not app.swapping and app.screen is app.main, "the swap to settle")
        await pilot.pause(0.4)
        save(app, out, "rollback-120x40.svg", written)

        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        await pilot.pause(0.2)
        save(app, out, "help-120x40.svg", written)

        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main, "the main view")
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, IncidentScreen), "the incident screen")
        screen = app.screen
        choices = screen.query_one("#inc-choices")
        await until(pilot, lambda: choices.option_count > 0, "the runbook picker")
        wanted = next(i for i in range(choices.option_count)
                      if choices.get_option_at_index(i).id == "tree:hot-swap-failed")
        choices.highlighted = wanted
        await pilot.press("enter")
        await until(pilot, lambda: screen.walker is not None and not screen.busy
                    and screen.walker.node.kind == "question", "the walk to reach a question")
        await pilot.pause(0.3)
        save(app, out, "incident-120x40.svg", written)


async def narrow_session(workdir: Path, out: Path, written: list[Path]) -> None:
    size = (80, 24)
    app = make_app(workdir, size)
    async with app.run_test(size=size) as pilot:
        await main_view_ready(pilot)
        save(app, out, "main-80x24.svg", written)


async def run(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    cwd = Path.cwd()
    workdir = Path(tempfile.mkdtemp(prefix="oneiric-screenshots-"))
    try:
        shutil.copytree(REPO / "settings", workdir / "settings")
        os.chdir(workdir)
        await wide_session(workdir, out, written)
        await narrow_session(workdir, out, written)
    finally:
        os.chdir(cwd)
        shutil.rmtree(workdir, ignore_errors=True)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help=f"where to write the SVGs (default {HERE})")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    written = asyncio.run(run(out))
    missing = [name for name in FILES if not (out / name).is_file()]
    for path in written:
        print(f"wrote {path}")
    if missing:
        print(f"missing: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
