"""Identify rules across shards: buckets of max_concurrency, one IDENTIFY per
bucket per window, ascending order at start, and the daily session start limit
refused before anything is sent."""

from __future__ import annotations

import asyncio
import logging

import pytest
from test_sharding_support import (
    WINDOW_S,
    gaps_per_bucket,
    make_client,
    queue,
    ready,
    running,
    sharded_emulator,
    until,
)

from tether.identify import LocalIdentifyQueue, SessionStartLimitError, TurnNotUsed
from tether.manager import ManagerState
from tether.rest.gateway import SessionStartLimit


async def test_max_concurrency_1_identifies_one_shard_per_window_in_order() -> None:
    async with (
        sharded_emulator(4, max_concurrency=1) as emu,
        running(make_client(emu)) as client,
    ):
        await ready(client)

        log = emu.identify_log
        assert [r.shard_id for r in sorted(log, key=lambda r: r.time)] == [0, 1, 2, 3]
        assert {(r.shard_id, r.shard_count) for r in log} == {(i, 4) for i in range(4)}
        assert all(gap >= WINDOW_S for gap in gaps_per_bucket(log, 1)[0])
        assert emu.counters.rejected_identifies == 0


async def test_max_concurrency_16_starts_a_group_of_16_then_the_next() -> None:
    async with (
        sharded_emulator(20, guilds=40, max_concurrency=16) as emu,
        running(make_client(emu)) as client,
    ):
        await ready(client)

        order = [r.shard_id for r in sorted(emu.identify_log, key=lambda r: r.time)]
        assert sorted(order[:16]) == list(range(16))
        assert sorted(order[16:]) == list(range(16, 20))
        gaps = gaps_per_bucket(emu.identify_log, 16)
        assert sorted(gaps) == list(range(16))
        assert all(len(gaps[bucket]) == 1 for bucket in range(4))
        assert all(not gaps[bucket] for bucket in range(4, 16))
        assert all(gap >= WINDOW_S for bucket in gaps.values() for gap in bucket)
        assert emu.counters.rejected_identifies == 0


async def test_shards_share_one_queue_across_two_clients_of_one_bot() -> None:
    shared = queue()
    async with sharded_emulator(4, max_concurrency=2) as emu:
        first = make_client(emu, shard_count=4, shard_ids=[0, 1], identify_queue=shared)
        second = make_client(
            emu, shard_count=4, shard_ids=[2, 3], identify_queue=shared
        )
        async with running(first), running(second):
            await ready(first)
            await ready(second)

        gaps = gaps_per_bucket(emu.identify_log, 2)
        assert all(gap >= WINDOW_S for bucket in gaps.values() for gap in bucket)
        assert emu.counters.rejected_identifies == 0
        assert first.shard_ids == [0, 1]
        assert second.shard_ids == [2, 3]


async def test_a_start_past_the_session_start_limit_fails_before_identifying(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with (
        sharded_emulator(3, session_start_limit=2) as emu,
        running(make_client(emu)) as client,
    ):
        await until(lambda: client.shard_ids == [0, 1, 2])
        await until(lambda: client.shard(2).fatal_error is not None)
        await until(lambda: client.shard(0).is_ready and client.shard(1).is_ready)

        error = client.shard(2).fatal_error
        assert isinstance(error, SessionStartLimitError)
        assert error.remaining == 0
        assert error.total == 2
        assert client.shard(2).state is ManagerState.DISCONNECTED
        # Nothing past the limit reached the gateway; the other shards run on.
        assert emu.counters.identifies == 2
        assert emu.counters.rejected_identifies == 0
        assert client.shard(0).state is ManagerState.CONNECTED
        assert emu.token not in caplog.text
        assert emu.token not in str(error)


async def test_a_client_with_no_session_start_left_stops_with_the_error() -> None:
    async with (
        sharded_emulator(2, session_start_limit=0) as emu,
        running(make_client(emu)) as client,
    ):
        async with asyncio.timeout(20):
            await client.wait_closed()

        assert isinstance(client.fatal_error, SessionStartLimitError)
        assert emu.counters.identifies == 0
        assert emu.counters.rejected_identifies == 0


async def test_the_queue_counts_session_starts_and_refills() -> None:
    now = [100.0]
    queue = LocalIdentifyQueue(window_s=0.0, clock=lambda: now[0])
    queue.update_limits(
        SessionStartLimit(total=3, remaining=2, reset_after_s=60.0, max_concurrency=1)
    )

    for shard_id in (0, 1):
        async with queue.turn(shard_id):
            pass
    with pytest.raises(SessionStartLimitError) as refused:
        async with queue.turn(2):
            pytest.fail("a turn past the limit was given")
    now[0] += 60.0
    async with queue.turn(2):
        pass

    assert refused.value.reset_after_s == pytest.approx(60.0)
    assert queue.session_starts_remaining == 2
    assert [shard for _, shard in queue.history] == [0, 1, 2]


async def test_a_turn_given_back_costs_no_start_and_no_wait() -> None:
    now = [100.0]
    queue = LocalIdentifyQueue(window_s=5.0, clock=lambda: now[0])
    queue.update_limits(
        SessionStartLimit(total=3, remaining=2, reset_after_s=60.0, max_concurrency=1)
    )

    async with queue.turn(0):
        raise TurnNotUsed
    async with asyncio.timeout(1.0), queue.turn(0):
        pass

    assert queue.session_starts_remaining == 1
    assert [shard for _, shard in queue.history] == [0]


async def test_the_queue_keeps_a_reserve_of_session_starts() -> None:
    queue = LocalIdentifyQueue(window_s=0.0, reserve=1)
    queue.update_limits(
        SessionStartLimit(total=10, remaining=2, reset_after_s=60.0, max_concurrency=1)
    )

    async with queue.turn(0):
        pass
    with pytest.raises(SessionStartLimitError):
        async with queue.turn(1):
            pass


async def test_a_waiting_bucket_does_not_hold_the_others() -> None:
    queue = LocalIdentifyQueue(max_concurrency=2, window_s=30.0)
    async with queue.turn(0):
        pass
    waiting = asyncio.create_task(_take_turn(queue, 2))
    await asyncio.sleep(0.05)

    async with asyncio.timeout(1.0):
        await _take_turn(queue, 1)

    assert not waiting.done()
    waiting.cancel()


async def _take_turn(queue: LocalIdentifyQueue, shard_id: int) -> None:
    async with queue.turn(shard_id):
        pass


def test_the_limit_error_says_what_to_do() -> None:
    error = SessionStartLimitError(3, remaining=0, total=1000, reset_after_s=3600.0)

    assert "shard 3" in str(error)
    assert "3600 s" in str(error)
    logging.getLogger(__name__).debug("%s", error)
