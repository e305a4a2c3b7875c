"""Fixtures for the emulator's own tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _emu_client import EmulatorFactory

from tether.emulator import Emulator, WorldConfig

# Defaults that keep tests fast: heartbeats slow enough that raw clients need not
# send them, no identify window, quick fault closes.
TEST_DEFAULTS: dict[str, Any] = {
    "heartbeat_interval_s": 30.0,
    "identify_window_s": 0.0,
    "fault_close_delay_s": 0.3,
}


@pytest.fixture
async def make_emulator() -> AsyncIterator[EmulatorFactory]:
    """Start emulators with test defaults; every one is stopped afterwards."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(world: WorldConfig | None = None, **kwargs: Any) -> Emulator:
            options = {**TEST_DEFAULTS, **kwargs}
            config = world or WorldConfig(guilds=4, members_per_guild=12, seed=3)
            return await stack.enter_async_context(Emulator(world=config, **options))

        yield make


@pytest.fixture
async def emu(make_emulator: EmulatorFactory) -> Emulator:
    """A small running emulator."""
    return await make_emulator()


_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse every name lookup and connection that is not to this machine.

    Other libraries carry built-in Discord URLs; this makes sure a forgotten one
    fails here instead of leaving the machine.
    """
    real_getaddrinfo = socket.getaddrinfo
    real_sock_connect = asyncio.selector_events.BaseSelectorEventLoop.sock_connect

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in _LOOPBACK:
            raise socket.gaierror(socket.EAI_NONAME, f"{host!r} is not loopback")
        return real_getaddrinfo(host, *args, **kwargs)

    async def sock_connect(self: Any, sock: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[0] not in _LOOPBACK:
            raise ConnectionRefusedError(f"{address[0]!r} is not loopback")
        return await real_sock_connect(self, sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(
        asyncio.selector_events.BaseSelectorEventLoop, "sock_connect", sock_connect
    )
