"""A client whose event loop ends without close() does not live on in the
background: its I/O thread stops its sessions and ends."""

from __future__ import annotations

import asyncio
import threading
import time

from tether.client import Client
from tether.emulator import Emulator, WorldConfig


def io_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "tether-io"]


def test_a_client_left_running_when_its_loop_ends_stops_by_itself() -> None:
    before = len(io_threads())
    left: list[Client] = []

    async def forget_to_close() -> None:
        async with Emulator(WorldConfig(guilds=2), heartbeat_interval_s=1.0) as emu:
            client = Client(emu.token, api_url=emu.api_url)
            left.append(client)
            client.start()
            async with asyncio.timeout(20):
                await client.wait_until_ready()
            assert len(io_threads()) == before + 1

    asyncio.run(forget_to_close())

    deadline = time.monotonic() + 15
    while len(io_threads()) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(io_threads()) == before

    # close() later, from another loop, is harmless.
    asyncio.run(asyncio.wait_for(left[0].close(), 10))
