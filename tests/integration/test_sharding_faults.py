"""One shard's fault stays its own: zombie connections, op 9, closes and drops
touch no other shard's session, and 4011 names the shard count to use."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from test_sharding_support import (
    EMULATOR_OPTIONS,
    WINDOW_S,
    Recorder,
    assert_exactly_once,
    gaps_per_bucket,
    make_client,
    ready,
    running,
    sharded_emulator,
    until,
    world,
)

from tether import events as ev
from tether.emulator import Emulator
from tether.emulator.records import SessionState
from tether.emulator.world import World
from tether.errors import InvalidTokenError, ShardingRequiredError
from tether.manager import Connected, Disconnected, ManagerState
from tether.models import shard_for

Fault = Callable[[Emulator], Awaitable[int]]

FAULTS: dict[str, tuple[Fault, bool]] = {
    # name: (the fault on shard 1, whether shard 1 keeps its session)
    "zombie": (lambda emu: emu.stop_acking(shard=1), True),
    "op 9 resumable": (lambda emu: emu.invalidate_session(True, shard=1), True),
    "op 9 not resumable": (lambda emu: emu.invalidate_session(False, shard=1), False),
    "op 7": (lambda emu: emu.reconnect(shard=1), True),
    "close 4000": (lambda emu: emu.close(4000, shard=1), True),
    "dropped": (lambda emu: emu.drop(shard=1), True),
}


@pytest.mark.parametrize("name", list(FAULTS))
async def test_a_fault_on_one_shard_leaves_the_others_alone(name: str) -> None:
    fault, resumes = FAULTS[name]
    async with (
        sharded_emulator(4, max_concurrency=1) as emu,
        running(make_client(emu)) as client,
    ):
        recorder = Recorder(client)
        await ready(client)
        before = {s.shard_id: s for s in emu.sessions()}
        connects = len(recorder.of(Connected))

        assert await fault(emu) == 1
        await until(lambda: len(recorder.of(Connected)) > connects)
        await until(lambda: client.shard(1).is_ready)
        for index in range(len(emu.world.guilds)):
            await emu.send_message(content=f"after {name}", guild_index=index)

        await assert_exactly_once(emu, recorder)
        after = {s.session_id: s for s in emu.sessions()}
        for shard_id in (0, 2, 3):
            session = after[before[shard_id].session_id]
            assert session.state is SessionState.ACTIVE
            assert len(session.connections) == 1, f"shard {shard_id} reconnected"
            assert session.resumes == 0
        shard_1 = [s for s in emu.sessions() if s.shard_id == 1]
        if resumes:
            assert [s.resumes for s in shard_1] == [1]
        else:
            assert len(shard_1) == 2
            assert [r.shard_id for r in emu.identify_log].count(1) == 2
            assert all(
                gap >= WINDOW_S for gap in gaps_per_bucket(emu.identify_log, 1)[0]
            )
        assert emu.counters.rejected_identifies == 0
        # Every message arrived on its guild's shard.
        assert all(
            m.shard_id == shard_for(m.message.guild_id or 0, 4)
            for m in recorder.of(ev.MessageCreate)
        )
        assert [e.shard_id for e in recorder.of(Connected)[connects:]] == [1]


def uneven_world() -> tuple[World, int, int]:
    """A world, a guild limit that some of 3 shards exceed, and a count that fits."""
    the_world = World(world(guilds=17, seed=5))
    guilds = list(the_world.guilds)
    per_shard = [sum(1 for g in guilds if shard_for(g, 3) == i) for i in range(3)]
    limit = min(per_shard)
    assert max(per_shard) > limit, "the seed must spread guilds unevenly"
    fits = next(
        n
        for n in range(4, 18)
        if max(sum(1 for g in guilds if shard_for(g, n) == i) for i in range(n))
        <= limit
    )
    return the_world, limit, fits


async def test_sharding_required_names_the_count_and_spares_the_other_shards() -> None:
    the_world, limit, fits = uneven_world()
    options = {**EMULATOR_OPTIONS, "shards": fits, "max_concurrency": 3}
    async with (
        Emulator(the_world, max_guilds_per_shard=limit, **options) as emu,
        running(make_client(emu, shard_count=3)) as client,
    ):
        guilds = list(the_world.guilds)
        too_big = {
            i for i in range(3) if sum(shard_for(g, 3) == i for g in guilds) > limit
        }
        fine = set(range(3)) - too_big
        await until(lambda: client.shard_ids == [0, 1, 2])
        await until(
            lambda: (
                all(client.shard(i).fatal_error for i in too_big)
                and all(client.shard(i).is_ready for i in fine)
            )
        )

        for shard_id in too_big:
            error = client.shard(shard_id).fatal_error
            assert isinstance(error, ShardingRequiredError)
            assert error.code == 4011
            assert error.recommended_shards == fits
            assert f"use {fits} shards" in str(error)
            assert client.shard(shard_id).state is ManagerState.DISCONNECTED
        for shard_id in fine:
            assert client.shard(shard_id).state is ManagerState.CONNECTED
        assert {s.shard for s in emu.sessions()} == {(i, 3) for i in fine}

        await client.reshard(fits)

        assert client.shard_count == fits
        assert client.is_ready
        assert {s.shard for s in emu.sessions() if s.state is SessionState.ACTIVE} == {
            (i, fits) for i in range(fits)
        }
        assert {g.id for g in client.cache.guilds() if not g.unavailable} == set(guilds)
        assert all(info.fatal_error is None for info in client.shards.values())


def crowded_world() -> tuple[World, int, int]:
    """A world whose 2 shards both exceed a guild limit, and a count that fits."""
    the_world = World(world(guilds=17, seed=5))
    guilds = list(the_world.guilds)
    limit = min(sum(shard_for(g, 2) == i for g in guilds) for i in range(2)) - 1
    fits = next(
        n
        for n in range(3, 18)
        if max(sum(shard_for(g, n) == i for g in guilds) for i in range(n)) <= limit
    )
    return the_world, limit, fits


async def test_resharding_a_client_stopped_by_4011_starts_it_on_the_new_count() -> None:
    the_world, limit, fits = crowded_world()
    options = {**EMULATOR_OPTIONS, "shards": fits, "max_concurrency": 4}
    async with (
        Emulator(the_world, max_guilds_per_shard=limit, **options) as emu,
        running(make_client(emu, shard_count=2)) as client,
    ):
        async with asyncio.timeout(20):
            await client.wait_closed()
        error = client.fatal_error
        assert isinstance(error, ShardingRequiredError)

        await client.reshard(error.recommended_shards)

        assert client.is_ready
        assert client.fatal_error is None
        assert client.shard_ids == list(range(fits))
        assert sorted(r.shard_id for r in emu.identify_log) == list(range(fits))


async def test_a_4011_handler_reshards_a_client_whose_shards_all_failed() -> None:
    the_world, limit, fits = crowded_world()
    guilds = list(the_world.guilds)
    options = {**EMULATOR_OPTIONS, "shards": fits, "max_concurrency": 4}
    async with (
        Emulator(the_world, max_guilds_per_shard=limit, **options) as emu,
        running(make_client(emu, shard_count=2)) as client,
    ):
        calls: list[int | None] = []

        @client.on(Disconnected)
        async def on_disconnected(event: Disconnected) -> None:
            if isinstance(event.error, ShardingRequiredError):
                calls.append(event.error.recommended_shards)
                await client.reshard(event.error.recommended_shards)

        await until(lambda: len(calls) == 2)
        await until(lambda: client.shard_count == fits and client.is_ready)

        assert calls == [fits, fits]
        assert client.fatal_error is None
        assert sorted(r.shard_id for r in emu.identify_log) == list(range(fits))
        assert {g.id for g in client.cache.guilds() if not g.unavailable} == set(guilds)


async def test_a_refused_token_stops_the_client_before_any_shard_starts() -> None:
    async with sharded_emulator(2) as emu:
        client = make_client(emu, token="MTE.refused.token-that-is-not-valid")
        async with running(client):
            async with asyncio.timeout(20):
                await client.wait_closed()

        assert isinstance(client.fatal_error, InvalidTokenError)
        assert client.shard_ids == []
        assert emu.connections() == []
