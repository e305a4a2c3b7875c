"""The RPC client through the app's restarts and faults: it reconnects, restores
what the user set with no user code, and stops only on a fatal CLOSE."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import warnings
from pathlib import Path

import _rpc_support
import pytest
from _rpc_support import (
    TEXT_CHANNEL,
    WAIT_S,
    Recorder,
    make_client,
)

from tether.emulator.desktop import DEFAULT_ACCESS_TOKEN, DesktopApp
from tether.manager import Connected, Disconnected, ManagerState
from tether.rpc import (
    Activity,
    ActivityJoinRequest,
    CommandInterruptedError,
    ErrorReceived,
    InvalidClientIdError,
    InvalidEncodingError,
    InvalidOriginError,
    InvalidVersionError,
    MessageCreate,
    Ready,
    RestoreFailed,
    RPCClient,
    RPCFatalCloseError,
    VoiceSettingsUpdate,
)

ACTIVITY = Activity(state="Surviving restarts", details="Level 3")

# The shared fixtures, bound here so that pytest finds them.
app = _rpc_support.app
client = _rpc_support.client
runtime_dir = _rpc_support.runtime_dir


async def set_everything(rpc: RPCClient) -> None:
    await rpc.authenticate(DEFAULT_ACCESS_TOKEN)
    await rpc.subscribe_event(MessageCreate, channel_id=TEXT_CHANNEL)
    await rpc.subscribe_event(VoiceSettingsUpdate)
    await rpc.subscribe_event(ActivityJoinRequest)
    await rpc.set_activity(ACTIVITY)


async def test_an_app_restart_restores_auth_subscriptions_and_activity(
    app: DesktopApp,
) -> None:
    rpc = make_client()
    recorder = Recorder(rpc)
    messages: list[MessageCreate] = []
    rpc.subscribe(MessageCreate, messages.append)
    rpc.start()
    await recorder.wait_for(Ready)
    await set_everything(rpc)
    before = app.subscriptions()

    await app.restart()
    await recorder.wait_for(Ready, 2)

    assert recorder.names() == [
        "Connected", "Ready", "Disconnected", "Connected", "Ready",
    ]  # fmt: skip
    [gone] = recorder.of(Disconnected)
    assert isinstance(gone, Disconnected) and gone.will_reconnect
    [_, again] = recorder.of(Ready)
    assert isinstance(again, Ready) and again.authenticated
    [new] = app.connections()
    assert new.authenticated and new.id == 2
    assert app.subscriptions() == before and len(before) == 3
    assert app.activity_for() == ACTIVITY.to_payload()
    message = {"channel_id": TEXT_CHANNEL, "message": {"id": "5"}}
    assert await app.dispatch("MESSAGE_CREATE", message, channel_id=TEXT_CHANNEL) == 1
    async with asyncio.timeout(WAIT_S):
        while not messages:
            await asyncio.sleep(0.005)
        await rpc.close()


async def test_the_app_coming_back_at_another_index_is_found(app: DesktopApp) -> None:
    rpc = make_client()
    recorder = Recorder(rpc)
    rpc.start()
    await recorder.wait_for(Ready)
    await rpc.set_activity(ACTIVITY)

    await app.restart(index=4)
    await recorder.wait_for(Ready, 2)

    assert app.path.endswith("discord-ipc-4")
    assert app.activity_for() == ACTIVITY.to_payload()
    async with asyncio.timeout(WAIT_S):
        await rpc.close()


async def test_the_client_waits_for_an_absent_app_and_connects_when_it_appears(
    runtime_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rpc = make_client()
    recorder = Recorder(rpc)
    rpc.start()
    async with asyncio.timeout(WAIT_S):
        while rpc.manager.stats.attempts < 3:
            await asyncio.sleep(0.005)
    assert recorder.events == [] and rpc.state is ManagerState.CONNECTING
    assert "not running" in caplog.text

    desktop = DesktopApp(runtime_dir, index=2)
    await desktop.start()
    await recorder.wait_for(Ready)

    assert recorder.names() == ["Connected", "Ready"]
    async with asyncio.timeout(WAIT_S):
        await rpc.close()
    await desktop.stop()


async def test_a_wrong_client_id_stops_with_a_clear_error_and_no_loop(
    app: DesktopApp, caplog: pytest.LogCaptureFixture
) -> None:
    rpc = make_client(client_id=123)
    recorder = Recorder(rpc)
    rpc.start()

    async with asyncio.timeout(WAIT_S):
        await rpc.wait_closed()
        await rpc.dispatcher.wait_idle()

    assert isinstance(rpc.fatal_error, InvalidClientIdError)
    assert "application id" in str(rpc.fatal_error)
    assert rpc.manager.stats.attempts == 1 and app.refused_handshakes == 1
    [gone] = recorder.of(Disconnected)
    assert isinstance(gone, Disconnected) and not gone.will_reconnect
    assert gone.error is rpc.fatal_error
    with pytest.raises(InvalidClientIdError):
        await rpc.get_guilds()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("Invalid Client ID" in r.getMessage() for r in errors)
    await rpc.close()


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (4000, InvalidClientIdError),
        (4001, InvalidOriginError),
        (4004, InvalidVersionError),
        (4005, InvalidEncodingError),
    ],
)
async def test_fatal_close_codes_stop_the_client(
    app: DesktopApp, client: RPCClient, code: int, error: type[RPCFatalCloseError]
) -> None:
    await app.close_connections(code, "refused")

    async with asyncio.timeout(WAIT_S):
        await client.wait_closed()

    assert type(client.fatal_error) is error
    assert client.fatal_error.code == code
    assert app.handshakes == 1


async def test_close_1000_reconnects(app: DesktopApp) -> None:
    rpc = make_client()
    recorder = Recorder(rpc)
    rpc.start()
    await recorder.wait_for(Ready)

    await app.close_connections(1000, "quitting")
    await recorder.wait_for(Ready, 2)

    [gone] = recorder.of(Disconnected)
    assert isinstance(gone, Disconnected) and "1000 (quitting)" in gone.reason
    async with asyncio.timeout(WAIT_S):
        await rpc.close()


async def test_close_rate_limited_waits_before_reconnecting(app: DesktopApp) -> None:
    rpc = make_client()
    recorder = Recorder(rpc)
    rpc.start()
    await recorder.wait_for(Ready)

    await app.close_connections(4002, "slow down")
    await recorder.wait_for(Disconnected)

    [gone] = recorder.of(Disconnected)
    assert isinstance(gone, Disconnected) and gone.will_reconnect
    assert rpc.state is ManagerState.CONNECTING
    assert app.handshakes == 1
    async with asyncio.timeout(WAIT_S):
        await rpc.close()


async def test_close_token_revoked_reconnects_without_the_token(
    app: DesktopApp,
) -> None:
    rpc = make_client()
    recorder = Recorder(rpc)
    rpc.start()
    await recorder.wait_for(Ready)
    await rpc.authenticate(DEFAULT_ACCESS_TOKEN)
    await rpc.set_activity(ACTIVITY)

    await app.close_connections(4003, "token revoked")
    await recorder.wait_for(Ready, 2)

    assert len(app.commands_named("AUTHENTICATE")) == 1
    assert not rpc.is_authenticated
    assert app.activity_for() == ACTIVITY.to_payload()
    async with asyncio.timeout(WAIT_S):
        await rpc.close()


@pytest.mark.parametrize(
    ("fault", "logged"),
    [
        ("garbage", "unknown IPC opcode"),
        ("oversized", "over the 65536-byte cap"),
        ("truncated", "ended inside a frame"),
    ],
)
async def test_broken_frames_end_the_connection_with_a_log_and_a_reconnect(
    app: DesktopApp, caplog: pytest.LogCaptureFixture, fault: str, logged: str
) -> None:
    rpc = make_client()
    recorder = Recorder(rpc)
    rpc.start()
    await recorder.wait_for(Ready)
    await rpc.set_activity(ACTIVITY)

    match fault:
        case "garbage":
            await app.send_garbage()
        case "oversized":
            await app.send_oversized_frame()
        case "truncated":
            await app.send_truncated_frame()
    await recorder.wait_for(Ready, 2)

    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(logged in r.getMessage() for r in warnings)
    [gone] = recorder.of(Disconnected)
    assert isinstance(gone, Disconnected) and gone.will_reconnect
    assert app.activity_for() == ACTIVITY.to_payload()
    async with asyncio.timeout(WAIT_S):
        await rpc.close()


async def test_a_removed_socket_file_is_waited_out_until_the_app_restarts(
    app: DesktopApp, caplog: pytest.LogCaptureFixture
) -> None:
    rpc = make_client()
    recorder = Recorder(rpc)
    rpc.start()
    await recorder.wait_for(Ready)

    app.remove_socket_file()
    assert rpc.is_ready
    attempts = rpc.manager.stats.attempts
    await app.close_connections(1000)
    async with asyncio.timeout(WAIT_S):
        while rpc.manager.stats.attempts < attempts + 3:
            await asyncio.sleep(0.005)
    assert len(recorder.of(Ready)) == 1 and "not running" in caplog.text

    await app.restart()
    await recorder.wait_for(Ready, 2)
    async with asyncio.timeout(WAIT_S):
        await rpc.close()


async def test_slow_answers_arrive_within_the_timeout(
    app: DesktopApp, client: RPCClient
) -> None:
    app.response_delay_s = 0.1

    assert (await client.set_activity(ACTIVITY, timeout_s=WAIT_S)) is not None
    with pytest.raises(TimeoutError):
        await client.set_activity(ACTIVITY, timeout_s=0.02)
    assert client.is_ready


async def test_what_the_app_refuses_to_restore_is_reported_and_forgotten(
    app: DesktopApp,
) -> None:
    rpc = make_client()
    recorder = Recorder(rpc)
    rpc.start()
    await recorder.wait_for(Ready)
    await set_everything(rpc)

    app.access_token = "rotated"
    await app.restart()
    await recorder.wait_for(Ready, 2)

    refused = [
        (e.cmd, e.evt)
        for e in recorder.of(RestoreFailed)
        if isinstance(e, RestoreFailed)
    ]
    assert refused == [
        ("AUTHENTICATE", None),
        ("SUBSCRIBE", "MESSAGE_CREATE"),
        ("SUBSCRIBE", "VOICE_SETTINGS_UPDATE"),
    ]
    assert rpc.subscriptions == [("ACTIVITY_JOIN_REQUEST", {})]
    assert app.activity_for() == ACTIVITY.to_payload()
    [_, again] = recorder.of(Ready)
    assert isinstance(again, Ready) and not again.authenticated
    async with asyncio.timeout(WAIT_S):
        await rpc.close()


async def test_a_command_cut_off_by_a_restart_is_sent_again_if_safe(
    app: DesktopApp, client: RPCClient
) -> None:
    await client.authenticate(DEFAULT_ACCESS_TOKEN)
    app.unanswered.add("GET_GUILDS")
    call = asyncio.ensure_future(client.get_guilds(timeout_s=WAIT_S))
    await app.wait_until(lambda: len(app.commands_named("GET_GUILDS")) == 1)

    app.unanswered.clear()
    await app.restart()

    async with asyncio.timeout(WAIT_S):
        guilds = await call
    assert len(guilds) == 2
    assert len(app.commands_named("GET_GUILDS")) == 2


async def test_a_command_cut_off_by_a_restart_fails_if_not_safe_to_repeat(
    app: DesktopApp, client: RPCClient
) -> None:
    app.unanswered.add("AUTHORIZE")
    call = asyncio.ensure_future(client.authorize(["rpc"], timeout_s=WAIT_S))
    await app.wait_until(lambda: len(app.commands_named("AUTHORIZE")) == 1)

    await app.restart()

    async with asyncio.timeout(WAIT_S):
        with pytest.raises(CommandInterruptedError, match="AUTHORIZE was sent"):
            await call
    assert len(app.commands_named("AUTHORIZE")) == 1


async def test_an_error_event_from_the_app_is_delivered(
    app: DesktopApp, client: RPCClient
) -> None:
    waiter = asyncio.ensure_future(client.wait_for(ErrorReceived, timeout=WAIT_S))

    await app.broadcast("ERROR", {"code": 1000, "message": "something broke"})

    event = await waiter
    assert (event.code, event.message) == (1000, "something broke")
    assert client.is_ready


async def test_stop_while_the_app_is_absent_ends_promptly(runtime_dir: Path) -> None:
    rpc = make_client()
    rpc.start()
    await asyncio.sleep(0.02)

    async with asyncio.timeout(WAIT_S):
        await rpc.stop()
        await rpc.wait_closed()

    assert rpc.state is ManagerState.DISCONNECTED


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settled(baseline_tasks: int, baseline_fds: int) -> tuple[int, int]:
    """Task and descriptor counts, once they stop above the baseline (bounded)."""
    tasks, fds = len(asyncio.all_tasks()), open_descriptors()
    async with asyncio.timeout(WAIT_S):
        while tasks > baseline_tasks or fds > baseline_fds:
            await asyncio.sleep(0.01)
            gc.collect()
            tasks, fds = len(asyncio.all_tasks()), open_descriptors()
    return tasks, fds


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_200_restarts_leave_tasks_and_open_files_unchanged(
    app: DesktopApp,
) -> None:
    rpc = make_client()
    recorder = Recorder(rpc)
    rpc.start()
    await recorder.wait_for(Ready)
    await set_everything(rpc)
    await rpc.dispatcher.wait_idle()
    tasks, fds = len(asyncio.all_tasks()), open_descriptors()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for n in range(2, 202):
            await app.restart(index=n % 3)
            await recorder.wait_for(Ready, n)
        await rpc.dispatcher.wait_idle()
        gc.collect()

    assert app.handshakes == 201
    assert len(recorder.of(Connected)) == 201
    assert app.activity_for() == ACTIVITY.to_payload()
    assert len(app.subscriptions()) == 3
    assert await settled(tasks, fds) == (tasks, fds)
    # Transports closed by the garbage collector would hide a leak from the counts.
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []
    async with asyncio.timeout(WAIT_S):
        await rpc.close()
