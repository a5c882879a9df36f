"""Messages from the incident itself: the announcement, each status update, the all-clear and
a ticket body, filled from what the incident records, and optionally posted to the team.

The words are data (`messages.yml` in the settings directory, else the package's default), so a
team can reword them; a template that names a field this module does not fill is refused at
load with the file, kind and field. The fields come from the incident and its timeline:
severity and its response target, impact, the components involved, what the walk's checks
found, the actions taken and who approved them, the commander, the next update time (from the
severity's update cadence: app.yml `escalation.severities.P0.update_min`, else
UPDATE_EVERY_MIN) and the escalation contacts.

Every message prepared is recorded on the incident's timeline (kind `message`); one posted to
a webhook (`escalation.webhooks.<severity>`, off by default) records the outcome too: the
HTTP status, or why it failed after its retries.
"""

from __future__ import annotations

import datetime
import json
import string
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, UsageError
from .incidents import Incident, Incidents

FILE = "messages.yml"
KINDS = ("announce", "update", "resolved", "ticket")
FORMATS = ("text", "markdown", "json")
UPDATE_EVERY_MIN = {"P0": 15.0, "P1": 30.0, "P2": 60.0, "P3": 240.0}  # the incident-response runbook's cadence
FIELDS = ("id", "title", "severity", "severity_name", "status", "impact", "components", "findings", "actions",
          "commander", "opened", "duration", "response", "next_update", "contacts", "resolution", "root_cause",
          "follow_ups")
MAX_FINDINGS = 4  # the latest check results a message quotes (the post-mortem has them all)


def load_templates(settings_dir: Path) -> tuple[dict[str, dict[str, str]], Path]:
    from ..package_data import load_yaml, settings_or_default

    path = settings_or_default(settings_dir, FILE)
    data = load_yaml(path, "the message templates") or {}
    templates: dict[str, dict[str, str]] = {}
    for kind in KINDS:
        entry = data.get(kind) if isinstance(data, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            raise ConfigError(f"{path}: the '{kind}' message needs a text template.")
        templates[kind] = {"text": entry["text"], "markdown": str(entry.get("markdown") or entry["text"])}
        for fmt, template in templates[kind].items():
            for _, name, _, _ in string.Formatter().parse(template):
                if name is not None and name not in FIELDS:
                    raise ConfigError(f"{path}: the '{kind}' {fmt} template names {{{name}}}, which is not a field "
                                      f"(fields: {', '.join(FIELDS)}).")
    return templates, path


@dataclass(frozen=True)
class Message:
    incident: int
    kind: str
    format: str
    text: str
    fields: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"incident": self.incident, "kind": self.kind, "format": self.format, "text": self.text,
                "fields": self.fields}


