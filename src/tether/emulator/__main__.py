"""``python -m tether.emulator``: the same as ``tether emulate``."""

from __future__ import annotations

import sys

from tether.emulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
