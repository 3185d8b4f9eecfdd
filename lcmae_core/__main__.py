"""``python -m lcmae_core COMMAND ...``: see ``lcmae_core.cli``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
