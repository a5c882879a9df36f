"""The thin layer every repository of the store is written against (as httpx's client is
written over a transport): connect, run a statement, read rows, hold a transaction, and the
few places where SQL dialects differ. A backend holds no rule of the store; the repositories
(journal.py, proposals.py, ...) hold them all, once, whichever database is behind.

Statements are written with `?` placeholders and in the SQL both dialects share; what differs
(an upsert, a case-insensitive substring test, the id an INSERT gave) is asked of the
backend's `Dialect`. What only one database has (SQLite's WAL checkpoints and incremental
vacuum) is a capability, `Maintenance`, that a backend may offer."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from .records import StoreError

T = TypeVar("T")

# A row as a backend hands it back: readable by position and by column name (sqlite3.Row,
# or a psycopg row made so). Only repositories see rows; they turn them into records.
Row = Any


class Cursor(Protocol):
    """What a statement run inside a transaction gives back."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Row:  # None when there is no row (Row is Any)
        ...

    def fetchall(self) -> list[Row]: ...

    def __iter__(self) -> Iterator[Row]: ...


class Connection(Protocol):
    """The connection a transaction runs on (`Backend.write`'s function is given one)."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, params: Iterable[Sequence[Any]], /) -> Any: ...


class Dialect(Protocol):
    """The SQL that differs between databases; everything else is written once."""

    # What an INSERT raises when a key is taken (the journal's append tells a stale tip by it).
    integrity_errors: tuple[type[BaseException], ...]

    def upsert(self, table: str, columns: Sequence[str], keys: Sequence[str]) -> str:
        """An INSERT of `columns` (one `?` each) that replaces the row with the same `keys`."""
        ...

    def contains(self, column: str) -> str:
        """A condition, taking one `?`: `column` holds it as a case-insensitive substring."""
        ...

    def insert_id(self, conn: Connection, sql: str, params: Sequence[Any]) -> int:
        """Run an INSERT of one row into a table with an `id` identity; the id it got."""
        ...

    def insert_rows(self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """INSERT many rows at once, the fastest way the database has; raises one of
        `integrity_errors` when a key is taken."""
        ...

    def savepoint(self, conn: Connection) -> AbstractContextManager[None]:
        """Statements inside may fail without spoiling the transaction (PostgreSQL aborts a
        transaction at its first error; SQLite undoes only the failed statement)."""
        ...


class Checkpoints(Protocol):
    """How a long run of writes (a prune) lets the file keep up: SQLite's WAL checkpoints,
    taken by hand between steps (sqlite_backend.WalCheckpoints)."""

    progress: dict[str, Any]

    def backfill(self, *, restart: bool = False) -> int: ...

    def restarting(self) -> AbstractContextManager[float]: ...


class NoCheckpoints:
    """Checkpoints where the database keeps its own log (PostgreSQL): nothing to do."""

    def __init__(self) -> None:
        self.progress: dict[str, Any] = {}

    def backfill(self, *, restart: bool = False) -> int:
        return 0

    def restarting(self) -> AbstractContextManager[float]:
        return nullcontext(0.0)


class Listener(Protocol):
    """Wakes a reader when the store changes (backend.listen): PostgreSQL pushes what its
    writers NOTIFY; a SQLite file is watched for commits. A reader still reads what changed
    from the store; a notice only says when to look."""

    def wait(self, timeout: float) -> list[str]:
        """Block until the store changes or `timeout` seconds pass; the notices that came
        (`topic:payload`, or `changed` where the backend cannot say what), [] on a timeout."""
        ...

    def close(self) -> None: ...


class Maintenance(Protocol):
    """What a file-based store does by hand to keep its file small (SQLite: free pages,
    incremental vacuum, WAL checkpoints during a prune). A server database does it itself."""

    def free_pages(self) -> int: ...

    def file_bytes(self) -> int: ...

    def reclaim_space(self, pages: int) -> int: ...

    def auto_vacuum(self) -> int: ...

    def vacuum_owed(self) -> str | None: ...

    def checkpoints_aside(self) -> AbstractContextManager[Checkpoints]: ...

    def pragma(self, name: str, value: int | str | None = None) -> Any: ...


class Backend(Protocol):
    """One store's connection(s), transactions and dialect."""

    dialect: Dialect
    # A SQLite file is one machine's and holds one node; a server database holds a fleet (scope.py).
    holds_one_node: bool
    # Whether this process may only read (a group member's store, a full disk); with why.
    read_only: bool
    write_failure: str | None

    @property
    def where(self) -> str:
        """What messages name as the store: its file, or its URL without a password."""
        ...

    @property
    def schema_version(self) -> int: ...

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def write(self, fn: Callable[[Connection], T], *, action: str = "write") -> T:
        """Run `fn` in one write transaction (or inside the open `batch`); rolled back if it raises."""
        ...

    def batch(self) -> AbstractContextManager[None]:
        """The writes inside make one transaction."""
        ...

    def read_snapshot(self) -> AbstractContextManager[None]:
        """The reads inside see one state of the store."""
        ...

    def in_batch(self) -> bool: ...

    def on_rollback(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever a transaction is rolled back (state cached from it is void)."""
        ...

    def data_version(self) -> int:
        """Changes whenever another connection commits."""
        ...

    def size_bytes(self) -> int:
        """What the store takes where it is kept (a file and its WAL, a server's tables)."""
        ...

    def notify(self, conn: Connection, topic: str, payload: str) -> None:
        """Tell listeners, when the transaction on `conn` commits, that `topic` changed."""
        ...

    def listen(self) -> Listener:
        """A listener of its own (a connection of its own: it blocks while it waits)."""
        ...

    def error(self, action: str, exc: BaseException) -> StoreError: ...

    def close(self) -> None: ...

    @property
    def maintenance(self) -> Maintenance | None:
        """The backend's file maintenance, None where the database does its own."""
        ...
