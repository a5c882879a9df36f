"""The header fitted to the width (oneiric_tui/header.py): the least needed parts give way
first, the mode and the pending count never do, and room freed is used again."""

from __future__ import annotations

from rich.text import Text

from oneiric_tui.header import Part, fit

PARTS = [Part("mode", ("HOST",), sep=" "), Part("detail", ("pid 12345", ""), sep=" "),
         Part("operator", ("operator carol", "")), Part("approvals", ("approvals manual", "manual", "")),
         Part("pending", ("3 pending",)), Part("maintenance", ("maintenance 7 due (m)", "maint 7 due", "7 due")),
         Part("upstream", ("upstream Oneiric settings NOT READ (m)", "upstream NOT READ", "NOT READ"))]


def line(width: int) -> str:
    return fit(Text(" Oneiric "), PARTS, width).plain


def test_everything_in_full_when_it_fits() -> None:
    assert line(200) == (" Oneiric  HOST pid 12345 | operator carol | approvals manual | 3 pending"
                         " | maintenance 7 due (m) | upstream Oneiric settings NOT READ (m)")


def test_at_80_columns_the_counts_stay_and_the_line_fits() -> None:
    shown = line(78)
    assert len(shown) <= 78
    assert shown.startswith(" Oneiric  HOST") and "3 pending" in shown and "7 due" in shown and "NOT READ" in shown
    assert "operator carol" in shown  # who this console acts as goes last


def test_too_narrow_for_the_parts_that_stay_the_line_is_left_to_be_cut() -> None:
    assert line(20) == " Oneiric  HOST | 3 pending | 7 due | NOT READ"
