"""Client.run() in a script: it stops cleanly on SIGINT and SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest
from _client_fixtures import make_client, until

from tether import events as ev
from tether.client import Client
from tether.emulator import Emulator, WorldConfig
from tether.errors import InvalidTokenError
from tether.manager import ManagerState

SCRIPT = """
import logging, os, sys
from tether.client import Client
from tether.events import Ready

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
client = Client(os.environ["BOT_TOKEN"], api_url=sys.argv[1], ready_timeout_s=1.0)

@client.on(Ready)
def announce(event):
    print("ready", len(event.guilds), flush=True)

client.run()
print("stopped", flush=True)
"""


def state_of(client: Client) -> ManagerState:
    return client.state


def connections_closed(emu: Emulator) -> bool:
    return all(c.closed_at is not None for c in emu.connections())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_run_stops_cleanly_on_a_signal(signum: signal.Signals) -> None:
    async with Emulator(WorldConfig(guilds=2, members_per_guild=5)) as emu:
        env = {**os.environ, "BOT_TOKEN": emu.token}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            SCRIPT,
            emu.api_url,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert process.stdout is not None
            async with asyncio.timeout(20):
                line = await process.stdout.readline()
            assert line.decode().split() == ["ready", "2"]

            process.send_signal(signum)
            async with asyncio.timeout(20):
                out, err = await process.communicate()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

        assert process.returncode == 0, err.decode()[-2000:]
        assert out.decode().split() == ["stopped"]
        assert emu.token not in err.decode()
        assert "stopped" in err.decode()
        # The client closed its connection (and said so with a close frame).
        await emu.wait_until(lambda: connections_closed(emu), timeout_s=5)
        assert [c.end for c in emu.connections()] == ["client closed"]


async def test_async_with_starts_and_closes_the_client() -> None:
    world = WorldConfig(guilds=1, members_per_guild=5)
    async with Emulator(world, heartbeat_interval_s=0.2) as emu:
        async with make_client(emu) as client:
            async with asyncio.timeout(15):
                ready = await client.wait_for(ev.Ready)
                assert state_of(client) is ManagerState.CONNECTED
                assert client.user is not None and client.user.id == ready.user.id
                # Heartbeats are acknowledged with no dispatch in between.
                await until(lambda: client.latency is not None)
            assert (client.latency or 0.0) >= 0.0

        assert state_of(client) is ManagerState.DISCONNECTED
        assert client.latency is None
        async with asyncio.timeout(5):
            await client.wait_closed()
        await emu.wait_until(lambda: connections_closed(emu), timeout_s=5)
        assert [c.end for c in emu.connections()] == ["client closed"]


async def test_a_refused_token_stops_the_client_with_a_typed_error() -> None:
    async with Emulator(WorldConfig(guilds=1, members_per_guild=5)) as emu:
        wrong = emu.token[:-4] + ("aaaa" if not emu.token.endswith("aaaa") else "bbbb")
        client = Client(wrong, api_url=emu.api_url)
        async with client:
            async with asyncio.timeout(15):
                await client.wait_closed()

        assert isinstance(client.fatal_error, InvalidTokenError)
        assert wrong not in str(client.fatal_error)
        assert state_of(client) is ManagerState.DISCONNECTED
