"""Handlers, waiters and streams: the user-facing side of event delivery."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass

import pytest

from tether._dispatch import EventDispatcher, HandlerError
from tether._event import Event
from tether._iothread import Inbox


@dataclass(frozen=True, slots=True)
class Ping(Event):
    n: int


@dataclass(frozen=True, slots=True)
class Pong(Event):
    n: int


async def drain(dispatcher: EventDispatcher) -> None:
    async with asyncio.timeout(5):
        await dispatcher.wait_idle()


async def test_handlers_start_in_event_order_and_get_subclasses() -> None:
    dispatcher = EventDispatcher()
    seen: list[tuple[str, int]] = []

    @dispatcher.on(Ping)
    async def on_ping(event: Ping) -> None:
        seen.append(("ping", event.n))

    def on_any(event: Event) -> None:
        if isinstance(event, Ping | Pong):
            seen.append(("any", event.n))

    dispatcher.subscribe(Event, on_any)
    for n in range(3):
        dispatcher.dispatch(Ping(n))
    dispatcher.dispatch(Pong(9))
    await drain(dispatcher)

    assert [n for kind, n in seen if kind == "ping"] == [0, 1, 2]
    assert [n for kind, n in seen if kind == "any"] == [0, 1, 2, 9]


async def test_a_slow_handler_delays_no_other_handler() -> None:
    dispatcher = EventDispatcher()
    release = asyncio.Event()
    fast: list[int] = []

    @dispatcher.on(Ping)
    async def slow(event: Ping) -> None:
        if event.n == 0:
            await release.wait()

    @dispatcher.on(Ping)
    async def quick(event: Ping) -> None:
        fast.append(event.n)

    for n in range(5):
        dispatcher.dispatch(Ping(n))
    async with asyncio.timeout(5):
        while len(fast) < 5:
            await asyncio.sleep(0.001)

    assert fast == [0, 1, 2, 3, 4]
    release.set()
    await drain(dispatcher)


async def test_a_raising_handler_is_logged_once_and_raised_as_handler_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dispatcher = EventDispatcher()
    errors: list[HandlerError] = []

    @dispatcher.on(Ping)
    def broken(event: Ping) -> None:
        raise ValueError("bad")

    dispatcher.subscribe(HandlerError, errors.append)
    with caplog.at_level(logging.ERROR, logger="tether.handlers"):
        dispatcher.dispatch(Ping(1))
        await drain(dispatcher)

    [error] = errors
    assert error.event == Ping(1) and isinstance(error.error, ValueError)
    assert "broken" in error.handler_name
    records = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(records) == 1 and "broken" in records[0].getMessage()


async def test_a_slow_handler_gets_a_warning_naming_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dispatcher = EventDispatcher(slow_handler_warning_s=0.05)

    @dispatcher.on(Ping)
    async def dawdler(event: Ping) -> None:
        await asyncio.sleep(0.2)

    with caplog.at_level(logging.WARNING, logger="tether.handlers"):
        dispatcher.dispatch(Ping(1))
        await drain(dispatcher)

    assert dispatcher.stats.slow_handlers == 1
    assert any("dawdler" in r.getMessage() for r in caplog.records)


async def test_wait_for_matches_check_and_times_out() -> None:
    dispatcher = EventDispatcher()
    waiter = asyncio.ensure_future(
        dispatcher.wait_for(Ping, check=lambda e: e.n == 2, timeout=5)
    )
    await asyncio.sleep(0)
    for n in range(4):
        dispatcher.dispatch(Ping(n))

    assert (await waiter) == Ping(2)
    with pytest.raises(TimeoutError):
        await dispatcher.wait_for(Pong, timeout=0.01)


async def test_stream_buffers_from_creation_and_unsubscribes_on_exit() -> None:
    dispatcher = EventDispatcher()
    stream = dispatcher.stream(Ping)
    for n in range(3):
        dispatcher.dispatch(Ping(n))

    got: list[int] = []
    async with asyncio.timeout(5):
        async for event in stream:
            got.append(event.n)
            if len(got) == 3:
                break
    await stream.aclose()
    dispatcher.dispatch(Ping(7))

    assert got == [0, 1, 2]
    assert dispatcher._streams == []


async def test_cancelled_subscription_gets_nothing_more() -> None:
    dispatcher = EventDispatcher()
    seen: list[int] = []
    subscription = dispatcher.subscribe(Ping, lambda e: seen.append(e.n))
    dispatcher.dispatch(Ping(1))
    await drain(dispatcher)
    subscription.cancel()
    dispatcher.dispatch(Ping(2))
    await drain(dispatcher)

    assert seen == [1]


def test_subscribing_something_that_is_not_an_event_is_refused() -> None:
    dispatcher = EventDispatcher()
    with pytest.raises(TypeError):
        dispatcher.subscribe(int, print)  # type: ignore[type-var]


# The inbox: from the I/O loop to the user's loop


async def test_the_inbox_delivers_items_put_from_another_thread_in_order() -> None:
    loop = asyncio.get_running_loop()
    got: list[int] = []
    inbox: Inbox[int] = Inbox(loop, got.append)

    def produce() -> None:
        for n in range(2000):
            inbox.put(n)

    thread = threading.Thread(target=produce)
    thread.start()
    async with asyncio.timeout(5):
        while len(got) < 2000:
            await asyncio.sleep(0.001)
    thread.join(5)

    assert got == list(range(2000))
    assert inbox.handled == 2000 and inbox.size == 0


async def test_the_inbox_warns_about_items_that_waited_not_about_fresh_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    got: list[str] = []
    inbox: Inbox[str] = Inbox(
        asyncio.get_running_loop(), got.append, warn_age_s=1.0, clock=lambda: now[0]
    )

    with caplog.at_level(logging.WARNING, logger="tether._iothread"):
        inbox.put("a")
        inbox.put("b")
        now[0] += 2.5
        assert inbox.size == 2 and inbox.oldest_age() == 2.5
        await asyncio.sleep(0)
        inbox.put("c")
        now[0] += 0.5
        await asyncio.sleep(0)

    assert got == ["a", "b", "c"]
    assert inbox.max_age_s == 2.5
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and warnings[0].startswith("2 events waited up to 2.5 s")
    assert inbox.warnings == 1


@pytest.mark.parametrize("error", [SystemExit(3), KeyboardInterrupt(), GeneratorExit()])
async def test_a_handler_raising_a_base_exception_is_a_handler_error(
    error: BaseException,
) -> None:
    dispatcher = EventDispatcher()
    errors: list[HandlerError] = []

    @dispatcher.on(Ping)
    async def quits(event: Ping) -> None:
        raise error

    dispatcher.subscribe(HandlerError, errors.append)
    dispatcher.dispatch(Ping(1))
    await drain(dispatcher)

    [failure] = errors
    assert failure.error is error
    assert dispatcher.stats.handler_errors == 1


async def test_a_handler_raising_cancelled_error_itself_is_a_handler_error() -> None:
    dispatcher = EventDispatcher()
    errors: list[HandlerError] = []

    @dispatcher.on(Ping)
    def raises_cancel(event: Ping) -> None:
        raise asyncio.CancelledError

    dispatcher.subscribe(HandlerError, errors.append)
    dispatcher.dispatch(Ping(1))
    await drain(dispatcher)

    assert len(errors) == 1


async def test_close_from_inside_a_handler_neither_waits_for_nor_cancels_it() -> None:
    dispatcher = EventDispatcher()
    finished: list[str] = []

    @dispatcher.on(Ping)
    async def closer(event: Ping) -> None:
        await dispatcher.close(timeout_s=30)
        finished.append("closer")

    dispatcher.dispatch(Ping(1))
    async with asyncio.timeout(5):
        await dispatcher.wait_idle()

    assert finished == ["closer"]
