"""The runbook picker's follow-up flag: a runbook that a closed incident's post-mortem asked to
update, until that tree's `reviewed` date moves past the incident.

Which follow-ups are open is the core's rule (oneiric_core.runbooks.upkeep.open_follow_ups,
the one `oneiric runbook list` flags with "FOLLOW-UP from #N"); this only words it for the
picker: a flag on the runbook's line and, for the highlighted runbook, each follow-up with
its incident. Follow-up texts and incident titles are outside text (oneiric_core.text).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from oneiric_core.errors import OneiricError
from oneiric_core.runbooks.upkeep import FollowUp, open_follow_ups
from oneiric_core.text import multi_line, one_line

FLAG_IDS = 3  # incident numbers on the runbook's line; more are counted
LISTED = 5  # follow-ups spelt out for the highlighted runbook; more are counted


def follow_up_flags(engine: Any, catalog: Any) -> dict[str, list[FollowUp]]:
    """Per tree id, its open follow-ups; none when the incidents cannot be read now (the
    picker still works, and says nothing it does not know)."""
    try:
        return open_follow_ups(engine, catalog)
    except OneiricError:
        return {}


def flag(follow_ups: list[FollowUp]) -> str:
    """"  FOLLOW-UP from #3, #5" after the runbook's title ("" when none is open); past
    FLAG_IDS incidents, "#3, #5, #8 +4 more"."""
    if not follow_ups:
        return ""
    incidents = list(dict.fromkeys(f.incident for f in follow_ups))
    more = f" +{len(incidents) - FLAG_IDS} more" if len(incidents) > FLAG_IDS else ""
    return "  FOLLOW-UP from " + ", ".join(f"#{i}" for i in incidents[:FLAG_IDS]) + more


def follow_up_text(follow_ups: list[FollowUp]) -> Text:
    """The highlighted runbook's open follow-ups, and what closes them."""
    text = Text()
    if not follow_ups:
        return text
    text.append(f"\nOpen follow-up{'s' if len(follow_ups) > 1 else ''} from incidents:\n", style="bold yellow")
    for f in follow_ups[:LISTED]:
        text.append(f"  #{f.incident} {one_line(f.title)}: ", style="bold")
        text.append(multi_line(f.text) + "\n")
    if len(follow_ups) > LISTED:
        text.append(f"  ... and {len(follow_ups) - LISTED} more (oneiric runbook show)\n")
    text.append("Review the tree and move its `reviewed` date past the incident to close "
                f"{'them' if len(follow_ups) > 1 else 'it'}.\n", style="dim")
    return text
