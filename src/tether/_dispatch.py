"""Delivering events to user code: handlers, waiters and streams.

Every client (gateway, sharded, RPC) hands its events to one :class:`EventDispatcher`.
Each handler call runs as its own task, started in event order, so a slow or broken
handler delays nobody: not the gateway, not the other handlers. An exception from a
handler is logged once, naming the handler and the event, and raised again as a
:class:`HandlerError` event. A handler still running after ``slow_handler_warning_s``
gets a warning naming it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from tether._event import Event

__all__ = [
    "DispatcherStats",
    "EventDispatcher",
    "EventStream",
    "Handler",
    "HandlerError",
    "Subscription",
]

logger = logging.getLogger("tether.handlers")

E = TypeVar("E", bound=Event)
Handler = Callable[[E], Awaitable[object] | object]


@dataclass(frozen=True, slots=True, kw_only=True)
class HandlerError(Event):
    """A handler raised: the event it was given, its name and the exception.

    Attributes:
        event: the event the handler was handling.
        handler_name: the handler's qualified name.
        error: what it raised.
    """

    event: Event
    handler_name: str
    error: BaseException


@dataclass(slots=True)
class DispatcherStats:
    """What the dispatcher is doing now and has done (:attr:`EventDispatcher.stats`)."""

    #: Events handed to :meth:`EventDispatcher.dispatch`.
    dispatched: int = 0
    #: Handler calls started.
    handler_calls: int = 0
    #: Handler calls that raised.
    handler_errors: int = 0
    #: Handler calls that ran past the slow-handler threshold.
    slow_handlers: int = 0
    #: Handler calls running now.
    running: int = 0
    #: The most handler calls that were running at once.
    peak_running: int = 0


def _name_of(handler: Callable[..., Any]) -> str:
    name = getattr(handler, "__qualname__", None) or repr(handler)
    module = getattr(handler, "__module__", None)
    return f"{module}.{name}" if module else str(name)


class Subscription:
    """A handler's registration; :meth:`cancel` removes it."""

    __slots__ = ("_dispatcher", "handler", "kind", "name")

    def __init__(
        self, dispatcher: EventDispatcher, kind: type[Event], handler: Handler[Any]
    ) -> None:
        self._dispatcher = dispatcher
        self.kind = kind
        self.handler = handler
        #: The handler's qualified name, for logs and task names.
        self.name = _name_of(handler)

    def cancel(self) -> None:
        """Stop delivering events to this handler."""
        self._dispatcher._remove(self)


class EventStream(Generic[E]):
    """An async iterator of events of one kind, buffered from its creation on.

    Use ``async for event in client.stream(Kind)``; leave the loop (or call
    :meth:`aclose`, or use ``async with``) to unsubscribe. Events are never dropped:
    a stream that is not read grows, and a warning says so past ``warn_size``.
    """

    def __init__(
        self,
        dispatcher: EventDispatcher,
        kind: type[E],
        check: Callable[[E], bool] | None,
        warn_size: int,
    ) -> None:
        self._dispatcher = dispatcher
        self.kind = kind
        self._check = check
        self._queue: collections.deque[E] = collections.deque()
        self._ready: asyncio.Event = asyncio.Event()
        self._closed = False
        self._warn_size = warn_size
        self._warned = False
        dispatcher._streams.append(cast("EventStream[Any]", self))

    def _offer(self, event: Event) -> None:
        if self._closed or not isinstance(event, self.kind):
            return
        if self._check is not None and not self._check(event):
            return
        self._queue.append(event)
        self._ready.set()
        if len(self._queue) > self._warn_size and not self._warned:
            self._warned = True
            logger.warning(
                "a stream of %s holds %d unread events; read it faster or close it",
                self.kind.__name__,
                len(self._queue),
            )

    def __aiter__(self) -> EventStream[E]:
        return self

    async def __anext__(self) -> E:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    async def aclose(self) -> None:
        """Unsubscribe; events already buffered are discarded."""
        self._close()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self._ready.set()
            self._dispatcher._drop_stream(self)

    async def __aenter__(self) -> EventStream[E]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._close()

    def __del__(self) -> None:
        if not self._closed:
            self._closed = True
            self._dispatcher._drop_stream(self)


