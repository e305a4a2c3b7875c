"""The gateway protocol with no I/O: opcodes, codec, limits and the state machine.

Nothing in this package imports asyncio, socket or time: the current time and
randomness come in as arguments, so every rule can be tested without sockets.
"""

from __future__ import annotations
