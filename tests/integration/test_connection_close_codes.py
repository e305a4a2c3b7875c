"""Every close code of the policy table, sent by the emulator on a running
session: resumable codes resume, session-ending ones identify again, fatal ones
stop the client with their typed error and never loop. And a wrong token."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest
from _connection_support import (  # noqa: F401 (fixtures)
    WAIT_S,
    Recorder,
    assert_exactly_once,
    client_factory_fixture,
    gateway_emu_fixture,
    live_session_count,
    make_client,
    token_leaks,
    wait_ready,
    wait_resumes,
)

from tether import errors
from tether import events as ev
from tether.client import Client
from tether.emulator import Emulator
from tether.gateway.opcodes import CLOSE_POLICY, CloseCode, Recovery
from tether.manager import Disconnected, ManagerState

ClientFactory = Callable[..., Client]

FATAL_ERRORS: dict[int, type[errors.FatalCloseError]] = {
    4004: errors.InvalidTokenError,
    4010: errors.InvalidShardError,
    4011: errors.ShardingRequiredError,
    4012: errors.InvalidApiVersionError,
    4013: errors.InvalidIntentsError,
    4014: errors.DisallowedIntentsError,
}


def codes(recovery: Recovery) -> list[int]:
    # 1006 is never sent in a close frame; a drop stands for it (test_faults).
    return [
        int(code)
        for code, r in CLOSE_POLICY.items()
        if r is recovery and code != CloseCode.ABNORMAL_CLOSURE
    ]


def test_the_table_has_a_typed_error_for_every_fatal_code() -> None:
    assert sorted(FATAL_ERRORS) == codes(Recovery.FATAL)
    assert codes(Recovery.IDENTIFY) == [1000, 1001, 4003, 4007, 4009]


async def started(
    emu: Emulator, client_factory: ClientFactory
) -> tuple[Client, Recorder]:
    client = client_factory(emu)
    recorder = Recorder(client)
    client.start()
    await wait_ready(client, recorder, 1)
    await emu.send_message(content="before")
    return client, recorder


@pytest.mark.parametrize("code", codes(Recovery.RESUME))
async def test_resumable_close_code_resumes(
    code: int, gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client, recorder = await started(emu, client_factory)

    assert await emu.close(code) == 1
    await emu.send_message(content="while away")
    await wait_resumes(emu, 1)
    await emu.send_message(content="after")

    await assert_exactly_once(emu, recorder)
    assert emu.counters.identifies == 1
    assert recorder.count(ev.Resumed) == 1
    assert recorder.count(ev.Ready) == 1


@pytest.mark.parametrize("code", codes(Recovery.IDENTIFY))
async def test_session_ending_close_code_identifies_again(
    code: int, gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client, recorder = await started(emu, client_factory)

    assert await emu.close(code) == 1
    await wait_ready(client, recorder, 2)
    await emu.send_message(content="after")

    await assert_exactly_once(emu, recorder)
    assert emu.counters.identifies == 2
    assert emu.counters.resumes == 0
    assert live_session_count(emu) == 1
    # The client never sent a RESUME the server would have had to refuse.
    assert emu.counters.invalid_sessions == 0


@pytest.mark.parametrize("code", codes(Recovery.FATAL))
async def test_fatal_close_code_stops_with_its_typed_error(
    code: int, gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client, recorder = await started(emu, client_factory)

    assert await emu.close(code) == 1
    async with asyncio.timeout(WAIT_S):
        await client.wait_closed()

    error = client.fatal_error
    assert type(error) is FATAL_ERRORS[code]
    assert isinstance(error, errors.FatalCloseError) and error.code == code
    assert client.state is ManagerState.DISCONNECTED
    disconnected = recorder.of(Disconnected)
    assert len(disconnected) == 1
    assert not disconnected[0].will_reconnect
    assert disconnected[0].error is error
    # No loop: the client did not come back after the fatal close.
    await asyncio.sleep(0.3)
    assert emu.counters.identifies == 1
    assert emu.counters.connections == 1
    await assert_exactly_once(emu, recorder)


async def test_wrong_token_stops_with_one_clear_error_and_never_leaks_it(
    gateway_emu: Emulator,
    client_factory: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu = gateway_emu
    caplog.set_level(logging.DEBUG)
    wrong = emu.token[:-6] + "abcdef"
    client = client_factory(emu, token=wrong)
    client.start()

    async with asyncio.timeout(WAIT_S):
        await client.wait_closed()

    error = client.fatal_error
    assert isinstance(error, errors.InvalidTokenError)
    assert client.state is ManagerState.DISCONNECTED
    assert emu.counters.identifies == 0
    errors_logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors_logged) == 1, [r.getMessage() for r in errors_logged]
    for token in (wrong, emu.token):
        assert token_leaks(token, caplog.records) == []
        assert token not in str(error) and token not in repr(error)
        assert token not in repr(client)
        cause = error.__cause__ or error.__context__
        while cause is not None:
            assert token not in str(cause)
            cause = cause.__cause__ or cause.__context__


async def test_wrong_token_makes_run_raise_invalid_token_error(
    gateway_emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    emu = gateway_emu
    caplog.set_level(logging.DEBUG)
    wrong = emu.token[:-6] + "abcdef"
    client = make_client(emu, token=wrong, io_thread=True)

    # run() owns its event loop, so it runs in a thread of its own here.
    with pytest.raises(errors.InvalidTokenError) as caught:
        async with asyncio.timeout(WAIT_S):
            await asyncio.to_thread(client.run)

    assert wrong not in str(caught.value)
    assert token_leaks(wrong, caplog.records) == []
