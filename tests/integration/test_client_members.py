"""Member chunking against the emulator: fetch_members and request_members()."""

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
from tether.manager import Disconnected

LARGE = WorldConfig(
    guilds=3,
    members_per_guild=30,
    large_guilds=2,
    large_guild_members=2300,
    categories_per_guild=0,
    text_channels_per_guild=1,
    voice_channels_per_guild=0,
    threads_per_guild=0,
    online_fraction=0.3,
    seed=11,
)


async def test_fetch_members_makes_ready_wait_for_every_members_chunk() -> None:
    async with Emulator(LARGE) as emu, make_client(emu, fetch_members=True) as client:
        recorder = Recorder(client)
        async with asyncio.timeout(30):
            ready = await client.wait_for(ev.Ready)

        assert ready.missing_guild_ids == ()
        assert ready.members_incomplete_guild_ids == ()
        large = list(emu.world.guilds)[:2]
        for guild_id in large:
            # GUILD_CREATE carried only part of these guilds (large_threshold).
            created = next(
                e for e in recorder.of(ev.GuildAvailable) if e.guild.id == guild_id
            )
            assert len(created.members) < 2300
            assert len(client.cache.members(guild_id)) == 2300
        chunks = [c for c in recorder.of(ev.MembersChunk) if c.guild_id == large[0]]
        assert sorted(c.chunk_index for c in chunks) == [0, 1, 2]
        assert first_difference(world_view(emu.world), cache_view(client.cache)) is None


async def test_request_members_by_query_limit_user_ids_and_presences() -> None:
    async with Emulator(LARGE) as emu, make_client(emu) as client:
        recorder = Recorder(client)
        async with asyncio.timeout(15):
            await client.wait_until_ready()
        guild_id = list(emu.world.guilds)[0]
        guild = emu.world.guilds[guild_id]
        users = emu.world.users

        async with asyncio.timeout(30):
            everyone = await client.request_members(guild_id)
            prefix = users[next(iter(guild.members))].username[:2]
            by_query = await client.request_members(guild_id, query=prefix, limit=5)
            some = list(guild.members)[100:103]
            by_ids = await client.request_members(
                guild_id, user_ids=[*some, 42], presences=True
            )

        # All members: more than one chunk, assembled by nonce.
        assert len(everyone) == 2300
        assert {m.user.id for m in everyone} == set(guild.members)
        chunks = [c for c in recorder.of(ev.MembersChunk) if c.chunk_count == 3]
        assert sorted(c.chunk_index for c in chunks) == [0, 1, 2]
        assert len({c.nonce for c in chunks}) == 1

        # A query: a prefix of the username or nick, at most `limit` of them.
        assert 1 <= len(by_query) <= 5
        for member in by_query:
            names = (member.user.username, member.nick or "")
            assert any(n.casefold().startswith(prefix.casefold()) for n in names)

        # By id: the members asked for, and their presences in the chunk.
        assert sorted(m.user.id for m in by_ids) == sorted(some)
        [chunk] = [c for c in recorder.of(ev.MembersChunk) if c.not_found]
        assert chunk.not_found == (42,)
        online = {uid: p.status for uid, p in guild.presences.items() if uid in some}
        assert {p.user_id: p.status for p in chunk.presences} == online
        for uid in some:
            cached = client.cache.presence(guild_id, uid)
            assert (cached.status if cached else None) == online.get(uid)


async def test_a_rate_limited_members_request_is_retried() -> None:
    async with (
        Emulator(LARGE, member_request_interval_s=0.5) as emu,
        make_client(emu) as client,
    ):
        recorder = Recorder(client)
        async with asyncio.timeout(15):
            await client.wait_until_ready()
        guild_id = list(emu.world.guilds)[2]

        async with asyncio.timeout(15):
            first = await client.request_members(guild_id)
            second = await client.request_members(guild_id)

        assert len(first) == len(second) == 30
        limited = [e for e in recorder.of(ev.RawDispatch) if e.name == "RATE_LIMITED"]
        assert len(limited) == 1


async def test_with_fetch_members_a_large_guild_back_from_an_outage_is_refetched() -> (
    None
):
    async with (
        Emulator(LARGE, member_request_interval_s=0.1) as emu,
        make_client(emu, fetch_members=True) as client,
    ):
        async with asyncio.timeout(30):
            await client.wait_until_ready()
        guild_id = list(emu.world.guilds)[0]
        assert len(client.cache.members(guild_id)) == 2300

        async with asyncio.timeout(30):
            await emu.guild_outage(guild_id)
            await client.wait_for(ev.GuildUnavailable)
            back = asyncio.ensure_future(client.wait_for(ev.GuildAvailable))
            await asyncio.sleep(0)
            await emu.end_guild_outage(guild_id)
            created = await back
            # GUILD_CREATE brought only the online members; the fetch the rest.
            assert len(created.members) < 2300
            await until(lambda: len(client.cache.members(guild_id)) == 2300)

        assert first_difference(world_view(emu.world), cache_view(client.cache)) is None


async def test_a_members_request_lost_with_its_connection_is_sent_again() -> None:
    async with (
        Emulator(LARGE, heartbeat_interval_s=0.3) as emu,
        make_client(emu) as client,
    ):
        async with asyncio.timeout(15):
            await client.wait_until_ready()
        guild_id = list(emu.world.guilds)[2]

        async with asyncio.timeout(20):
            # The connection ignores everything from now on: the request is lost,
            # the missing heartbeat ACK ends the connection, the session resumes.
            await emu.go_silent()
            resumed = asyncio.ensure_future(client.wait_for(ev.Resumed))
            members = await client.request_members(guild_id)
            assert resumed.done()

        assert len(members) == 30
        assert emu.counters.resumes == 1


async def test_a_members_request_during_a_reconnect_waits_for_the_session() -> None:
    async with Emulator(LARGE) as emu, make_client(emu) as client:
        async with asyncio.timeout(15):
            await client.wait_until_ready()
        guild_id = list(emu.world.guilds)[2]

        async with asyncio.timeout(20):
            emu.refuse_connections(1.0)
            disconnected = asyncio.ensure_future(client.wait_for(Disconnected))
            await asyncio.sleep(0)
            await emu.drop()
            await disconnected
            members = await client.request_members(guild_id)

        assert len(members) == 30
        assert emu.counters.resumes == 1
