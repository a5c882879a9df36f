"""Oneiric core: the engine every front door (console, CLI, headless host) stands on.

This package never imports Textual; `tests/test_layering.py` proves it.
"""

__version__ = "0.1.0"