def _when(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes} min" if minutes < 90 else f"{minutes // 60} h {minutes % 60:02d} min"


def update_every_s(incidents: Incidents, severity: str) -> float:
    options = incidents.escalation.options.severities.get(severity)
    minutes = getattr(options, "update_min", None) or UPDATE_EVERY_MIN.get(severity, 60.0)
    return float(minutes) * 60


def next_update_at(incidents: Incidents, inc: Incident, now: float | None = None) -> float:
    """When the next status update is due: the cadence after the last message sent (or after
    the incident opened, before any)."""
    now = time.time() if now is None else now
    sent = [e.ts for e in incidents.entries(inc.id) if e.kind == "message"]
    return (max(sent) if sent else inc.opened_at) + update_every_s(incidents, inc.severity)


def fields(incidents: Incidents, inc: Incident, *, now: float | None = None) -> dict[str, str]:
    now = time.time() if now is None else now
    entries = incidents.entries(inc.id)
    steps = [e.data for e in entries if e.kind == "step" and e.data.get("kind") == "check"]
    findings = [f"{d.get('text')} {d.get('value')}" + (f" ({d['evidence'][0]})" if d.get("evidence") else "")
                for d in steps[-MAX_FINDINGS:]]
    actions = [f"{a['action']} ({a['outcome'] or 'pending'}; asked by {a['requested_by'] or '?'}"
               + (f", approved by {a['approved_by']}" if a.get("approved_by") else "") + ")"
               for a in incidents.approvals(inc.id)]
    severity = incidents.escalation.options.severities.get(inc.severity)
    chain = list(getattr(severity, "escalate_to", []) or [])
    contacts = []
    for item in chain:
        role = item.split(":", 1)[-1].strip()
        c = incidents.escalation.contact(role)
        reach = c.get("page") or c.get("chat") or c.get("email")
        contacts.append(f"{c['name']}" + (f" ({reach})" if reach else ""))
    return {
        "id": str(inc.id), "title": inc.title, "severity": inc.severity,
        "severity_name": getattr(severity, "name", "") or inc.severity, "status": inc.status,
        "impact": inc.impact or inc.summary or "being assessed",
        "components": ", ".join(inc.refs) or "none named yet",
        "findings": "; ".join(findings) or "no check has run yet",
        "actions": "; ".join(actions) or "none yet",
        "commander": inc.commander, "opened": _when(inc.opened_at), "duration": _span(inc.elapsed_s(now)),
        "response": incidents.escalation.response_text(inc.severity),
        "next_update": _when(max(now, next_update_at(incidents, inc, now))) if inc.status != "closed" else "none",
        "contacts": ", ".join(contacts) or "none configured (app.yml escalation)",
        "resolution": inc.resolution or "not resolved yet", "root_cause": inc.root_cause or "under investigation",
        "follow_ups": "; ".join(inc.follow_ups) or "none",
    }


def compose(incidents: Incidents, incident_id: int, kind: str, fmt: str = "text", *,
            now: float | None = None) -> Message:
    if kind not in KINDS:
        raise UsageError(f"'{kind}' is not a message kind; use one of {', '.join(KINDS)}.")
    if fmt not in FORMATS:
        raise UsageError(f"'{fmt}' is not a format; use one of {', '.join(FORMATS)}.")
    inc = incidents.get(incident_id)
    if kind == "resolved" and inc.status == "open":
        raise UsageError(f"Incident #{inc.id} is still open: a resolved message waits for it to be mitigated or "
                         f"closed ('oneiric incident close {inc.id} --resolution ...').")
    templates, _ = load_templates(Path(incidents.engine.settings_dir))
    values = fields(incidents, inc, now=now)
    text = templates[kind]["markdown" if fmt == "markdown" else "text"].format_map(values)
    return Message(inc.id, kind, fmt, text, values)


def record(incidents: Incidents, message: Message, *, actor: str, delivered: str | None = None,
           ts: float | None = None) -> None:
    """Put the message on the incident's timeline (what was said, and where it went); `ts` is
    when, for a front door with its own clock (the console's is injectable)."""
    where = f"; {delivered}" if delivered else "; prepared to send"
    incidents.add_entry(message.incident, "message", actor, f"{message.kind} message{where}",
                        {"kind": message.kind, "format": message.format, "text": message.text,
                         "delivered": delivered}, ts=ts)


def webhook_body(message: Message, fmt: str) -> dict[str, Any]:
    """The POST body: our JSON, or the incoming-webhook bodies Slack and Teams accept."""
    if fmt == "slack":
        return {"text": message.text}
    if fmt == "teams":
        return {"@type": "MessageCard", "@context": "https://schema.org/extensions",
                "summary": message.text.splitlines()[0], "text": message.text.replace("\n", "\n\n")}
    return message.to_dict()


def send(incidents: Incidents, message: Message, *, actor: str) -> str:
    """Post `message` to its severity's webhook; the outcome, also recorded on the timeline.
    Raises UsageError when no webhook is configured for that severity."""
    import httpx

    inc = incidents.get(message.incident)
    hook = incidents.escalation.options.webhooks.get(inc.severity)
    if hook is None:
        raise UsageError(f"No webhook is configured for {inc.severity} (app.yml escalation.webhooks.{inc.severity}); "
                         "the message was not sent.")
    body = json.dumps(webhook_body(message, hook.format)).encode()
    attempts, last = hook.retries + 1, ""
    for attempt in range(1, attempts + 1):
        try:
            answer = httpx.post(hook.url, content=body, headers={"content-type": "application/json"},
                                timeout=hook.timeout_s)
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if answer.status_code < 300:
                outcome = f"posted to {hook.url} ({hook.format}, HTTP {answer.status_code}, attempt {attempt})"
                record(incidents, message, actor=actor, delivered=outcome)
                return outcome
            last = f"HTTP {answer.status_code}"
        if attempt < attempts:
            time.sleep(min(2.0, 0.2 * 2 ** (attempt - 1)))
    outcome = f"not delivered to {hook.url}: {last} after {attempts} attempt(s)"
    record(incidents, message, actor=actor, delivered=outcome)
    return outcome


__all__ = ["FIELDS", "FORMATS", "KINDS", "Message", "compose", "fields", "load_templates", "next_update_at", "record",
           "send", "update_every_s"]
