"""start() and stop() at awkward moments: each returns at once, stop() is
awaited to the end, and a later start() gets a working session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from _connection_support import (  # noqa: F401 (fixtures)
    WAIT_S,
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
from tether.emulator.records import SessionState
from tether.errors import ClientStateError
from tether.identify import SessionStartLimitError
from tether.manager import Backoff, Connected, Disconnected, ManagerState

ClientFactory = Callable[..., Client]


class GatedIdentifyQueue:
    """An identify queue that gives no turn until :attr:`gate` is set."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.waiting = 0

    @contextlib.asynccontextmanager
    async def turn(self, shard_id: int) -> AsyncIterator[None]:
        self.waiting += 1
        try:
            await self.gate.wait()
        finally:
            self.waiting -= 1
        yield


async def stopped(client: Client) -> None:
    async with asyncio.timeout(WAIT_S):
        await client.stop()
    # Client.state reaches the user's loop through the inbox, a moment after
    # stop() resolves (test_state_is_disconnected_once_stop_returns).
    await until(lambda: client.state is ManagerState.DISCONNECTED)


async def test_state_is_disconnected_once_stop_returns(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    queue = GatedIdentifyQueue()
    client = client_factory(gateway_emu, identify_queue=queue)
    client.start()
    await until(lambda: queue.waiting == 1)

    async with asyncio.timeout(WAIT_S):
        await client.stop()
    assert client.state is ManagerState.DISCONNECTED


async def test_start_twice_makes_one_connection(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client = client_factory(emu)
    recorder = Recorder(client)

    client.start()
    client.start()
    await wait_ready(client, recorder, 1)
    client.start()
    await emu.send_message(content="hello")

    await assert_exactly_once(emu, recorder)
    assert emu.counters.connections == 1
    assert emu.counters.identifies == 1
    assert recorder.count(Connected) == 1


async def test_stop_twice_closes_once_and_start_works_after(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client = client_factory(emu)
    recorder = Recorder(client)
    client.start()
    await wait_ready(client, recorder, 1)

    first, second = client.stop(), client.stop()
    async with asyncio.timeout(WAIT_S):
        await asyncio.gather(first, second)
    await stopped(client)

    (connection,) = emu.connections()
    assert connection.client_close_code == 1000
    assert emu.sessions()[0].state is SessionState.CLOSED
    disconnected = recorder.of(Disconnected)
    assert [d.will_reconnect for d in disconnected] == [False]

    client.start()
    await wait_ready(client, recorder, 2)
    await emu.send_message(content="hello again")
    await assert_exactly_once(emu, recorder)
    # The session ended with 1000, so the client identified afresh.
    assert emu.counters.identifies == 2
    assert emu.counters.invalid_sessions == 0


async def test_stop_before_start_is_harmless(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    client = client_factory(gateway_emu)
    await stopped(client)
    recorder = Recorder(client)
    client.start()
    await wait_ready(client, recorder, 1)


async def test_stop_while_connecting(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client = client_factory(emu)
    recorder = Recorder(client)
    emu.stall_upgrade(0.5)

    client.start()
    await until(lambda: any(r.route == "get_gateway_bot" for r in emu.rest_log))
    assert client.state is ManagerState.CONNECTING
    await stopped(client)

    assert emu.counters.connections == 0
    assert recorder.count(Connected) == 0
    # Past the stall, a new start() connects.
    await asyncio.sleep(0.5)
    client.start()
    await wait_ready(client, recorder, 1)
    await assert_exactly_once(emu, recorder)
    assert emu.counters.identifies == 1


async def test_stop_during_backoff(
    gateway_emu: Emulator,
    client_factory: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu = gateway_emu
    # A first retry a minute away: stop() must not wait for it.
    client = client_factory(emu, backoff=lambda: Backoff(base_s=60.0, cap_s=60.0))
    recorder = Recorder(client)
    emu.refuse_connections(0.3)
    caplog.set_level(logging.WARNING, logger="tether.manager")

    client.start()
    await until(lambda: any("reconnecting in" in r.msg for r in caplog.records))
    assert client.state is ManagerState.CONNECTING
    await stopped(client)
    assert emu.counters.connections == 0

    await until(lambda: emu._listeners["gateway"].is_listening)
    client.start()
    await wait_ready(client, recorder, 1)
    await assert_exactly_once(emu, recorder)


async def test_stop_while_waiting_to_identify(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    queue = GatedIdentifyQueue()
    client = client_factory(emu, identify_queue=queue)
    recorder = Recorder(client)

    client.start()
    await until(lambda: queue.waiting == 1)
    await stopped(client)

    (connection,) = emu.connections()
    assert connection.client_close_code == 1000
    assert emu.counters.identifies == 0
    assert queue.waiting == 0

    queue.gate.set()
    client.start()
    await wait_ready(client, recorder, 1)
    await emu.send_message(content="hello")
    await assert_exactly_once(emu, recorder)
    assert emu.counters.identifies == 1


@pytest.mark.parametrize("io_thread", [False, True], ids=["one-loop", "io-thread"])
async def test_stop_then_start_from_a_disconnected_handler(
    io_thread: bool, gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client = client_factory(emu, io_thread=io_thread)
    recorder = Recorder(client)
    restarted = asyncio.Event()

    async def restart(event: Disconnected) -> None:
        if restarted.is_set():
            return
        restarted.set()
        await client.stop()
        client.start()

    client.subscribe(Disconnected, restart)
    client.start()
    await wait_ready(client, recorder, 1)
    await emu.send_message(content="before")

    assert await emu.drop() == 1
    async with asyncio.timeout(WAIT_S):
        await restarted.wait()
    await until(lambda: recorder.count(Connected) == 2)
    await emu.send_message(content="after")

    await assert_exactly_once(emu, recorder)
    assert client.state is ManagerState.CONNECTED
    # Whatever stop() found (a backoff wait or a new connection), the session
    # goes on: resumed, or identified afresh after a close with 1000.
    assert emu.counters.resumes + emu.counters.identifies == 2
    if emu.counters.identifies == 2:
        assert recorder.count(ev.Ready) == 2


async def test_stop_against_a_silent_server_is_bounded(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client = client_factory(emu)
    recorder = Recorder(client)
    client.start()
    await wait_ready(client, recorder, 1)

    assert await emu.go_silent() == 1
    # The close handshake gets no answer: the transport is aborted after a
    # bounded wait and stop() still completes.
    await stopped(client)
    (connection,) = emu.connections()
    assert connection.client_close_code == 1000


async def test_start_right_after_stop_reconnects(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client = client_factory(emu)
    recorder = Recorder(client)
    client.start()
    await wait_ready(client, recorder, 1)

    stopping = client.stop()
    client.start()
    async with asyncio.timeout(WAIT_S):
        await stopping
    await until(lambda: recorder.count(Connected) == 2)
    await emu.send_message(content="after")

    await assert_exactly_once(emu, recorder)
    assert client.state is ManagerState.CONNECTED


async def test_stop_while_waiting_for_ready(
    gateway_emu: Emulator,
    client_factory: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = gateway_emu
    gateway = emu._gateway
    identify = gateway._identify
    swallowed = 0

    def swallow_first(connection: Any, d: Any, now: float) -> None:
        # The emulator has no fault that leaves an IDENTIFY unanswered.
        nonlocal swallowed
        if swallowed == 0:
            swallowed += 1
            return
        identify(connection, d, now)

    monkeypatch.setattr(gateway, "_identify", swallow_first)
    client = client_factory(emu)
    recorder = Recorder(client)
    client.start()
    await until(lambda: swallowed == 1)
    await stopped(client)

    (connection,) = emu.connections()
    assert connection.client_close_code == 1000
    assert recorder.count(Connected) == 0

    client.start()
    await wait_ready(client, recorder, 1)
    await emu.send_message(content="hello")
    await assert_exactly_once(emu, recorder)
    assert emu.counters.identifies == 1


class RefusingIdentifyQueue:
    """Refuses every turn with ``error``; with ``gated``, only once :attr:`gate`
    is set."""

    def __init__(self, error: Exception, *, gated: bool = False) -> None:
        self.error = error
        self.gate = asyncio.Event()
        if not gated:
            self.gate.set()
        self.asked = 0

    @contextlib.asynccontextmanager
    async def turn(self, shard_id: int) -> AsyncIterator[None]:
        self.asked += 1
        await self.gate.wait()
        raise self.error
        yield  # pragma: no cover


async def test_a_fatal_refusal_by_the_identify_queue_stops_the_client_at_once(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    refusal = SessionStartLimitError(0, remaining=0, total=1000, reset_after_s=60.0)
    queue = RefusingIdentifyQueue(refusal)
    client = client_factory(gateway_emu, identify_queue=queue, attempt_timeout_s=60)

    client.start()
    async with asyncio.timeout(WAIT_S):
        await client.wait_closed()

    assert client.fatal_error is refusal
    assert queue.asked == 1
    assert gateway_emu.counters.identifies == 0


async def test_a_command_waiting_for_a_session_fails_when_the_shard_gives_up(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    refusal = SessionStartLimitError(0, remaining=0, total=1000, reset_after_s=60.0)
    queue = RefusingIdentifyQueue(refusal, gated=True)
    client = client_factory(gateway_emu, identify_queue=queue, attempt_timeout_s=60)
    client.start()
    await until(lambda: queue.asked == 1)
    command = asyncio.ensure_future(client.update_presence(status="idle"))
    await asyncio.sleep(0.1)

    client._io.call(queue.gate.set)

    with pytest.raises(ClientStateError):
        async with asyncio.timeout(WAIT_S):
            await command
    assert client.fatal_error is refusal or isinstance(
        client.fatal_error, SessionStartLimitError
    )
