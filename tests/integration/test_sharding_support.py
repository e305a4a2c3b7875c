"""Helpers for the sharding tests (no tests here): an emulator with short knobs, a
sharded client aimed at it, a recorder of handled events with their dispatch, and
the exactly-once check against the emulator's sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from tether._event import Event
from tether.client import DispatchInfo, current_dispatch
from tether.emulator import Emulator, WorldConfig
from tether.emulator.records import IdentifyRecord, SessionState
from tether.identify import LocalIdentifyQueue
from tether.manager import Backoff
from tether.sharding import ShardedClient

E = TypeVar("E", bound=Event)

#: The identify window of both the emulator and the client's queue in these tests
#: (Discord's is 5 s; the rule is the same at any scale).
WINDOW_S = 0.25
#: Added by the client's queue to the window: the emulator shares the test's loop,
#: so it may count an IDENTIFY some milliseconds after it was sent.
MARGIN_S = 0.05
#: Bound on every single wait.
WAIT_S = 20.0

EMULATOR_OPTIONS: dict[str, Any] = {
    "heartbeat_interval_s": 0.5,
    "heartbeat_timeout_factor": 4.0,
    "identify_window_s": WINDOW_S,
    "fault_close_delay_s": 0.3,
}


def world(guilds: int = 24, seed: int = 11) -> WorldConfig:
    return WorldConfig(guilds=guilds, members_per_guild=4, seed=seed, dm_channels=0)


@contextlib.asynccontextmanager
async def sharded_emulator(
    shards: int, *, guilds: int = 24, **options: Any
) -> AsyncIterator[Emulator]:
    """An emulator recommending ``shards`` shards, with the tests' short knobs."""
    settings = {**EMULATOR_OPTIONS, "shards": shards, **options}
    async with Emulator(world(guilds), **settings) as emu:
        yield emu


def queue() -> LocalIdentifyQueue:
    """The client side of the identify window, with a margin for a busy loop."""
    return LocalIdentifyQueue(window_s=WINDOW_S, margin_s=MARGIN_S)


def make_client(emu: Emulator, **options: Any) -> ShardedClient:
    """A sharded client for ``emu``: fast backoff, the tests' identify window."""
    options.setdefault("identify_queue", queue())
    options.setdefault("ready_timeout_s", 0.5)
    options.setdefault("backoff", lambda: Backoff(base_s=0.05, cap_s=0.5))
    options.setdefault("attempt_timeout_s", 5.0)
    options.setdefault("io_thread", False)
    token = options.pop("token", emu.token)
    return ShardedClient(token, api_url=emu.api_url, **options)


@contextlib.asynccontextmanager
async def running(client: ShardedClient) -> AsyncIterator[ShardedClient]:
    """Start ``client``; close it at the end, within :data:`WAIT_S`."""
    client.start()
    try:
        yield client
    finally:
        async with asyncio.timeout(WAIT_S):
            await client.close()


async def until(predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    """Wait until ``predicate()`` holds (it reads plain state, so it is polled)."""
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.01)


async def ready(client: ShardedClient, timeout_s: float = WAIT_S) -> None:
    async with asyncio.timeout(timeout_s):
        await client.wait_until_ready()


class Recorder:
    """Every event the client's handlers got, with the dispatch behind it."""

    def __init__(self, client: ShardedClient) -> None:
        self.events: list[Event] = []
        self.dispatches: list[DispatchInfo] = []
        client.subscribe(Event, self._handle)

    def _handle(self, event: Event) -> None:
        self.events.append(event)
        info = current_dispatch()
        if info is not None:
            self.dispatches.append(info)

    def of(self, kind: type[E]) -> list[E]:
        return [event for event in self.events if isinstance(event, kind)]


def delivery_problems(emu: Emulator, *recorders: Recorder) -> list[str]:
    """What breaks exactly-once delivery across ``recorders`` (one per process).

    Every (session, seq) must be handled once in all; every dispatch of a live
    session must have been handled.
    """
    seen = Counter(
        (info.session_id, info.seq)
        for recorder in recorders
        for info in recorder.dispatches
        if info.seq
    )
    problems = [f"{key} handled {n} times" for key, n in seen.items() if n > 1]
    got: dict[str | None, set[int]] = defaultdict(set)
    for session_id, seq in seen:
        got[session_id].add(seq)
    for session in emu.sessions():
        if session.state is not SessionState.ACTIVE:
            continue
        expected = [r.seq for r in session.dispatches if r.replayable]
        missing = [seq for seq in expected if seq not in got[session.session_id]]
        if missing:
            problems.append(f"shard {session.shard}: seqs {missing[:10]} missing")
    return problems


async def assert_exactly_once(emu: Emulator, *recorders: Recorder) -> None:
    with contextlib.suppress(TimeoutError):
        await until(lambda: not delivery_problems(emu, *recorders))
    problems = delivery_problems(emu, *recorders)
    assert not problems, problems


def gaps_per_bucket(
    log: list[IdentifyRecord], max_concurrency: int
) -> dict[int, list[float]]:
    """The time between consecutive accepted IDENTIFYs of each identify bucket."""
    times: dict[int, list[float]] = defaultdict(list)
    for record in sorted(log, key=lambda r: r.time):
        times[record.shard_id % max_concurrency].append(record.time)
    return {
        bucket: [b - a for a, b in zip(ts, ts[1:], strict=False)]
        for bucket, ts in times.items()
    }
