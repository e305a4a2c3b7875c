"""Send-window and identify-bucket arithmetic, with the time passed in."""

from __future__ import annotations

import pytest

from tether.errors import LocalProtocolError
from tether.gateway.limits import IdentifyBuckets, SendWindow, identify_bucket

# SendWindow


def test_defaults_follow_discord_120_per_60_seconds_with_5_for_heartbeats() -> None:
    window = SendWindow()

    sent = sum(window.try_acquire(0.0) for _ in range(200))

    assert sent == 115
    assert sum(window.try_acquire(0.0, heartbeat=True) for _ in range(10)) == 5
    assert window.used(0.0) == 120


def test_other_sends_never_take_the_heartbeat_reserve() -> None:
    window = SendWindow(limit=4, window_s=10.0, reserve=2)

    assert [window.try_acquire(0.0) for _ in range(3)] == [True, True, False]
    assert window.available(0.0) == 0
    assert window.available(0.0, heartbeat=True) == 2


def test_slots_free_when_sends_leave_the_window() -> None:
    window = SendWindow(limit=3, window_s=10.0, reserve=1)
    window.try_acquire(1.0)
    window.try_acquire(2.0)

    assert window.next_free(5.0) == 11.0
    assert not window.try_acquire(10.999)
    assert window.try_acquire(11.0)
    assert window.next_free(11.0) == 12.0


def test_next_free_for_heartbeats_counts_the_reserve() -> None:
    window = SendWindow(limit=3, window_s=10.0, reserve=1)
    for t in (1.0, 2.0, 3.0):
        window.try_acquire(t, heartbeat=True)

    assert window.next_free(4.0, heartbeat=True) == 11.0
    assert window.next_free(4.0) == 12.0


def test_next_free_is_now_when_a_slot_is_open() -> None:
    assert SendWindow().next_free(42.0) == 42.0


def test_time_going_backwards_counts_as_the_latest_time() -> None:
    window = SendWindow(limit=2, window_s=10.0, reserve=0)
    window.try_acquire(100.0)
    window.try_acquire(100.0)

    assert not window.try_acquire(50.0)
    assert window.next_free(50.0) == 110.0


@pytest.mark.parametrize(
    ("limit", "window_s", "reserve"),
    [(0, 60.0, 0), (10, 0.0, 0), (10, 60.0, -1), (10, 60.0, 10)],
)
def test_send_window_refuses_nonsense(
    limit: int, window_s: float, reserve: int
) -> None:
    with pytest.raises(ValueError):
        SendWindow(limit, window_s, reserve)


# Identify buckets


@pytest.mark.parametrize(
    ("shard_id", "max_concurrency", "bucket"),
    [(0, 1, 0), (5, 1, 0), (5, 16, 5), (17, 16, 1), (31, 16, 15)],
)
def test_identify_bucket_is_shard_id_modulo_max_concurrency(
    shard_id: int, max_concurrency: int, bucket: int
) -> None:
    assert identify_bucket(shard_id, max_concurrency) == bucket


@pytest.mark.parametrize(("shard_id", "max_concurrency"), [(-1, 1), (0, 0)])
def test_identify_bucket_refuses_nonsense(shard_id: int, max_concurrency: int) -> None:
    with pytest.raises(ValueError):
        identify_bucket(shard_id, max_concurrency)


def test_one_identify_per_bucket_per_five_seconds() -> None:
    buckets = IdentifyBuckets(max_concurrency=1)
    assert buckets.try_acquire(0, 0.0)
    buckets.release(0, 1.0, sent=True)

    assert not buckets.try_acquire(1, 5.999)
    assert buckets.next_free(1, 2.0) == 6.0
    assert buckets.try_acquire(1, 6.0)


def test_shards_in_different_buckets_identify_together() -> None:
    buckets = IdentifyBuckets(max_concurrency=2)

    assert buckets.try_acquire(0, 0.0)
    assert buckets.try_acquire(1, 0.0)
    assert not buckets.try_acquire(2, 0.0)


def test_a_held_bucket_waits_for_its_holder() -> None:
    buckets = IdentifyBuckets(max_concurrency=1)
    buckets.try_acquire(0, 0.0)

    assert buckets.is_held(3)
    assert buckets.next_free(3, 100.0) is None
    assert not buckets.try_acquire(3, 100.0)


def test_a_slot_released_without_sending_is_free_at_once() -> None:
    buckets = IdentifyBuckets(max_concurrency=1)
    buckets.try_acquire(0, 0.0)

    buckets.release(0, 1.0, sent=False)

    assert buckets.next_free(0, 1.0) == 1.0
    assert buckets.try_acquire(0, 1.0)


def test_releasing_a_bucket_one_does_not_hold_is_a_local_error() -> None:
    buckets = IdentifyBuckets(max_concurrency=2)
    buckets.try_acquire(0, 0.0)

    with pytest.raises(LocalProtocolError, match="shard 2"):
        buckets.release(2, 0.0)
    with pytest.raises(LocalProtocolError, match="shard 1"):
        buckets.release(1, 0.0)


def test_identify_window_is_configurable() -> None:
    buckets = IdentifyBuckets(max_concurrency=1, window_s=0.5)
    buckets.try_acquire(0, 0.0)
    buckets.release(0, 0.0)

    assert buckets.try_acquire(0, 0.5)
