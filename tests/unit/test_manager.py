"""The connection manager's rules, over a scripted driver with no sockets."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

import pytest

from tether._event import Event
from tether.errors import ConnectionFault, InvalidTokenError
from tether.manager import (
    Attempt,
    Backoff,
    Connected,
    ConnectionManager,
    Disconnected,
    ManagerState,
    Retry,
)

Behaviour = Callable[[Attempt, "ScriptedDriver"], Awaitable[Retry | None]]


class ScriptedDriver:
    """A driver whose attempts follow a script; the last behaviour repeats."""

    def __init__(self, *behaviours: Behaviour) -> None:
        self.behaviours = list(behaviours)
        self.runs = 0
        self.closes: list[int] = []
        self.aborts = 0
        self.open = False
        self.closed = asyncio.Event()

    async def run(self, attempt: Attempt) -> Retry | None:
        behaviour = self.behaviours[min(self.runs, len(self.behaviours) - 1)]
        self.runs += 1
        self.open = True
        self.closed = asyncio.Event()
        try:
            return await behaviour(attempt, self)
        finally:
            self.open = False

    async def close(self, code: int) -> None:
        self.closes.append(code)
        self.closed.set()

    def abort(self) -> None:
        self.aborts += 1
        self.closed.set()


async def connect_and_hold(attempt: Attempt, driver: ScriptedDriver) -> Retry | None:
    attempt.established()
    await driver.closed.wait()
    return None


async def connect_then_drop(attempt: Attempt, driver: ScriptedDriver) -> Retry | None:
    attempt.established()
    await asyncio.sleep(0)
    return Retry("dropped")


async def fail_fast(attempt: Attempt, driver: ScriptedDriver) -> Retry | None:
    raise ConnectionFault("refused")


async def hang(attempt: Attempt, driver: ScriptedDriver) -> Retry | None:
    await asyncio.sleep(3600)
    return None


async def fatal(attempt: Attempt, driver: ScriptedDriver) -> Retry | None:
    raise InvalidTokenError(4004, "Authentication failed.")


async def crash(attempt: Attempt, driver: ScriptedDriver) -> Retry | None:
    raise ZeroDivisionError("driver bug")


def fast_backoff() -> Backoff:
    return Backoff(base_s=0.01, cap_s=0.05, rng=random.Random(1))


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.changed = asyncio.Event()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self.changed.set()

    def of(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(self, kind: type[Event], count: int = 1) -> None:
        async with asyncio.timeout(5):
            while len(self.of(kind)) < count:
                self.changed.clear()
                await self.changed.wait()


def make(driver: ScriptedDriver, rec: Recorder, **kwargs: float) -> ConnectionManager:
    return ConnectionManager(
        driver,
        on_event=rec,
        backoff=fast_backoff(),
        close_timeout_s=kwargs.pop("close_timeout_s", 0.5),
        attempt_timeout_s=kwargs.pop("attempt_timeout_s", 5.0),
    )


def state_of(manager: ConnectionManager) -> ManagerState:
    return manager.state


async def test_start_returns_before_any_attempt_runs() -> None:
    driver = ScriptedDriver(connect_and_hold)
    rec = Recorder()
    manager = make(driver, rec)

    manager.start()

    assert driver.runs == 0
    assert manager.state is ManagerState.DISCONNECTED
    await rec.wait_for(Connected)
    assert state_of(manager) is ManagerState.CONNECTED
    await manager.stop()
    assert state_of(manager) is ManagerState.DISCONNECTED


async def test_stop_closes_with_1000_and_reports_disconnected() -> None:
    driver = ScriptedDriver(connect_and_hold)
    rec = Recorder()
    manager = make(driver, rec)
    manager.start()
    await rec.wait_for(Connected)

    await manager.stop()

    assert driver.closes == [1000]
    [event] = rec.of(Disconnected)
    assert isinstance(event, Disconnected)
    assert event.will_reconnect is False
    assert not manager.is_running


async def test_dropped_connection_reconnects_with_will_reconnect() -> None:
    driver = ScriptedDriver(connect_then_drop, connect_and_hold)
    rec = Recorder()
    manager = make(driver, rec)
    manager.start()

    await rec.wait_for(Connected, 2)

    [event] = rec.of(Disconnected)
    assert isinstance(event, Disconnected)
    assert event.will_reconnect and event.reason == "dropped"
    assert driver.runs == 2
    await manager.stop()


async def test_failures_are_retried_and_success_resets_the_backoff() -> None:
    driver = ScriptedDriver(
        fail_fast, fail_fast, fail_fast, fail_fast, connect_and_hold
    )
    rec = Recorder()
    manager = make(driver, rec)
    manager.backoff = Backoff(base_s=0.02, factor=2.0, cap_s=10, rng=random.Random(3))
    manager.start()

    await rec.wait_for(Connected)

    assert driver.runs == 5
    assert manager.backoff.failures == 0
    assert manager.stats.faults == 4
    await manager.stop()


def test_backoff_delays_grow_until_the_cap() -> None:
    backoff = Backoff(base_s=1.0, factor=2.0, cap_s=8.0, rng=random.Random(0))
    delays = [backoff.next_delay() for _ in range(8)]

    assert 0.5 <= delays[0] <= 1.0
    ceilings = [min(8.0, 2.0**n) for n in range(8)]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert backoff.next_delay() <= 1.0


async def test_fatal_error_stops_without_looping() -> None:
    driver = ScriptedDriver(fatal)
    rec = Recorder()
    manager = make(driver, rec)
    manager.start()

    async with asyncio.timeout(5):
        await manager.wait_closed()

    assert driver.runs == 1
    assert isinstance(manager.fatal_error, InvalidTokenError)
    [event] = rec.of(Disconnected)
    assert isinstance(event, Disconnected) and not event.will_reconnect


async def test_unexpected_driver_exception_is_logged_and_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    driver = ScriptedDriver(crash, connect_and_hold)
    rec = Recorder()
    manager = make(driver, rec)
    with caplog.at_level(logging.ERROR, logger="tether.manager"):
        manager.start()
        await rec.wait_for(Connected)

    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert manager.stats.unexpected_errors == 1
    await manager.stop()


async def test_attempt_timeout_covers_the_whole_handshake() -> None:
    driver = ScriptedDriver(hang, connect_and_hold)
    rec = Recorder()
    manager = make(driver, rec, attempt_timeout_s=0.1)
    manager.start()

    await rec.wait_for(Connected)

    assert manager.stats.handshake_timeouts == 1
    assert driver.closes[0] == 4000
    await manager.stop()


async def test_time_spent_waiting_a_turn_is_not_counted() -> None:
    async def queue_then_connect(attempt: Attempt, driver: ScriptedDriver) -> None:
        async with attempt.waiting():
            await asyncio.sleep(0.3)
        attempt.established()
        await driver.closed.wait()

    driver = ScriptedDriver(queue_then_connect)
    rec = Recorder()
    manager = make(driver, rec, attempt_timeout_s=0.1)
    manager.start()

    await rec.wait_for(Connected)

    assert manager.stats.handshake_timeouts == 0
    await manager.stop()


async def test_stop_during_connecting_aborts_the_attempt() -> None:
    driver = ScriptedDriver(hang)
    rec = Recorder()
    manager = make(driver, rec)
    manager.start()
    async with asyncio.timeout(5):
        while driver.runs == 0:
            await asyncio.sleep(0)

    await asyncio.wait_for(manager.stop(), 5)

    assert not manager.is_running and not driver.open
    assert rec.of(Connected) == [] and rec.of(Disconnected) == []


async def test_stop_during_backoff_ends_the_wait() -> None:
    driver = ScriptedDriver(fail_fast)
    rec = Recorder()
    manager = make(driver, rec)
    manager.backoff = Backoff(base_s=60, cap_s=60)
    manager.start()
    async with asyncio.timeout(5):
        while manager.stats.faults == 0:
            await asyncio.sleep(0.001)

    await asyncio.wait_for(manager.stop(), 5)

    assert driver.runs == 1 and not manager.is_running


async def test_a_close_that_hangs_is_bounded_by_abort() -> None:
    class StuckClose(ScriptedDriver):
        async def close(self, code: int) -> None:
            self.closes.append(code)
            await asyncio.sleep(3600)

    driver = StuckClose(connect_and_hold)
    rec = Recorder()
    manager = make(driver, rec, close_timeout_s=0.05)
    manager.start()
    await rec.wait_for(Connected)

    await asyncio.wait_for(manager.stop(), 5)

    assert driver.aborts == 1 and not driver.open


async def test_stop_from_a_disconnected_handler_then_start_again() -> None:
    driver = ScriptedDriver(connect_then_drop, connect_and_hold)
    rec = Recorder()
    manager: ConnectionManager

    def on_event(event: Event) -> None:
        rec(event)
        if isinstance(event, Disconnected) and len(rec.of(Disconnected)) == 1:
            manager.stop()

    manager = ConnectionManager(driver, on_event=on_event, backoff=fast_backoff())
    manager.start()
    async with asyncio.timeout(5):
        await manager.wait_closed()
    assert driver.runs == 1

    manager.start()
    await rec.wait_for(Connected, 2)
    assert driver.runs == 2
    await manager.stop()


async def test_start_right_after_stop_reconnects() -> None:
    driver = ScriptedDriver(connect_and_hold)
    rec = Recorder()
    manager = make(driver, rec)
    manager.start()
    await rec.wait_for(Connected)

    stopped = manager.stop()
    manager.start()
    await asyncio.wait_for(stopped, 5)
    await rec.wait_for(Connected, 2)

    assert manager.is_running and driver.closes == [1000]
    await manager.stop()


async def test_start_twice_and_stop_twice_coalesce() -> None:
    driver = ScriptedDriver(connect_and_hold)
    rec = Recorder()
    manager = make(driver, rec)

    manager.start()
    manager.start()
    await rec.wait_for(Connected)
    first, second = manager.stop(), manager.stop()
    await asyncio.wait_for(asyncio.gather(first, second), 5)

    assert driver.runs == 1 and len(rec.of(Connected)) == 1
    assert driver.closes == [1000]
    await asyncio.wait_for(manager.stop(), 1)


async def test_requested_delay_is_honoured_after_an_established_session() -> None:
    async def asks_to_wait(attempt: Attempt, driver: ScriptedDriver) -> Retry:
        attempt.established()
        return Retry("invalid session", delay_s=0.2)

    driver = ScriptedDriver(asks_to_wait, connect_and_hold)
    rec = Recorder()
    manager = make(driver, rec)
    loop = asyncio.get_running_loop()
    manager.start()
    await rec.wait_for(Disconnected)
    left = loop.time()

    await rec.wait_for(Connected, 2)

    assert loop.time() - left >= 0.2
    await manager.stop()


async def test_an_event_callback_that_raises_does_not_stop_the_manager() -> None:
    driver = ScriptedDriver(connect_then_drop, connect_and_hold)
    calls: list[Event] = []

    def broken(event: Event) -> None:
        calls.append(event)
        raise RuntimeError("handler bug")

    manager = ConnectionManager(driver, on_event=broken, backoff=fast_backoff())
    manager.start()
    async with asyncio.timeout(5):
        while sum(isinstance(e, Connected) for e in calls) < 2:
            await asyncio.sleep(0.005)
    await manager.stop()


async def test_many_drop_cycles_leave_no_tasks_behind() -> None:
    driver = ScriptedDriver(connect_then_drop)
    rec = Recorder()
    manager = make(driver, rec)
    manager.backoff = Backoff(base_s=0.0001, cap_s=0.0001)
    before = len(asyncio.all_tasks())
    manager.start()

    await rec.wait_for(Connected, 200)
    await manager.stop()

    assert len(asyncio.all_tasks()) == before


async def test_stop_can_keep_the_session_with_a_resumable_code() -> None:
    driver = ScriptedDriver(connect_and_hold)
    rec = Recorder()
    manager = make(driver, rec)
    manager.start()
    await rec.wait_for(Connected)

    await manager.stop(code=4000)

    assert driver.closes == [4000]


async def test_a_connection_that_served_a_while_is_retried_at_once() -> None:
    async def serve_then_drop(attempt: Attempt, driver: ScriptedDriver) -> Retry:
        attempt.established()
        await asyncio.sleep(0.05)
        return Retry("dropped")

    driver = ScriptedDriver(serve_then_drop, connect_and_hold)
    rec = Recorder()
    manager = make(driver, rec)
    manager.backoff = Backoff(base_s=60, cap_s=60)
    manager.healthy_after_s = 0.01
    manager.start()

    await rec.wait_for(Connected, 2)

    assert manager.backoff.failures == 0
    await manager.stop()


async def test_a_flapping_connection_backs_off_instead_of_looping() -> None:
    driver = ScriptedDriver(connect_then_drop)
    rec = Recorder()
    manager = make(driver, rec)
    manager.backoff = Backoff(base_s=60, cap_s=60)
    manager.start()

    await rec.wait_for(Disconnected)
    await asyncio.sleep(0.05)

    assert driver.runs == 1 and manager.backoff.failures == 1
    await asyncio.wait_for(manager.stop(), 5)
