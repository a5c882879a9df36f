"""Runbooks and incidents (docs/architecture.md §8): decision trees as data, walked against the engine.

model.py    the tree format (nodes, branches) and its structural checks
loader.py   reading settings/runbooks/*.yml into a Catalog, refusing broken trees
facts.py    named checks over the engine, each a value plus evidence
actions.py  remediations, executed through the engine's approval path
walker.py   the pure state machine that walks one tree
escalation.py  severities, response targets and contacts from app.yml `escalation:`
incidents.py   incidents and their timelines in the state store
export.py   post-mortem and escalation hand-off in Markdown
doctor.py   every automated check of every tree, run once (`oneiric runbook check`)
drive.py    walking a tree to its end without the console: scripted answers, a prompt, or neither
drills.py   each tree tested against the faults it claims to handle, on a throw-away host
faults.py   the faults a drill injects into its copy of the settings and state
drill_providers.py  a provider for drills only (a start that takes as long as the drill says)
(the commands, `oneiric runbook ...` and `oneiric incident ...`, are oneiric_core/cli/runbook.py, with
walk and drill in cli/runbook_walk.py)

Nothing here is imported by the engine at start-up: the CLI and the console import these
modules when an operator asks for them.
"""
