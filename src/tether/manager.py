"""The connection manager: keeps one logical connection alive, whatever happens.

How it works
------------
A :class:`ConnectionManager` supervises *attempts*. An attempt is one try at getting a
session going and keeping it: a :class:`Driver` (the gateway driver, the RPC driver,
the voice driver) opens a transport, performs its handshake, calls
:meth:`Attempt.established` when the session is up, and returns (or raises) when the
connection ends. The manager knows nothing of Discord: it only knows attempts, their
outcomes and time.

States::

    DISCONNECTED --start()--> CONNECTING --established--> CONNECTED
         ^                       ^   |                        |
         |                       |   +---- attempt ends ------+
         |                       +------ backoff wait <-------+
         +---- DISCONNECTING <---- stop() (from any state) ----+

Rules, each one enforced here and nowhere else:

* ``start()`` and ``stop()`` only signal the supervisor task and return at once.
  Repeated calls coalesce; ``start()`` right after ``stop()`` works; ``stop()`` may be
  called from anywhere on the manager's loop, including an event callback, and returns a
  future that resolves once the connection is fully torn down.
* One timeout covers an attempt from its first step until it is established (the time a
  driver spends waiting its turn in a queue, with :meth:`Attempt.waiting`, is excluded).
* Every failure goes through one backoff (:class:`Backoff`), reset when an attempt is
  established. A driver may ask for a minimum delay with :class:`Retry`.
* Only ``stop()`` or a :class:`~tether.errors.FatalError` from the driver ends the
  supervisor. Any other exception, a timeout or the cancellation of an inner step is a
  retryable fault: logged once (WARNING for known faults, ERROR with the traceback for
  unexpected ones) and retried.
* Teardown is bounded: the driver gets ``close_timeout_s`` to close gracefully, then the
  transport is aborted and the attempt task cancelled; the manager never waits on a
  reader or on user code beyond that.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

from tether._event import Event
from tether.errors import (
    ConnectionFault,
    FatalError,
    HandshakeTimeoutError,
    RemoteProtocolError,
)

__all__ = [
    "Attempt",
    "Backoff",
    "ConnectionManager",
    "Connected",
    "Disconnected",
    "Driver",
    "ManagerState",
    "ManagerStats",
    "Retry",
]

logger = logging.getLogger(__name__)

#: Close code for a stop asked for by the user: the session ends on the server too.
STOP_CLOSE_CODE: Final = 1000
#: How long an established connection must have lived for its loss to be retried
#: at once.
HEALTHY_AFTER_S: Final = 1.0
#: Close code for every other close: Discord drops the session on 1000/1001, so a
#: close meant to resume uses a 4000-range code.
RESUMABLE_CLOSE_CODE: Final = 4000


class ManagerState(enum.Enum):
    """Where the manager is in its life."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTING = "disconnecting"


@dataclass(frozen=True, slots=True, kw_only=True)
class Connected(Event):
    """A connection completed its handshake: the session is usable.

    Attributes:
        attempt: the attempt's number, counted from 1 since the manager was created.
        resumed: whether an earlier session was continued rather than a new one begun.
        shard_id: the shard this connection serves, when the client is sharded.
    """

    attempt: int
    resumed: bool = False
    shard_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnected(Event):
    """A connected session's connection ended, or the manager stopped on a fatal error.

    Attributes:
        reason: what ended it, in words.
        will_reconnect: whether the manager is going to reconnect by itself.
        error: the exception behind it, when there was one.
        shard_id: the shard this connection served, when the client is sharded.
    """

    reason: str
    will_reconnect: bool
    error: BaseException | None = None
    shard_id: int | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    """What a driver returns when its connection ended and it should be tried again.

    Attributes:
        reason: why the connection ended, in words (logged and put on Disconnected).
        delay_s: the least time to wait before the next attempt, or ``None`` for the
            manager's backoff. A delay the driver asks for is raised to the backoff
            when the attempt never got established, so no fault can make a hot loop.
    """

    reason: str
    delay_s: float | None = None


class Driver(Protocol):
    """Performs attempts for a :class:`ConnectionManager` over some transport."""

    async def run(self, attempt: Attempt) -> Retry | None:
        """Open a connection, run it until it ends, and say what happened.

        Call ``attempt.established()`` once the handshake is complete. Return a
        :class:`Retry` (or ``None``) when the connection ended; raise
        :class:`~tether.errors.FatalError` when retrying cannot help. Any other
        exception is a retryable fault.
        """
        ...

    async def close(self, code: int) -> None:
        """Close the current connection gracefully with ``code``, if there is one."""
        ...

    def abort(self) -> None:
        """Drop the current transport at once, if there is one."""
        ...


