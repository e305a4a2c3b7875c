"""Shared pieces of the RPC tests: an emulated desktop app in a private runtime
directory (``XDG_RUNTIME_DIR`` points there, so no real Discord socket is touched),
clients with a backoff of milliseconds, and an event recorder.

Test modules import the fixtures from here by name.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tether._event import Event
from tether.emulator.desktop import DEFAULT_CLIENT_ID, DesktopApp
from tether.manager import Backoff
from tether.rpc import RPCClient

#: Bound on every wait in these tests.
WAIT_S = 5.0
GUILD = "100000000000000001"
TEXT_CHANNEL = "200000000000000001"
VOICE_CHANNEL = "200000000000000002"
OTHER_VOICE_CHANNEL = "200000000000000004"


@pytest.fixture
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private runtime directory that the client's discovery looks in."""
    directory = tmp_path / "run"
    directory.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(directory))
    for name in ("TMPDIR", "TMP", "TEMP"):
        monkeypatch.delenv(name, raising=False)
    return directory


@pytest.fixture
async def app(runtime_dir: Path) -> AsyncIterator[DesktopApp]:
    """The emulated app, running at discord-ipc-0."""
    desktop = DesktopApp(runtime_dir)
    await desktop.start()
    yield desktop
    await desktop.stop()


@pytest.fixture
async def client(app: DesktopApp) -> AsyncIterator[RPCClient]:
    """A started client, ready."""
    rpc = make_client()
    rpc.start()
    await rpc.wait_until_ready(timeout_s=WAIT_S)
    yield rpc
    async with asyncio.timeout(WAIT_S):
        await rpc.close()


def make_client(client_id: int | str = DEFAULT_CLIENT_ID, **kwargs: Any) -> RPCClient:
    """A client with a backoff of a few milliseconds and short timeouts."""
    kwargs.setdefault(
        "backoff", Backoff(base_s=0.005, cap_s=0.02, rng=random.Random(7))
    )
    kwargs.setdefault("connect_timeout_s", 3.0)
    kwargs.setdefault("command_timeout_s", 3.0)
    kwargs.setdefault("close_timeout_s", 1.0)
    return RPCClient(client_id, **kwargs)


class Recorder:
    """Collects every event a client raises, in order."""

    def __init__(self, rpc: RPCClient) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()
        rpc.subscribe(Event, self._add)

    def _add(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    def of(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]

    def names(self) -> list[str]:
        return [type(e).__name__ for e in self.events]

    async def wait_for(self, kind: type[Event], count: int = 1) -> None:
        async with asyncio.timeout(WAIT_S):
            while len(self.of(kind)) < count:
                self._changed.clear()
                await self._changed.wait()
