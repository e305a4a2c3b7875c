"""Fixtures for the emulator's own tests."""

from __future__ import annotations

import contextlib
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