@dataclass(slots=True)
class Backoff:
    """Exponential backoff with jitter.

    The n-th consecutive failure waits a random time in ``[d/2, d]`` where
    ``d = min(cap_s, base_s * factor**n)``: the first retry comes within ``base_s``,
    and the cap bounds the wait during a long outage.

    The default cap, 120 s, bounds a day of failures to 720 attempts, below Discord's
    daily budget of 1000 identifies even if every failed attempt had identified.
    """

    base_s: float = 1.0
    factor: float = 2.0
    cap_s: float = 120.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay(self) -> float:
        """Return the wait before the next attempt and count one more failure."""
        ceiling = min(self.cap_s, self.base_s * self.factor**self.failures)
        self.failures = min(self.failures + 1, 64)
        return ceiling / 2 + self.rng.random() * ceiling / 2

    def reset(self) -> None:
        """Forget past failures: the next delay is short again."""
        self.failures = 0


@dataclass(slots=True)
class ManagerStats:
    """Counters a test or a dashboard can read (:attr:`ConnectionManager.stats`)."""

    attempts: int = 0
    established: int = 0
    resumed: int = 0
    faults: int = 0
    unexpected_errors: int = 0
    handshake_timeouts: int = 0


class Attempt:
    """One try by the manager to get a session going; handed to :meth:`Driver.run`."""

    __slots__ = (
        "_manager",
        "_waiting",
        "deadline",
        "established_at",
        "is_established",
        "number",
    )

    def __init__(self, manager: ConnectionManager, number: int, deadline: float):
        #: The attempt's number, counted from 1 for the manager's life.
        self.number = number
        #: Loop time by which the attempt must be established.
        self.deadline = deadline
        #: Whether :meth:`established` was called.
        self.is_established = False
        #: Loop time of :meth:`established`, once called.
        self.established_at: float | None = None
        self._manager = manager
        self._waiting = 0

    def established(self, *, resumed: bool = False) -> None:
        """Tell the manager the handshake completed: emits :class:`Connected`."""
        if self.is_established:
            return
        self.is_established = True
        self.established_at = asyncio.get_running_loop().time()
        self._manager._attempt_established(self, resumed)

    @contextlib.asynccontextmanager
    async def waiting(self) -> AsyncIterator[None]:
        """Exclude the time spent inside from the attempt's timeout.

        For a wait that is not the connection's fault, such as an identify queue.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        self._waiting += 1
        try:
            yield
        finally:
            self._waiting -= 1
            self.deadline += loop.time() - started
            self._manager._wake()

    @property
    def is_waiting(self) -> bool:
        return self._waiting > 0


class ConnectionManager:
    """Keeps a connection alive through any fault that is not the user's own.

    Args:
        driver: performs the attempts over a transport.
        on_event: called with :class:`Connected` and :class:`Disconnected`, on the
            manager's loop. It must not block; exceptions from it are logged.
        attempt_timeout_s: the time an attempt has to get established.
        close_timeout_s: the time a graceful close may take before the transport is
            aborted.
        backoff: the backoff policy (one per manager).
        shard_id: put on the events, for sharded clients.
        name: names the manager in logs.
    """

    def __init__(
        self,
        driver: Driver,
        *,
        on_event: Callable[[Event], None] | None = None,
        attempt_timeout_s: float = 30.0,
        close_timeout_s: float = 5.0,
        backoff: Backoff | None = None,
        shard_id: int | None = None,
        name: str = "connection",
    ) -> None:
        self._driver = driver
        self._on_event = on_event
        self._attempt_timeout_s = attempt_timeout_s
        self._close_timeout_s = close_timeout_s
        #: The backoff policy; reset whenever an attempt is established.
        self.backoff = backoff if backoff is not None else Backoff()
        self._shard_id = shard_id
        self._name = name
        #: An established connection that lived this long, then failed, is retried
        #: at once; a shorter-lived one backs off, so a flapping server cannot
        #: make a hot loop.
        self.healthy_after_s = HEALTHY_AFTER_S
        #: Counters of what happened so far.
        self.stats = ManagerStats()
        #: The fatal error that stopped the manager, if any.
        self.fatal_error: FatalError | None = None

        self._state = ManagerState.DISCONNECTED
        # Whether the user wants a connection: start() sets it, stop() clears it.
        self._wanted = False
        # Futures returned by stop() that resolve once the teardown is complete.
        self._stop_waiters: list[asyncio.Future[None]] = []
        self._stop_pending = False
        # The close code of the stop asked for.
        self._stop_code = STOP_CLOSE_CODE
        # The supervisor task, alive from start() until the manager is stopped.
        self._task: asyncio.Task[None] | None = None
        # Set to make the supervisor re-check its inputs (stop, deadline changes).
        self._wakeup: asyncio.Event | None = None
        self._attempt: Attempt | None = None
        self._attempt_count = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"<ConnectionManager {self._name} state={self._state.value}>"

    # Public API

    @property
    def state(self) -> ManagerState:
        """The current state."""
        return self._state

    @property
    def is_running(self) -> bool:
        """Whether the supervisor is alive (connecting, connected or closing)."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Ask for a connection; returns at once. Must run on the manager's loop."""
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop and self.is_running:
            raise RuntimeError("the manager is running on another event loop")
        self._wanted = True
        self.fatal_error = None
        if self.is_running:
            self._wake()
            return
        self._loop = loop
        self._wakeup = asyncio.Event()
        self._task = loop.create_task(self._supervise(), name=f"tether:{self._name}")

    def stop(self, *, code: int = STOP_CLOSE_CODE) -> asyncio.Future[None]:
        """Ask for the connection to end; returns at once.

        Args:
            code: the close code. The default, 1000, ends the session on the
                server; a 4000-range code keeps it resumable (for a process that
                saves its session and resumes it after a restart).

        Await the returned future to wait until it is fully torn down.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        if not self.is_running:
            waiter.set_result(None)
            return waiter
        self._stop_code = code
        self._wanted = False
        self._stop_pending = True
        self._stop_waiters.append(waiter)
        self._wake()
        return waiter

    async def wait_closed(self) -> None:
        """Wait until the manager has stopped (by ``stop()`` or a fatal error)."""
        task = self._task
        if task is not None and not task.done():
            await asyncio.shield(task)

    # Supervisor

    async def _supervise(self) -> None:
        try:
            while self._wanted:
                try:
                    delay = await self._run_attempt()
                except Exception:
                    # A bug in the manager itself: never let the supervisor die of it.
                    self.stats.unexpected_errors += 1
                    delay = self.backoff.next_delay()
                    logger.exception(
                        "%s: internal error; retrying in %.1f s", self._name, delay
                    )
                self._settle_stop()
                if not self._wanted or delay is None:
                    continue
                await self._wait_before_retry(delay)
                self._settle_stop()
        finally:
            self._set_state(ManagerState.DISCONNECTED)
            self._wanted = False
            self._settle_stop(force=True)
            if self.fatal_error is None:
                logger.info("%s: stopped", self._name)

    async def _wait_before_retry(self, delay_s: float) -> None:
        self._set_state(ManagerState.CONNECTING)
        loop = asyncio.get_running_loop()
        until = loop.time() + delay_s
        while self._wanted and not self._stop_pending:
            remaining = until - loop.time()
            if remaining <= 0:
                return
            await self._sleep_or_wake(remaining)

    async def _run_attempt(self) -> float | None:
        """Run one attempt; return the delay before the next one, or None to stop."""
        loop = asyncio.get_running_loop()
        self._attempt_count += 1
        self.stats.attempts += 1
        attempt = Attempt(self, self._attempt_count, loop.time())
        attempt.deadline += self._attempt_timeout_s
        self._attempt = attempt
        self._set_state(ManagerState.CONNECTING)
        logger.debug("%s: attempt %d starting", self._name, attempt.number)

        task = loop.create_task(
            self._driver.run(attempt), name=f"tether:{self._name}:attempt"
        )
        error: BaseException | None = None
        retry: Retry | None = None
        stopped = False
        try:
            while not task.done():
                if self._stop_pending:
                    stopped = True
                    self._set_state(ManagerState.DISCONNECTING)
                    await self._close_attempt(task, self._stop_code)
                    break
                if not attempt.is_established and not attempt.is_waiting:
                    remaining = attempt.deadline - loop.time()
                    if remaining <= 0:
                        self.stats.handshake_timeouts += 1
                        error = HandshakeTimeoutError(
                            f"no session within {self._attempt_timeout_s:.0f} s"
                        )
                        await self._close_attempt(task, RESUMABLE_CLOSE_CODE)
                        break
                else:
                    remaining = None
                await self._wait_task_or_wake(task, remaining)
        finally:
            self._attempt = None
            if not task.done():
                task.cancel()

        if task.done() and error is None and not stopped:
            if task.cancelled():
                error = ConnectionFault("the attempt was cancelled")
            elif (exc := task.exception()) is not None:
                error = exc
            else:
                retry = task.result()
        elif task.done() and not task.cancelled():
            # Retrieve the outcome so that asyncio does not log it as unhandled.
            task.exception()
        return self._conclude(attempt, retry, error, stopped)

    def _conclude(
        self,
        attempt: Attempt,
        retry: Retry | None,
        error: BaseException | None,
        stopped: bool,
    ) -> float | None:
        """Decide what follows an attempt: log once, emit, return the delay."""
        if stopped:
            if attempt.is_established:
                # A start() during the teardown means the supervisor goes on.
                self._emit(
                    Disconnected(
                        reason="stopped",
                        will_reconnect=self._wanted,
                        shard_id=self._shard_id,
                    )
                )
            return None

        if isinstance(error, FatalError):
            self.fatal_error = error
            self._wanted = False
            logger.error("%s: fatal: %s", self._name, error)
            self._emit(
                Disconnected(
                    reason=str(error),
                    will_reconnect=False,
                    error=error,
                    shard_id=self._shard_id,
                )
            )
            return None

        self.stats.faults += 1
        if error is None:
            reason = retry.reason if retry is not None else "connection closed"
        else:
            reason = str(error) or type(error).__name__
        asked = retry.delay_s if retry is not None else None
        if asked is not None and attempt.is_established:
            delay = asked
        elif asked is None and self._was_healthy(attempt):
            # A connection that served for a while dropped: come back at once. A
            # second failure in a row backs off as usual.
            delay = 0.0
        else:
            delay = self.backoff.next_delay()
            if asked is not None:
                delay = max(delay, asked)

        if error is not None and not isinstance(
            error, ConnectionFault | RemoteProtocolError | OSError | TimeoutError
        ):
            self.stats.unexpected_errors += 1
            logger.error(
                "%s: unexpected error in attempt %d; retrying in %.1f s",
                self._name,
                attempt.number,
                delay,
                exc_info=error,
            )
        else:
            logger.warning("%s: %s; reconnecting in %.1f s", self._name, reason, delay)
        if attempt.is_established:
            self._emit(
                Disconnected(
                    reason=reason,
                    will_reconnect=self._wanted,
                    error=error,
                    shard_id=self._shard_id,
                )
            )
        return delay

    def _was_healthy(self, attempt: Attempt) -> bool:
        if attempt.established_at is None:
            return False
        uptime = asyncio.get_running_loop().time() - attempt.established_at
        return uptime >= self.healthy_after_s

    async def _close_attempt(self, task: asyncio.Task[Retry | None], code: int) -> None:
        """Close gracefully within close_timeout_s, then abort and cancel."""
        try:
            async with asyncio.timeout(self._close_timeout_s):
                await self._driver.close(code)
        except TimeoutError:
            logger.warning(
                "%s: close did not finish within %.1f s; aborting the transport",
                self._name,
                self._close_timeout_s,
            )
        except Exception:
            logger.warning("%s: error while closing", self._name, exc_info=True)
        self._driver.abort()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=self._close_timeout_s)
        if not done:
            logger.error(
                "%s: the attempt ignored cancellation; leaving it behind", self._name
            )

    # Signals from attempts and from the public API

    def _attempt_established(self, attempt: Attempt, resumed: bool) -> None:
        if attempt is not self._attempt:
            return
        self.backoff.reset()
        self.stats.established += 1
        if resumed:
            self.stats.resumed += 1
        self._set_state(ManagerState.CONNECTED)
        self._emit(
            Connected(attempt=attempt.number, resumed=resumed, shard_id=self._shard_id)
        )
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    async def _sleep_or_wake(self, delay_s: float) -> None:
        assert self._wakeup is not None
        self._wakeup.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay_s):
                await self._wakeup.wait()

    async def _wait_task_or_wake(
        self, task: asyncio.Task[Retry | None], within_s: float | None
    ) -> None:
        assert self._wakeup is not None
        self._wakeup.clear()
        waker = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait(
                {task, waker}, timeout=within_s, return_when="FIRST_COMPLETED"
            )
        finally:
            waker.cancel()

    def _settle_stop(self, *, force: bool = False) -> None:
        if not (self._stop_pending or force):
            return
        self._stop_pending = False
        waiters, self._stop_waiters = self._stop_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _set_state(self, state: ManagerState) -> None:
        if state is self._state:
            return
        logger.debug("%s: %s -> %s", self._name, self._state.value, state.value)
        self._state = state

    def _emit(self, event: Event) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            logger.exception("%s: the event callback raised on %r", self._name, event)
