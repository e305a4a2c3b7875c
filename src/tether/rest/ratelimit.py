"""Discord's REST rate limits, kept as pure bookkeeping: no I/O and no clock reads.

How it works
------------
Discord limits requests per *bucket*. Which bucket a route belongs to is learnt from
the ``X-RateLimit-Bucket`` header of its first answer: routes that answer with the
same hash share one bucket. The route's major parameters (``channel_id``,
``guild_id``, ``webhook_id`` and its token) split that bucket again, so two
channels never wait for each other. Every answer then says how many requests are
left in the current window (``X-RateLimit-Remaining``) and when it ends
(``X-RateLimit-Reset-After``, seconds; ``X-RateLimit-Reset``, epoch seconds, which
tells windows apart). On top of the buckets sits the global limit: 50 requests per
second by default, and a pause for everyone after a 429 with ``global: true``.

The caller asks :meth:`RateLimiter.acquire` before each request and gets either a
:class:`Permit` (send now: a slot was taken) or a :class:`Wait` (retry after
``delay_s`` seconds, or, when ``delay_s`` is None, once an answer in flight has been
fed back). Each permit is handed back exactly once, with the answer's headers, to
:meth:`RateLimiter.complete`, or to :meth:`RateLimiter.rate_limited` after a 429.
Time comes in as ``now`` (monotonic seconds), so tests drive it.

Invariants
----------
- A bucket whose limit is not known yet has at most one request in flight: the
  first answer teaches the limit before a second request is risked.
- In a window, a known bucket grants no more requests than its last ``Remaining``
  said were left, counting requests still in flight as spent.
- While the bucket is exhausted, or the global limit is reached or paused, nothing
  is granted.
- A late answer from a window that has already ended changes nothing.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "GLOBAL_LIMIT",
    "GLOBAL_PERIOD_S",
    "Permit",
    "RateLimitInfo",
    "RateLimitStatistics",
    "RateLimiter",
    "Wait",
]

#: Discord's default global limit: requests per :data:`GLOBAL_PERIOD_S` per bot.
GLOBAL_LIMIT: Final = 50
#: The period of the global limit, in seconds.
GLOBAL_PERIOD_S: Final = 1.0

# Without X-RateLimit-Reset, two answers belong to one window when their reset
# times, as seen here, differ by less than this (network delay makes them drift).
_SAME_WINDOW_TOLERANCE_S: Final = 0.25

# Two X-RateLimit-Reset values closer than this name one window: servers round
# them to the millisecond, and Discord's windows are far longer.
_EPOCH_TOLERANCE_S: Final = 0.05

# Buckets with nothing in flight and no window running are dropped this often.
_PRUNE_INTERVAL_S: Final = 60.0

# The route answered successfully without a bucket header: only the global limit.
_NO_BUCKET: Final = ""

WaitReason = Literal["global", "bucket"]


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """The rate-limit headers of one answer, parsed; absent or bad values are None.

    Attributes:
        bucket: ``X-RateLimit-Bucket``, the bucket hash.
        limit: ``X-RateLimit-Limit``, requests per window.
        remaining: ``X-RateLimit-Remaining``, requests left in this window.
        reset_epoch: ``X-RateLimit-Reset``, when the window ends (epoch seconds).
        reset_after_s: ``X-RateLimit-Reset-After``, seconds until the window ends.
        is_global: ``X-RateLimit-Global``, set on a 429 from the global limit.
        scope: ``X-RateLimit-Scope`` on a 429: ``user``, ``global`` or ``shared``.
    """

    bucket: str | None = None
    limit: int | None = None
    remaining: int | None = None
    reset_epoch: float | None = None
    reset_after_s: float | None = None
    is_global: bool = False
    scope: str | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimitInfo:
        """Parse the ``X-RateLimit-*`` headers (names in any case).

        Args:
            headers: the answer's headers.

        Returns:
            What the headers say; a header that is missing or not a number is None.
        """
        lower = {k.lower(): v for k, v in headers.items()}
        return cls(
            bucket=lower.get("x-ratelimit-bucket") or None,
            limit=_parse_int(lower.get("x-ratelimit-limit")),
            remaining=_parse_int(lower.get("x-ratelimit-remaining")),
            reset_epoch=_parse_float(lower.get("x-ratelimit-reset")),
            reset_after_s=_parse_float(lower.get("x-ratelimit-reset-after")),
            is_global=lower.get("x-ratelimit-global", "").lower() == "true",
            scope=lower.get("x-ratelimit-scope") or None,
        )


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to send one request now. Hand it back exactly once.

    Attributes:
        route: the route key (``"GET /channels/{channel_id}"``).
        major: the major parameters' values.
        bucket: the bucket hash the request was counted against, when known.
    """

    route: str
    major: str
    bucket: str | None
    # Where the slot was taken, so that it is given back there.
    _slot: tuple[str, str, str] | None
    _counts_global: bool


