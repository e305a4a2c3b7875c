"""Helpers for the connection tests: a client aimed at an emulator with fast
backoff, a recorder of what handlers received, and the exactly-once check that
compares it with the dispatches the emulator gave a seq.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import pytest

from tether import events as ev
from tether._event import Event
from tether.client import Client, DispatchInfo, current_dispatch
from tether.emulator import Emulator, WorldConfig
from tether.emulator.records import SessionState
from tether.gateway.intents import Intents
from tether.identify import LocalIdentifyQueue
from tether.manager import Backoff

E = TypeVar("E", bound=Event)

#: Emulator settings that keep the tests quick: a short heartbeat, no identify
#: window, quick closes after op 7 / op 9. The server's heartbeat deadline is
#: generous so that a busy test machine does not close healthy connections.
EMULATOR_OPTIONS: dict[str, Any] = {
    "heartbeat_interval_s": 0.5,
    "heartbeat_timeout_factor": 4.0,
    "identify_window_s": 0.0,
    "fault_close_delay_s": 0.3,
}

#: The world of every test: small, so handshakes are quick.
WORLD = WorldConfig(guilds=3, members_per_guild=6, seed=7)

#: Bound on every single wait in these tests.
WAIT_S = 15.0


def fast_backoff() -> Backoff:
    """The backoff of test clients: first retry within 50 ms, capped at 0.5 s."""
    return Backoff(base_s=0.05, cap_s=0.5)


@contextlib.asynccontextmanager
async def running_emulator(**options: Any) -> AsyncIterator[Emulator]:
    """An emulator with :data:`EMULATOR_OPTIONS`, overridden by ``options``."""
    async with Emulator(WORLD, **{**EMULATOR_OPTIONS, **options}) as emu:
        yield emu


def make_client(emu: Emulator, **options: Any) -> Client:
    """A client for ``emu``: fast backoff, no identify wait, short Ready wait.

    ``token`` (default: the emulator's valid one) may be given among ``options``.
    """
    token = options.pop("token", emu.token)
    options.setdefault("intents", Intents.default())
    options.setdefault("ready_timeout_s", 0.5)
    options.setdefault("backoff", fast_backoff)
    options.setdefault("identify_queue", LocalIdentifyQueue(window_s=0.0))
    options.setdefault("attempt_timeout_s", 5.0)
    options.setdefault("io_thread", False)
    return Client(token, api_url=emu.api_url, **options)


class Recorder:
    """Every event a client's handlers received, with the dispatch behind it."""

    def __init__(self, client: Client) -> None:
        self.events: list[Event] = []
        #: current_dispatch() inside the handler, for events a dispatch raised.
        self.dispatches: list[DispatchInfo] = []
        client.subscribe(Event, self._handle)

    def _handle(self, event: Event) -> None:
        self.events.append(event)
        info = current_dispatch()
        if info is not None:
            self.dispatches.append(info)

    def of(self, kind: type[E]) -> list[E]:
        """The events of one kind, in delivery order."""
        return [event for event in self.events if isinstance(event, kind)]

    def count(self, kind: type[Event]) -> int:
        return len(self.of(kind))


async def until(predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    """Wait until ``predicate()`` holds; polled, since it reads plain state."""
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.01)


def delivery_problems(emu: Emulator, recorder: Recorder) -> list[str]:
    """What breaks exactly-once delivery, comparing handlers with the emulator.

    Every (session, seq) must reach the handlers at most once. The live session's
    dispatches must all have arrived; a session that ended may have lost its tail
    (its end is what tells the client to start afresh) but no dispatch below the
    last one delivered. Fault payloads the emulator does not replay are exempt.
    """
    seen = Counter(
        (info.session_id, info.seq) for info in recorder.dispatches if info.seq
    )
    problems = [
        f"session {sid} seq {seq} delivered {n} times"
        for (sid, seq), n in sorted(seen.items(), key=str)
        if n > 1
    ]
    received: dict[str | None, set[int]] = defaultdict(set)
    for sid, seq in seen:
        received[sid].add(seq)

    sessions = emu.sessions()
    unknown = set(received) - {s.session_id for s in sessions}
    problems += [f"dispatches of unknown session {sid}" for sid in unknown]
    for session in sessions:
        got = received.get(session.session_id, set())
        expected = [r.seq for r in session.dispatches if r.replayable]
        if session.state is not SessionState.ACTIVE:
            top = max(got, default=0)
            expected = [seq for seq in expected if seq <= top]
        missing = [seq for seq in expected if seq not in got]
        if missing:
            problems.append(
                f"session {session.session_id} ({session.state.value}) "
                f"missing seqs {missing[:10]} of {session.seq}"
            )
    return problems


async def assert_exactly_once(
    emu: Emulator, recorder: Recorder, timeout_s: float = WAIT_S
) -> None:
    """Wait until every dispatch reached the handlers, then check exactly-once."""
    with contextlib.suppress(TimeoutError):
        await until(lambda: not delivery_problems(emu, recorder), timeout_s)
    problems = delivery_problems(emu, recorder)
    assert not problems, problems


def live_session_count(emu: Emulator) -> int:
    return sum(1 for s in emu.sessions() if s.state is SessionState.ACTIVE)


async def wait_ready(client: Client, recorder: Recorder, ready_count: int) -> None:
    """Wait until the client raised Ready ``ready_count`` times in all."""
    await until(lambda: recorder.count(ev.Ready) >= ready_count)


async def wait_resumes(emu: Emulator, resumes: int) -> None:
    """Wait until the emulator accepted ``resumes`` RESUMEs in all."""
    await until(lambda: emu.counters.resumes >= resumes)


def token_leaks(token: str, records: list[logging.LogRecord]) -> list[str]:
    """Log lines (message and traceback) that contain the token."""
    leaks = []
    formatter = logging.Formatter()
    for record in records:
        text = record.getMessage()
        if record.exc_info:
            text += formatter.formatException(record.exc_info)
        if token in text:
            leaks.append(f"{record.name}: {text[:200]}")
    return leaks


# Fixtures. They live here rather than in a conftest.py, which mypy would take
# for a duplicate of tests/emulator/conftest.py; test modules import them, and
# pytest registers them under their ``name``.


@pytest.fixture(name="gateway_emu")
async def gateway_emu_fixture() -> AsyncIterator[Emulator]:
    """A running emulator with the connection tests' short knobs."""
    async with running_emulator() as emu:
        yield emu


@pytest.fixture(name="client_factory")
async def client_factory_fixture() -> AsyncIterator[Callable[..., Client]]:
    """``client_factory(emu, **options)``: a client made by :func:`make_client`,
    closed at the end of the test."""
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
