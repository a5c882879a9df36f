"""Runbooks and incidents (ARCHITECTURE §8): decision trees as data, walked against the engine.

model.py    the tree format (nodes, branches) and its structural checks
loader.py   reading settings/runbooks/*.yml into a Catalog, refusing broken trees
facts.py    named checks over the engine, each a value plus evidence
actions.py  remediations, executed through the engine's approval path
walker.py   the pure state machine that walks one tree
escalation.py  severities, response targets and contacts from app.yml `escalation:`
incidents.py   incidents and their timelines in the state store
export.py   post-mortem and escalation hand-off in Markdown
doctor.py   every automated check of every tree, run once (`oneiric runbook check`)
(the commands, `oneiric runbook ...` and `oneiric incident ...`, are oneiric_core/cli/runbook.py)

Nothing here is imported by the engine at start-up: the CLI and the console import these
modules when an operator asks for them.
"""
