"""The `oneiric` command: quick looks and scripts over the same engine the console uses.

One module per command group, each adding its own parsers (parser.py has the conventions
they share) and implementing its commands; what reaches the terminal goes through output.py.
Every read command has `--json` with a stable shape (README "JSON shapes").
"""

from __future__ import annotations

from .main import main, run

__all__ = ["main", "run"]
