"""`oneiric incident message ID --kind KIND [--format F] [--send]`: the incident's own words,
ready to paste or posted to its severity's webhook (runbooks/messages.py)."""

from __future__ import annotations

from typing import Any

from ..errors import ExitCode, ReadOnlyError
from .output import print_json, say


def cmd_message(engine: Any, args: Any) -> int:
    from ..runbooks import messages
    from ..runbooks.incidents import Incidents

    incidents = Incidents(engine)
    message = messages.compose(incidents, args.id, args.kind, args.message_format)
    if engine.read_only:
        if args.send:
            raise ReadOnlyError("Read-only: sending a message is refused (it goes on the incident's timeline).")
        delivered = None
    elif args.send:
        delivered = messages.send(incidents, message, actor=engine.actor)
    else:
        messages.record(incidents, message, actor=engine.actor)
        delivered = None
    if args.message_format == "json":
        print_json({**message.to_dict(), "delivered": delivered})
    else:
        say(message.text)
    if delivered is not None:
        say(f"{'sent' if delivered.startswith('posted') else 'oneiric: not sent'}: {delivered}",
            err=not delivered.startswith("posted"))
        return ExitCode.OK if delivered.startswith("posted") else ExitCode.ERROR
    return ExitCode.OK
