"""tether: a reliable, fast and light asyncio library for Discord's real-time APIs."""

from __future__ import annotations

__version__ = "0.1.0"
