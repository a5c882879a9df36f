"""Incident exports in Markdown: the post-mortem and the escalation hand-off.

Everything put into them from outside (titles, notes, names, summaries, settings text) goes
through `md` (one line: list items, table cells, headings) or `block` (paragraphs), which
escape control characters and Markdown's metacharacters (oneiric_core.text.markdown): a note
`[x](http://evil)` or `<img src=...>` shows as those characters wherever the file is rendered,
and `# heading` in a summary stays a line of text.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..private_files import write_private
from ..text import markdown
from .incidents import Incidents


def save(path: Path, markdown: str) -> Path:
    """Write an export to `path`, atomically and 0640 whatever the umask: a post-mortem is no
    more public than the journal it comes from (private_files.py). Returns the path."""
    write_private(Path(path), markdown.encode("utf-8"))
    return Path(path)


def state_dir_path(state_dir: Path, incident_id: int, kind: str) -> Path:
    """Where the console keeps an incident's export: state_dir/incidents/incident-N-KIND.md."""
    return Path(state_dir) / "incidents" / f"incident-{incident_id}-{kind}.md"


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min {int(seconds % 60)} s"


def md(value: Any) -> str:
    """An outside value inside a line of Markdown (a table cell, a list item, a heading)."""
    return markdown(value if value not in (None, "") else "-")


def block(value: Any) -> str:
    """An outside value as a Markdown paragraph: its lines kept, nothing in it markup."""
    return markdown(value, multiline=True)


def _list(values: Any) -> str:
    return ", ".join(md(v) for v in values)


def _lookback(incidents: Incidents) -> str:
    minutes = incidents.lookback_s() / 60
    return f"{minutes:g} min"


def _before(incidents: Incidents, timeline: list[Any]) -> list[str]:
    """The journal events of the involved components in the window before the incident was
    opened (app.yml escalation.lookback_min): what started it is usually among them."""
    before = [e for e in timeline if e.data.get("before_open")]
    out = [f"Journal events of the components involved in the {_lookback(incidents)} before the incident was "
           "opened (app.yml escalation.lookback_min):", ""]
    if not before:
        return out[:1] + ["", "none."]
    out += ["| time | who | what |", "|---|---|---|"]
    out += [f"| {_when(e.ts)} | {md(e.actor)} | {md(e.text)} |" for e in before]
    return out


def _findings(entries: list[Any]) -> list[str]:
    """Every check the walk ran, with its verdict and each line of its evidence."""
    out = []
    for e in entries:
        data = e.data
        if e.kind != "step" or data.get("kind") != "check":
            continue
        out.append(f"- {_when(e.ts)} {md(data.get('tree'))}:{md(data.get('node'))}: {md(data.get('text'))} -> "
                   f"{md(data.get('value'))}")
        out += [f"  - {md(line)}" for line in data.get("evidence") or []]
    return out or ["- no check was run on this incident"]


def postmortem(incidents: Incidents, incident_id: int) -> str:
    inc = incidents.get(incident_id)
    esc = incidents.escalation
    everything = incidents.timeline(incident_id)
    timeline = [e for e in everything if not e.data.get("before_open")]
    actions = incidents.approvals(incident_id)
    notes = [e for e in timeline if e.kind == "note"]
    components = _list(inc.refs) or "none recorded"
    out = [
        f"# Post-mortem: incident #{inc.id}: {md(inc.title)}", "",
        f"- Severity: {md(inc.severity)} ({md(esc.response_text(inc.severity))})",
        f"- Status: {md(inc.status)}",
        f"- Commander: {md(inc.commander)}",
        f"- Opened: {_when(inc.opened_at)}; closed: {_when(inc.closed_at)}; duration {_duration(inc.elapsed_s())}",
        f"- Components: {components}",
        f"- Runbook: {md(inc.tree or 'none')}", "",
        "## Summary", "", block(inc.summary or inc.resolution or "(to be written)"), "",
        "## Impact", "", block(inc.impact) if inc.impact else f"Components involved: {components}.", "",
        "## Before it was opened", "", *_before(incidents, everything), "",
        "## Timeline", "",
        "| time | kind | who | what |", "|---|---|---|---|",
    ]
    out += [f"| {_when(e.ts)} | {md(e.kind)} | {md(e.actor)} | {md(e.text)} |" for e in timeline]
    out += ["", "## What the checks found", "", *_findings(timeline)]
    out += ["", "## Actions and approvals", ""]
    if actions:
        out += ["| time | action | outcome | requested by | approved by | proposal |", "|---|---|---|---|---|---|"]
        out += [f"| {_when(a['ts'])} | {md(a['action'])} | {md(a['outcome'])} | {md(a['requested_by'])} | "
                f"{md(a['approved_by'])} | {md('#' + str(a['proposal']) if a['proposal'] else None)} |"
                for a in actions]
    else:
        out.append("No remediation was taken through a runbook.")
    out += ["", "## Root cause", "", block(inc.root_cause or "(to be written)"), "",
            "## Resolution", "", block(inc.resolution or "(open)"), "",
            "## Follow-ups", ""]
    out += [f"- [ ] {md(f)}" for f in inc.follow_ups] or ["- [ ] (none recorded yet)"]
    if notes:
        out += ["", "## Notes", ""] + [f"- {_when(n.ts)} {md(n.actor)}: {md(n.text)}" for n in notes]
    return "\n".join(out) + "\n"


