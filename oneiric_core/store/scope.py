"""Which node a store's rows belong to.

Every host has a node name (the hostname unless `--node` says otherwise) and writes it on
what it records: journal events, its lifecycle and health snapshots, its keys' activity. On a
store many nodes share (PostgreSQL) a host reads back only its own node's snapshots and
activity. A SQLite file is one state directory of one machine and so holds one node: there
the rows are the file's whatever node name wrote them (a container's hostname changes at
every start; a paused key must stay paused)."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass

from ..errors import UsageError

# A node name as `NODE:domain/key` addresses it: a hostname's letters, never a ':' or '/'.
_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def node_name(value: str) -> str:
    """`value` as a node name, or a UsageError saying why it is not one."""
    if not _NODE_NAME.fullmatch(value):
        raise UsageError(f"'{value}' is not a node name: use letters, digits, '.', '_' and '-' "
                         "(at most 63, starting with a letter or digit).")
    return value


def default_node() -> str:
    """The node name a host takes when it is given none: this machine's hostname."""
    name = socket.gethostname().split(".")[0]
    return name if _NODE_NAME.fullmatch(name) else "localhost"


@dataclass(frozen=True, slots=True)
class NodeScope:
    node: str
    shared: bool  # the store holds many nodes (their rows are told apart by `node`)

    def only(self, joiner: str = " AND ") -> tuple[str, tuple[str, ...]]:
        """A condition (after `joiner`) that keeps this node's rows, and its parameter; nothing
        on a store of one node."""
        return (f"{joiner}node = ?", (self.node,)) if self.shared else ("", ())
