"""The header line fitted to the terminal's width: what must stay says so, the rest gives way.

The header is one line. At 80 columns everything it can say (host, pid, operator, approvals
policy, pending proposals, maintenance due, settings not read, watcher and telemetry alarms)
does not fit, and a Static cut at the edge would drop whatever came last: the pending count,
the one figure an operator acts on. So each part has its forms from longest to shortest
(the last may be "", dropped), and the parts are shortened a step at a time in a fixed order
(GIVE_WAY), the least needed first, until the line fits; then any room a step freed beyond
need is given back. Parts with a single form (the mode, the pending count) never give way;
if they alone are too wide, the line is cut as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text


@dataclass(frozen=True)
class Part:
    """One part of the header: `forms` from the longest to the shortest (a "" form drops it),
    written after `sep` (the mode's own words follow it with a space, the rest with " | ")."""

    name: str
    forms: tuple[str, ...]
    style: str = ""
    sep: str = " | "


# The order in which parts give way while the line is too long, one form per step: the long
# wording of the notices first, then the pid and the approvals policy, then the notices' short
# forms, and only then the operator (who this console acts as). Parts not named (the mode, the
# pending count) keep their one form.
GIVE_WAY = ("upstream", "maintenance", "detail", "approvals", "approvals", "upstream", "maintenance", "operator",
            "node", "watcher")


def fit(head: Text, parts: list[Part], width: int) -> Text:
    """`head` (the badge) then the parts, each after its separator and in the longest form
    that lets the whole line fit in `width` cells."""
    chosen = {part.name: 0 for part in parts}

    def length() -> int:
        return head.cell_len + sum(len(p.sep) + cell_len(p.forms[chosen[p.name]]) for p in parts
                                   if p.forms[chosen[p.name]])

    by_name = {part.name: part for part in parts}
    for name in GIVE_WAY:
        part = by_name.get(name)
        if part is not None and length() > width and chosen[name] < len(part.forms) - 1:
            chosen[name] += 1
    for name in reversed(GIVE_WAY):  # a later step may have freed more room than it needed: grow back
        if name in chosen and chosen[name] > 0:
            chosen[name] -= 1
            if length() > width:
                chosen[name] += 1
    text = head.copy()
    for part in parts:
        form = part.forms[chosen[part.name]]
        if form:
            text.append(part.sep)
            text.append(form, style=part.style)
    return text
