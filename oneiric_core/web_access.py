"""Who may reach the console's web view (`oneiric console --web`): the bind rule, the access
token and the name each browser session acts under.

* **Bind**: loopback (127.0.0.1, port chosen by the OS) unless `--bind` names another
  address. A non-loopback address is never a default and never inferred: it has to be typed,
  and the server then warns that the page (and its token) cross the network in plain HTTP.
* **Token**: 32 random bytes, in the URL the server prints. Every request must carry it,
  in the query or in the cookie the first page sets; the comparison runs in constant time
  (`hmac.compare_digest`), so timing tells nothing about how much of a guess was right.
* **Sessions**: each browser tab is one console process acting as the server's OS user; the
  session's short id goes on as the display name ("alice (web session 3f2a)"), so the journal
  tells the sessions apart while the rules keep comparing the verified OS user (principal.py).

No part of this module knows HTTP or Textual: the web server (oneiric_tui/web_serve.py) asks it.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Container
from dataclasses import dataclass

from .errors import UsageError
from .principal import MAX_DISPLAY, check_display

DEFAULT_HOST = "127.0.0.1"
TOKEN_BYTES = 32
SESSION_HEX = 4  # "3f2a": short enough to read out, unique within one server (checked)
LOOPBACK_NAMES = frozenset({"localhost"})


@dataclass(frozen=True, slots=True)
class BindAddress:
    """Where the web server listens. `port` 0 means "a free port, chosen when binding"."""

    host: str
    port: int

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def url(self, port: int | None = None) -> str:
        """The base URL a browser on this machine opens for this address (bound `port`)."""
        host = self.host
        if host in ("0.0.0.0", ""):
            host = DEFAULT_HOST  # listening everywhere: this machine reaches it on loopback
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port if port is None else port}"


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine only: `localhost`, 127.0.0.0/8 or ::1."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # another name: it resolves to whatever DNS says, so it is not assumed local


def parse_bind(text: str | None) -> BindAddress:
    """`--bind HOST:PORT` (or `PORT`, or `[::1]:PORT`); None is the default, loopback on a
    free port. A bad value is a UsageError in one sentence."""
    if text is None:
        return BindAddress(DEFAULT_HOST, 0)
    raw = text.strip()
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise UsageError(f"--bind {text!r} is not of the form [IPV6]:PORT, e.g. [::1]:8080.")
        port_text = rest[1:]
    elif raw.count(":") == 1:
        host, port_text = raw.split(":")
    elif raw.isdigit():
        host, port_text = DEFAULT_HOST, raw
    else:
        raise UsageError(f"--bind {text!r} is not of the form HOST:PORT, e.g. 127.0.0.1:8080.")
    host = host or DEFAULT_HOST
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise UsageError(f"--bind {text!r} has no port between 0 and 65535 (0: any free port).")
    return BindAddress(host, int(port_text))


def exposure_warning(bind: BindAddress) -> str | None:
    """The one-line warning a non-loopback bind gets, or None for loopback."""
    if bind.loopback:
        return None
    return (f"warning: serving on {bind.host}, reachable from other machines, in plain HTTP: the URL's token "
            "travels unencrypted and anyone holding it acts as you; prefer the loopback default and an SSH "
            "tunnel (ssh -L).")


class AccessToken:
    """The secret of one server run. `str()` is never used for it: only `value` and `matches`."""

    def __init__(self, value: str | None = None) -> None:
        self.value = value or secrets.token_urlsafe(TOKEN_BYTES)

    def matches(self, candidate: str | None) -> bool:
        """Constant-time comparison; a missing candidate never matches."""
        if not candidate:
            return False
        return hmac.compare_digest(candidate.encode("utf-8", "surrogateescape"), self.value.encode())

    def __repr__(self) -> str:  # never leak it into a log line or a traceback
        return "AccessToken(...)"


def new_session_id(taken: Container[str]) -> str:
    """A short hex id not in `taken` (the sessions this server has had): four digits, longer
    once four-digit ids keep colliding (a server that has had tens of thousands of sessions)."""
    digits = SESSION_HEX
    while True:
        for _ in range(32):
            session = secrets.token_hex(digits // 2)
            if session not in taken:
                return session
        digits += 2


def session_display(session: str, display: str | None = None) -> str:
    """The display name a web session's console acts under: "web session 3f2a", after the
    server user's own display name if it has one ("ops desk, web session 3f2a")."""
    own = f"web session {session}"
    try:
        base = check_display(display)
    except UsageError:  # one that could impersonate is dropped, as Principal.of_process drops it
        base = None
    if base:
        combined = f"{base}, {own}"
        return combined if len(combined) <= MAX_DISPLAY else own
    return own


__all__ = ["AccessToken", "BindAddress", "exposure_warning", "is_loopback", "new_session_id", "parse_bind",
           "session_display"]
