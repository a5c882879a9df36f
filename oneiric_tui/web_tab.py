"""One browser tab's console: `python -m oneiric_tui.web_tab`, started by the web server
(web_serve.py) for each web session, never by hand.

The server hosts the state directory (or stands by for the process that does), so this console
is only ever a client (`may_host=False`): it shows the host's state from the store and sends
actions over the host's socket, and when that host goes it waits for the next one instead of
taking over. It runs as the server's OS user, so the host's peer-credential check sees that
user; the session's id goes on as the display name (ONEIRIC_OPERATOR), so the journal names
the actor "alice (web session 3f2a)".

Read-only unless the server was started with `--web-operate`: the engine and its Operator are
read-only (Operator._request raises before anything is sent, Engine._writable before a settings
file is written), so the refusal is this client refusing to send. It is enforced all the same:
the browser can only send key presses and resizes to this process (textual-serve's protocol),
never a request to the host, and the command line that made this process read-only is the
server's. The host itself cannot tell this process from the same user's terminal (both reach
it as the same OS user, the one thing access.py's rights are granted to).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from oneiric_core.engine import Engine
from oneiric_core.errors import OneiricError
from oneiric_core.principal import DISPLAY_ENV
from oneiric_core.web_access import session_display

READ_ONLY_REASON = "this web view was started without --web-operate"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m oneiric_tui.web_tab",
                                     description="one browser tab's console (started by 'oneiric console --web')")
    parser.add_argument("--settings", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--session", required=True, help="the web session's id, shown in the journal")
    parser.add_argument("--operate", action="store_true", help="allow actions (the server's --web-operate)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ[DISPLAY_ENV] = session_display(args.session, os.environ.get(DISPLAY_ENV))
    from .app import OneiricApp

    try:
        engine = Engine(args.settings, state_dir=args.state_dir, read_only=None if args.operate else True)
    except OneiricError as exc:
        print(f"oneiric: {exc}", file=sys.stderr)
        return exc.exit_code
    app = OneiricApp(engine, read_only=not args.operate, may_host=False,
                     read_only_reason=None if args.operate else READ_ONLY_REASON)
    app.run()
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
