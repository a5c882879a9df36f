"""Live health: one row per serving component, updated cell by cell (never clear-and-refill).

Only rows on screen are redrawn. With 10,000 candidates the table has ~2,500 rows, and every
health round (and every tick of the "changed" clock) would rewrite thousands of cells nobody
sees: about 100 ms of the console's loop each time. A row off screen keeps its newest status
and is redrawn when it scrolls into view (or the pane is shown, or the table re-sorts).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.widgets import DataTable

from oneiric_core.domains import ComponentRef, Domain
from oneiric_core.engine import ComponentStatus
from oneiric_core.health import HealthTrack

from .. import format as fmt
from ..keys import vim_keys
from ..messages import RefHighlighted
from .pane_table import PaneTable

SORT_SETTLE_S = 0.3
OFFSCREEN_MARGIN = 3  # rows above and below the visible ones that are kept current too
COLUMNS = (("component", "COMPONENT"), ("provider", "PROVIDER"), ("status", "STATUS"),
           ("latency", "LATENCY"), ("trend", "TREND"), ("changed", "CHANGED"))


class HealthTable(PaneTable):
    """Rows are keyed by ComponentRef here (`_rows`), with their own sync: rows follow the
    serving components, `complete=False` updates part of them, and the order is the tree's."""

    BINDINGS = [
        *vim_keys("health", top="scroll_top", bottom="scroll_bottom"),
    ]

    COLUMNS = COLUMNS

    def __init__(self, **kwargs) -> None:
        super().__init__(zebra_stripes=False, **kwargs)
        self._rows: dict[ComponentRef, tuple] = {}  # type: ignore[assignment]  # the cells drawn
        self._refs_by_key: dict[str, ComponentRef] = {}
        self._sort_timer = None
        self._statuses: dict[ComponentRef, ComponentStatus] = {}  # the newest status of each row
        self._stale: set[ComponentRef] = set()  # rows whose drawn cells may be behind it
        self._track: Callable[[ComponentRef], HealthTrack | None] = lambda ref: None

    def _cells(self, status: ComponentStatus, track: HealthTrack | None) -> tuple:
        sym, word, style = fmt.HEALTH.get(status.health, fmt.HEALTH["unknown"])
        samples = [s.latency_ms for s in track.samples] if track else []
        return (
            str(status.ref),
            status.serving or "-",
            Text(f"{sym} {word}", style=style),
            fmt.ms(status.latency_ms),
            fmt.sparkline(samples, 16),
            fmt.ago(track.changed_at if track else None),
        )

    def sync(self, statuses: list[ComponentStatus], track: Callable[[ComponentRef], HealthTrack | None], *,
             complete: bool = True) -> None:
        """Make the rows match `statuses` (serving components only). `complete=False` means
        `statuses` is only the part that changed: other rows are left alone."""
        self._track = track
        wanted = {s.ref: s for s in statuses if s.serving}
        stale = [r for r in self._rows if r not in wanted] if complete else [
            s.ref for s in statuses if not s.serving and s.ref in self._rows]
        for ref in stale:
            self.remove_row(str(ref))
            del self._rows[ref]
            self._statuses.pop(ref, None)
            self._stale.discard(ref)
        added = False
        for ref, status in wanted.items():
            self._statuses[ref] = status
            if ref not in self._rows:
                cells = self._cells(status, track(ref))
                self.add_row(*cells, key=str(ref))
                self._refs_by_key[str(ref)] = ref
                self._rows[ref] = cells
                added = True
            else:
                self._stale.add(ref)
        self._redraw_visible()
        if added:
            self._sort_soon()

    def _visible_refs(self) -> list[ComponentRef]:
        """The rows on screen now (and a few around them), in display order."""
        height = self.size.height
        if not height or not self.row_count:
            return []
        first = max(0, int(self.scroll_y) - OFFSCREEN_MARGIN)
        rows = self.ordered_rows[first:int(self.scroll_y) + height + OFFSCREEN_MARGIN]
        return [ref for row in rows if (ref := self._refs_by_key.get(str(row.key.value))) is not None]

    def _redraw_visible(self, *, clock: bool = False) -> None:
        """Bring the rows on screen up to date: the stale ones, or all of them for the clock."""
        for ref in self._visible_refs():
            if not clock and ref not in self._stale:
                continue
            status = self._statuses.get(ref)
            if status is None:
                continue
            cells = self._cells(status, self._track(ref))
            old = self._rows.get(ref)
            if old is not None and old != cells:
                for (column, _), new, before in zip(COLUMNS, cells, old):
                    if new != before:
                        self.update_cell(str(ref), column, new)
                self._rows[ref] = cells
            self._stale.discard(ref)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._redraw_visible()

    def on_resize(self) -> None:
        self._redraw_visible()  # shown again (the narrow layout's pane switch) or grown

    def _sort_soon(self) -> None:
        """Keep the tree's order (domain, then key), sorting once rows stop arriving: while
        thousands of providers start, sorting the whole table after every batch stalled the
        screen."""
        if self._sort_timer is not None:
            self._sort_timer.stop()
        self._sort_timer = self.set_timer(SORT_SETTLE_S, self._sort_rows)

    def _sort_rows(self) -> None:
        self._sort_timer = None
        self.sort("component", key=lambda name: _order(self._refs_by_key.get(str(name))))
        self._redraw_visible()  # other rows may be on screen now

    def tick(self, track: Callable[[ComponentRef], HealthTrack | None]) -> None:
        """The 'changed' ages move with the clock: redraw the rows on screen (their ages
        included); rows off screen are redrawn when they come into view."""
        self._track = track
        self._redraw_visible(clock=True)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        ref = self._refs_by_key.get(event.row_key.value) if event.row_key else None
        if ref is not None and self.has_focus:
            self.post_message(RefHighlighted(ref))


_DOMAIN_ORDER = {d: i for i, d in enumerate(Domain)}


def _order(ref: ComponentRef | None) -> tuple[int, str]:
    return (_DOMAIN_ORDER.get(ref.domain, 99), ref.key) if ref else (99, "")
