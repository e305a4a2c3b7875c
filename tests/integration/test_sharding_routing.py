"""Events per shard: every guild's events arrive on its shard, Ready is
client-wide only once every shard is ready, and 50 shards run in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest
from test_sharding_support import (
    WAIT_S,
    Recorder,
    make_client,
    queue,
    ready,
    running,
    sharded_emulator,
    until,
)

from tether import events as ev
from tether.emulator.records import SessionState
from tether.errors import ClientStateError
from tether.gateway.intents import Intents
from tether.manager import Connected, ManagerState
from tether.models import shard_for


async def test_every_guild_event_arrives_on_its_shard() -> None:
    async with (
        sharded_emulator(4, max_concurrency=4) as emu,
        running(make_client(emu)) as client,
    ):
        recorder = Recorder(client)
        await ready(client)
        guild_ids = list(emu.world.guilds)

        for index in range(len(guild_ids)):
            await emu.send_message(content=f"hello {index}", guild_index=index)
        await until(lambda: len(recorder.of(ev.MessageCreate)) == len(guild_ids))

        seen = {m.message.guild_id: m.shard_id for m in recorder.of(ev.MessageCreate)}
        assert seen == {g: shard_for(g, 4) for g in guild_ids}
        assert {g: client.shard_for_guild(g) for g in guild_ids} == seen
        # The handler's view of the dispatch names the same shard.
        creates = [i for i in recorder.dispatches if i.name == "MESSAGE_CREATE"]
        assert sorted(i.shard_id for i in creates) == sorted(seen.values())
        # Each shard measures its own heartbeat round trip.
        await until(lambda: all(i.latency is not None for i in client.shards.values()))
        # Each shard's cache part holds exactly its guilds.
        for session in emu.sessions():
            assert set(emu.world.guild_ids_for_shard(*session.shard or (0, 1))) == {
                g for g, shard in seen.items() if shard == session.shard_id
            }


async def test_member_requests_go_to_the_guilds_shard() -> None:
    intents = Intents.default() | Intents.GUILD_MEMBERS
    async with (
        sharded_emulator(3, max_concurrency=3) as emu,
        running(make_client(emu, intents=intents)) as client,
    ):
        await ready(client)

        for guild_id, guild in list(emu.world.guilds.items())[:6]:
            members = await client.request_members(guild_id, timeout=WAIT_S)
            assert {m.user.id for m in members} == set(guild.members)


async def test_a_guild_of_a_shard_run_elsewhere_is_refused_here() -> None:
    async with (
        sharded_emulator(2, max_concurrency=2) as emu,
        running(make_client(emu, shard_count=2, shard_ids=[0])) as client,
    ):
        await ready(client)
        elsewhere = next(g for g in emu.world.guilds if shard_for(g, 2) == 1)

        with pytest.raises(ClientStateError, match="shard 1"):
            await client.request_members(elsewhere, timeout=1.0)
        assert {s.shard for s in emu.sessions()} == {(0, 2)}


class HeldQueue:
    """A LocalIdentifyQueue that holds one shard's turn until released."""

    def __init__(self, held: int) -> None:
        self.queue = queue()
        self.held = held
        self.release = asyncio.Event()

    @contextlib.asynccontextmanager
    async def turn(self, shard_id: int) -> AsyncIterator[None]:
        if shard_id == self.held:
            await self.release.wait()
        async with self.queue.turn(shard_id):
            yield


async def test_the_client_is_ready_only_once_every_shard_is() -> None:
    held = HeldQueue(held=2)
    async with (
        sharded_emulator(3, max_concurrency=3) as emu,
        running(make_client(emu, identify_queue=held)) as client,
    ):
        recorder = Recorder(client)
        waiter = asyncio.create_task(client.wait_until_ready())
        await until(lambda: client.shard_ids == [0, 1, 2])
        await until(lambda: client.shard(0).is_ready and client.shard(1).is_ready)
        await asyncio.sleep(0.2)

        assert not client.is_ready
        assert not waiter.done()
        assert not client.shard(2).is_ready
        assert {
            r.shard_id for r in recorder.of(ev.Ready) if isinstance(r, ev.Ready)
        } == {
            0,
            1,
        }

        held.release.set()
        async with asyncio.timeout(WAIT_S):
            await waiter
        assert client.is_ready
        assert all(info.is_ready for info in client.shards.values())


async def test_fifty_shards_start_reach_ready_and_stop_cleanly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="tether")
    async with sharded_emulator(50, guilds=60, max_concurrency=16) as emu:
        client = make_client(emu)
        recorder = Recorder(client)
        client.start()
        try:
            await ready(client, timeout_s=40.0)
            connected = {e.shard_id for e in recorder.of(Connected)}
            assert connected == set(range(50))
            assert sorted(r.shard_id for r in emu.identify_log) == list(range(50))
            assert all(
                i.state is ManagerState.CONNECTED for i in client.shards.values()
            )
            assert len(client.cache.guilds()) == 60
        finally:
            async with asyncio.timeout(WAIT_S):
                await client.stop(keep_sessions=False)
                await client.close()

        assert client.state is ManagerState.DISCONNECTED
        sessions = emu.sessions()
        assert len(sessions) == 50
        assert all(s.state is SessionState.CLOSED for s in sessions)
        assert all(c.client_close_code == 1000 for c in emu.connections())
        assert emu.counters.rejected_identifies == 0
        problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert not problems, [r.getMessage() for r in problems[:5]]
