"""`oneiric runbook check`: run every automated check of every tree once, like a doctor.

Checks that need no parameter run once per distinct (fact, args); checks about one key
(`key.*`, `provider.*`) run for the keys the triage flags, so the report stays short. Probes
and other checks with side effects are not run here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .fact_index import GLOBAL_SIDE_EFFECT_FREE
from .facts import FactContext, evaluate
from .loader import Catalog

PER_KEY = ("key.activity", "key.state", "key.last_swap", "key.error_class", "key.health", "key.winner",
           "config.selection_applied")
BAD = {"failing", "stale", "invalid", "open", "half-open", "down", "one-corrupt", "several-corrupt", "failed", "above",
       "rolled-back", "misconfigured", "paused", "draining", "drained", "blocked", "increasing", "slow", "differs",
       "dead",
       "remote", "config", "unsigned", "unverified"}


@dataclass
class Finding:
    fact: str
    args: dict[str, Any]
    value: str
    evidence: list[str]
    trees: list[str] = field(default_factory=list)
    subject: str = ""

    @property
    def bad(self) -> bool:
        return self.value in BAD

    def to_dict(self) -> dict[str, Any]:
        return {"fact": self.fact, "args": self.args, "subject": self.subject, "value": self.value,
                "problem": self.bad, "evidence": self.evidence, "trees": self.trees}


async def run_checks(catalog: Catalog, engine: Any) -> list[Finding]:
    uses: dict[tuple[str, str], tuple[dict[str, Any], list[str]]] = {}
    for tree in catalog.trees.values():
        for node in tree.checks():
            if node.fact in GLOBAL_SIDE_EFFECT_FREE:
                key = (node.fact, repr(sorted(node.args.items())))
                entry = uses.setdefault(key, (dict(node.args), []))
                if tree.id not in entry[1]:
                    entry[1].append(tree.id)
    findings: list[Finding] = []
    # The triage first (it sums up the rest), then the others by name.
    for (fact, _), (args, trees) in sorted(uses.items(), key=lambda kv: (kv[0][0] != "engine.overview", kv[0])):
        result = await evaluate(fact, FactContext(engine, {}, args))
        findings.append(Finding(fact, args, result.value, result.evidence, trees))
    flagged = []
    for row in engine.components():
        if (row.state == "failed" or row.activity != "active" or row.misconfigured or row.health == "failed"
                or (row.last_swap or {}).get("outcome") in ("rolled-back", "failed")):
            flagged.append(row.ref)
    users = {fact: sorted({t.id for t in catalog.trees.values() for n in t.checks() if n.fact == fact})
             for fact in PER_KEY}
    for ref in flagged[:20]:
        for fact in PER_KEY:
            params = {"domain": ref.domain.value, "key": ref.key}
            result = await evaluate(fact, FactContext(engine, params, {}))
            findings.append(Finding(fact, {}, result.value, result.evidence, users[fact], subject=str(ref)))
    return findings