@dataclass(frozen=True, slots=True)
class Wait:
    """Not now: ask again later.

    Attributes:
        delay_s: seconds to wait before asking again, or None to ask again once
            an answer in flight on the same bucket has been fed back.
        reason: ``"global"`` (the global limit) or ``"bucket"`` (the route's bucket).
    """

    delay_s: float | None
    reason: WaitReason


@dataclass(frozen=True, slots=True)
class RateLimitStatistics:
    """Counters, for tests and monitoring.

    Attributes:
        granted: permits handed out.
        waits: times :meth:`RateLimiter.acquire` answered with a :class:`Wait`.
        rate_limited: 429 answers fed back.
        in_flight: permits not handed back yet.
        buckets: buckets tracked.
        routes: routes whose bucket is known.
    """

    granted: int
    waits: int
    rate_limited: int
    in_flight: int
    buckets: int
    routes: int


class _Bucket:
    """The state of one bucket: the last window seen and the requests in flight."""

    __slots__ = ("in_flight", "limit", "remaining", "reset_at", "reset_epoch")

    def __init__(self) -> None:
        # Requests per window; None until an answer said.
        self.limit: int | None = None
        # Requests left in the current window, in-flight ones counted as spent;
        # None while the limit is unknown.
        self.remaining: int | None = None
        # When the current window ends (caller's clock); None when no window runs.
        self.reset_at: float | None = None
        # The server's X-RateLimit-Reset of the current window, to tell windows apart.
        self.reset_epoch: float | None = None
        # Permits taken here and not handed back yet.
        self.in_flight = 0

    def refill(self, now: float) -> None:
        """End the window once its reset time has come: the limit is available."""
        if self.reset_at is not None and now >= self.reset_at:
            self.reset_at = None
            self.remaining = self.limit

    def learn(self, info: RateLimitInfo, now: float, margin_s: float) -> None:
        """Take in the headers of an answer counted against this bucket."""
        if info.remaining is None or info.reset_after_s is None:
            return
        if info.limit is not None:
            self.limit = info.limit
        elif self.limit is None:
            self.limit = info.remaining + 1
        reset_at = now + info.reset_after_s + margin_s

        if info.reset_epoch is not None and self.reset_epoch is not None:
            if info.reset_epoch < self.reset_epoch - _EPOCH_TOLERANCE_S:
                # A late answer from a window that is already over.
                return
            same_window = abs(info.reset_epoch - self.reset_epoch) < _EPOCH_TOLERANCE_S
        else:
            same_window = (
                self.reset_at is not None
                and abs(reset_at - self.reset_at) < _SAME_WINDOW_TOLERANCE_S
            )

        if same_window and self.remaining is not None and self.reset_at is not None:
            self.remaining = min(self.remaining, info.remaining)
            self.reset_at = max(self.reset_at, reset_at)
        else:
            # A new window. Requests still in flight may not be counted in this
            # answer yet: count them as spent rather than risk a 429.
            self.remaining = max(0, info.remaining - self.in_flight)
            self.reset_at = reset_at
            self.reset_epoch = info.reset_epoch

    def block(self, until: float) -> None:
        """Grant nothing before ``until``: a 429's ``retry_after`` overrules the
        window end known so far, earlier or later."""
        self.remaining = 0
        self.reset_at = until

    def is_idle(self, now: float) -> bool:
        return self.in_flight == 0 and (self.reset_at is None or now >= self.reset_at)


