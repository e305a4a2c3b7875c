"""Identify queues: Discord's identify concurrency kept across every shard of a bot.

Discord lets a bot start ``max_concurrency`` sessions per 5-second window, one per
identify bucket (``shard_id % max_concurrency``). A shard that needs to IDENTIFY
takes a turn from an :class:`IdentifyQueue` first; RESUME needs no turn.

:class:`LocalIdentifyQueue` keeps the rule for the shards of one process. The
interface is small on purpose so that a queue shared between machines (over Redis,
say) can implement it without any change to the callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Final, Protocol

__all__ = [
    "IDENTIFY_WINDOW_S",
    "IdentifyQueue",
    "LocalIdentifyQueue",
    "identify_bucket",
]

logger = logging.getLogger(__name__)

#: Discord's identify window: one IDENTIFY per bucket per this many seconds.
IDENTIFY_WINDOW_S: Final = 5.0


def identify_bucket(shard_id: int, max_concurrency: int) -> int:
    """Return the identify bucket of a shard (``shard_id % max_concurrency``)."""
    return shard_id % max(1, max_concurrency)


class IdentifyQueue(Protocol):
    """Hands out identify turns. ``async with queue.turn(shard_id):`` then IDENTIFY."""

    def turn(self, shard_id: int) -> contextlib.AbstractAsyncContextManager[None]:
        """Wait for the shard's turn; the turn is used once the block exits.

        The IDENTIFY frame must be sent inside the block.
        """
        ...


class LocalIdentifyQueue:
    """An in-process identify queue.

    Turns in one bucket are spaced by ``window_s``, in the order they were asked
    for; buckets do not wait for each other.

    Args:
        max_concurrency: from ``GET /gateway/bot``; settable later with
            :meth:`set_max_concurrency`.
        window_s: the spacing of turns in one bucket.
        clock: a monotonic clock (seconds).
    """

    def __init__(
        self,
        max_concurrency: int = 1,
        *,
        window_s: float = IDENTIFY_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_concurrency = max(1, max_concurrency)
        self.window_s = window_s
        self._clock = clock
        self._locks: dict[int, asyncio.Lock] = {}
        # When each bucket's last turn ended (the IDENTIFY was sent).
        self._last: dict[int, float] = {}
        #: (clock time, shard id) of every turn given, for tests and logs.
        self.history: list[tuple[float, int]] = []

    def set_max_concurrency(self, max_concurrency: int) -> None:
        """Change ``max_concurrency`` (a new ``GET /gateway/bot`` answer)."""
        self.max_concurrency = max(1, max_concurrency)

    @contextlib.asynccontextmanager
    async def turn(self, shard_id: int) -> AsyncIterator[None]:
        bucket = identify_bucket(shard_id, self.max_concurrency)
        lock = self._locks.setdefault(bucket, asyncio.Lock())
        async with lock:
            last = self._last.get(bucket)
            if last is not None:
                wait = last + self.window_s - self._clock()
                if wait > 0:
                    logger.debug(
                        "shard %d waits %.2f s for identify bucket %d",
                        shard_id,
                        wait,
                        bucket,
                    )
                    await asyncio.sleep(wait)
            self.history.append((self._clock(), shard_id))
            try:
                yield
            finally:
                self._last[bucket] = self._clock()
