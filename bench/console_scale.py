"""Benchmark: the console at 50,000 components against the headless host, in one run.

`bench/console.py --scale` under its own name, so that `make bench` lists it beside the
others (the Makefile runs every BENCHES entry as `bench/NAME.py --check`). See the
"scale" section of bench/console.py for what is measured and the targets (docs/architecture.md §11).

Usage:  .venv/bin/python bench/console_scale.py [--quick] [--check] [--runs N] [--components N] [--keep]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import console  # noqa: E402

if __name__ == "__main__":
    console.main(["--scale", *sys.argv[1:]])
