"""`python -m oneiric_core`: the `oneiric` command, for when the script is not on PATH."""

import sys

from .cli import main

if __name__ == "__main__":  # importing the module (tests/test_layering.py does) runs nothing
    sys.exit(main())
