"""Unmodified hikari against the emulator, in this process.

hikari takes its REST base from ``rest_url=`` and its gateway URL from GET
/gateway/bot. Its update check (a PyPI request) is turned off with
``check_for_updates=False``, its banner and logging setup with ``banner=None`` and
``logs=None``. The ``loopback_only`` fixture makes any other host fail instead of
leaving the machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from _emu_client import EmulatorFactory

from tether.emulator import Emulator, SessionState, WorldConfig

hikari = pytest.importorskip("hikari")

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("loopback_only")]

WORLD = WorldConfig(
    guilds=5, members_per_guild=25, large_guilds=1, large_guild_members=300, seed=12
)
WAIT_S = 20.0


@dataclass
class Peer:
    emu: Emulator
    bot: Any
    message_ids: list[int] = field(default_factory=list)


def _cache_is_complete(emu: Emulator, bot: Any) -> bool:
    cache = bot.cache
    if set(cache.get_guilds_view()) != set(emu.world.guilds):
        return False
    members = cache.get_members_view()
    return all(
        set(members.get(guild_id, {})) == set(guild.members)
        for guild_id, guild in emu.world.guilds.items()
    )


@pytest.fixture
async def peer(make_emulator: EmulatorFactory) -> AsyncIterator[Peer]:
    emu = await make_emulator(WORLD, heartbeat_interval_s=2.0)
    bot = hikari.GatewayBot(
        emu.token,
        rest_url=emu.api_url,
        banner=None,
        logs=None,
        intents=hikari.Intents.ALL,
    )
    peer = Peer(emu, bot)

    async def on_message(event: Any) -> None:
        peer.message_ids.append(event.message_id)

    bot.subscribe(hikari.MessageCreateEvent, on_message)
    started = False
    try:
        async with asyncio.timeout(WAIT_S):
            await bot.start(check_for_updates=False)
        started = True
        # start() returns at READY; the cache fills as GUILD_CREATEs and chunks come.
        await emu.wait_until(lambda: _cache_is_complete(emu, bot), timeout_s=WAIT_S)
        yield peer
    finally:
        if started:
            async with asyncio.timeout(WAIT_S):
                await bot.close()


def _session(emu: Emulator) -> Any:
    (session,) = emu.sessions()
    return session


async def test_ready_with_the_whole_world_cached(peer: Peer) -> None:
    emu, cache = peer.emu, peer.bot.cache
    for guild_id, truth in emu.world.guilds.items():
        guild = cache.get_guild(guild_id)
        assert guild is not None
        assert guild.name == truth.name
        assert guild.member_count == truth.member_count
        assert set(cache.get_guild_channels_view_for_guild(guild_id)) == set(
            truth.channels
        )
        assert set(cache.get_roles_view_for_guild(guild_id)) == set(truth.roles)
        assert set(cache.get_threads_view_for_guild(guild_id)) == set(truth.threads)
        assert set(cache.get_emojis_view_for_guild(guild_id)) == set(truth.emojis)
        assert set(cache.get_presences_view_for_guild(guild_id)) == set(truth.presences)
    assert peer.bot.get_me().id == emu.world.bot.id
    assert "GUILD_MEMBERS_CHUNK" in _session(emu).dispatch_names()


async def test_receives_a_message_and_sends_one(peer: Peer) -> None:
    emu, bot = peer.emu, peer.bot
    message = await emu.send_message(content="hello from the emulator")
    await emu.wait_until(
        lambda: int(message["id"]) in peer.message_ids, timeout_s=WAIT_S
    )

    channel_id = int(message["channel_id"])
    async with asyncio.timeout(WAIT_S):
        sent = await bot.rest.create_message(channel_id, "hello from hikari")
    stored = emu.world.messages(channel_id)[-1]
    assert stored["id"] == str(sent.id)
    assert stored["content"] == "hello from hikari"
    assert stored["author"]["id"] == str(emu.world.bot.id)
    await emu.wait_until(lambda: sent.id in peer.message_ids, timeout_s=WAIT_S)


async def test_resumes_after_reconnect(peer: Peer) -> None:
    emu = peer.emu
    assert await emu.reconnect() == 1
    await emu.wait_until(lambda: emu.counters.resumes == 1, timeout_s=WAIT_S)
    message = await emu.send_message(content="after op 7")
    await emu.wait_until(
        lambda: int(message["id"]) in peer.message_ids, timeout_s=WAIT_S
    )
    session = _session(emu)
    assert (emu.counters.identifies, session.resumes) == (1, 1)
    assert session.state is SessionState.ACTIVE
    assert emu.connections()[-1].listener == "resume"


async def test_resumes_after_a_dropped_socket_and_gets_what_it_missed(
    peer: Peer,
) -> None:
    emu = peer.emu
    assert await emu.drop() == 1
    missed = await emu.send_message(content="while dropped")
    await emu.wait_until(lambda: emu.counters.resumes == 1, timeout_s=WAIT_S)
    await emu.wait_until(
        lambda: int(missed["id"]) in peer.message_ids, timeout_s=WAIT_S
    )
    assert emu.counters.identifies == 1
    assert len(emu.identify_log) == 1
    creates = [
        int(record.data["id"])
        for record in _session(emu).dispatches
        if record.name == "MESSAGE_CREATE"
    ]
    assert sorted(peer.message_ids) == sorted(creates)
