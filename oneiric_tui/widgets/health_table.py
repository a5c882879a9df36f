"""Live health: one row per serving component, updated cell by cell (never clear-and-refill)."""

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
        self._rows: dict[ComponentRef, tuple] = {}  # type: ignore[assignment]
        self._refs_by_key: dict[str, ComponentRef] = {}
        self._sort_timer = None

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
        wanted = {s.ref: s for s in statuses if s.serving}
        stale = [r for r in self._rows if r not in wanted] if complete else [
            s.ref for s in statuses if not s.serving and s.ref in self._rows]
        for ref in stale:
            self.remove_row(str(ref))
            del self._rows[ref]
        added = False
        for ref, status in wanted.items():
            cells = self._cells(status, track(ref))
            old = self._rows.get(ref)
            if old is None:
                self.add_row(*cells, key=str(ref))
                self._refs_by_key[str(ref)] = ref
                added = True
            elif old != cells:
                for (column, _), new, before in zip(COLUMNS, cells, old):
                    if new != before:
                        self.update_cell(str(ref), column, new)
            self._rows[ref] = cells
        if added:
            self._sort_soon()

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

    def tick(self, track: Callable[[ComponentRef], HealthTrack | None]) -> None:
        """Refresh only the 'changed' ages (a UI clock, not engine data)."""
        for ref, cells in list(self._rows.items()):
            found = track(ref)
            age = fmt.ago(found.changed_at if found else None)
            if cells[5] != age:
                self.update_cell(str(ref), "changed", age)
                self._rows[ref] = (*cells[:5], age)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        ref = self._refs_by_key.get(event.row_key.value) if event.row_key else None
        if ref is not None and self.has_focus:
            self.post_message(RefHighlighted(ref))


_DOMAIN_ORDER = {d: i for i, d in enumerate(Domain)}


def _order(ref: ComponentRef | None) -> tuple[int, str]:
    return (_DOMAIN_ORDER.get(ref.domain, 99), ref.key) if ref else (99, "")
