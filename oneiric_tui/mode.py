"""What the console is to the state directory right now: the one place its modes are named.

A StrEnum so a mode still reads as its word in the header and in a test's `app.mode ==
"host"`, while the code names every mode it handles (a typo is a NameError, not a mode that
never matches)."""

from __future__ import annotations

from enum import StrEnum


class ConsoleMode(StrEnum):
    STARTING = "starting"  # this console is becoming the host: providers are being activated
    HOST = "host"  # this console hosts: it runs the providers, probes and swaps
    ATTACHING = "attaching"  # another process hosts; this console is connecting to it
    CLIENT = "client"  # another process hosts; this console's actions go to it
    WAITING = "waiting"  # no host, and this console may not become one (--client)
    FAILED = "failed"  # starting as the host failed; the reason is in the header

    @property
    def may_act(self) -> bool:
        """A change can be sent somewhere (this host, or the host it is attached to)."""
        return self in (ConsoleMode.HOST, ConsoleMode.STARTING, ConsoleMode.CLIENT)

    @property
    def hosting(self) -> bool:
        return self in (ConsoleMode.HOST, ConsoleMode.STARTING)
