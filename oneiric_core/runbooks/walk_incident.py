"""When a walk becomes an incident: on purpose, or at its first step that changes something.

Walking a runbook is a look: it records nothing, and looking at a healthy key through
"Component not found" must not page anyone. An incident is opened when the operator asks for
one, or before the first action that changes something (`Action.mutates`: a swap, a pause, a
manual step the operator did outside), with the severity the operator confirms (the walk's
own severity preselected: the tree's default, or what a `sets: severity` question chose).
The steps walked so far go on the new incident's timeline with their evidence, and the walk
carries the incident's number as its `incident` parameter from then on (a `close-incident`
step closes that one; a resumed walk keeps it).

Front doors call these and show the result; the console asks the severity in a modal.
"""

from __future__ import annotations

from .actions import ACTIONS
from .escalation import minutes_text
from .incidents import Incident, Incidents
from .walker import Walker

DEFAULT_SEVERITY = "P2"  # a tree that names none


def incident_of(walker: Walker) -> int | None:
    """The incident this walk records on, or None (a look)."""
    value = walker.params.get("incident")
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def severity_for(walker: Walker) -> str:
    """The severity to preselect: what the walk classified, else the tree's default."""
    return walker.severity or walker.tree.severity or DEFAULT_SEVERITY


def step_mutates(walker: Walker) -> bool:
    """Whether performing the current node changes something (and so needs an incident)."""
    node = walker.node
    if walker.finished or node.kind != "action" or not node.action:
        return False
    spec = ACTIONS.get(node.action)
    return spec is not None and spec.mutates


def needs_incident(walker: Walker) -> bool:
    """The current step changes something and the walk records on no incident yet."""
    return step_mutates(walker) and incident_of(walker) is None


def title_for(walker: Walker) -> str:
    params = walker.params
    ref = f": {params['domain']}/{params['key']}" if params.get("domain") and params.get("key") else ""
    return walker.tree.title + ref


def open_for_walk(incidents: Incidents, walker: Walker, severity: str, *, actor: str,
                  summary: str = "") -> Incident:
    """Open an incident for this walk: its steps so far go on the timeline, this process walks
    it, and the walk records on it from now on."""
    if incident_of(walker) is not None:
        return incidents.get(int(walker.params["incident"]))
    params = walker.params
    refs = [f"{params['domain']}/{params['key']}"] if params.get("domain") and params.get("key") else []
    inc = incidents.open(title_for(walker), severity, commander=actor, refs=refs, tree=walker.tree.id,
                         summary=summary)
    walker.severity = inc.severity
    walker.set_param("incident", inc.id)
    incidents.claim_walk(inc.id, actor)
    incidents.attach_walk(inc.id, walker)
    incidents.save_walk(inc.id, walker)
    return inc


def severity_choices(incidents: Incidents) -> list[tuple[str, str]]:
    """(severity, what it means) for a chooser: the name and the response target in force."""
    esc = incidents.escalation
    out = []
    for sev in ("P0", "P1", "P2", "P3"):
        options = esc.options.severities.get(sev)
        name = f" {options.name}" if options is not None and options.name else ""
        text = f"{sev}{name}: respond within {minutes_text(esc.response_min(sev))}"
        if options is not None and options.resolve_min is not None:
            text += f", resolve within {minutes_text(options.resolve_min)}"
        out.append((sev, text))
    return out


__all__ = ["DEFAULT_SEVERITY", "incident_of", "needs_incident", "open_for_walk", "severity_choices",
           "severity_for", "step_mutates", "title_for"]
