"""`oneiric console --web`: the console in a browser, through textual-serve.

One process serves the page and hosts the state directory, or stands by for the process that
already does and takes over when it goes (oneiric_core/standby_host.py). Each browser tab gets
a console process of its own (`python -m oneiric_tui.web_tab`), which is always a *client* of
that one host: the tabs never start providers, never take the lease, and act through the host's
socket like any other client.

What guards it: loopback unless `--bind` names another address (then a warning), a random
token in the one URL printed (oneiric_core/web_access.py; the HTTP side is web_app.py), every
session acting as the server's OS user with "web session <id>" as its display name (so the
journal says "alice (web session 3f2a)"), and read-only sessions unless `--web-operate`
(how that is enforced: web_tab.py).

textual-serve and aiohttp are the `web` extra: without them `--web` says what to install.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

from oneiric_core.engine import Engine
from oneiric_core.errors import OneiricError, UsageError
from oneiric_core.provider_calls import contain_task_exits
from oneiric_core.standby_host import HostState, StandbyHost
from oneiric_core.web_access import AccessToken, BindAddress, exposure_warning, parse_bind

if TYPE_CHECKING:
    from .web_app import WebPlan

MISSING = ("'oneiric console --web' needs textual-serve, which is not installed here: "
           "pip install 'oneiric-console[web]'.")


def serve(settings: str | Path, *, state_dir: str | Path | None = None, bind: str | None = None,
          operate: bool = False, read_only: bool = False, out: IO[str] | None = None,
          err: IO[str] | None = None) -> int:
    """Serve until SIGINT, SIGTERM or SIGHUP; the exit code. Errors are OneiricError (one sentence)."""
    if operate and read_only:
        raise UsageError("--web-operate lets web sessions act and --read-only refuses every change; choose one.")
    address = parse_bind(bind)
    try:
        from . import web_app
    except ImportError as exc:
        raise OneiricError(MISSING) from exc
    engine = Engine(settings, state_dir=state_dir, read_only=read_only or None)
    try:
        plan = web_app.WebPlan(Path(settings).resolve(), engine.state_dir, operate and not engine.read_only)
        return asyncio.run(_serve(engine, plan, address, out or sys.stdout, err or sys.stderr))
    finally:
        engine.close()


async def _serve(engine: Engine, plan: WebPlan, address: BindAddress, out: IO[str], err: IO[str]) -> int:
    from . import web_app

    def say(line: str) -> None:
        print(line, file=err, flush=True)

    loop = asyncio.get_running_loop()
    contain_task_exits(loop)  # a provider's own task raising SystemExit must not end the server
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stopping.set)
    sock = web_app.bind_socket(address)
    try:
        keeper = StandbyHost(engine, on_change=say)
        host = await keeper.begin()
        try:
            token = AccessToken()
            serving = await web_app.start_serving(sock, plan, token, say)
            try:
                if warning := exposure_warning(address):
                    say(warning)
                print(announce(address.url(serving.port), token, plan, host, engine.principal.name), file=out,
                      flush=True)
                await keeper.keep(stopping)
            finally:
                await serving.close()
        finally:
            await keeper.end()
    finally:
        sock.close()
    return 0


def announce(base: str, token: AccessToken, plan: WebPlan, host: HostState, user: str) -> str:
    """The one line the server prints: the URL, what sessions may do, who hosts."""
    mode = f"sessions act as {user}" if plan.operate else "read-only"
    hosting = f"hosting {plan.state_dir}" if host.hosting else f"attached to the host, {host.detail}"
    return f"Oneiric console on the web: {base}/?token={token.value} ({mode}; {hosting}; Ctrl-C stops)"


__all__ = ["MISSING", "announce", "serve"]
