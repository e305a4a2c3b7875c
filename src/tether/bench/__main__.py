"""``python -m tether.bench``."""

from __future__ import annotations

from tether.bench.runner import main

raise SystemExit(main())
