"""Fixtures for the integration tests: an emulator with a short heartbeat, and
clients aimed at it that are closed after each test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from _connection_support import make_client, running_emulator

from tether.client import Client
from tether.emulator import Emulator


@pytest.fixture
async def gateway_emu() -> AsyncIterator[Emulator]:
    """A running emulator with the connection tests' short knobs."""
    async with running_emulator() as emu:
        yield emu


@pytest.fixture
async def client_factory() -> AsyncIterator[Callable[..., Client]]:
    """``client_factory(emu, **options)``: a fast-backoff client, closed at the end."""
    clients: list[Client] = []

    def make(emu: Emulator, **options: Any) -> Client:
        client = make_client(emu, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await client.close()
