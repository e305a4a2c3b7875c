"""The cache against the emulator's world after a long run of random activity."""

from __future__ import annotations

import asyncio
import collections

from _client_fixtures import (
    Recorder,
    cache_view,
    first_difference,
    make_client,
    until,
    world_view,
)

from tether import events as ev
from tether._event import Event
from tether.client import current_dispatch
from tether.emulator import Emulator, WorldConfig
from tether.gateway.intents import Intents

WORLD = WorldConfig(
    guilds=8,
    members_per_guild=40,
    member_spread=0.5,
    categories_per_guild=1,
    text_channels_per_guild=2,
    voice_channels_per_guild=1,
    seed=21,
)


async def test_after_activity_drops_and_a_reidentify_the_cache_equals_the_world() -> (
    None
):
    async with (
        Emulator(WORLD, heartbeat_interval_s=2.0) as emu,
        make_client(emu) as client,
    ):
        recorder = Recorder(client)
        seen: collections.Counter[tuple[str | None, int | None]] = collections.Counter()

        def note_dispatch(event: Event) -> None:
            info = current_dispatch()
            if info is not None and not isinstance(event, ev.Ready | ev.GuildLeave):
                seen[info.session_id, info.seq] += 1

        client.subscribe(Event, note_dispatch)
        async with asyncio.timeout(15):
            await client.wait_until_ready()

        async def drop_and_resume() -> None:
            resumed = asyncio.ensure_future(client.wait_for(ev.Resumed))
            await asyncio.sleep(0)
            await emu.drop()
            await resumed

        async def emitted_over(count: int) -> None:
            await until(lambda: emu.activity_emitted > count, 30)

        emu.start_activity(400.0, seed=5)
        async with asyncio.timeout(90):
            for count in (300, 600, 900):
                await emitted_over(count)
                await drop_and_resume()
            second_ready = asyncio.ensure_future(client.wait_for(ev.Ready))
            await asyncio.sleep(0)
            await emu.invalidate_session(resumable=False)
            await second_ready
            await emitted_over(2000)
            await drop_and_resume()
            await emu.stop_activity()
            # Events arrive in order: once this one is in, so is everything before.
            channel = next(iter(emu.world.guilds.values())).channel_ids_of_type(0)[0]
            await emu.send_message(channel, "last")
            await client.wait_for(
                ev.MessageCreate, check=lambda e: e.message.content == "last"
            )
            await until(lambda: client.stats.handlers_running == 0)

        difference = first_difference(world_view(emu.world), cache_view(client.cache))
        assert difference is None, difference
        assert len(recorder.of(ev.Ready)) == 2
        assert emu.counters.identifies == 2
        assert emu.counters.resumes == 4

        # Every dispatch of both sessions reached the handlers exactly once.
        expected = collections.Counter(
            (info.session_id, record.seq)
            for info in emu.sessions()
            for record in info.dispatches
            if record.name != "READY"
        )
        assert seen == expected


async def test_without_presences_intent_fetched_members_stay_current() -> None:
    # Without GUILD_PRESENCES, GUILD_CREATE lists only the bot and voice members:
    # the member lists come from chunks, then member events keep them current.
    intents = Intents.all() & ~Intents.GUILD_PRESENCES
    async with (
        Emulator(WORLD) as emu,
        make_client(emu, intents=intents, fetch_members=True) as client,
    ):
        async with asyncio.timeout(15):
            await client.wait_until_ready()
        emu.start_activity(300.0, kinds=("member", "presence"), seed=3)
        async with asyncio.timeout(20):
            await until(lambda: emu.activity_emitted > 200)
            await emu.stop_activity()
            channel = next(iter(emu.world.guilds.values())).channel_ids_of_type(0)[0]
            await emu.send_message(channel, "last")
            await client.wait_for(ev.MessageCreate)

        assert client.cache.counts().presences == 0
        difference = first_difference(
            world_view(emu.world, presences=False),
            cache_view(client.cache, presences=False),
        )
        assert difference is None, difference
