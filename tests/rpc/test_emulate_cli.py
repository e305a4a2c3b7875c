"""`tether emulate --rpc-dir` serves the emulated desktop app beside the gateway."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from tether.emulator import DEFAULT_CLIENT_ID
from tether.rpc import RPCClient


async def test_emulate_serves_an_rpc_socket_that_a_client_reaches(
    tmp_path: Path,
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tether.cli",
        "emulate",
        "--guilds=1",
        f"--rpc-dir={tmp_path}",
        "--json",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            line = await process.stdout.readline()
        urls = json.loads(line)
        assert urls["rpc_socket"] == str(tmp_path / "discord-ipc-0")

        client = RPCClient(DEFAULT_CLIENT_ID, ipc_path=urls["rpc_socket"])
        client.start()
        try:
            await client.wait_until_ready(timeout_s=10)
            assert client.user is not None
        finally:
            await client.close()
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0
