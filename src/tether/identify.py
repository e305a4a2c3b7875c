"""Identify queues: Discord's identify limits kept across every shard of a bot.

Discord lets a bot start ``max_concurrency`` sessions per 5-second window, one per
identify bucket (``shard_id % max_concurrency``), and ``session_start_limit.total``
sessions per day. A shard that needs to IDENTIFY takes a turn from an
:class:`IdentifyQueue` first; RESUME needs no turn and costs nothing.

:class:`LocalIdentifyQueue` keeps both limits for the shards of one process. Going
over the daily limit gets the bot's token reset, so the queue refuses a turn with
:class:`SessionStartLimitError` when no session start is left, before anything is
sent.

The interface is small on purpose: :meth:`IdentifyQueue.turn` is all a driver
calls, and :meth:`LimitedIdentifyQueue.update_limits` is how a client passes on
what ``GET /gateway/bot`` answered. A queue shared between machines (over Redis,
say) implements the same two methods and no caller changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from tether.errors import FatalError

if TYPE_CHECKING:
    from tether.rest.gateway import SessionStartLimit

__all__ = [
    "IDENTIFY_WINDOW_S",
    "IdentifyQueue",
    "LimitedIdentifyQueue",
    "LocalIdentifyQueue",
    "SessionStartLimitError",
    "TurnNotUsed",
    "identify_bucket",
]

logger = logging.getLogger(__name__)

#: Discord's identify window: one IDENTIFY per bucket per this many seconds.
IDENTIFY_WINDOW_S: Final = 5.0


def identify_bucket(shard_id: int, max_concurrency: int) -> int:
    """Return the identify bucket of a shard (``shard_id % max_concurrency``)."""
    return shard_id % max(1, max_concurrency)


class SessionStartLimitError(FatalError):
    """A shard was not identified: the daily session start limit is used up.

    Identifying anyway would exceed ``session_start_limit`` and Discord would reset
    the bot's token. Nothing was sent. Sessions that are kept still resume (RESUME
    is free); new ones can start once the limit refills.

    Attributes:
        shard_id: the shard that was refused.
        remaining: session starts left, as the queue counts them.
        total: session starts allowed per window.
        reset_after_s: seconds until the limit refills, when known.
    """

    def __init__(
        self,
        shard_id: int,
        *,
        remaining: int,
        total: int,
        reset_after_s: float | None,
    ) -> None:
        refill = (
            f"it refills in {reset_after_s:.0f} s"
            if reset_after_s is not None
            else "it refills within 24 h"
        )
        super().__init__(
            f"shard {shard_id} was not identified: {remaining} of {total} daily "
            f"session starts left, and identifying past the limit gets the token "
            f"reset; {refill}"
        )
        self.shard_id = shard_id
        self.remaining = remaining
        self.total = total
        self.reset_after_s = reset_after_s


class TurnNotUsed(Exception):
    """Raised inside a turn's block to give the turn back: nothing was sent.

    A queue that sees it neither counts a session start nor delays the bucket's
    next turn, and does not let it propagate.
    """


class IdentifyQueue(Protocol):
    """Hands out identify turns. ``async with queue.turn(shard_id):`` then IDENTIFY."""

    def turn(self, shard_id: int) -> contextlib.AbstractAsyncContextManager[None]:
        """Wait for the shard's turn; the turn is used once the block exits.

        The IDENTIFY frame must be sent inside the block. Raise
        :class:`TurnNotUsed` inside it when nothing was sent after all (the
        connection ended while the shard waited).

        Raises:
            SessionStartLimitError: (queues that track the daily limit) no session
                start is left; the shard must not identify.
        """
        ...


@runtime_checkable
class LimitedIdentifyQueue(IdentifyQueue, Protocol):
    """An identify queue that also keeps the daily session start limit."""

    def update_limits(self, limit: SessionStartLimit) -> None:
        """Take in a ``GET /gateway/bot`` answer (concurrency and daily limit)."""
        ...


class LocalIdentifyQueue:
    """An in-process identify queue.

    Turns in one bucket are spaced by ``window_s`` plus ``margin_s``, in the order
    they were asked for; buckets do not wait for each other. The margin absorbs
    the jitter between the moment a turn ends here and the moment Discord counts
    the IDENTIFY, which would otherwise get it refused with op 9.

    Once :meth:`update_limits` has told it the session start limit, each turn
    counts one start, and a turn is refused with :class:`SessionStartLimitError`
    when ``reserve`` starts or fewer are left.

    Args:
        max_concurrency: from ``GET /gateway/bot``; settable later with
            :meth:`set_max_concurrency` or :meth:`update_limits`.
        window_s: the identify window (Discord: 5 s).
        margin_s: added to the window; 5 % of it by default.
        reserve: session starts never used (a margin for other processes that
            share the token without sharing this queue).
        clock: a monotonic clock (seconds).
    """

    def __init__(
        self,
        max_concurrency: int = 1,
        *,
        window_s: float = IDENTIFY_WINDOW_S,
        margin_s: float | None = None,
        reserve: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if reserve < 0:
            raise ValueError(f"reserve must not be negative, not {reserve}")
        self.max_concurrency = max(1, max_concurrency)
        self.window_s = window_s
        self.margin_s = window_s / 20 if margin_s is None else margin_s
        self.reserve = reserve
        self._clock = clock
        self._locks: dict[int, asyncio.Lock] = {}
        # When each bucket's last turn ended (the IDENTIFY was sent).
        self._last: dict[int, float] = {}
        # The daily limit, once known: starts left, the total, when it refills.
        self._remaining: int | None = None
        self._total = 0
        self._refills_at: float | None = None
        #: (clock time, shard id) of every turn given, for tests and logs.
        self.history: list[tuple[float, int]] = []

    def set_max_concurrency(self, max_concurrency: int) -> None:
        """Change ``max_concurrency`` (a new ``GET /gateway/bot`` answer)."""
        self.max_concurrency = max(1, max_concurrency)

    def update_limits(self, limit: SessionStartLimit) -> None:
        """Take in a ``GET /gateway/bot`` answer.

        Discord's count replaces the queue's own: it also counts the starts of
        other processes using the token.
        """
        self.set_max_concurrency(limit.max_concurrency)
        self._remaining = limit.remaining
        self._total = limit.total
        self._refills_at = self._clock() + limit.reset_after_s
        logger.debug(
            "session start limit: %d of %d left, refills in %.0f s",
            limit.remaining,
            limit.total,
            limit.reset_after_s,
        )

    @property
    def session_starts_remaining(self) -> int | None:
        """Session starts left today as counted here, or None before any limit."""
        self._refill()
        return self._remaining

    @contextlib.asynccontextmanager
    async def turn(self, shard_id: int) -> AsyncIterator[None]:
        """Wait for the shard's turn (see :meth:`IdentifyQueue.turn`).

        Raises:
            SessionStartLimitError: no session start is left; nothing is sent.
        """
        self._check_limit(shard_id)
        bucket = identify_bucket(shard_id, self.max_concurrency)
        lock = self._locks.setdefault(bucket, asyncio.Lock())
        async with lock:
            last = self._last.get(bucket)
            if last is not None:
                wait = last + self.window_s + self.margin_s - self._clock()
                if wait > 0:
                    logger.debug(
                        "shard %d waits %.2f s for identify bucket %d",
                        shard_id,
                        wait,
                        bucket,
                    )
                    await asyncio.sleep(wait)
            # Checked again: other buckets may have used the last starts meanwhile.
            self._check_limit(shard_id)
            if self._remaining is not None:
                self._remaining -= 1
            try:
                yield
            except TurnNotUsed:
                if self._remaining is not None:
                    self._remaining += 1
                return
            except BaseException:
                # Unknown whether IDENTIFY went out: count the turn as used.
                self._last[bucket] = self._clock()
                raise
            self.history.append((self._clock(), shard_id))
            self._last[bucket] = self._clock()

    def _refill(self) -> None:
        if self._refills_at is not None and self._clock() >= self._refills_at:
            self._remaining = self._total
            self._refills_at = None

    def _check_limit(self, shard_id: int) -> None:
        self._refill()
        remaining = self._remaining
        if remaining is None or remaining > self.reserve:
            return
        refills_at = self._refills_at
        raise SessionStartLimitError(
            shard_id,
            remaining=remaining,
            total=self._total,
            reset_after_s=(
                max(0.0, refills_at - self._clock()) if refills_at is not None else None
            ),
        )