class EventDispatcher:
    """Routes events to handlers, ``wait_for`` waiters and streams.

    Args:
        slow_handler_warning_s: warn about a handler call running longer than this.
        name: names the owner in log lines.
    """

    def __init__(
        self, *, slow_handler_warning_s: float = 3.0, name: str = "client"
    ) -> None:
        self.slow_handler_warning_s = slow_handler_warning_s
        self.name = name
        #: Counters; see :class:`DispatcherStats`.
        self.stats = DispatcherStats()
        self._subscriptions: list[Subscription] = []
        # Handlers by concrete event class, rebuilt when subscriptions change.
        self._routes: dict[type[Event], tuple[Subscription, ...]] = {}
        self._waiters: list[
            tuple[type[Event], Callable[[Any], bool] | None, asyncio.Future[Any]]
        ] = []
        self._streams: list[EventStream[Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # Registration

    def subscribe(self, kind: type[E], handler: Handler[E]) -> Subscription:
        """Call ``handler`` (a function or coroutine function) with every ``kind``.

        Subscribing to a base class delivers its subclasses too.
        """
        if not (isinstance(kind, type) and issubclass(kind, Event)):
            raise TypeError(f"{kind!r} is not an event class")
        if not callable(handler):
            raise TypeError(f"{handler!r} is not callable")
        subscription = Subscription(self, kind, handler)
        self._subscriptions.append(subscription)
        self._routes.clear()
        return subscription

    def on(self, *kinds: type[Event]) -> Callable[[Handler[Any]], Handler[Any]]:
        """Decorator form of :meth:`subscribe`: ``@client.on(MessageCreate)``."""
        if not kinds:
            raise TypeError("on() needs at least one event class")

        def register(handler: Handler[Any]) -> Handler[Any]:
            for kind in kinds:
                self.subscribe(kind, handler)
            return handler

        return register

    def unsubscribe(self, kind: type[Event], handler: Handler[Any]) -> None:
        """Remove every subscription of ``handler`` to ``kind``."""
        for subscription in list(self._subscriptions):
            if subscription.kind is kind and subscription.handler == handler:
                self._remove(subscription)

    def _remove(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
            self._routes.clear()

    async def wait_for(
        self,
        kind: type[E],
        *,
        check: Callable[[E], bool] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the documented API)
    ) -> E:
        """Wait for the next ``kind`` event for which ``check`` is true.

        Raises:
            TimeoutError: nothing matched within ``timeout`` seconds.
        """
        future: asyncio.Future[E] = asyncio.get_running_loop().create_future()
        entry = (cast("type[Event]", kind), cast("Any", check), future)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def stream(
        self,
        kind: type[E],
        *,
        check: Callable[[E], bool] | None = None,
        warn_size: int = 10_000,
    ) -> EventStream[E]:
        """Return an async iterator of every ``kind`` event from now on."""
        return EventStream(self, kind, check, warn_size)

    def _drop_stream(self, stream: EventStream[Any]) -> None:
        if stream in self._streams:
            self._streams.remove(stream)

    # Delivery

    def dispatch(self, event: Event) -> None:
        """Deliver ``event``: start its handlers as tasks, in order. Never raises."""
        self.stats.dispatched += 1
        subscriptions = self._routes.get(type(event))
        if subscriptions is None:
            subscriptions = tuple(
                s for s in self._subscriptions if isinstance(event, s.kind)
            )
            self._routes[type(event)] = subscriptions
        for subscription in subscriptions:
            self._start(subscription, event)
        if self._waiters:
            self._feed_waiters(event)
        if self._streams:
            for stream in tuple(self._streams):
                stream._offer(event)

    def _feed_waiters(self, event: Event) -> None:
        for entry in list(self._waiters):
            kind, check, future = entry
            if future.done() or not isinstance(event, kind):
                continue
            try:
                matched = check is None or check(event)
            except Exception as exc:
                future.set_exception(exc)
                continue
            if matched:
                future.set_result(event)
                self._waiters.remove(entry)

    def _start(self, subscription: Subscription, event: Event) -> None:
        loop = asyncio.get_running_loop()
        # The task is named after the handler so that a blocked loop can be traced
        # back to it (see tether._iothread.LoopLagMonitor).
        task = loop.create_task(
            self._call(subscription, event),
            name=f"handler {subscription.name} on {type(event).__name__}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, subscription: Subscription, event: Event) -> None:
        handler = subscription.handler
        stats = self.stats
        stats.handler_calls += 1
        stats.running += 1
        stats.peak_running = max(stats.peak_running, stats.running)
        loop = asyncio.get_running_loop()
        watchdog = loop.call_later(
            self.slow_handler_warning_s, self._warn_slow, subscription, event
        )
        try:
            result = handler(event)
            if isinstance(result, Awaitable):
                await result
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # The call itself was cancelled (close()): let it end.
                raise
            self._handler_failed(subscription, event, exc)
        except BaseException as exc:
            # Whatever a handler raises (SystemExit and KeyboardInterrupt too) is
            # the handler's failure: it must not reach the event loop and end the
            # program, nor the gateway.
            self._handler_failed(subscription, event, exc)
        finally:
            watchdog.cancel()
            stats.running -= 1

    def _handler_failed(
        self, subscription: Subscription, event: Event, exc: BaseException
    ) -> None:
        self.stats.handler_errors += 1
        name = subscription.name
        logger.error(
            "%s: handler %s raised on %s",
            self.name,
            name,
            type(event).__name__,
            exc_info=exc,
        )
        if not isinstance(event, HandlerError):
            self.dispatch(HandlerError(event=event, handler_name=name, error=exc))

    def _warn_slow(self, subscription: Subscription, event: Event) -> None:
        self.stats.slow_handlers += 1
        logger.warning(
            "%s: handler %s has been running on %s for more than %.1f s; it delays "
            "nothing else, but check it does not hang",
            self.name,
            subscription.name,
            type(event).__name__,
            self.slow_handler_warning_s,
        )

    @property
    def pending(self) -> int:
        """Handler calls started and not yet finished."""
        return len(self._tasks)

    async def wait_idle(self) -> None:
        """Wait until every handler call started so far (and any they led to) ended."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def close(self, *, timeout_s: float = 5.0) -> None:
        """Cancel running handlers (after ``timeout_s``) and end every stream.

        Called from a handler (a bot that closes itself on a command), that
        handler is neither waited for nor cancelled: it is the caller.
        """
        for stream in tuple(self._streams):
            stream._close()
        for _kind, _check, future in self._waiters:
            if not future.done():
                future.cancel()
        others = self._tasks - {asyncio.current_task()}
        if others:
            _done, pending = await asyncio.wait(others, timeout=timeout_s)
            for task in pending:
                task.cancel()
