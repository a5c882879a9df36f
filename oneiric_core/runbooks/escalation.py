"""Severities, response targets and contacts, from app.yml `escalation:` (settings.EscalationOptions)."""

from __future__ import annotations

from typing import Any

SEVERITIES = ("P0", "P1", "P2", "P3")


def minutes_text(value: float | None) -> str:
    """A number of minutes as an operator reads it: "15 min", "4 h"."""
    if value is None:
        return "none set"
    if value >= 60 and value % 60 == 0:
        return f"{value / 60:g} h"
    return f"{value:g} min"


class Escalation:
    def __init__(self, options: Any) -> None:
        self.options = options

    @classmethod
    def from_engine(cls, engine: Any) -> Escalation:
        return cls(engine.settings.app.escalation)

    @property
    def roles(self) -> list[str]:
        return list(self.options.roles)

    def check_severity(self, severity: str) -> str:
        from ..errors import UsageError

        sev = str(severity).upper()
        if sev not in SEVERITIES:
            raise UsageError(f"'{severity}' is not a severity; use one of {', '.join(SEVERITIES)}.")
        return sev

    def response_min(self, severity: str | None) -> float | None:
        """The response target in force (the `response_source` runbook's, else the first one)."""
        if severity is None or severity not in self.options.severities:
            return None
        targets = self.options.severities[severity].response_min
        if self.options.response_source in targets:
            return targets[self.options.response_source]
        return next(iter(targets.values()), None)

    def response_text(self, severity: str | None) -> str:
        if severity is None or severity not in self.options.severities:
            return "no severity set"
        sev = self.options.severities[severity]
        main = self.response_min(severity)
        others = [f"{src}: {minutes_text(v)}" for src, v in sev.response_min.items()
                  if src != self.options.response_source]
        text = f"{severity} {sev.name}: respond within {minutes_text(main)} ({self.options.response_source})"
        if others:
            text += f"; other runbooks say {', '.join(others)}"
        if sev.resolve_min is not None:
            text += f"; resolve within {minutes_text(sev.resolve_min)}"
        return text

    def contact(self, role: str) -> dict[str, Any]:
        c = self.options.roles.get(role)
        if c is None:
            return {"role": role, "name": role, "missing": True}
        return {"role": role, "name": c.name or role, "email": c.email, "page": c.page, "chat": c.chat,
                "responsibility": c.responsibility}

    def brief(self, role: str, severity: str | None) -> dict[str, Any]:
        return {"contact": self.contact(role), "severity": severity, "response": self.response_text(severity),
                "response_min": self.response_min(severity),
                "chain": (list(self.options.severities[severity].escalate_to)
                          if severity in self.options.severities else [])}

    def lines(self, role: str, severity: str | None) -> list[str]:
        c = self.contact(role)
        if c.get("missing"):
            return [f"no contact is configured for the role '{role}' (app.yml escalation.roles)"]
        reach = ", ".join(f"{k} {c[k]}" for k in ("page", "email", "chat") if c.get(k))
        out = [f"{c['name']} ({c['responsibility']}): {reach or 'no contact details'}"]
        out.append(self.response_text(severity))
        return out
