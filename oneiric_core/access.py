"""Rights: who may view, operate, propose and approve, by OS user and group (app.yml `access`).

The host checks a right for every request it receives (the caller's principal comes from the
kernel, principal.py), and a process acting on its own state directory checks its own. The
default needs no configuration and matches how Unix already guards the files: the owner of
the state directory and the members of its group may act, nobody else may. The owner holds
every right whatever app.yml says, because it owns the store file itself: denying it a right
in the console would be a promise the file system does not keep.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from .errors import ExitCode, OneiricError
from .principal import DB_ROLE, INTERNAL, NAMED, OS_USER, SSH_KEY, Principal, fold

# The database roles of a fleet store (store/pg_migrations.py) that hold rights by default.
DB_OPERATORS = frozenset({"oneiric_operator", "oneiric_host"})
DB_VIEWERS = DB_OPERATORS | {"oneiric_viewer"}


class Right(StrEnum):
    VIEW = "view"  # read what the host serves (probes that change nothing included)
    OPERATE = "operate"  # pause, drain, resume, probe, sync, reload
    PROPOSE = "propose"  # ask for a swap
    APPROVE = "approve"  # approve or reject a proposal


class Forbidden(OneiricError):
    """A principal lacks the right an action needs."""

    exit_code = ExitCode.ERROR


@dataclass(frozen=True, slots=True)
class Grant:
    users: frozenset[str]
    groups: frozenset[str]

    def holds(self, principal: Principal) -> bool:
        return fold(principal.name) in self.users or bool(self.groups & {fold(g) for g in principal.groups})


@dataclass(frozen=True, slots=True)
class StateOwner:
    """Who owns the state directory: the default grant, and the one who always holds every right."""

    uid: int
    gid: int
    user: str
    group: str

    @classmethod
    def of(cls, state_dir: Path) -> StateOwner:
        import grp
        import pwd

        try:
            st = os.stat(state_dir)
        except OSError:  # not created yet: it will be this process's
            uid, gid = os.getuid(), os.getgid()
        else:
            uid, gid = st.st_uid, st.st_gid
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = f"uid{uid}"
        try:
            group = grp.getgrgid(gid).gr_name
        except KeyError:
            group = f"gid{gid}"
        return cls(uid, gid, user, group)


class AccessPolicy:
    """The rights of one state directory, from app.yml `access` (settings.AccessOptions)."""

    def __init__(self, owner: StateOwner, grants: dict[Right, Grant | None] | None = None) -> None:
        self.owner = owner
        self._grants = grants or {}

    @classmethod
    def from_settings(cls, state_dir: Path, options: object | None) -> AccessPolicy:
        grants: dict[Right, Grant | None] = {}
        for right in Right:
            spec = getattr(options, right.value, None) if options is not None else None
            grants[right] = None if spec is None else Grant(
                frozenset(fold(u) for u in spec.users), frozenset(fold(g) for g in spec.groups))
        return cls(StateOwner.of(state_dir), grants)

    def allows(self, principal: Principal, right: Right) -> bool:
        if principal.kind in (NAMED, INTERNAL):
            # Named by this process's own code (library use, the engine's policy): such a
            # principal never comes off the socket, so the process's own account answers.
            principal = Principal.of_process()
        if principal.kind == OS_USER and principal.uid is not None and principal.uid == self.owner.uid:
            return True
        grant = self._grants.get(right)
        if principal.kind == SSH_KEY:
            # A key's principal is named in allowed_signers, not in passwd: app.yml may grant it
            # a right by that name; by default it has the rights of the account it signed from.
            if grant is not None:
                return fold(principal.name) in grant.users
            return principal.account is not None and self.allows(principal.account, right)
        if principal.kind == DB_ROLE:
            # A fleet store's operator, named by the database (store/requests.py): app.yml may
            # grant a right to the role's name; by default the database's roles decide.
            if grant is not None:
                return grant.holds(principal)
            wanted = DB_VIEWERS if right is Right.VIEW else DB_OPERATORS
            return bool(wanted & principal.groups)
        if grant is None:  # the default: the state directory's group
            grant = Grant(frozenset({fold(self.owner.user)}), frozenset({fold(self.owner.group)}))
        return grant.holds(principal)

    def require(self, principal: Principal, right: Right, what: str) -> None:
        """Raise Forbidden, one sentence naming the missing right, unless `principal` holds it."""
        if self.allows(principal, right):
            return
        configured = self._grants.get(right) is not None
        rule = ("app.yml access." + right.value) if configured else \
            f"the default (the owner {self.owner.user} and group {self.owner.group} of the state directory)"
        raise Forbidden(f"{principal.label} may not {what}: that needs the '{right.value}' right, "
                        f"which {rule} does not grant to {principal.name}.")


__all__ = ["AccessPolicy", "Forbidden", "Grant", "Right", "StateOwner"]
