"""Send-rate and identify-concurrency arithmetic, with the time passed in.

Two limits of Discord's gateway live here, as pure bookkeeping that never reads a
clock and never waits:

* :class:`SendWindow`: at most ``limit`` frames per ``window_s`` on one connection
  (120 per 60 s), with ``reserve`` of them kept for heartbeats so that a burst of
  commands can never starve the heartbeat and get the connection closed.
* :class:`IdentifyBuckets`: one IDENTIFY per identify bucket
  (``shard_id % max_concurrency``) per 5-second window, across all the shards of
  one bot. The asyncio identify queue asks it when a shard may identify.

Both answer "may I now?" (``try_acquire``) and "when could I?" (``next_free``);
the caller does the waiting.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from tether.errors import LocalProtocolError

__all__ = [
    "IDENTIFY_WINDOW_S",
    "IdentifyBuckets",
    "SendWindow",
    "identify_bucket",
]

#: Discord's identify-concurrency window, in seconds.
IDENTIFY_WINDOW_S: Final[float] = 5.0


class SendWindow:
    """A sliding-window send limit for one connection.

    No half-open interval of ``window_s`` seconds ever holds more than ``limit``
    sends. Heartbeats may use every slot; other sends leave the last ``reserve``
    slots free, so a heartbeat always finds room.

    Time only moves forward: a ``now`` earlier than one seen before is taken as
    the latest time seen.

    Args:
        limit: sends allowed per window (Discord: 120).
        window_s: the window length in seconds (Discord: 60).
        reserve: slots only heartbeats may use.

    Raises:
        ValueError: ``limit`` is not positive, ``window_s`` is not positive, or
            ``reserve`` is negative or leaves no slot for other sends.
    """

    __slots__ = ("_last", "_sent", "limit", "reserve", "window_s")

    def __init__(
        self, limit: int = 120, window_s: float = 60.0, reserve: int = 5
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        if not window_s > 0:
            raise ValueError(f"window_s must be positive, not {window_s}")
        if not 0 <= reserve < limit:
            raise ValueError(f"reserve must be in [0, {limit}), not {reserve}")

        #: Sends allowed per window.
        self.limit = limit
        #: Window length in seconds.
        self.window_s = window_s
        #: Slots kept for heartbeats.
        self.reserve = reserve
        # Times of the sends still inside the window, oldest first.
        self._sent: deque[float] = deque()
        # The latest time seen, so that time never runs backwards here.
        self._last = float("-inf")

    def try_acquire(self, now: float, *, heartbeat: bool = False) -> bool:
        """Take a slot for a send at ``now`` if the window has one.

        Args:
            now: the current time in seconds.
            heartbeat: whether the send is a heartbeat (it may use the reserve).

        Returns:
            True when the slot was taken and the frame may go out now.
        """
        now = self._expire(now)
        if len(self._sent) >= self._capacity(heartbeat):
            return False
        self._sent.append(now)
        return True

    def next_free(self, now: float, *, heartbeat: bool = False) -> float:
        """Return the earliest time, not before ``now``, at which a slot is free.

        Args:
            now: the current time in seconds.
            heartbeat: whether the send is a heartbeat.
        """
        now = self._expire(now)
        excess = len(self._sent) - self._capacity(heartbeat)
        if excess < 0:
            return now
        # The oldest sends must leave the window until one slot opens.
        return self._sent[excess] + self.window_s

    def available(self, now: float, *, heartbeat: bool = False) -> int:
        """Return how many sends of this kind the window allows at ``now``."""
        now = self._expire(now)
        return max(0, self._capacity(heartbeat) - len(self._sent))

    def used(self, now: float) -> int:
        """Return how many sends are inside the window ending at ``now``."""
        self._expire(now)
        return len(self._sent)

    def _capacity(self, heartbeat: bool) -> int:
        return self.limit if heartbeat else self.limit - self.reserve

    def _expire(self, now: float) -> float:
        """Clamp ``now`` to the latest time seen and drop sends that left."""
        now = max(now, self._last)
        self._last = now
        # The same sum as in next_free, so that both agree to the last bit.
        while self._sent and self._sent[0] + self.window_s <= now:
            self._sent.popleft()
        return now

    def __repr__(self) -> str:
        return (
            f"SendWindow(limit={self.limit}, window_s={self.window_s}, "
            f"reserve={self.reserve}, in_window={len(self._sent)})"
        )


def identify_bucket(shard_id: int, max_concurrency: int) -> int:
    """Return the identify bucket of a shard: ``shard_id % max_concurrency``.

    Args:
        shard_id: the shard, 0 or more.
        max_concurrency: ``session_start_limit.max_concurrency`` from
            ``GET /gateway/bot``, 1 or more.

    Raises:
        ValueError: ``shard_id`` is negative or ``max_concurrency`` below 1.
    """
    if shard_id < 0:
        raise ValueError(f"shard_id must not be negative, not {shard_id}")
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, not {max_concurrency}")
    return shard_id % max_concurrency


class IdentifyBuckets:
    """The identify schedule of one bot: one IDENTIFY per bucket per window.

    A shard that may identify takes its bucket with :meth:`try_acquire`, sends
    IDENTIFY, then calls :meth:`release` with ``sent=True``: the bucket's window
    starts when the frame left, and the bucket reopens ``window_s`` later. A
    shard that lost its connection before sending releases with ``sent=False``
    and the bucket is free again at once. While a bucket is held nobody else in
    it may identify.

    Args:
        max_concurrency: identifies allowed per window across buckets
            (``session_start_limit.max_concurrency``).
        window_s: the window length in seconds (Discord: 5).

    Raises:
        ValueError: ``max_concurrency`` below 1 or ``window_s`` not positive.
    """

    __slots__ = ("_holders", "_reopens_at", "max_concurrency", "window_s")

    def __init__(
        self, max_concurrency: int, *, window_s: float = IDENTIFY_WINDOW_S
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(
                f"max_concurrency must be at least 1, not {max_concurrency}"
            )
        if not window_s > 0:
            raise ValueError(f"window_s must be positive, not {window_s}")

        #: Number of buckets.
        self.max_concurrency = max_concurrency
        #: Window length in seconds.
        self.window_s = window_s
        # bucket -> the shard holding it (it may identify now, has not yet sent).
        self._holders: dict[int, int] = {}
        # bucket -> time at which its last IDENTIFY's window ends.
        self._reopens_at: dict[int, float] = {}

    def bucket(self, shard_id: int) -> int:
        """Return the bucket of ``shard_id``."""
        return identify_bucket(shard_id, self.max_concurrency)

    def try_acquire(self, shard_id: int, now: float) -> bool:
        """Take the bucket of ``shard_id`` if it is free at ``now``.

        Returns:
            True when the shard may send IDENTIFY now; it must then call
            :meth:`release`.
        """
        bucket = self.bucket(shard_id)
        if bucket in self._holders:
            return False
        if now < self._reopens_at.get(bucket, float("-inf")):
            return False
        self._holders[bucket] = shard_id
        return True

    def release(self, shard_id: int, now: float, *, sent: bool = True) -> None:
        """Give the bucket back.

        Args:
            shard_id: the shard that holds its bucket.
            now: the current time in seconds.
            sent: whether IDENTIFY was sent; its window then starts at ``now``.

        Raises:
            LocalProtocolError: ``shard_id`` does not hold its bucket.
        """
        bucket = self.bucket(shard_id)
        if self._holders.get(bucket) != shard_id:
            raise LocalProtocolError(
                f"shard {shard_id} released identify bucket {bucket} it does not hold"
            )
        del self._holders[bucket]
        if sent:
            self._reopens_at[bucket] = now + self.window_s

    def next_free(self, shard_id: int, now: float) -> float | None:
        """Return when the bucket of ``shard_id`` is free, not before ``now``.

        Returns:
            A time in seconds, or None while another shard holds the bucket
            (it frees on that shard's :meth:`release`).
        """
        bucket = self.bucket(shard_id)
        if bucket in self._holders:
            return None
        return max(now, self._reopens_at.get(bucket, now))

    def is_held(self, shard_id: int) -> bool:
        """Return whether the bucket of ``shard_id`` is held by some shard."""
        return self.bucket(shard_id) in self._holders

    def __repr__(self) -> str:
        return (
            f"IdentifyBuckets(max_concurrency={self.max_concurrency}, "
            f"window_s={self.window_s}, held={sorted(self._holders)})"
        )
