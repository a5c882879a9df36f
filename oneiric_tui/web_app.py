"""The web console's HTTP side: the page, textual-serve's static files, and one WebSocket per
browser tab, each relayed to a console process of its own (textual-serve's `AppService`).

Every request must show the server's token (oneiric_core/web_access.py), in the query or in
the HttpOnly, SameSite=Strict cookie the page sets; anything else gets 403 before a handler
runs. A WebSocket must also come from this server's own page (its Origin is checked), and no
response may be framed, cached or followed by a Referer carrying the token away.

textual-serve's own `Server` is not used: it prints a banner, serves without a token, builds the
page's WebSocket URL from its bind address and starts every tab with one fixed command line.
Its `AppService` (the tab process and its packet protocol), its static files (xterm.js and
textual.js) and its page, less the font fetched from Google (web_page.html), are. The pin in
pyproject.toml is exact because `TabService` extends `AppService.run` and `_stop` reads its
process.
"""

from __future__ import annotations

import asyncio
import errno
import html
import json
import shlex
import socket as socketlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import textual_serve
from aiohttp import WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.download_manager import DownloadManager

from oneiric_core.errors import OneiricError
from oneiric_core.web_access import AccessToken, BindAddress, new_session_id

STATICS = Path(str(textual_serve.__file__)).parent / "static"  # xterm.js, textual.js, the font
PAGE = Path(__file__).with_name("web_page.html")
TITLE = "Oneiric Console"
FORBIDDEN = "403 Forbidden: open the URL with the token that 'oneiric console --web' printed.\n"
CROSS_ORIGIN = "403 Forbidden: the console's WebSocket only answers its own page.\n"
STOP_SESSION_S = 10.0  # how long a tab's console gets to quit before it is killed
MAX_CELLS = 1000  # a browser asking for a wider or taller terminal gets this many
MAX_SESSIONS = 20  # each session is a console process (~100 MB): past this, a new tab is refused
TOO_MANY = f"503: {MAX_SESSIONS} web sessions are open already; close one first.\n"
# Sent with every response: nothing is cached, no Referer carries the token away, no other
# site may frame the page (a framed page would carry the cookie to a click it did not mean).
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "frame-ancestors 'none'",
}


@dataclass(frozen=True, slots=True)
class WebPlan:
    """What one `oneiric console --web` serves: which settings and state, whether sessions act."""

    settings: Path
    state_dir: Path
    operate: bool

    def tab_command(self, session: str) -> str:
        """The shell command textual-serve starts for a session (it runs commands through the shell)."""
        argv = [sys.executable, "-m", "oneiric_tui.web_tab", "--settings", str(self.settings),
                "--state-dir", str(self.state_dir), "--session", session]
        if self.operate:
            argv.append("--operate")
        return "exec " + shlex.join(argv)


class TabService(AppService):
    """textual-serve's AppService, which also closes the browser's WebSocket when the tab's
    console process ends for any reason (AppService closes it only on a clean exit)."""

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            await self.remote_close()


