"""Every fact the trees may name: facts.py's own, the operations runbooks' (facts_ops.py) and
the fleet's (facts_fleet.py), in one table. The loader and the walker look facts up here, so
importing one module brings them all, and facts.py needs no import of the modules that add
to it."""

from __future__ import annotations

from . import facts, facts_fleet, facts_ops
from .facts import FACTS

# What `oneiric runbook check` runs: every fact that needs no parameter and changes nothing.
GLOBAL_SIDE_EFFECT_FREE = (facts.GLOBAL_SIDE_EFFECT_FREE + facts_ops.GLOBAL_SIDE_EFFECT_FREE
                           + facts_fleet.GLOBAL_SIDE_EFFECT_FREE)

__all__ = ["FACTS", "GLOBAL_SIDE_EFFECT_FREE"]
