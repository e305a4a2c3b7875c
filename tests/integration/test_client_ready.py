"""Ready gating and guild availability against the emulator."""

from __future__ import annotations

import asyncio

from _client_fixtures import (
    Recorder,
    cache_view,
    first_difference,
    make_client,
    until,
    world_view,
)

from tether import events as ev
from tether.emulator import Emulator, WorldConfig
from tether.gateway.intents import Intents
from tether.manager import Connected

SMALL = WorldConfig(
    guilds=6,
    members_per_guild=12,
    categories_per_guild=1,
    text_channels_per_guild=2,
    voice_channels_per_guild=1,
    seed=4,
)


async def test_ready_comes_after_a_stream_of_500_guilds_with_all_500_cached() -> None:
    world = WorldConfig(
        guilds=500,
        members_per_guild=3,
        categories_per_guild=0,
        text_channels_per_guild=1,
        voice_channels_per_guild=0,
        threads_per_guild=0,
        roles_per_guild=1,
        emojis_per_guild=0,
        seed=2,
    )
    async with Emulator(world) as emu, make_client(emu) as client:
        recorder = Recorder(client)
        async with asyncio.timeout(30):
            ready = await client.wait_for(ev.Ready)

        assert ready.missing_guild_ids == ()
        assert len(ready.guilds) == 500
        cached = client.cache.guilds()
        assert len(cached) == 500
        assert not any(guild.unavailable for guild in cached)
        assert {g.id for g in cached} == set(emu.world.guilds)
        # Every GUILD_CREATE of the stream was delivered before Ready.
        await until(lambda: any(isinstance(e, ev.Ready) for e in recorder.events))
        ready_at = next(
            i for i, e in enumerate(recorder.events) if isinstance(e, ev.Ready)
        )
        before = recorder.events[:ready_at]
        assert len([e for e in before if isinstance(e, ev.GuildAvailable)]) == 500


async def test_a_guild_that_never_arrives_is_reported_missing_then_available() -> None:
    async with Emulator(SMALL) as emu:
        late = list(emu.world.guilds)[2]
        # Held back well past the quiet period (0.3 s after the last GUILD_CREATE).
        emu.unavailable_at_ready([late], arrive_after_s=4.0)
        async with make_client(emu, ready_timeout_s=0.3) as client:
            async with asyncio.timeout(15):
                arrived_later = asyncio.ensure_future(
                    client.wait_for(
                        ev.GuildAvailable, check=lambda e: e.guild.id == late
                    )
                )
                ready = await client.wait_for(ev.Ready)

                assert ready.missing_guild_ids == (late,)
                assert late not in {g.id for g in ready.guilds}
                guild = client.cache.guild(late)
                assert guild is not None and guild.unavailable
                assert client.cache.channels(late) == ()
                assert client.is_ready

                arrived = await arrived_later

            assert type(arrived) is ev.GuildAvailable
            guild = client.cache.guild(late)
            assert guild is not None and not guild.unavailable
            assert client.cache.channels(late)
            view = cache_view(client.cache)
            assert first_difference(world_view(emu.world), view) is None


async def test_a_resume_raises_resumed_and_no_second_ready() -> None:
    async with (
        Emulator(SMALL, heartbeat_interval_s=5.0) as emu,
        make_client(emu) as client,
    ):
        recorder = Recorder(client)
        async with asyncio.timeout(15):
            await client.wait_until_ready()
            resumed = asyncio.ensure_future(client.wait_for(ev.Resumed))
            await asyncio.sleep(0)
            await emu.drop()
            await resumed
            channel = emu.world.guilds[list(emu.world.guilds)[0]]
            await emu.send_message(channel.channel_ids_of_type(0)[0], "after")
            await client.wait_for(ev.MessageCreate)

        assert emu.counters.identifies == 1
        assert emu.counters.resumes == 1
        kinds = [type(e) for e in recorder.events]
        # One Ready, the first session's; the resume raised Resumed only.
        assert kinds.count(ev.Ready) == 1
        assert kinds.count(ev.Resumed) == 1
        assert kinds.index(ev.Ready) < kinds.index(ev.Resumed)
        assert client.is_ready
        connected = recorder.of(Connected)
        assert [c.resumed for c in connected] == [False, True]
        assert first_difference(world_view(emu.world), cache_view(client.cache)) is None


