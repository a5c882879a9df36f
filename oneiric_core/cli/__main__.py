"""`python -m oneiric_core.cli`: the same as the `oneiric` script."""

import sys

from .main import main

if __name__ == "__main__":  # importing the module runs nothing
    sys.exit(main())