class RateLimiter:
    """Decides when each REST request may be sent. Pure: time is passed in.

    The global limit is kept as a sliding window: no ``global_period_s`` interval
    ever holds more than ``global_limit`` grants, whatever window the server counts.

    Args:
        global_limit: requests allowed per ``global_period_s`` across all routes.
        global_period_s: the period of the global limit, in seconds.
        margin_s: added to every wait that comes from the server's timing (window
            resets, ``retry_after``) and to the global period, to absorb rounding
            to the millisecond and network jitter.
    """

    def __init__(
        self,
        *,
        global_limit: int = GLOBAL_LIMIT,
        global_period_s: float = GLOBAL_PERIOD_S,
        margin_s: float = 0.0,
    ) -> None:
        if global_limit < 1 or global_period_s <= 0:
            raise ValueError("the global limit needs a positive count and period")
        if margin_s < 0:
            raise ValueError("margin_s must be 0 or more")
        self._global_limit = global_limit
        self._global_period_s = global_period_s + margin_s
        self._margin_s = margin_s

        # Route key -> bucket hash learnt from its answers (_NO_BUCKET: none).
        self._hashes: dict[str, str] = {}
        # (kind, hash or route key, major) -> bucket. Kind "hash" once the hash is
        # known, "route" for a route still waiting for its first answer.
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}
        # No request counted against the global limit before this time.
        self._global_paused_until = -math.inf
        # When the last `global_limit` requests counted globally were granted.
        self._global_grants: deque[float] = deque(maxlen=global_limit)
        # When idle buckets were last dropped.
        self._pruned_at = -math.inf

        # Counters for statistics().
        self._granted = 0
        self._waits = 0
        self._rate_limited = 0

    # Requests

    def acquire(
        self, route: str, major: str, now: float, *, counts_global: bool = True
    ) -> Permit | Wait:
        """Ask to send one request on ``route``.

        Args:
            route: the route key (method and template).
            major: the major parameters' values.
            now: the current time, monotonic seconds.
            counts_global: False for requests Discord exempts from the global
                limit (interaction responses).

        Returns:
            A :class:`Permit` (send now; one slot is taken) or a :class:`Wait`.
        """
        self._prune(now)

        if now < self._global_paused_until:
            return self._wait(self._global_paused_until - now, "global")
        if counts_global and len(self._global_grants) == self._global_limit:
            frees_at = self._global_grants[0] + self._global_period_s
            if now < frees_at:
                return self._wait(frees_at - now, "global")

        bucket_hash = self._hashes.get(route)
        slot: tuple[str, str, str] | None
        if bucket_hash == _NO_BUCKET:
            slot = None
        elif bucket_hash is None:
            slot = ("route", route, major)
        else:
            slot = ("hash", bucket_hash, major)

        if slot is not None:
            bucket = self._buckets.get(slot)
            if bucket is None:
                bucket = self._buckets[slot] = _Bucket()
            bucket.refill(now)
            if bucket.remaining is None or bucket.remaining <= 0:
                wait = self._bucket_wait(bucket, now)
                if wait is not None:
                    return wait
            bucket.in_flight += 1
            if bucket.remaining is not None:
                bucket.remaining = max(0, bucket.remaining - 1)

        if counts_global:
            self._global_grants.append(now)
        self._granted += 1
        return Permit(
            route=route,
            major=major,
            bucket=bucket_hash or None,
            _slot=slot,
            _counts_global=counts_global,
        )

    def _bucket_wait(self, bucket: _Bucket, now: float) -> Wait | None:
        """The wait for a bucket with no slot known to be free; None: try one."""
        if bucket.reset_at is not None:
            return self._wait(bucket.reset_at - now, "bucket")
        if bucket.in_flight:
            # The limit is unknown, or the window has no known end: an answer in
            # flight will tell.
            return self._wait(None, "bucket")
        # Nothing in flight and nothing known: one request finds out.
        return None

    def _wait(self, delay_s: float | None, reason: WaitReason) -> Wait:
        self._waits += 1
        return Wait(delay_s, reason)

    # Answers

    def complete(
        self,
        permit: Permit,
        now: float,
        info: RateLimitInfo | None = None,
        *,
        status: int | None = None,
    ) -> None:
        """Hand a permit back with what its answer said.

        Args:
            permit: the permit the request was sent under.
            now: the current time, monotonic seconds.
            info: the answer's rate-limit headers; None when no answer came.
            status: the answer's HTTP status; None when no answer came. A success
                without a bucket header means the route has no bucket of its own.
        """
        self._release(permit)
        if info is None:
            return
        if info.bucket is None:
            ok = status is not None and 200 <= status < 300
            if ok and permit.route not in self._hashes:
                self._hashes[permit.route] = _NO_BUCKET
            return
        self._bucket_of(permit, info.bucket).learn(info, now, self._margin_s)

    def rate_limited(
        self,
        permit: Permit,
        now: float,
        retry_after_s: float,
        *,
        is_global: bool,
        info: RateLimitInfo | None = None,
    ) -> None:
        """Hand a permit back whose answer was 429 Too Many Requests.

        Args:
            permit: the permit the request was sent under.
            now: the current time, monotonic seconds.
            retry_after_s: the answer's ``retry_after``, seconds.
            is_global: whether the global limit was hit: everything pauses.
            info: the answer's rate-limit headers, if any.
        """
        self._release(permit)
        self._rate_limited += 1
        until = now + max(0.0, retry_after_s) + self._margin_s
        if is_global:
            self._global_paused_until = max(self._global_paused_until, until)
            return

        bucket: _Bucket | None
        if info is not None and info.bucket is not None:
            bucket = self._bucket_of(permit, info.bucket)
        elif permit._slot is not None:
            bucket = self._buckets.get(permit._slot)
        else:
            # A route thought to have no bucket was limited after all.
            del self._hashes[permit.route]
            slot = ("route", permit.route, permit.major)
            bucket = self._buckets.setdefault(slot, _Bucket())
        if bucket is not None:
            bucket.block(until)

    def _release(self, permit: Permit) -> None:
        if permit._slot is None:
            return
        bucket = self._buckets.get(permit._slot)
        if bucket is not None and bucket.in_flight > 0:
            bucket.in_flight -= 1

    def _bucket_of(self, permit: Permit, bucket_hash: str) -> _Bucket:
        """The bucket an answer's hash names, learning the route's hash."""
        self._hashes[permit.route] = bucket_hash
        slot = ("hash", bucket_hash, permit.major)
        bucket = self._buckets.get(slot)
        if bucket is None:
            bucket = self._buckets[slot] = _Bucket()
        # The route's provisional bucket is not used again once the hash is known.
        provisional = ("route", permit.route, permit.major)
        stale = self._buckets.get(provisional)
        if stale is not None and stale.in_flight == 0:
            del self._buckets[provisional]
        return bucket

    # Inspection

    def bucket_hash(self, route: str) -> str | None:
        """The bucket hash learnt for ``route``, or None (unknown, or no bucket)."""
        return self._hashes.get(route) or None

    def global_paused_until(self) -> float | None:
        """When a global pause ends, or None if none was ordered."""
        if self._global_paused_until == -math.inf:
            return None
        return self._global_paused_until

    def statistics(self) -> RateLimitStatistics:
        """Counters of what was granted, waited for and rate limited."""
        return RateLimitStatistics(
            granted=self._granted,
            waits=self._waits,
            rate_limited=self._rate_limited,
            in_flight=sum(b.in_flight for b in self._buckets.values()),
            buckets=len(self._buckets),
            routes=sum(1 for h in self._hashes.values() if h != _NO_BUCKET),
        )

    def _prune(self, now: float) -> None:
        """Drop idle buckets now and then, so that memory follows current use."""
        if now - self._pruned_at < _PRUNE_INTERVAL_S:
            return
        self._pruned_at = now
        for slot in [s for s, b in self._buckets.items() if b.is_idle(now)]:
            del self._buckets[slot]


def _parse_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def _parse_float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        result = float(value)
    except ValueError:
        return None
    return result if math.isfinite(result) else None
