"""The emulated desktop app on its own, spoken to with raw bytes (no tether code
on the client side), so that its behaviour does not lean on the client's."""

from __future__ import annotations

import asyncio
import json
import os
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tether.emulator.desktop import DEFAULT_CLIENT_ID, DesktopApp

HEADER = struct.Struct("<II")


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    def send(self, op: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.writer.write(HEADER.pack(op, len(body)) + body)

    async def receive(self) -> tuple[int, Any]:
        async with asyncio.timeout(5):
            op, size = HEADER.unpack(await self.reader.readexactly(HEADER.size))
            return op, json.loads(await self.reader.readexactly(size))

    async def at_eof(self) -> bool:
        async with asyncio.timeout(5):
            ended = await self.reader.read() == b""
        self.writer.close()
        return ended


@pytest.fixture
async def desktop(tmp_path: Path) -> AsyncIterator[DesktopApp]:
    app = DesktopApp(tmp_path)
    await app.start()
    yield app
    await app.stop()


def exists(path: str) -> bool:
    return os.path.exists(path)


async def connect(app: DesktopApp, client_id: str = DEFAULT_CLIENT_ID) -> RawClient:
    reader, writer = await asyncio.open_unix_connection(app.path)
    raw = RawClient(reader, writer)
    raw.send(0, {"v": 1, "client_id": client_id})
    return raw


async def test_a_handshake_is_answered_with_ready(desktop: DesktopApp) -> None:
    raw = await connect(desktop)

    op, payload = await raw.receive()

    assert op == 1
    assert payload["cmd"] == "DISPATCH" and payload["evt"] == "READY"
    assert payload["data"]["v"] == 1 and payload["data"]["user"]["username"] == "tester"
    raw.writer.close()


async def test_a_wrong_client_id_gets_close_4000_then_the_socket_ends(
    desktop: DesktopApp,
) -> None:
    raw = await connect(desktop, client_id="1")

    assert await raw.receive() == (2, {"code": 4000, "message": "Invalid Client ID"})
    assert await raw.at_eof()
    assert desktop.refused_handshakes == 1 and desktop.handshakes == 0


async def test_answers_echo_the_nonce_and_errors_carry_code_and_message(
    desktop: DesktopApp,
) -> None:
    raw = await connect(desktop)
    await raw.receive()

    raw.send(1, {"cmd": "GET_GUILDS", "args": {}, "nonce": "n-1"})
    _, error = await raw.receive()
    raw.send(
        1, {"cmd": "SET_ACTIVITY", "args": {"pid": 1, "activity": None}, "nonce": "n-2"}
    )
    _, answer = await raw.receive()

    assert error == {
        "cmd": "GET_GUILDS",
        "nonce": "n-1",
        "evt": "ERROR",
        "data": {"code": 4006, "message": "Not authenticated or invalid scope"},
    }
    assert answer == {"cmd": "SET_ACTIVITY", "nonce": "n-2", "evt": None, "data": None}
    raw.writer.close()


async def test_a_client_ping_gets_a_pong_with_the_same_body(
    desktop: DesktopApp,
) -> None:
    raw = await connect(desktop)
    await raw.receive()

    raw.send(3, {"n": 5})

    assert await raw.receive() == (4, {"n": 5})
    raw.writer.close()


async def test_an_oversized_frame_from_a_client_ends_its_connection(
    desktop: DesktopApp,
) -> None:
    raw = await connect(desktop)
    await raw.receive()

    raw.writer.write(HEADER.pack(1, 10 * desktop.max_frame_size))

    assert await raw.at_eof()


async def test_stop_removes_the_socket_and_restart_moves_it(
    desktop: DesktopApp,
) -> None:
    first = desktop.path

    await desktop.restart(index=3)

    assert not exists(first)
    assert desktop.path.endswith("discord-ipc-3") and exists(desktop.path)
    desktop.remove_socket_file()
    assert not exists(desktop.path)
    with pytest.raises(OSError):
        await asyncio.open_unix_connection(desktop.path)


async def test_a_stop_during_a_slow_answer_does_not_hang(desktop: DesktopApp) -> None:
    desktop.response_delay_s = 60
    raw = await connect(desktop)
    await raw.receive()
    raw.send(
        1, {"cmd": "SET_ACTIVITY", "args": {"pid": 1, "activity": None}, "nonce": "x"}
    )
    await desktop.wait_until(lambda: len(desktop.commands) == 1)

    async with asyncio.timeout(5):
        await desktop.stop()

    assert await raw.at_eof()
