"""Unmodified discord.py against the emulator, in this process.

discord.py takes its REST base from ``discord.http.Route.BASE`` and, for an
unsharded ``Client``, its gateway from ``DiscordWebSocket.DEFAULT_GATEWAY`` (it
does not ask GET /gateway/bot); both are pointed at the emulator. The
``loopback_only`` fixture makes any other host fail instead of leaving the machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from _emu_client import EmulatorFactory

from tether.emulator import Emulator, SessionState, WorldConfig

discord = pytest.importorskip("discord")
discord_gateway = pytest.importorskip("discord.gateway")
discord_http = pytest.importorskip("discord.http")
yarl = pytest.importorskip("yarl")

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("loopback_only")]

WORLD = WorldConfig(
    guilds=5, members_per_guild=25, large_guilds=1, large_guild_members=300, seed=11
)
WAIT_S = 20.0


@dataclass
class Peer:
    emu: Emulator
    client: Any
    message_ids: list[int] = field(default_factory=list)


@pytest.fixture
async def peer(
    make_emulator: EmulatorFactory, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Peer]:
    emu = await make_emulator(WORLD, heartbeat_interval_s=2.0)
    monkeypatch.setattr(discord_http.Route, "BASE", emu.api_url)
    monkeypatch.setattr(
        discord_gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(emu.gateway_url)
    )
    # guild_ready_timeout: how long discord.py waits for more GUILD_CREATEs.
    client = discord.Client(intents=discord.Intents.all(), guild_ready_timeout=0.3)
    peer = Peer(emu, client)

    async def on_message(message: Any) -> None:
        peer.message_ids.append(message.id)

    client.event(on_message)
    task: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(WAIT_S):
            await client.login(emu.token)
            task = asyncio.create_task(client.connect(reconnect=True))
            await client.wait_until_ready()
        yield peer
    finally:
        async with asyncio.timeout(WAIT_S):
            await client.close()
            if task is not None:
                await task


def _session(emu: Emulator) -> Any:
    (session,) = emu.sessions()
    return session


async def test_ready_with_the_whole_world_cached(peer: Peer) -> None:
    emu, client = peer.emu, peer.client
    assert {guild.id for guild in client.guilds} == set(emu.world.guilds)
    for guild in client.guilds:
        truth = emu.world.guilds[guild.id]
        assert guild.name == truth.name
        assert guild.member_count == truth.member_count
        assert {m.id for m in guild.members} == set(truth.members)
        assert {c.id for c in guild.channels} == set(truth.channels)
        assert {r.id for r in guild.roles} == set(truth.roles)
        assert {t.id for t in guild.threads} == set(truth.threads)
        assert {e.id for e in guild.emojis} == set(truth.emojis)
    assert client.user.id == emu.world.bot.id
    # The large guild needed GUILD_MEMBERS_CHUNKs to be complete.
    assert "GUILD_MEMBERS_CHUNK" in _session(emu).dispatch_names()


async def test_receives_a_message_and_sends_one(peer: Peer) -> None:
    emu, client = peer.emu, peer.client
    message = await emu.send_message(content="hello from the emulator")
    await emu.wait_until(
        lambda: int(message["id"]) in peer.message_ids, timeout_s=WAIT_S
    )

    channel = client.get_channel(int(message["channel_id"]))
    async with asyncio.timeout(WAIT_S):
        sent = await channel.send("hello from discord.py")
    stored = emu.world.messages(int(message["channel_id"]))[-1]
    assert stored["id"] == str(sent.id)
    assert stored["content"] == "hello from discord.py"
    assert stored["author"]["id"] == str(emu.world.bot.id)
    await emu.wait_until(lambda: sent.id in peer.message_ids, timeout_s=WAIT_S)
    assert [r.route for r in emu.rest_log].count("create_message") == 1


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
    # Sent while the socket is gone: it waits in the replay buffer.
    missed = await emu.send_message(content="while dropped")
    await emu.wait_until(lambda: emu.counters.resumes == 1, timeout_s=WAIT_S)
    await emu.wait_until(
        lambda: int(missed["id"]) in peer.message_ids, timeout_s=WAIT_S
    )
    assert emu.counters.identifies == 1
    assert len(emu.identify_log) == 1
    # Every MESSAGE_CREATE the session got was delivered exactly once.
    creates = [
        int(record.data["id"])
        for record in _session(emu).dispatches
        if record.name == "MESSAGE_CREATE"
    ]
    assert sorted(peer.message_ids) == sorted(creates)
