"""Real OS users for the tests where identity matters (the two-person rule, rights).

`OsUsers` creates a group and users with `groupadd`/`useradd` and removes them afterwards;
it needs root (CI runs as root) and skips, saying why, where it cannot. `run_as` runs the
real CLI entry point in a child process whose kernel credentials are that user's: the
child starts as root, imports the program (the interpreter here lives under /root, which
other users cannot read, so it could not be exec'd as them), then drops to the user's uid,
gid and groups with setgroups/setgid/setuid before it parses a single argument. What the
host sees on its socket (SO_PEERCRED) is therefore the user's uid, exactly as for a user
who started `oneiric` from their own shell.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CliResult

REPO = Path(__file__).resolve().parents[1]

_DROP_AND_RUN = r"""
import importlib, os, pkgutil, sys
import oneiric_core, oneiric_core.cli
for info in pkgutil.walk_packages(oneiric_core.__path__, "oneiric_core."):
    importlib.import_module(info.name)
import encodings
for info in pkgutil.iter_modules(encodings.__path__, "encodings."):
    try:
        importlib.import_module(info.name)
    except Exception:  # a codec for another platform
        pass
for name in ("asyncio", "sqlite3", "json", "grp", "pwd", "socket", "struct", "hmac", "secrets",
             "unicodedata", "pydantic", "ruamel.yaml", "rich.console", "rich.table"):
    importlib.import_module(name)
uid, gid = int(sys.argv[1]), int(sys.argv[2])
os.setgroups([int(g) for g in sys.argv[3].split(",") if g])
os.setgid(gid)
os.setuid(uid)
assert os.getuid() == uid and os.geteuid() == uid
sys.exit(oneiric_core.cli.main(sys.argv[4:]))
"""


@dataclass(frozen=True)
class OsUser:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]


class OsUsers:
    """Users made for one test, all members of `self.group` unless told otherwise."""

    def __init__(self) -> None:
        if os.geteuid() != 0:
            pytest.skip("creating OS users needs root (CI runs as root); run the suite as root to cover this")
        if not (shutil.which("useradd") and shutil.which("groupadd")):
            pytest.skip("useradd/groupadd are not installed, so no OS users can be created here")
        self.tag = uuid.uuid4().hex[:6]
        self.group = f"onr-{self.tag}"
        self._users: list[str] = []
        self._groups: list[str] = []
        self.add_group(self.group)
        # A place every user can reach: pytest's tmp_path is under a 0700 directory of root's.
        self.base = Path(tempfile.mkdtemp(prefix=f"oneiric-users-{self.tag}-", dir="/tmp"))
        os.chmod(self.base, 0o755)

    def add_group(self, name: str) -> int:
        _run(["groupadd", name])
        self._groups.append(name)
        return grp.getgrnam(name).gr_gid

    def add(self, short: str, *, in_group: bool = True) -> OsUser:
        name = f"onr-{short}-{self.tag}"
        argv = ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group"]
        if in_group:
            argv += ["--groups", self.group]
        _run([*argv, name])
        self._users.append(name)
        entry = pwd.getpwnam(name)
        return OsUser(name, entry.pw_uid, entry.pw_gid, tuple(os.getgrouplist(name, entry.pw_gid)))

    def state_dir(self) -> Path:
        """A state directory as a team would set one up: owned by root and the team's group,
        setgid (files inherit the group), no access for others."""
        state = self.base / "state"
        state.mkdir()
        os.chown(state, 0, grp.getgrnam(self.group).gr_gid)
        os.chmod(state, 0o2750)
        return state

    def run_as(self, user: OsUser, *args: object, env: dict[str, str] | None = None,
               timeout: float = 60) -> CliResult:
        argv = [sys.executable, "-c", _DROP_AND_RUN, str(user.uid), str(user.gid),
                ",".join(str(g) for g in user.groups), *(str(a) for a in args)]
        clean = {k: v for k, v in os.environ.items()
                 if k not in ("ONEIRIC_OPERATOR", "ONEIRIC_SETTINGS", "ONEIRIC_STATE_DIR", "SSH_CLIENT",
                              "SSH_CONNECTION", "SSH_AUTH_SOCK")}
        clean.update({"HOME": str(self.base), "USER": user.name, "LOGNAME": user.name, "COLUMNS": "200",
                      **(env or {})})
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=self.base, env=clean)
        return CliResult(["(as " + user.name + ")", "oneiric", *map(str, args)], proc.returncode,
                         proc.stdout, proc.stderr)

    def cleanup(self) -> None:
        for name in self._users:
            subprocess.run(["userdel", name], capture_output=True)
        for name in self._groups:
            subprocess.run(["groupdel", name], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot create OS users here ({' '.join(argv[:1])}: {proc.stderr.strip()})")


@pytest.fixture
def os_users():
    users = OsUsers()
    try:
        yield users
    finally:
        users.cleanup()
