"""`oneiric console --web` as a browser user meets it: a real server process on a copy of the
demo, real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright), real console
processes behind each tab, the journal read from the real SQLite store.

What a tab shows is read from the xterm.js terminal the page draws into (its screen buffer,
row by row): the page paints text on a canvas, so there is no DOM text to read. An init
script catches the terminal object when textual.js creates it; nothing else on the page
changes.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from oneiric_core.store import StateStore
from tests.helpers import LOGIN, REPO, demo_copy, wait_until

CHROMIUM = Path("/usr/bin/chromium")
START_S = 60.0

# Catches the xterm.js Terminal textual.js assigns to `this.terminal` (a setter on
# Object.prototype that then defines the property as a plain one, as the assignment would have).
CATCH_TERMINAL = """
window.__terminals = [];
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  get() { return undefined; },
  set(value) {
    Object.defineProperty(this, "terminal", {value, writable: true, configurable: true, enumerable: true});
    if (value && value.buffer && value.buffer.active) window.__terminals.push(value);
  },
});
"""
SCREEN_TEXT = """() => {
  const terminal = window.__terminals[window.__terminals.length - 1];
  if (!terminal) return "";
  const buffer = terminal.buffer.active, rows = [];
  for (let y = 0; y < terminal.rows; y++) {
    const line = buffer.getLine(buffer.viewportY + y);
    rows.push(line ? line.translateToString(true) : "");
  }
  return rows.join("\\n");
}"""


@dataclass
class WebServer:
    proc: subprocess.Popen[str]
    url: str
    line: str
    state: Path
    log: Path

    def journal(self, **filters: Any) -> list:
        with StateStore(self.state / "state.sqlite") as store:
            return store.journal(**filters)

    def lease_pid(self) -> int | None:
        return _lease_pid(self.state)

    @property
    def base(self) -> str:
        return self.url.split("?", 1)[0].rstrip("/")


def _env() -> dict[str, str]:
    """Who the server runs as is this test's OS user, with no display name of its own."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("ONEIRIC_SETTINGS", "ONEIRIC_STATE_DIR", "ONEIRIC_OPERATOR", "SSH_CLIENT", "SSH_CONNECTION")
           and not k.startswith("OTEL_")}
    return env


@contextmanager
def web_server(tmp_path: Path, *flags: str) -> Iterator[WebServer]:
    """`oneiric console --web` in a subprocess, until it printed its URL; stopped with SIGTERM
    afterwards, which must end it cleanly: exit 0, the lease released, host-stopped journaled."""
    settings, state, log, said = tmp_path / "settings", tmp_path / "state", tmp_path / "web.err", tmp_path / "web.out"
    if not settings.exists():
        demo_copy(tmp_path)
    with log.open("w") as err, said.open("w") as out:  # files, not pipes: nothing the server says can block it
        proc = subprocess.Popen([sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings),
                                 "--state-dir", str(state), "console", "--web", *flags],
                                cwd=REPO, env=_env(), stdout=out, stderr=err, text=True)

    def first_line() -> str | None:
        text = said.read_text()
        if "\n" in text:
            return text.splitlines()[0]
        return f"(exited with {proc.returncode})" if proc.poll() is not None else None

    try:
        line = wait_until(first_line, "the server to print its URL", timeout=START_S)
        found = re.search(r"http://\S+", line)
        assert found, f"no URL (said {line!r}):\n{log.read_text()}"
        server = WebServer(proc, found.group(0), line, state, log)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"the web server did not stop on SIGTERM:\n{log.read_text()}") from None
            assert code == 0, log.read_text()
    with StateStore(state / "state.sqlite") as store:
        assert store.current_lease() is None, "the server left its lease behind"
        assert store.journal(limit=1)[-1].kind == "host-stopped"
    assert "Traceback" not in log.read_text() + said.read_text(), log.read_text() + said.read_text()
    assert said.read_text() == line + "\n"  # one line, the URL's


def _get(url: str, **headers: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


# -- the token (no browser needed) ---------------------------------------------------------------------

def test_every_request_without_the_token_gets_403(tmp_path: Path) -> None:
    with web_server(tmp_path) as server:
        assert server.url.startswith("http://127.0.0.1:") and "?token=" in server.url
        assert "read-only" in server.line and f"hosting {server.state}" in server.line
        assert server.lease_pid() == server.proc.pid  # the serving process is the host
        for path in ("/", "/?token=", "/?token=not-the-token", "/static/js/textual.js", "/ws"):
            assert _get(server.base + path) == 403, path
        token = server.url.split("token=", 1)[1]
        assert _get(server.base + "/static/js/textual.js", Cookie="oneiric_web_1=" + token) == 403  # another server's
        assert _get(server.url) == 200
        port = server.base.rsplit(":", 1)[1]
        assert _get(server.base + "/static/js/textual.js", Cookie=f"oneiric_web_{port}={token}") == 200

        async def websocket(origin: str) -> int:
            import aiohttp

            async with aiohttp.ClientSession() as session:
                try:
                    async with session.ws_connect(server.url.replace("/?", "/ws?"), headers={"Origin": origin}):
                        return 101
                except aiohttp.WSServerHandshakeError as exc:
                    return exc.status

        # A page of another site cannot drive the console, even with the token in hand.
        assert asyncio.run(websocket("http://evil.example")) == 403


# -- in the browser ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium; .ci/run does).")
    sync_playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev "
                                          "extra has it)").sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


