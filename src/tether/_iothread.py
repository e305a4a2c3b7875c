"""Where the gateway's I/O runs, and how its output reaches user code.

By default a client runs its connection managers and drivers on an event loop of
their own, in a daemon thread: a handler that blocks the user's loop (``time.sleep``,
heavy CPU work) cannot delay a heartbeat, so it cannot cost the session. The I/O
side hands what it produces (dispatches, lifecycle events) to the user's loop through
an :class:`Inbox`, in batches: one wake-up of the user's loop per burst, not per
event. With ``io_thread=False`` everything runs on the user's loop and the inbox
only batches.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

__all__ = ["Inbox", "IOLoop", "LoopLagMonitor"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Item = TypeVar("Item")


class IOLoop:
    """An event loop for I/O: the caller's own, or a private one in a thread."""

    def __init__(self, *, threaded: bool, name: str = "tether-io") -> None:
        self.threaded = threaded
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the I/O loop is not started")
        return self._loop

    @property
    def is_started(self) -> bool:
        return self._loop is not None and (
            not self.threaded or (self._thread is not None and self._thread.is_alive())
        )

    def ensure_started(self) -> None:
        """Start the I/O loop if it is not running (on the caller's loop: adopt it)."""
        if self.is_started:
            return
        if not self.threaded:
            self._loop = asyncio.get_running_loop()
            return
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()
        ready.wait(10)

    def call(self, func: Callable[[], object]) -> None:
        """Run ``func`` soon on the I/O loop, from any thread."""
        loop = self.loop
        if not self.threaded:
            loop.call_soon(func)
        else:
            loop.call_soon_threadsafe(func)

    def submit(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Run ``coro`` on the I/O loop; return a future of the caller's loop."""
        if not self.threaded:
            return asyncio.ensure_future(coro)
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(
            coro, self.loop
        )
        return asyncio.wrap_future(future)

    def shutdown(self) -> None:
        """Stop the private loop's thread (after its work is done)."""
        if self.threaded and self._loop is not None and self._thread is not None:
            loop, thread = self._loop, self._thread
            self._loop, self._thread = None, None
            if not loop.is_closed():
                # Closed already when the loop stopped itself (its user's loop
                # ended without close()).
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(loop.stop)
            thread.join(10)


class Inbox(Generic[Item]):
    """A queue from the I/O loop to the user's loop, drained in batches.

    ``put`` may be called from any thread; ``handle`` runs on the user's loop with
    each item, in order. Nothing is dropped: if the user's loop falls behind, items
    wait here, and :attr:`size` and :meth:`oldest_age` say how far behind it is.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        handle: Callable[[Item], None],
        *,
        warn_age_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loop = loop
        self._handle = handle
        # Items that waited longer than this get a warning (at most one per period).
        self.warn_age_s = warn_age_s
        self._clock = clock
        self._items: collections.deque[tuple[float, Item]] = collections.deque()
        self._scheduled = False
        self._thread_id = threading.get_ident()
        self._warned_at: float | None = None
        #: Items handled so far.
        self.handled = 0
        #: The longest an item has waited, in seconds.
        self.max_age_s = 0.0
        #: Warnings given about items that waited too long.
        self.warnings = 0

    @property
    def size(self) -> int:
        """Items waiting for the user's loop."""
        return len(self._items)

    def oldest_age(self) -> float:
        """Seconds the oldest waiting item has waited (0 when empty)."""
        try:
            stamp = self._items[0][0]
        except IndexError:
            return 0.0
        return max(0.0, self._clock() - stamp)

    def put(self, item: Item) -> None:
        if self._loop.is_closed():
            # Nobody is left to deliver to; keeping items would only grow memory.
            return
        self._items.append((self._clock(), item))
        if not self._scheduled:
            self._scheduled = True
            if threading.get_ident() == self._thread_id:
                self._loop.call_soon(self._drain)
            else:
                try:
                    self._loop.call_soon_threadsafe(self._drain)
                except RuntimeError:
                    # The user's loop is closed: nobody is left to deliver to.
                    self._scheduled = False

    def _drain(self) -> None:
        self._scheduled = False
        items = self._items
        handle = self._handle
        if items:
            self._note_age(len(items), self._clock() - items[0][0])
        while items:
            _stamp, item = items.popleft()
            self.handled += 1
            try:
                handle(item)
            except Exception:
                logger.exception("internal error while delivering %r", item)

    def _note_age(self, waiting: int, age: float) -> None:
        self.max_age_s = max(self.max_age_s, age)
        if age < self.warn_age_s:
            return
        now = self._clock()
        if self._warned_at is not None and now - self._warned_at < self.warn_age_s:
            return
        self._warned_at = now
        self.warnings += 1
        logger.warning(
            "%d events waited up to %.1f s for the event loop; handlers are falling "
            "behind (nothing is dropped: see Client.stats)",
            waiting,
            age,
        )


class LoopLagMonitor:
    """Warns when the user's loop stops running callbacks for too long.

    Runs on the I/O loop, so it sees a blocked user loop while it is blocked, and
    names the task that was running there (a handler's task is named after it).
    """

    def __init__(
        self,
        user_loop: asyncio.AbstractEventLoop,
        *,
        threshold_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        on_user_loop_closed: Callable[[], object] | None = None,
    ) -> None:
        self._user_loop = user_loop
        self._on_user_loop_closed = on_user_loop_closed
        self.threshold_s = threshold_s
        self._clock = clock
        self._last_seen = clock()
        self._pinged = False
        self._warned = False
        #: The longest lag observed, in seconds.
        self.max_lag_s = 0.0
        #: Warnings given.
        self.warnings = 0

    def _seen(self) -> None:
        self._pinged = False
        self._last_seen = self._clock()

    @property
    def lag_s(self) -> float:
        """How long the user's loop has not answered (0 when it is answering)."""
        return (self._clock() - self._last_seen) if self._pinged else 0.0

    async def run(self) -> None:
        interval = max(0.05, self.threshold_s / 4)
        while True:
            await asyncio.sleep(interval)
            if self._user_loop.is_closed():
                if self._on_user_loop_closed is not None:
                    self._on_user_loop_closed()
                return
            if not self._pinged:
                self._pinged = True
                self._last_seen = self._clock()
                self._warned = False
                try:
                    self._user_loop.call_soon_threadsafe(self._seen)
                except RuntimeError:
                    # The user's loop closed between the check and the ping.
                    return
                continue
            lag = self._clock() - self._last_seen
            self.max_lag_s = max(self.max_lag_s, lag)
            if lag >= self.threshold_s and not self._warned:
                self._warned = True
                self.warnings += 1
                task = asyncio.current_task(self._user_loop)
                where = task.get_name() if task is not None else "a callback"
                logger.warning(
                    "the event loop has been blocked for %.1f s by %s; the gateway "
                    "keeps running in its own thread, but events wait until it yields",
                    lag,
                    where,
                )
