"""Who is acting, as something verified rather than claimed.

Every rule that depends on who acts (the two-person rule, expiry of one's own proposal, the
rights of app.yml, read-only) compares `Principal`s. A principal is filled by whatever
authenticated the caller: the kernel's peer credentials of a Unix socket (`from_uid`), this
process's own account (`of_process`), an SSH signature checked against an `allowed_signers`
file (`from_ssh_key`), and later a database role on a shared store. The rules only ever look
at `kind` and `name`, so a new authentication source needs no change to them.

`ONEIRIC_OPERATOR` is a *display name*: it is shown next to the principal ("alice (ops
shared)") and never changes what the rules compare. A display name that could pass for
another operator's name (mixed scripts, letters that look like Latin ones) is refused.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import UsageError

DISPLAY_ENV = "ONEIRIC_OPERATOR"
MAX_DISPLAY = 64

# Kinds of authentication, in the order of trust they carry. `internal` is the engine's own
# code acting (the settings watcher, `approvals: auto`): never a person.
OS_USER, SSH_KEY, DB_ROLE, INTERNAL = "os-user", "ssh-key", "db-role", "internal"
NAMED = "named"  # a name the engine's own caller passed (library use, tests): taken on its word


def fold(name: str) -> str:
    """The form names are compared in: NFKC, then case-folded, so `Alice`, `ALICE` and a
    full-width `Ａｌｉｃｅ` are one operator."""
    return unicodedata.normalize("NFKC", name).casefold().strip()


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified identity. `name` is the login, key principal or role; `uid` and `groups` are
    filled where the OS vouched for them; `display` is the caller's own words, shown only."""

    kind: str
    name: str
    uid: int | None = None
    groups: frozenset[str] = field(default_factory=frozenset)
    display: str | None = None
    via: str | None = None  # how it was verified: "peer credentials", "ssh key SHA256:... via ops"
    # For a key's principal: the OS account the signed request came through (the default
    # rights follow that account; app.yml can grant rights to the key's name itself).
    account: Principal | None = field(default=None, compare=False)

    @property
    def id(self) -> str:
        """What the rules compare and the store records: `os-user:alice`, `ssh-key:alice`."""
        return f"{self.kind}:{fold(self.name)}"

    @property
    def label(self) -> str:
        """How the journal and every front door name this principal."""
        if self.display and fold(self.display) != fold(self.name):
            return f"{self.name} ({self.display})"
        return self.name

    def same_as(self, other: Principal | str | None) -> bool:
        if other is None:
            return False
        return self.id == (other.id if isinstance(other, Principal) else other)

    def with_display(self, display: str | None) -> Principal:
        return Principal(self.kind, self.name, self.uid, self.groups, check_display(display), self.via, self.account)

    def __str__(self) -> str:
        return self.label

    # -- where principals come from ------------------------------------------------------------
    @classmethod
    def from_uid(cls, uid: int, gid: int | None = None, *, via: str = "peer credentials",
                 display: str | None = None) -> Principal:
        """The account the kernel says a peer runs as (SO_PEERCRED), or this process's."""
        name, groups = account(uid, gid)
        return cls(OS_USER, name, uid, groups, check_display(display), via)

    @classmethod
    def of_process(cls, env: Mapping[str, str] | None = None) -> Principal:
        """This process's own account; `ONEIRIC_OPERATOR` adds a display name. A display name
        that would impersonate someone is dropped here (the process still runs as itself); the
        front doors that take it from a user check it with `check_display` and say why."""
        environ: Mapping[str, str] = os.environ if env is None else env
        try:
            display = check_display(environ.get(DISPLAY_ENV))
        except UsageError:
            display = None
        return cls.from_uid(os.getuid(), os.getgid(), via="this process", display=display)

    @classmethod
    def from_ssh_key(cls, name: str, fingerprint: str, *, os_principal: Principal | None = None) -> Principal:
        """The principal an `allowed_signers` file gives the key that signed an approval."""
        via = f"ssh key {fingerprint}" + (f" via {os_principal.name}" if os_principal else "")
        return cls(SSH_KEY, name, None, frozenset(), None, via, os_principal)

    @classmethod
    def named(cls, text: str) -> Principal:
        """A principal the engine's own caller vouches for by name (library code, runbooks,
        tests): `alice@10.0.0.7` is alice, as before principals were verified. Front doors
        never make these from what a user typed."""
        name = text.split("@", 1)[0].strip() or text
        return cls(NAMED, name, display=text if text != name else None, via="named by the caller")

    @classmethod
    def internal(cls, name: str) -> Principal:
        """The engine acting on its own policy (`policy:auto`, `settings-watcher`)."""
        return cls(INTERNAL, name, via="engine policy")


def account(uid: int, gid: int | None = None) -> tuple[str, frozenset[str]]:
    """Login name and group names of `uid` (from the passwd and group databases). An account
    with no passwd entry (some containers) is named `uid<N>`: still one distinct principal."""
    import grp
    import pwd

    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        name, primary = f"uid{uid}", gid
    else:
        name, primary = entry.pw_name, entry.pw_gid if gid is None else gid
    gids: set[int] = {primary} if primary is not None else set()
    try:
        gids.update(os.getgrouplist(name, primary if primary is not None else 0))
    except (OSError, KeyError):
        pass
    names = set()
    for g in gids:
        try:
            names.add(grp.getgrgid(g).gr_name)
        except KeyError:
            names.add(f"gid{g}")
    return name, frozenset(names)


# -- display names ----------------------------------------------------------------------------------
# Letters of other scripts that are drawn like Latin ones (a subset of Unicode's confusables.txt
# covering the Cyrillic, Greek and Armenian look-alikes of a-z): a display name holding one of
# them could pass for a Latin name, so it is refused.
_LOOKALIKES = set(
    "аеорсухіјѕԁԛԝүһӏɡАВЕЅІЈКМНОРСТХУԜ"  # Cyrillic
    "αβεικνορτυχοΑΒΕΖΗΙΚΜΝΟΡΤΥΧ"  # Greek
    "օսոհզ"  # Armenian
)


def _script(char: str) -> str | None:
    """The script of a letter, from its Unicode name (`CYRILLIC SMALL LETTER A` -> CYRILLIC)."""
    if not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0] if name else "UNKNOWN"


def check_display(display: str | None) -> str | None:
    """A display name fit to show next to a principal, or None; raises UsageError (one
    sentence) for one that is too long, holds control or invisible characters, mixes scripts,
    or uses letters that look like Latin ones."""
    if display is None:
        return None
    text = unicodedata.normalize("NFKC", display).strip()
    if not text:
        return None
    if len(text) > MAX_DISPLAY:
        raise UsageError(f"{DISPLAY_ENV} is longer than {MAX_DISPLAY} characters; choose a shorter display name.")
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"):
            raise UsageError(f"{DISPLAY_ENV} holds the invisible or control character U+{ord(char):04X}; "
                             "choose a display name of plain letters.")
        if char in _LOOKALIKES:
            raise UsageError(f"{DISPLAY_ENV} holds '{char}' ({unicodedata.name(char, f'U+{ord(char):04X}').lower()}), "
                             "which looks like a Latin letter; choose a display name that cannot pass for another.")
    scripts = {s for s in map(_script, text) if s is not None}
    if len(scripts) > 1:
        raise UsageError(f"{DISPLAY_ENV} mixes scripts ({', '.join(sorted(s.lower() for s in scripts))}); "
                         "choose a display name in one script.")
    return text


__all__ = ["DISPLAY_ENV", "INTERNAL", "NAMED", "OS_USER", "SSH_KEY", "Principal", "account", "check_display", "fold"]
