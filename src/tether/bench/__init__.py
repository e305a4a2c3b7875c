"""Benchmarks: tether against discord.py and hikari on the local emulator.

Run ``python -m tether.bench`` (``make bench``); see ``docs/performance.md`` for
what each workload measures and the latest results.
"""

from __future__ import annotations

__all__: list[str] = []
