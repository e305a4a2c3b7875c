"""Handlers against real events: a blocked loop, errors, the watchdog, subscribing."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest
from _client_fixtures import EmulatorThread, Recorder, make_client, until

from tether import events as ev
from tether._dispatch import HandlerError
from tether._event import Event
from tether.client import ClientStats
from tether.emulator import Emulator, WorldConfig
from tether.manager import Disconnected, ManagerState

WORLD = WorldConfig(
    guilds=3,
    members_per_guild=8,
    categories_per_guild=0,
    text_channels_per_guild=1,
    voice_channels_per_guild=0,
    threads_per_guild=0,
    seed=7,
)
BURST = 10


def text_channel(emu: Emulator) -> int:
    guild = next(iter(emu.world.guilds.values()))
    return guild.channel_ids_of_type(0)[0]


async def send_burst_when(emu: Emulator, started: threading.Event) -> None:
    """Post "block", then ``BURST`` numbered messages once ``started`` is set."""
    channel = text_channel(emu)
    await emu.send_message(channel, "block")
    async with asyncio.timeout(10):
        # Set from the client's side, in another thread.
        while not started.is_set():  # noqa: ASYNC110 (a thread's flag)
            await asyncio.sleep(0.01)
    for n in range(BURST):
        await emu.send_message(channel, str(n))


async def run_blocking_handler(
    *, io_thread: bool, cpu: bool = False
) -> tuple[EmulatorThread, list[str], list[ClientStats], list[Event]]:
    async with EmulatorThread(WORLD, heartbeat_interval_s=0.5) as side:
        emu = side.emu
        client = make_client(emu, io_thread=io_thread, loop_lag_warning_s=1.0)
        recorder = Recorder(client)
        contents: list[str] = []
        during: list[ClientStats] = []
        # Set on the client's loop, read on the emulator's.
        flag = threading.Event()

        def blocking_handler(event: ev.MessageCreate) -> None:
            if event.message.content != "block":
                contents.append(event.message.content)
                return
            flag.set()
            # Block the loop for six heartbeat intervals, and until the burst
            # has reached the I/O side (bounded).
            start = time.monotonic()
            while time.monotonic() - start < 3.0 or (
                io_thread
                and client.stats.inbox_size < BURST
                and time.monotonic() - start < 15.0
            ):
                if cpu:
                    # Pure-Python work: holds the interpreter lock, never sleeps.
                    sum(i * i for i in range(20_000))
                else:
                    time.sleep(0.05)  # noqa: ASYNC251 (the point of the test)
            during.append(client.stats)

        client.subscribe(ev.MessageCreate, blocking_handler)
        async with client:
            async with asyncio.timeout(15):
                await client.wait_until_ready()
            async with asyncio.timeout(40):
                await side.call(send_burst_when(emu, flag))
                await until(lambda: len(contents) == BURST, timeout_s=30)
                if not io_thread:
                    await until(lambda: bool(recorder.of(ev.Resumed)), timeout_s=30)
            # What happened before the client was closed.
            events = list(recorder.events)
        return side, contents, during, events


@pytest.mark.parametrize("cpu", [False, True], ids=["time.sleep", "cpu"])
async def test_a_handler_blocking_the_loop_costs_nothing_with_the_io_thread(
    cpu: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    side, contents, during, events = await run_blocking_handler(io_thread=True, cpu=cpu)
    counters = side.emu.counters

    # The session survived: one connection, no resume, no second IDENTIFY.
    assert counters.connections == 1
    assert counters.resumes == 0
    assert counters.identifies == 1
    # Heartbeats went on while the loop was blocked (3 s at 0.5 s intervals).
    assert counters.heartbeats >= 4
    assert not any(isinstance(e, Disconnected) for e in events)
    # What arrived meanwhile waited in the inbox, and came in order.
    assert contents == [str(n) for n in range(BURST)]
    [stats] = during
    assert stats.inbox_size >= BURST
    assert stats.inbox_oldest_s > 0
    # The lag was noticed and blamed on the handler.
    lag = [
        r.getMessage()
        for r in caplog.records
        if r.name == "tether._iothread" and "blocked" in r.getMessage()
    ]
    assert lag, "no loop-lag warning"
    assert "blocking_handler" in lag[0]
    assert "MessageCreate" in lag[0]
    # And so was the backlog, once drained.
    backlog = [
        r.getMessage()
        for r in caplog.records
        if r.name == "tether._iothread" and "waited" in r.getMessage()
    ]
    assert backlog, "no backlog warning"


async def test_without_the_io_thread_a_blocked_loop_loses_the_connection() -> None:
    side, contents, _during, events = await run_blocking_handler(io_thread=False)
    counters = side.emu.counters

    # The emulator timed out the silent connection; the client resumed.
    assert counters.connections >= 2
    assert counters.resumes >= 1
    assert any(isinstance(e, Disconnected) for e in events)
    # Nothing was lost: the resume replayed what the dead connection missed.
    assert contents == [str(n) for n in range(BURST)]


async def test_a_raising_handler_is_logged_once_and_raises_handler_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    async with Emulator(WORLD) as emu, make_client(emu) as client:
        delivered: list[str] = []

        @client.on(ev.MessageCreate)
        async def broken_handler(event: ev.MessageCreate) -> None:
            if event.message.content == "boom":
                raise ValueError("boom")
            delivered.append(event.message.content)

        async with asyncio.timeout(15):
            await client.wait_until_ready()
            failed = asyncio.ensure_future(client.wait_for(HandlerError))
            await asyncio.sleep(0)
            await emu.send_message(text_channel(emu), "boom")
            error = await failed
            await emu.send_message(text_channel(emu), "after")
            await until(lambda: delivered == ["after"])

        assert isinstance(error.error, ValueError)
        assert isinstance(error.event, ev.MessageCreate)
        assert error.handler_name.endswith("broken_handler")
        logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(logged) == 1
        message = logged[0].getMessage()
        assert "broken_handler" in message and "MessageCreate" in message
        assert logged[0].exc_info is not None
        assert client.stats.handler_errors == 1
        # The gateway did not notice.
        assert client.state is ManagerState.CONNECTED
        assert emu.counters.connections == 1


async def test_the_watchdog_names_a_slow_handler_and_it_delays_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with (
        Emulator(WORLD) as emu,
        make_client(emu, slow_handler_warning_s=0.2) as client,
    ):
        release = asyncio.Event()
        fast: list[str] = []

        @client.on(ev.MessageCreate)
        async def slow_handler(event: ev.MessageCreate) -> None:
            if event.message.content == "slow":
                await release.wait()

        @client.on(ev.MessageCreate)
        def fast_handler(event: ev.MessageCreate) -> None:
            fast.append(event.message.content)

        def warned() -> list[str]:
            return [
                r.getMessage()
                for r in caplog.records
                if r.name == "tether.handlers" and "slow_handler" in r.getMessage()
            ]

        async with asyncio.timeout(15):
            await client.wait_until_ready()
            await emu.send_message(text_channel(emu), "slow")
            await emu.send_message(text_channel(emu), "next")
            await until(lambda: fast == ["slow", "next"])
            assert client.stats.handlers_running == 1
            await until(lambda: bool(warned()))
            release.set()
            await until(lambda: client.stats.handlers_running == 0)

        assert "MessageCreate" in warned()[0]
        assert len(warned()) == 1


async def test_on_subscribe_wait_for_and_stream_see_real_events() -> None:
    async with Emulator(WORLD) as emu, make_client(emu) as client:
        decorated: list[str] = []
        subscribed: list[str] = []

        @client.on(ev.MessageCreate)
        def on_message(event: ev.MessageCreate) -> None:
            decorated.append(event.message.content)

        subscription = client.subscribe(
            ev.MessageCreate, lambda e: subscribed.append(e.message.content)
        )
        async with asyncio.timeout(15):
            await client.wait_until_ready()
            stream = client.stream(
                ev.MessageCreate, check=lambda e: e.message.content != "skip"
            )
            third = asyncio.ensure_future(
                client.wait_for(
                    ev.MessageCreate, check=lambda e: e.message.content == "2"
                )
            )
            await asyncio.sleep(0)
            for content in ["0", "skip", "1", "2"]:
                await emu.send_message(text_channel(emu), content)
            found = await third
            streamed = []
            async with stream:
                async for event in stream:
                    streamed.append(event.message.content)
                    if len(streamed) == 3:
                        break
            await until(lambda: len(subscribed) == 4)

            subscription.cancel()
            await emu.send_message(text_channel(emu), "3")
            await until(lambda: len(decorated) == 5)

        assert found.message.content == "2"
        assert streamed == ["0", "1", "2"]
        assert decorated == ["0", "skip", "1", "2", "3"]
        assert subscribed == ["0", "skip", "1", "2"]
        with pytest.raises(TimeoutError):
            await client.wait_for(ev.MessageDelete, timeout=0.05)
