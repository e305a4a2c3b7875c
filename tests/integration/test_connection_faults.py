"""The client against network and server faults: each one ends in a working
session whose dispatches reached the handlers exactly once."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

import pytest
from _connection_support import (  # noqa: F401 (fixtures)
    Recorder,
    assert_exactly_once,
    client_factory_fixture,
    gateway_emu_fixture,
    live_session_count,
    running_emulator,
    token_leaks,
    until,
    wait_ready,
    wait_resumes,
)

from tether import events as ev
from tether.client import Client
from tether.emulator import Emulator
from tether.gateway.protocol import GatewayProtocol
from tether.manager import Backoff, Connected, Disconnected

ClientFactory = Callable[..., Client]


async def started(
    emu: Emulator, client_factory: ClientFactory, **options: object
) -> tuple[Client, Recorder]:
    """A client that reached Ready on ``emu``, with a recorder attached."""
    client = client_factory(emu, **options)
    recorder = Recorder(client)
    client.start()
    await wait_ready(client, recorder, 1)
    return client, recorder


async def chatter(emu: Emulator, count: int = 5) -> None:
    """Messages posted now: buffered for RESUME if no connection is attached."""
    for i in range(count):
        await emu.send_message(content=f"message {i}")


async def test_tcp_dropped_without_close_frame_resumes(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client, recorder = await started(emu, client_factory)
    await chatter(emu)

    assert await emu.drop() == 1
    await chatter(emu)
    await wait_resumes(emu, 1)
    await chatter(emu)

    await assert_exactly_once(emu, recorder)
    assert emu.counters.identifies == 1
    assert recorder.count(ev.Resumed) == 1
    lifecycle = [
        (type(e).__name__, getattr(e, "resumed", getattr(e, "will_reconnect", None)))
        for e in recorder.events
        if isinstance(e, Connected | Disconnected)
    ]
    assert lifecycle == [
        ("Connected", False),
        ("Disconnected", True),
        ("Connected", True),
    ]


async def test_silent_server_is_detected_as_zombie_and_resumed(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client, recorder = await started(emu, client_factory)

    assert await emu.go_silent() == 1
    await chatter(emu)
    await wait_resumes(emu, 1)
    await chatter(emu)

    await assert_exactly_once(emu, recorder)
    assert emu.counters.identifies == 1
    zombie = emu.connections()[0]
    # The client closed the zombie with a code that keeps the session.
    assert zombie.client_close_code not in (1000, 1001)


async def test_unacked_heartbeats_are_detected_as_zombie_and_resumed(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client, recorder = await started(emu, client_factory)

    assert await emu.stop_acking() == 1
    await wait_resumes(emu, 1)
    await chatter(emu)

    await assert_exactly_once(emu, recorder)
    assert emu.counters.identifies == 1
    assert emu.connections()[0].client_close_code == 4000


async def test_reconnect_op7_resumes(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client, recorder = await started(emu, client_factory)

    assert await emu.reconnect() == 1
    await chatter(emu)
    await wait_resumes(emu, 1)
    await chatter(emu)

    await assert_exactly_once(emu, recorder)
    assert emu.counters.identifies == 1
    first = emu.connections()[0]
    assert first.client_close_code == 4000
    assert first.end == "client closed"


async def test_invalid_session_true_resumes(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client, recorder = await started(emu, client_factory)

    assert await emu.invalidate_session(resumable=True) == 1
    await chatter(emu)
    await wait_resumes(emu, 1)
    await chatter(emu)

    await assert_exactly_once(emu, recorder)
    assert emu.counters.identifies == 1


async def test_invalid_session_false_identifies_again(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client, recorder = await started(emu, client_factory)

    assert await emu.invalidate_session(resumable=False) == 1
    await wait_ready(client, recorder, 2)
    await chatter(emu)

    await assert_exactly_once(emu, recorder)
    assert emu.counters.identifies == 2
    assert emu.counters.resumes == 0
    assert live_session_count(emu) == 1


async def test_socket_closed_before_hello_is_retried(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client, recorder = await started(emu, client_factory)

    emu.close_before_hello(1, code=4000)
    emu.close_before_hello(1, code=None)
    assert await emu.drop() == 1
    await chatter(emu)
    await wait_resumes(emu, 1)
    await chatter(emu)

    await assert_exactly_once(emu, recorder)
    assert emu.counters.identifies == 1
    ends = [c.end for c in emu.connections()]
    assert ends[1:3] == ["server closed", "dropped before HELLO"]


async def test_hanging_gateway_bot_times_the_attempt_out(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    emu.rest_fault("gateway_bot", "hang", count=1)
    client, recorder = await started(emu, client_factory, attempt_timeout_s=1.0)
    await chatter(emu)

    await assert_exactly_once(emu, recorder)
    gateway_bot = [r for r in emu.rest_log if r.route == "get_gateway_bot"]
    # The hung request got no answer; the second attempt's did.
    assert len(gateway_bot) == 1
    assert emu.counters.identifies == 1
    assert recorder.of(Connected)[0].attempt == 2


async def test_resume_url_refusing_connections_falls_back_to_the_main_url(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client, recorder = await started(emu, client_factory)
    # The emulator has no public fault that refuses only the resume listener.
    emu._listeners["resume"].pause()

    assert await emu.drop() == 1
    await chatter(emu)
    await wait_resumes(emu, 1)
    await chatter(emu)

    await assert_exactly_once(emu, recorder)
    assert emu.counters.identifies == 1
    listeners = [c.listener for c in emu.connections()]
    assert listeners == ["gateway", "gateway"]


def reconnect_delays(records: list[logging.LogRecord]) -> list[float]:
    """The delays the manager announced in "...; reconnecting in %.1f s"."""
    return [
        r.args[-1]
        for r in records
        if isinstance(r.args, tuple)
        and isinstance(r.args[-1], float)
        and "reconnecting in" in str(r.msg)
    ]


async def test_server_refusing_connections_backs_off_then_resumes(
    gateway_emu: Emulator,
    client_factory: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu = gateway_emu
    # Factor 3 with jitter in [d/2, d]: each wait is longer than the one before.
    client, recorder = await started(
        emu,
        client_factory,
        backoff=lambda: Backoff(base_s=0.02, factor=3.0, cap_s=5.0),
    )
    caplog.set_level(logging.DEBUG, logger="tether.manager")
    caplog.clear()

    emu.refuse_connections(1.5)
    assert await emu.drop() == 1
    await chatter(emu)
    await wait_resumes(emu, 1)
    await chatter(emu)

    await assert_exactly_once(emu, recorder)
    starts = [
        r.created
        for r in caplog.records
        if r.name == "tether.manager" and r.msg == "%s: attempt %d starting"
    ]
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert len(gaps) >= 3
    assert gaps == sorted(gaps)
    assert emu.counters.identifies == 1

    # The resume reset the backoff: the next fault waits the shortest delay again.
    delays = reconnect_delays(caplog.records)
    assert await emu.drop() == 1
    await wait_resumes(emu, 2)
    after = reconnect_delays(caplog.records)
    assert len(after) == len(delays) + 1
    assert after[-1] < max(delays)
    assert after[-1] <= 0.02


async def test_server_restart_fails_the_resume_and_identifies(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client, recorder = await started(emu, client_factory)
    await chatter(emu)

    await emu.restart()
    await wait_ready(client, recorder, 2)
    await chatter(emu)

    await assert_exactly_once(emu, recorder)
    assert emu.counters.identifies == 2
    assert emu.counters.invalid_sessions == 1
    assert emu.counters.resumes == 0
    assert live_session_count(emu) == 1


async def test_restart_with_downtime(client_factory: ClientFactory) -> None:
    async with running_emulator() as emu:
        client, recorder = await started(emu, client_factory)
        await emu.restart(downtime_s=0.5)
        await wait_ready(client, recorder, 2)
        await chatter(emu)
        await assert_exactly_once(emu, recorder)
        assert emu.counters.identifies == 2
        await until(lambda: client.is_ready)


async def test_drop_before_resumed_arrives_resumes_again(
    gateway_emu: Emulator,
    client_factory: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = gateway_emu
    client, recorder = await started(emu, client_factory)
    gateway = emu._gateway
    resume = gateway._resume
    dropped = 0

    def resume_then_drop(connection: Any, d: Any, now: float) -> None:
        # Drop the connection the moment the RESUME is accepted, before its
        # RESUMED is written: the client misses it, as after a real drop.
        nonlocal dropped
        resume(connection, d, now)
        if dropped == 0:
            dropped += 1
            gateway.faults.drop([connection])

    monkeypatch.setattr(gateway, "_resume", resume_then_drop)
    assert await emu.drop() == 1
    await wait_resumes(emu, 2)
    await chatter(emu)
    if dropped != 1:
        raise RuntimeError("the RESUME hook did not run: the emulator changed")

    await assert_exactly_once(emu, recorder, timeout_s=3.0)


async def test_stalled_upgrade_times_the_attempt_out(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client, recorder = await started(emu, client_factory, attempt_timeout_s=1.0)

    emu.stall_upgrade(0.5)
    assert await emu.drop() == 1
    await chatter(emu)
    await wait_resumes(emu, 1)
    await chatter(emu)

    await assert_exactly_once(emu, recorder)
    assert emu.counters.identifies == 1
    assert client.fatal_error is None


async def test_unanswered_resume_times_the_attempt_out_and_resumes_later(
    gateway_emu: Emulator,
    client_factory: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = gateway_emu
    client, recorder = await started(emu, client_factory, attempt_timeout_s=1.0)
    gateway = emu._gateway
    resume = gateway._resume
    swallowed = 0

    def swallow_first(connection: Any, d: Any, now: float) -> None:
        # The emulator has no fault that leaves one RESUME unanswered.
        nonlocal swallowed
        if swallowed == 0:
            swallowed += 1
            return
        resume(connection, d, now)

    monkeypatch.setattr(gateway, "_resume", swallow_first)
    assert await emu.drop() == 1
    await chatter(emu)
    await wait_resumes(emu, 1)
    await chatter(emu)

    await assert_exactly_once(emu, recorder)
    assert swallowed == 1
    assert emu.counters.identifies == 1
    # The timed-out connection was closed with a code that keeps the session.
    assert emu.connections()[1].client_close_code == 4000


async def test_a_bug_in_the_writer_is_logged_and_the_session_resumed(
    gateway_emu: Emulator,
    client_factory: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu = gateway_emu
    client, recorder = await started(emu, client_factory)
    tick = GatewayProtocol.tick
    failed = 0

    def tick_failing_once(protocol: GatewayProtocol, now: float) -> None:
        nonlocal failed
        if failed == 0:
            failed += 1
            raise RuntimeError("a bug in a timer")
        tick(protocol, now)

    caplog.set_level(logging.INFO)
    monkeypatch.setattr(GatewayProtocol, "tick", tick_failing_once)
    await emu.send_message(content="poke the writer")
    await wait_resumes(emu, 1)
    await chatter(emu)

    await assert_exactly_once(emu, recorder)
    assert failed == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert emu.counters.identifies == 1


async def test_token_is_never_logged_through_identify_and_resume(
    gateway_emu: Emulator,
    client_factory: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu = gateway_emu
    # Every logger at DEBUG, the payload logger included.
    caplog.set_level(logging.DEBUG)
    client, recorder = await started(emu, client_factory)
    assert await emu.drop() == 1
    await wait_resumes(emu, 1)
    await chatter(emu)
    await assert_exactly_once(emu, recorder)

    payloads = [r for r in caplog.records if r.name == "tether.gateway.payloads"]
    assert any("'op': 2" in r.getMessage() for r in payloads)
    assert any("'op': 6" in r.getMessage() for r in payloads)
    assert token_leaks(emu.token, caplog.records) == []


async def test_failing_gateway_bot_is_an_ordinary_retryable_fault(
    gateway_emu: Emulator,
    client_factory: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu = gateway_emu
    caplog.set_level(logging.INFO)
    # The REST client retries a 503 three times: four fail the first attempt.
    emu.rest_fault("gateway_bot", "503", count=4)
    client, recorder = await started(emu, client_factory)
    await chatter(emu)

    await assert_exactly_once(emu, recorder)
    assert recorder.of(Connected)[0].attempt == 2
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    assert any(
        "GET /gateway/bot" in r.getMessage()
        for r in caplog.records
        if r.name == "tether.manager" and r.levelno == logging.WARNING
    )


async def test_gateway_bot_failing_on_a_refetch_keeps_the_cached_url(
    gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client, recorder = await started(emu, client_factory)
    # Three failed connections make the client fetch the URL again; that
    # fetch fails too, and the URL it had still works.
    emu.refuse_connections(0.8)
    emu.rest_fault("gateway_bot", "503", count=4)
    assert await emu.drop() == 1
    await wait_resumes(emu, 1)
    await chatter(emu)

    await assert_exactly_once(emu, recorder)
    assert emu.counters.identifies == 1
    statuses = [r.status for r in emu.rest_log if r.route == "get_gateway_bot"]
    assert statuses == [200, 503, 503, 503, 503]