async def test_invalid_session_false_raises_a_second_ready_with_a_rebuilt_cache() -> (
    None
):
    async with (
        Emulator(SMALL, heartbeat_interval_s=5.0) as emu,
        make_client(emu) as client,
    ):
        recorder = Recorder(client)
        async with asyncio.timeout(15):
            first = await client.wait_for(ev.Ready)
        assert len(first.guilds) == 6

        # While no session runs: a guild vanishes and members leave, unseen.
        gone = list(emu.world.guilds)[1]
        kept = list(emu.world.guilds)[3]
        stale_members = [
            uid
            for uid in list(emu.world.guilds[kept].members)[-3:]
            if uid != emu.world.guilds[kept].owner_id
        ]
        async with asyncio.timeout(20):
            second_ready = asyncio.ensure_future(client.wait_for(ev.Ready))
            await asyncio.sleep(0)
            await emu.invalidate_session(resumable=False)
            del emu.world.guilds[gone]
            for uid in stale_members:
                del emu.world.guilds[kept].members[uid]
                emu.world.guilds[kept].presences.pop(uid, None)
                emu.world.guilds[kept].voice_states.pop(uid, None)
            second = await second_ready

        assert emu.counters.identifies == 2
        assert second.session_id != first.session_id
        assert {g.id for g in second.guilds} == set(emu.world.guilds)
        leaves = recorder.of(ev.GuildLeave)
        assert [leave.guild_id for leave in leaves] == [gone]
        assert client.cache.guild(gone) is None
        for uid in stale_members:
            assert client.cache.member(kept, uid) is None
        assert first_difference(world_view(emu.world), cache_view(client.cache)) is None


async def test_a_guild_outage_keeps_its_data_and_its_return_raises_available() -> None:
    async with Emulator(SMALL) as emu, make_client(emu) as client:
        async with asyncio.timeout(15):
            await client.wait_until_ready()
        guild_id = list(emu.world.guilds)[0]
        channels = client.cache.channels(guild_id)
        members = client.cache.members(guild_id)
        assert channels and members

        async with asyncio.timeout(10):
            unavailable = asyncio.ensure_future(client.wait_for(ev.GuildUnavailable))
            await asyncio.sleep(0)
            await emu.guild_outage(guild_id)
            event = await unavailable

        assert event.guild_id == guild_id
        assert event.guild is not None and event.guild.id == guild_id
        guild = client.cache.guild(guild_id)
        assert guild is not None and guild.unavailable
        assert client.cache.channels(guild_id) == channels
        assert client.cache.members(guild_id) == members

        async with asyncio.timeout(10):
            available = asyncio.ensure_future(client.wait_for(ev.GuildAvailable))
            await asyncio.sleep(0)
            await emu.end_guild_outage(guild_id)
            back = await available

        assert type(back) is ev.GuildAvailable
        assert back.guild.id == guild_id
        guild = client.cache.guild(guild_id)
        assert guild is not None and not guild.unavailable
        assert first_difference(world_view(emu.world), cache_view(client.cache)) is None


async def test_a_guild_in_an_outage_at_ready_is_missing_without_the_quiet_period() -> (
    None
):
    async with Emulator(SMALL) as emu:
        down = list(emu.world.guilds)[4]
        emu.world.guilds[down].unavailable = True
        # A quiet period this long would outlast the test's bound: Ready must come
        # from the GUILD_DELETE accounting for the guild.
        async with make_client(emu, ready_timeout_s=60.0) as client:
            async with asyncio.timeout(15):
                ready = await client.wait_for(ev.Ready)
            assert ready.missing_guild_ids == (down,)
            assert len(ready.guilds) == 5

            async with asyncio.timeout(10):
                available = asyncio.ensure_future(client.wait_for(ev.GuildAvailable))
                await asyncio.sleep(0)
                await emu.end_guild_outage(down)
                back = await available
            assert back.guild.id == down
            view = cache_view(client.cache)
            assert first_difference(world_view(emu.world), view) is None


async def test_without_the_guilds_intent_ready_comes_at_once() -> None:
    intents = Intents.default() & ~Intents.GUILDS
    async with (
        Emulator(SMALL) as emu,
        make_client(emu, intents=intents, ready_timeout_s=60.0) as client,
    ):
        async with asyncio.timeout(15):
            ready = await client.wait_for(ev.Ready)

        assert ready.guilds == ()
        assert set(ready.missing_guild_ids) == set(emu.world.guilds)