def handoff(incidents: Incidents, incident_id: int) -> str:
    """What the next responder needs: the symptom, what was checked and tried, the current state."""
    inc = incidents.get(incident_id)
    esc = incidents.escalation
    entries = incidents.entries(incident_id)
    everything = incidents.timeline(incident_id)
    checks = [e for e in entries if e.kind in ("step", "answer")]
    actions = incidents.approvals(incident_id)
    chain = esc.options.severities[inc.severity].escalate_to if inc.severity in esc.options.severities else []
    out = [
        f"# Escalation hand-off: incident #{inc.id}: {md(inc.title)}", "",
        "## Issue", "",
        f"- Symptom: {md(inc.summary or inc.title)}",
        f"- Started: {_when(inc.opened_at)} ({_duration(inc.elapsed_s())} ago)",
        f"- Severity: {md(inc.severity)} ({md(esc.response_text(inc.severity))})",
        f"- Commander: {md(inc.commander)}; status {md(inc.status)}",
        f"- Components: {_list(inc.refs) or 'none recorded'}", "",
        "## Diagnostics done", "",
    ]
    diagnostics = []
    for e in checks:
        diagnostics.append(f"- {md(e.text)}")
        diagnostics += [f"  - {md(line)}" for line in e.data.get("evidence") or []]
    out += diagnostics or ["- none recorded"]
    out += ["", "## Before it was opened", "", *_before(incidents, everything)]
    out += ["", "## Solutions attempted", ""]
    out += [f"- {md(a['action'])} -> {md(a['outcome'])}"
            + (f", approved by {md(a['approved_by'])}" if a["approved_by"] else "")
            for a in actions] or ["- none"]
    out += ["", "## Current state", ""]
    for ref in inc.refs:
        domain, _, key = ref.partition("/")
        try:
            row = incidents.engine.components([incidents.engine.ref(domain, key)])[0]
        except Exception:  # noqa: BLE001 - a component gone since is worth saying, not failing
            out.append(f"- {md(ref)}: no longer registered")
            continue
        out.append(f"- {md(ref)}: {md(row.state)}, serving {md(row.serving or 'nothing')}, health {md(row.health)}, "
                   f"{md(row.activity)}")
    if not inc.refs:
        out.append("- no component recorded")
    out += ["", "## Root cause", "", block(inc.root_cause or "(not known yet)")]
    out += ["", "## Follow-ups", ""] + ([f"- [ ] {md(f)}" for f in inc.follow_ups] or ["- none recorded yet"])
    out += ["", "## Who to reach", ""]
    for link in chain:
        role = link.split(":", 1)[-1].strip()
        when = link.split(":", 1)[0] if ":" in link else "now"
        out.append(f"- {md(when)}: " + "; ".join(md(line) for line in esc.lines(role, None)[:1]))
    out += ["", "## Assistance needed", "", "(state what you need from the next responder)"]
    return "\n".join(out) + "\n"