class Tab:
    """One browser tab on the web console."""

    def __init__(self, browser: Any, url: str) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.page.add_init_script(CATCH_TERMINAL)
        self.page.goto(url)

    def text(self) -> str:
        return self.page.evaluate(SCREEN_TEXT)

    def wait_for(self, what: str | Callable[[str], Any], timeout: float = 30.0) -> str:
        """The screen text once `what` (a substring, or a test of the text) holds."""
        test = (lambda text: what in text) if isinstance(what, str) else what
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if test(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"not on the page within {timeout:g}s: {what!r}; the page shows:\n{text}")
            time.sleep(0.1)

    def press(self, key: str) -> None:
        self.page.focus("textarea.xterm-helper-textarea")  # where xterm.js takes the keyboard
        self.page.keyboard.press(key)

    def session(self) -> str:
        """This tab's web session id, from the operator shown in the header."""
        found = re.search(r"operator \S+ \(web session ([0-9a-f]{4})\)", self.text())
        assert found, self.text()
        return found.group(1)

    def close(self) -> None:
        self.page.close()


def _ready(tab: Tab) -> str:
    """Wait for the tree with every demo key, the explain pane on the first one, attached."""
    shown = ("CLIENT attached to pid", "1 Components", "cache  memory", "compress  gzip", "adapter/cache")
    return tab.wait_for(lambda text: all(words in text for words in shown))


def test_a_tab_shows_the_tree_as_a_client_of_the_one_host_and_takes_keys(tmp_path: Path, browser: Any) -> None:
    with web_server(tmp_path) as server:
        first = Tab(browser, server.url)
        text = _ready(first)
        assert f"CLIENT attached to pid {server.proc.pid}" in text
        assert f"operator {LOGIN} (web session " in text and "READ-ONLY" in text
        assert "Help: keys by task" not in text
        first.press("?")
        help_text = first.wait_for("Help: keys by task")
        assert "Move around" in help_text and help_text != text
        # A second tab is another session of the same host: still one host, the server.
        second = Tab(browser, server.url)
        text = _ready(second)
        assert f"CLIENT attached to pid {server.proc.pid}" in text
        assert second.session() != first.session()
        assert server.lease_pid() == server.proc.pid
        first.close()
        second.close()


def test_a_read_only_session_is_refused_and_nothing_is_done(tmp_path: Path, browser: Any) -> None:
    with web_server(tmp_path) as server:
        tab = Tab(browser, server.url)
        _ready(tab)
        before = server.journal(limit=1)[-1].id
        tab.press("p")
        tab.wait_for("read-only: p would pause")  # "adapter/cache (this web view was started ...)"
        # A barrier instead of a sleep: `h` (a probe, allowed read-only) goes the same way after
        # `p`, so once its probe is journaled anything `p` had sent was journaled before it.
        tab.press("h")
        wait_until(lambda: server.journal(after_id=before, kinds=["health-probed"]), "the probe's event")
        assert [e.kind for e in server.journal(after_id=before)] == ["health-probed"]
        assert "PAUSED" not in tab.text()
        tab.close()


def test_with_web_operate_an_action_is_done_and_journaled_as_the_session(tmp_path: Path, browser: Any) -> None:
    with web_server(tmp_path, "--web-operate") as server:
        assert f"sessions act as {LOGIN}" in server.line
        tab = Tab(browser, server.url)
        text = _ready(tab)
        assert "READ-ONLY" not in text
        session = tab.session()
        tab.press("p")
        tab.wait_for("Pause adapter/cache?")
        tab.press("y")
        tab.wait_for("cache  memory  = PAUSED")
        changed = [e for e in server.journal(kinds=["activity-changed"]) if e.key == "cache"]
        assert len(changed) == 1, changed
        assert changed[0].actor == f"{LOGIN} (web session {session})"
        tab.close()


def test_the_server_attaches_to_a_running_host_and_takes_over_when_it_stops(tmp_path: Path, browser: Any) -> None:
    settings, state = demo_copy(tmp_path), tmp_path / "state"
    with (tmp_path / "run.out").open("w") as out:
        run = subprocess.Popen([sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings), "--state-dir",
                                str(state), "run"], cwd=REPO, env=_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: (state / "state.sqlite").exists() and _lease_pid(state) == run.pid
                   and "watcher-started" in (tmp_path / "run.out").read_text(), "oneiric run to host", timeout=60)
        with web_server(tmp_path) as server:
            assert f"attached to the host, pid {run.pid} on " in server.line
            tab = Tab(browser, server.url)
            assert f"CLIENT attached to pid {run.pid}" in _ready(tab)
            run.send_signal(signal.SIGTERM)
            assert run.wait(30) == 0
            wait_until(lambda: server.lease_pid() == server.proc.pid, "the web server to take over", timeout=15)
            # The tab never hosted: it waited, then attached to the server.
            tab.wait_for(f"CLIENT attached to pid {server.proc.pid}", timeout=15)
            assert f"this server hosts {state} now" in server.log.read_text()
            tab.close()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


def _lease_pid(state: Path) -> int | None:
    with StateStore(state / "state.sqlite") as store:
        lease = store.current_lease()
    return lease.pid if lease else None
