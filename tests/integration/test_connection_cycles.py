"""Many faults in a row: drop/resume cycles leave no task and no file descriptor
behind, and a random mix of faults loses and duplicates nothing."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Awaitable, Callable

import pytest
from _connection_support import (  # noqa: F401 (fixtures)
    Recorder,
    assert_exactly_once,
    client_factory_fixture,
    gateway_emu_fixture,
    until,
    wait_ready,
)

from tether import events as ev
from tether.client import Client
from tether.emulator import Emulator
from tether.manager import Connected, ManagerState

ClientFactory = Callable[..., Client]

CYCLES = 200


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def count_tasks() -> int:
    return len(asyncio.all_tasks())


async def io_loop_tasks(client: Client) -> int:
    """Tasks on the client's I/O loop, counted on that loop."""
    # The I/O loop is internal to the client; there is no public accessor.
    loop = client._io.loop
    if loop is asyncio.get_running_loop():
        return await count_tasks()
    future = asyncio.run_coroutine_threadsafe(count_tasks(), loop)
    return await asyncio.wrap_future(future)


async def footprint(client: Client) -> tuple[int, int, int]:
    """(tasks on the user's loop, tasks on the I/O loop, open descriptors)."""
    return (await count_tasks(), await io_loop_tasks(client), open_fds())


@pytest.mark.parametrize("io_thread", [False, True], ids=["one-loop", "io-thread"])
async def test_drop_resume_cycles_leak_no_task_and_no_descriptor(
    io_thread: bool, gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client = client_factory(emu, io_thread=io_thread)
    recorder = Recorder(client)
    client.start()
    await wait_ready(client, recorder, 1)
    await emu.send_message(content="warm up")
    await until(lambda: recorder.count(ev.MessageCreate) == 1)
    baseline = await footprint(client)

    for cycle in range(1, CYCLES + 1):
        assert await emu.drop() == 1
        await until(lambda: recorder.count(ev.Resumed) == cycle)  # noqa: B023 (awaited here)
        if cycle % 50 == 0:
            await emu.send_message(content=f"cycle {cycle}")
    await until(lambda: client.state is ManagerState.CONNECTED)
    await assert_exactly_once(emu, recorder)
    assert emu.counters.identifies == 1
    assert recorder.count(ev.Resumed) == CYCLES

    # Connections wind down on both sides for a moment after the last cycle.
    now = await footprint(client)
    async with asyncio.timeout(10):
        while now != baseline:
            await asyncio.sleep(0.05)
            now = await footprint(client)
    assert now == baseline


async def test_random_faults_in_a_row_lose_and_duplicate_nothing(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    rng = random.Random(20261204)
    client = client_factory(emu, compress="zstd-stream")
    recorder = Recorder(client)
    client.start()
    await wait_ready(client, recorder, 1)

    faults: dict[str, Callable[[], Awaitable[int]]] = {
        "drop": emu.drop,
        "op 7": emu.reconnect,
        "zombie": emu.stop_acking,
        "corrupt frame": emu.send_corrupt_frame,
        "truncated frame": emu.send_truncated_frame,
        "resumable close": lambda: emu.close(rng.choice([4000, 4001, 4002, 4008])),
        "session-ending close": lambda: emu.close(rng.choice([1000, 4007, 4009])),
    }
    for _ in range(40):
        name = rng.choice(sorted(faults))
        connected = recorder.count(Connected)
        assert await faults[name]() == 1, name
        for i in range(rng.randint(0, 4)):
            await emu.send_message(content=f"{name} {i}")
        # One fault at a time: the next waits for this one's new session.
        await until(lambda: recorder.count(Connected) > connected)  # noqa: B023
        await emu.simulate("message", count=rng.randint(0, 30))

    await assert_exactly_once(emu, recorder)
    assert client.fatal_error is None
