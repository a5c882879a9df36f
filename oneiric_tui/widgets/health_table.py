"""Live health: one row per serving component, in the tree's order, each drawn only on screen.

A row's cells are built when the row is drawn, from the newest status and health track the
table was given: an update to a row off screen costs a dict assignment, and one on screen
redraws that line. A new row goes to its place by bisect (row_table.py), never by sorting
the table, so the 12,500 rows of a 50,000-component host arrive at the cost of each row.
Once a second the rows on screen are drawn again for the ages in CHANGED.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.message import Message

from oneiric_core.domains import ComponentRef, Domain
from oneiric_core.engine import ComponentStatus
from oneiric_core.health import HealthTrack
from oneiric_core.text import one_line

from .. import format as fmt
from ..keys import vim_keys
from ..messages import RefHighlighted
from .row_table import RowTable

TREND_WIDTH = 16
COLUMNS = (("component", "COMPONENT"), ("provider", "PROVIDER"), ("status", "STATUS"),
           ("latency", "LATENCY"), ("trend", "TREND"), ("changed", "CHANGED"))

_DOMAIN_ORDER = {d: i for i, d in enumerate(Domain)}


def order(ref: ComponentRef) -> tuple[int, str]:
    """The tree's order: domain, then key."""
    return (_DOMAIN_ORDER.get(ref.domain, 99), ref.key)


class HealthTable(RowTable):
    """Rows keyed by ComponentRef; they follow the serving components. `enter` asks for the
    highlighted key's history (HistoryRequested; the main screen opens it)."""

    class HistoryRequested(Message):
        """`enter` on a row: show this key's history (screens/history.py)."""

        def __init__(self, ref: ComponentRef) -> None:
            super().__init__()
            self.ref: ComponentRef = ref
            """The key whose history to show."""

    BINDINGS = [
        *vim_keys("health", top="scroll_top", bottom="scroll_bottom"),
        Binding("enter", "history", "History", show=False, id="health.history"),
    ]
    COLUMNS = COLUMNS
    # Widths the formatted values reach ("~ DEGRADED", "123.4 ms", 16 trend cells, "12.5h"):
    # set from the start so columns do not widen, and every line redraw, as values arrive.
    MIN_WIDTHS = {"status": 10, "latency": 8, "trend": TREND_WIDTH, "changed": 5}

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._statuses: dict[ComponentRef, ComponentStatus] = {}  # the newest status of each row
        self._track: Callable[[ComponentRef], HealthTrack | None] = lambda ref: None

    @property
    def refs(self) -> list[ComponentRef]:
        """The rows' components, in display order."""
        return self.ordered_keys  # type: ignore[return-value]

    def status(self, ref: ComponentRef) -> ComponentStatus | None:
        return self._statuses.get(ref)

    def row_cells(self, key: Hashable) -> tuple:
        status = self._statuses.get(key)  # type: ignore[call-overload]
        if status is None:
            return ("",) * len(COLUMNS)
        track = self._track(status.ref)
        sym, word, style = fmt.HEALTH.get(status.health, fmt.HEALTH["unknown"])
        samples = [s.latency_ms for s in track.samples] if track else []
        return (
            str(status.ref),
            status.serving or "-",
            Text(f"{sym} {word}", style=style),
            fmt.ms(status.latency_ms),
            fmt.sparkline(samples, TREND_WIDTH),
            fmt.ago(track.changed_at if track else None),
        )

    def sync(self, statuses: list[ComponentStatus], track: Callable[[ComponentRef], HealthTrack | None], *,
             complete: bool = True) -> None:
        """Make the rows match `statuses` (serving components only). `complete=False` means
        `statuses` is only the part that changed: other rows are left alone."""
        self._track = track
        wanted = {s.ref: s for s in statuses if s.serving}
        if complete:
            gone = [r for r in self._statuses if r not in wanted]
        else:
            gone = [s.ref for s in statuses if not s.serving and s.ref in self._statuses]
        for ref in gone:
            self.remove_row(ref)
            del self._statuses[ref]
        widths = self._widths
        for ref, status in wanted.items():
            before = self._statuses.get(ref)
            self._statuses[ref] = status
            # The two columns of outside text set their width here, from the plain strings;
            # the others are bounded by their formats (MIN_WIDTHS).
            name, serving = one_line(ref), one_line(status.serving)
            if cell_len(name) > widths[0] or cell_len(serving) > widths[1]:
                self.fit((name, serving))
            if before is None:
                self.upsert(ref, order(ref))
            elif before != status:
                self.refresh_row(ref)

    def retain(self, refs: set[ComponentRef]) -> None:
        """Drop the rows of components not in `refs` (gone from the registry)."""
        for ref in [r for r in self._statuses if r not in refs]:
            self.remove_row(ref)
            del self._statuses[ref]

    def tick(self, track: Callable[[ComponentRef], HealthTrack | None]) -> None:
        """The 'changed' ages move with the clock: draw the rows on screen again (rows off
        screen are drawn with their age when they come into view)."""
        self._track = track
        self.refresh()

    def action_history(self) -> None:
        key = self.cursor_key
        if isinstance(key, ComponentRef):
            self.post_message(self.HistoryRequested(key))

    def cursor_changed(self, key: Hashable | None) -> None:
        if isinstance(key, ComponentRef) and self.has_focus:
            self.post_message(RefHighlighted(key))
