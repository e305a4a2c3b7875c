"""Transport compression under a flood, and frames that must not be decoded: a
corrupt or truncated frame, an oversized one and a decompression bomb each end
their connection with one logged ERROR and a resume."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

import pytest
from _connection_support import (  # noqa: F401 (fixtures)
    Recorder,
    assert_exactly_once,
    client_factory_fixture,
    gateway_emu_fixture,
    wait_ready,
    wait_resumes,
)

from tether import events as ev
from tether.client import Client
from tether.emulator import Emulator

ClientFactory = Callable[..., Client]
Compression = Literal["zlib-stream", "zstd-stream"] | None

#: Small enough that the oversized frame and the bomb go over it.
MAX_MESSAGE_SIZE = 64 * 1024

FLOOD = 1500


@pytest.mark.parametrize("compress", [None, "zlib-stream", "zstd-stream"])
async def test_flood_arrives_whole_with_each_compression(
    compress: Compression, gateway_emu: Emulator, client_factory: ClientFactory
) -> None:
    emu = gateway_emu
    client = client_factory(emu, compress=compress)
    recorder = Recorder(client)
    client.start()
    await wait_ready(client, recorder, 1)

    assert await emu.simulate("message", count=FLOOD) == FLOOD

    await assert_exactly_once(emu, recorder)
    assert recorder.count(ev.MessageCreate) == FLOOD
    (connection,) = emu.connections()
    assert connection.compress == compress
    assert connection.end == "open"


async def send_fault(emu: Emulator, fault: str) -> None:
    if fault == "corrupt":
        assert await emu.send_corrupt_frame() == 1
    elif fault == "truncated":
        assert await emu.send_truncated_frame() == 1
    elif fault == "oversized":
        assert await emu.send_oversized_frame(size=4 * MAX_MESSAGE_SIZE) == 1
    else:
        assert await emu.send_decompression_bomb(size=8 * 1024 * 1024) == 1


@pytest.mark.parametrize("compress", [None, "zlib-stream", "zstd-stream"])
@pytest.mark.parametrize("fault", ["corrupt", "truncated", "oversized", "bomb"])
async def test_bad_frame_ends_the_connection_with_one_error_and_resumes(
    fault: str,
    compress: Compression,
    gateway_emu: Emulator,
    client_factory: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu = gateway_emu
    client = client_factory(emu, compress=compress, max_message_size=MAX_MESSAGE_SIZE)
    recorder = Recorder(client)
    client.start()
    await wait_ready(client, recorder, 1)
    caplog.set_level(logging.INFO)
    caplog.clear()

    await emu.send_message(content="before")
    await send_fault(emu, fault)
    await emu.send_message(content="right after")
    await wait_resumes(emu, 1)
    await emu.send_message(content="later")

    await assert_exactly_once(emu, recorder)
    assert emu.counters.identifies == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert errors[0].name.startswith("tether.")
    assert "resume" in errors[0].getMessage()
    first = emu.connections()[0]
    assert first.end == "client closed"
    # A code that keeps the session: 4000, or 1009 (message too big) when the
    # websocket layer refused the frame before it was decoded.
    assert first.client_close_code in (4000, 1009)