class WebConsole:
    """The aiohttp application: the page, the static files, one WebSocket per session."""

    def __init__(self, plan: WebPlan, token: AccessToken, *, say: Callable[[str], None], port: int) -> None:
        self.plan = plan
        self.token = token
        self.say = say
        self.cookie = f"oneiric_web_{port}"  # cookies are per host, not per port: one name per server
        self.downloads = DownloadManager()
        self.seen: set[str] = set()
        self.live: dict[str, TabService] = {}

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.add_routes([
            web.get("/", self.page),
            web.get("/ws", self.websocket),
            web.static("/static", STATICS),
        ])
        app.on_response_prepare.append(self._headers)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        """The token, before anything else is looked at; then the WebSocket's origin."""
        if not self.token.matches(request.query.get("token") or request.cookies.get(self.cookie)):
            return web.Response(status=403, text=FORBIDDEN)
        if request.path == "/ws" and not same_origin(request):
            return web.Response(status=403, text=CROSS_ORIGIN)
        return await handler(request)

    async def _headers(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(HEADERS)

    async def page(self, request: web.Request) -> web.Response:
        scheme = "wss" if request.secure else "ws"
        fields = {"title": TITLE, "static": "/static/", "ws_url": f"{scheme}://{request.host}/ws",
                  "font_size": str(_cells(request.query.get("fontsize"), 16, 48))}
        text = PAGE.read_text()
        for name, value in fields.items():
            text = text.replace("{{" + name + "}}", html.escape(value))
        response = web.Response(text=text, content_type="text/html")
        response.set_cookie(self.cookie, self.token.value, httponly=True, samesite="Strict", path="/")
        return response

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        if len(self.live) >= MAX_SESSIONS:
            return web.Response(status=503, text=TOO_MANY)
        socket = web.WebSocketResponse(heartbeat=15)
        width = _cells(request.query.get("width"), 80, MAX_CELLS)
        height = _cells(request.query.get("height"), 24, MAX_CELLS)
        session = new_session_id(self.seen)
        self.seen.add(session)
        await socket.prepare(request)

        async def close() -> None:
            await socket.close()

        service = TabService(self.plan.tab_command(session), write_bytes=socket.send_bytes,
                             write_str=socket.send_str, close=close, download_manager=self.downloads)
        self.live[session] = service
        self.say(f"web session {session} opened (from {request.remote or 'unknown'})")
        try:
            await service.start(width, height)
            await _relay(socket, service)
        except asyncio.CancelledError:
            pass
        finally:
            await _stop(service)
            self.live.pop(session, None)
            if not socket.closed:
                await socket.close()
            self.say(f"web session {session} closed")
        return socket

    async def close_sessions(self) -> None:
        """Ask every tab's console to quit (the server is stopping) and wait for them."""
        await asyncio.gather(*(_stop(s) for s in list(self.live.values())), return_exceptions=True)


def same_origin(request: web.Request) -> bool:
    """A browser's WebSocket names the page that opened it in `Origin`: it must be this server's
    (a client that sends none, not a browser, has shown the token and is let through)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == request.host.lower()


async def _relay(socket: web.WebSocketResponse, service: AppService) -> None:
    """What the browser sends, to the tab's console: key presses, resizes, focus; pings answered."""
    async for message in socket:
        if message.type != WSMsgType.TEXT:
            continue
        try:
            envelope = json.loads(message.data)
            kind, data = envelope[0], (envelope[1] if len(envelope) > 1 else None)
        except (ValueError, TypeError, IndexError, KeyError):
            continue  # not textual.js speaking: ignore it
        if kind == "stdin" and isinstance(data, str):
            await service.send_bytes(data.encode("utf-8"))
        elif kind == "resize" and isinstance(data, dict):
            await service.set_terminal_size(_cells(data.get("width"), 80, MAX_CELLS),
                                            _cells(data.get("height"), 24, MAX_CELLS))
        elif kind == "ping":
            await socket.send_json(["pong", data])
        elif kind == "blur":
            await service.blur()
        elif kind == "focus":
            await service.focus()


async def _stop(service: AppService) -> None:
    """Ask the tab's console to quit and wait until its process has exited (its engine closed);
    kill it if that takes longer than STOP_SESSION_S."""
    process = service._process  # textual-serve keeps it private: hence the exact pin (pyproject)

    async def quit_and_wait() -> None:
        await service.stop()
        if process is not None:
            await process.wait()

    try:
        await asyncio.wait_for(quit_and_wait(), STOP_SESSION_S)
    except TimeoutError:
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()


def _cells(value: object, default: int, most: int) -> int:
    try:
        number = int(str(value))
    except ValueError:
        return default
    return min(max(number, 1), most)


def bind_socket(address: BindAddress) -> socketlib.socket:
    """The listening socket, bound now so that a taken port fails in one sentence before any
    provider starts (the server hosts only once it knows it can serve)."""
    family = socketlib.AF_INET6 if ":" in address.host else socketlib.AF_INET
    sock = socketlib.socket(family, socketlib.SOCK_STREAM)
    sock.setsockopt(socketlib.SOL_SOCKET, socketlib.SO_REUSEADDR, 1)
    try:
        sock.bind((address.host, address.port))
    except OSError as exc:
        sock.close()
        raise OneiricError(f"Cannot listen on {address.host}:{address.port}: {exc.strerror or exc}"
                           + (" (choose another port with --bind, or 0 for any free one)."
                              if exc.errno == errno.EADDRINUSE else ".")) from exc
    return sock


@dataclass
class Serving:
    """The web console answering on its socket, until `close`."""

    console: WebConsole
    runner: web.AppRunner
    port: int

    async def close(self) -> None:
        """Every tab's console quits first, then the server stops listening."""
        await self.console.close_sessions()
        await self.runner.cleanup()


async def start_serving(sock: socketlib.socket, plan: WebPlan, token: AccessToken,
                        say: Callable[[str], None]) -> Serving:
    """Answer on `sock` (bound by bind_socket); `say` gets a line per session opened and closed."""
    port = sock.getsockname()[1]
    console = WebConsole(plan, token, say=say, port=port)
    runner = web.AppRunner(console.application(), handle_signals=False, access_log=None, shutdown_timeout=5)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return Serving(console, runner, port)


__all__ = ["Serving", "TabService", "WebConsole", "WebPlan", "bind_socket", "same_origin", "start_serving"]
