"""The send window and the identify schedule under random traffic and clock jumps."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from tether.gateway.limits import IdentifyBuckets, SendWindow

PROPERTY = settings(max_examples=200, deadline=None)

windows = st.builds(
    lambda limit, reserve, window_s: SendWindow(
        limit, window_s, min(reserve, limit - 1)
    ),
    st.integers(1, 12),
    st.integers(0, 4),
    st.sampled_from([0.5, 1.0, 60.0]),
)
# (time step, heartbeat?) pairs; steps may be negative: clock jumps back.
traffic = st.lists(
    st.tuples(st.floats(-5, 30) | st.just(0.0), st.booleans()), max_size=150
)


@PROPERTY
@given(windows, traffic)
def test_sends_never_exceed_the_limit_in_any_window(
    window: SendWindow, steps: list[tuple[float, bool]]
) -> None:
    now, clock = 0.0, float("-inf")
    sent: list[tuple[float, bool]] = []

    for dt, heartbeat in steps:
        now += dt
        clock = max(clock, now)
        before = sum(t + window.window_s > clock for t, _ in sent)
        if window.try_acquire(now, heartbeat=heartbeat):
            sent.append((clock, heartbeat))
            assert before < window.limit
            if not heartbeat:
                # Other sends never take the heartbeat reserve.
                assert before < window.limit - window.reserve
        else:
            capacity = window.limit if heartbeat else window.limit - window.reserve
            assert before >= capacity


@PROPERTY
@given(windows, traffic, st.booleans())
def test_next_free_is_the_first_time_a_send_fits(
    window: SendWindow, steps: list[tuple[float, bool]], heartbeat: bool
) -> None:
    now, clock = 0.0, float("-inf")
    for dt, kind in steps:
        now += dt
        clock = max(clock, now)
        window.try_acquire(now, heartbeat=kind)

    free_at = window.next_free(now, heartbeat=heartbeat)

    # Time never runs backwards in a window: "now" is the latest time it saw.
    latest = max(clock, now)
    assert free_at >= latest
    assert copy.deepcopy(window).try_acquire(free_at, heartbeat=heartbeat)
    if free_at > latest:
        earlier = free_at - 1e-6
        assert not copy.deepcopy(window).try_acquire(earlier, heartbeat=heartbeat)


identify_ops = st.lists(
    st.one_of(
        st.tuples(st.just("acquire"), st.integers(0, 9)),
        st.tuples(st.just("release"), st.integers(0, 9), st.booleans()),
        st.tuples(st.just("advance"), st.floats(0, 7)),
    ),
    max_size=120,
)


@PROPERTY
@given(st.integers(1, 4), identify_ops)
def test_one_identify_per_bucket_per_window(
    max_concurrency: int, ops: list[tuple[object, ...]]
) -> None:
    buckets = IdentifyBuckets(max_concurrency)
    now = 0.0
    holders: dict[int, int] = {}
    identified_at: dict[int, list[float]] = {}

    for op in ops:
        match op:
            case ("advance", float(dt)):
                now += dt
            case ("acquire", int(shard)):
                bucket = buckets.bucket(shard)
                if buckets.try_acquire(shard, now):
                    assert bucket not in holders
                    holders[bucket] = shard
            case ("release", int(shard), bool(sent)):
                bucket = buckets.bucket(shard)
                if holders.get(bucket) == shard:
                    buckets.release(shard, now, sent=sent)
                    del holders[bucket]
                    if sent:
                        identified_at.setdefault(bucket, []).append(now)

    for times in identified_at.values():
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert all(gap >= buckets.window_s for gap in gaps)
