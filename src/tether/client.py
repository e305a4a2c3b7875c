"""The Client: what bots are written with.

A :class:`Client` wires the pieces together: one :class:`~tether.manager.
ConnectionManager` and :class:`~tether.drivers.gateway.GatewayDriver` per shard (on the
I/O loop, by default in a thread of its own), the guild cache, Ready gating, member
chunking and the handlers (on the user's loop).

What flows where::

    I/O loop                                   user's loop
    --------                                   -----------
    driver -> protocol -> Dispatch ---Inbox--> parse -> cache -> Ready gating
    manager -> Connected/Disconnected --/                  \\-> EventDispatcher
                                                                -> handler tasks

The reader and the heartbeat never wait for the user's loop: the inbox is
unbounded, observable (:attr:`Client.stats`) and drained in batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import logging
import random
import signal
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from tether import events as ev
from tether._dispatch import EventDispatcher, EventStream, Handler, Subscription
from tether._event import Event
from tether._iothread import Inbox, IOLoop, LoopLagMonitor
from tether._ready import ReadyOutcome, ReadyTracker
from tether._secret import Token
from tether.cache import Cache, CacheConfig
from tether.drivers.gateway import DEFAULT_MAX_MESSAGE_SIZE, GatewayDriver
from tether.errors import ClientStateError, FatalError, TetherError
from tether.gateway.codec import Compression
from tether.gateway.intents import Intents
from tether.gateway.opcodes import Opcode
from tether.gateway.protocol import (
    ConnectionState,
    Dispatch,
    GatewayProtocol,
    IdentifyParams,
    default_properties,
)
from tether.identify import IdentifyQueue, LimitedIdentifyQueue, LocalIdentifyQueue
from tether.manager import (
    STOP_CLOSE_CODE,
    Backoff,
    Connected,
    ConnectionManager,
    Disconnected,
    ManagerState,
)
from tether.models import Member, User
from tether.rest import RESTClient

__all__ = [
    "DEFAULT_API_URL",
    "Client",
    "ClientStats",
    "DispatchInfo",
    "current_dispatch",
]

logger = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)

#: Discord's REST base URL.
DEFAULT_API_URL: Final = "https://discord.com/api/v10"


@dataclass(frozen=True, slots=True)
class DispatchInfo:
    """Which gateway dispatch an event came from (see :func:`current_dispatch`).

    Attributes:
        shard_id: the shard that received it.
        session_id: the gateway session it belongs to.
        seq: its sequence number in that session.
        name: the dispatch name (``t``).
    """

    shard_id: int
    session_id: str | None
    seq: int | None
    name: str


_current: contextvars.ContextVar[DispatchInfo | None] = contextvars.ContextVar(
    "tether_current_dispatch", default=None
)


def current_dispatch() -> DispatchInfo | None:
    """Return the dispatch behind the event being handled, inside a handler.

    Handlers run in a copy of the context their event was raised in, so this tells
    a handler (or anything it calls) which shard, session and seq its event came
    from: useful for logs, tracing and exactly-once accounting. Outside a handler,
    or for events that no dispatch raised (Connected, Disconnected), it is None.
    """
    return _current.get()


@dataclass(frozen=True, slots=True)
class ClientStats:
    """A snapshot of a client's queues and counters (:attr:`Client.stats`).

    Attributes:
        inbox_size: dispatches received by the I/O side, not yet handled by the
            user's loop.
        inbox_oldest_s: how long the oldest of them has waited.
        inbox_max_age_s: the longest any dispatch has waited in the inbox.
        dispatches: dispatches (and lifecycle events) handled so far.
        handlers_running: handler calls running now.
        handler_errors: handler calls that raised so far.
        loop_lag_s: how long the user's loop has not answered (0 when healthy).
        max_loop_lag_s: the longest lag seen.
    """

    inbox_size: int
    inbox_oldest_s: float
    inbox_max_age_s: float
    dispatches: int
    handlers_running: int
    handler_errors: int
    loop_lag_s: float
    max_loop_lag_s: float


@dataclass(slots=True)
class _Shard:
    """One shard's machinery; lives on the I/O loop."""

    shard_id: int
    protocol: GatewayProtocol
    driver: GatewayDriver
    manager: ConnectionManager
    # Set while a session is up (Connected until Disconnected); commands wait on it.
    session_up: asyncio.Event


@dataclass(slots=True)
class _MemberRequest:
    shard_id: int
    guild_id: int
    future: asyncio.Future[list[Member]]
    members: list[Member]
    chunks_seen: set[int]
    chunk_count: int | None = None
    # Resolved with a delay to send the request again after: Discord's retry_after
    # for RATE_LIMITED, or 0 after a resume or a new session.
    retry: asyncio.Future[float] | None = None


class Client:
    """A gateway client: connections, cache, events and REST in one object.

    Args:
        token: the bot token (kept out of every log, repr and error).
        intents: which dispatches to receive.
        api_url: the REST base URL; point it at ``tether.emulator`` to test.
        shard: ``(shard_id, shard_count)`` for a bot split across processes, or
            ``None`` for an unsharded session.
        compress: gateway transport compression (``"zlib-stream"``,
            ``"zstd-stream"`` or ``None``).
        cache: what the cache keeps.
        ready_timeout_s: how long Ready waits after the last GUILD_CREATE for
            guilds still missing.
        fetch_members: make Ready also wait until every guild's members are in the
            cache (needs the GUILD_MEMBERS intent).
        io_thread: run the gateway I/O on its own loop in a thread, so blocking
            handlers cannot cost the session (the default).
        slow_handler_warning_s: warn about handlers running longer than this.
        loop_lag_warning_s: warn when the user's loop is blocked, or events wait
            for it, longer than this.
        attempt_timeout_s: the time a connection attempt has to get a session.
        large_threshold: the member count above which Discord omits offline members.
        presence: the presence to IDENTIFY with (op 3 shape).
        max_message_size: cap on one decompressed gateway message.
        identify_queue: an identify queue shared with other clients.
        backoff: a factory of backoff policies, one per shard.
    """

    def __init__(
        self,
        token: str | Token,
        *,
        intents: int = Intents.default(),
        api_url: str = DEFAULT_API_URL,
        shard: tuple[int, int] | None = None,
        compress: Compression = "zlib-stream",
        cache: CacheConfig | None = None,
        ready_timeout_s: float = 10.0,
        fetch_members: bool = False,
        io_thread: bool = True,
        slow_handler_warning_s: float = 3.0,
        loop_lag_warning_s: float = 1.0,
        attempt_timeout_s: float = 30.0,
        large_threshold: int = 250,
        presence: Mapping[str, Any] | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        identify_queue: IdentifyQueue | None = None,
        backoff: Callable[[], Backoff] | None = None,
    ) -> None:
        self._token = Token(token)
        self.intents = Intents(intents)
        self.api_url = api_url.rstrip("/")
        self.compress = compress
        self.ready_timeout_s = ready_timeout_s
        self.fetch_members = fetch_members
        self.attempt_timeout_s = attempt_timeout_s
        self.large_threshold = large_threshold
        self.presence = dict(presence) if presence is not None else None
        self.max_message_size = max_message_size
        self._backoff_factory = backoff
        self._identify_queue: IdentifyQueue = identify_queue or LocalIdentifyQueue()
        self._shard_spec = shard

        #: The guild cache, kept current by every event (read it on the user's loop).
        self.cache = Cache(cache or CacheConfig())
        #: REST calls, on the user's loop.
        self.rest = RESTClient(self._token, api_url=self.api_url)
        self._dispatcher = EventDispatcher(
            slow_handler_warning_s=slow_handler_warning_s, name="client"
        )
        self._io = IOLoop(threaded=io_thread)
        self._loop_lag_warning_s = loop_lag_warning_s
        self._lag_monitor: LoopLagMonitor | None = None
        self._lag_task: asyncio.Task[None] | None = None

        self._user_loop: asyncio.AbstractEventLoop | None = None
        self._inbox: Inbox[tuple[int, object]] | None = None
        self._shards: dict[int, _Shard] = {}
        # Set on the I/O loop by stop(): commands waiting for a session give up.
        self._io_stopping = False
        # The close code of stop(): 1000 ends the sessions on Discord's side.
        self._stop_close_code = STOP_CLOSE_CODE
        # Counts start()s on the I/O side, so a watcher of an older run stays quiet.
        self._io_generation = 0
        self._io_rest: RESTClient | None = None

        # User-loop state: the session's view, per shard.
        self._trackers: dict[int, ReadyTracker] = {}
        self._ready_timers: dict[int, asyncio.TimerHandle] = {}
        self._ready_shards: set[int] = set()
        self._ready_event: asyncio.Event | None = None
        self._closed_event: asyncio.Event | None = None
        self._states: dict[int, ManagerState] = {}
        self._member_requests: dict[str, _MemberRequest] = {}
        self._session_ids: dict[int, str] = {}
        self._ready_dispatch: dict[int, DispatchInfo] = {}
        # Member fetches for fetch_members, per shard (cancelled by a new session).
        self._fetches: dict[int, set[asyncio.Task[None]]] = {}
        self._nonces = itertools.count(1)
        self._nonce_prefix = f"{random.getrandbits(32):08x}"
        self._fatal_error: FatalError | None = None
        self._running = False
        self._stopping: asyncio.Future[None] | None = None
        self._starting: asyncio.Future[None] | None = None
        self.user: User | None = None

    def __repr__(self) -> str:
        return f"<Client state={self.state.value} shards={self.shard_ids}>"

    # Subscribing

    def on(self, *kinds: type[Event]) -> Callable[[Handler[Any]], Handler[Any]]:
        """Decorator: ``@client.on(MessageCreate)`` calls the function on each one."""
        return self._dispatcher.on(*kinds)

    def subscribe(self, kind: type[E], handler: Handler[E]) -> Subscription:
        """Call ``handler`` with every ``kind`` event; returns a cancellable handle."""
        return self._dispatcher.subscribe(kind, handler)

    def unsubscribe(self, kind: type[Event], handler: Handler[Any]) -> None:
        """Stop calling ``handler`` for ``kind``."""
        self._dispatcher.unsubscribe(kind, handler)

    async def wait_for(
        self,
        kind: type[E],
        *,
        check: Callable[[E], bool] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the documented API)
    ) -> E:
        """Wait for the next ``kind`` event for which ``check`` is true."""
        return await self._dispatcher.wait_for(kind, check=check, timeout=timeout)

    def stream(
        self, kind: type[E], *, check: Callable[[E], bool] | None = None
    ) -> EventStream[E]:
        """``async for event in client.stream(MessageCreate)``: every one from now."""
        return self._dispatcher.stream(kind, check=check)

    # Lifecycle

    @property
    def shard_ids(self) -> list[int]:
        """The shard ids this client runs."""
        if self._shard_spec is None:
            return [0]
        return [self._shard_spec[0]]

    def _shard_tuple(self, shard_id: int) -> tuple[int, int] | None:
        return self._shard_spec

    def start(self) -> None:
        """Ask for the connection; returns at once. Call it from a running loop."""
        loop = asyncio.get_running_loop()
        if self._user_loop is not None and self._user_loop is not loop:
            raise ClientStateError("the client was started on another event loop")
        self._user_loop = loop
        if self._inbox is None:
            self._inbox = Inbox(
                loop, self._handle_item, warn_age_s=self._loop_lag_warning_s
            )
        if self._ready_event is None:
            self._ready_event = asyncio.Event()
        if self._closed_event is None or self._closed_event.is_set():
            self._closed_event = asyncio.Event()
        self._fatal_error = None
        self._running = True
        self._io.ensure_started()
        # Scheduled the way stop() is, so that a start() right after a stop()
        # reaches the I/O loop after it, never before.
        self._starting = self._io.submit(self._start_async())
        self._starting.add_done_callback(_log_failure)

    def stop(self) -> asyncio.Future[None]:
        """Ask for every connection to end; returns at once.

        Await the returned future to wait until everything is closed.
        """
        loop = asyncio.get_running_loop()
        if not self._io.is_started or not self._running:
            done: asyncio.Future[None] = loop.create_future()
            done.set_result(None)
            return done
        self._running = False
        stopped: asyncio.Future[None] = loop.create_future()

        def settle(io_done: asyncio.Future[None]) -> None:
            # The state arrives through the inbox later; once the I/O side is
            # down, and unless start() came meanwhile, the answer is known now.
            if not self._running:
                for shard_id in self._states:
                    self._states[shard_id] = ManagerState.DISCONNECTED
            if stopped.done():
                return
            if io_done.cancelled():
                stopped.cancel()
            elif (error := io_done.exception()) is not None:
                stopped.set_exception(error)
            else:
                stopped.set_result(None)

        self._io.submit(self._stop_on_io()).add_done_callback(settle)
        # Callers may drop the future (a signal handler does): keep it referenced.
        self._stopping = stopped
        return stopped

    async def wait_closed(self) -> None:
        """Wait until the client has stopped (``stop()`` or a fatal error)."""
        if self._closed_event is not None:
            await self._closed_event.wait()

    async def wait_until_ready(self) -> None:
        """Wait until Ready was raised for every shard of the current sessions."""
        if self._ready_event is None:
            raise ClientStateError("start() the client before waiting for Ready")
        await self._ready_event.wait()

    async def close(self) -> None:
        """Stop, wait for the handlers, and release every resource."""
        if self._user_loop is not None and self._user_loop.is_closed():
            # The loop that ran this client is gone, and the I/O side already
            # stopped itself when it noticed: only the HTTP session is left.
            self._io.shutdown()
            with contextlib.suppress(RuntimeError):
                await self.rest.close()
            return
        await self.stop()
        for tasks in self._fetches.values():
            for task in tasks:
                task.cancel()
        await self._dispatcher.close()
        await self.rest.close()
        if self._io.is_started:
            await self._io.submit(self._release_on_io())
        self._io.shutdown()

    async def __aenter__(self) -> Client:
        """``async with Client(...) as client:`` starts the client, and closes it."""
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def run(self) -> None:
        """Run the client until SIGINT/SIGTERM or a fatal error (for scripts).

        Raises:
            FatalError: the gateway refused the bot (bad token, intents, ...).
        """
        asyncio.run(self._run_until_closed())

    async def _run_until_closed(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self.stop)
        try:
            self.start()
            await self.wait_closed()
        finally:
            await self.close()
        if self._fatal_error is not None:
            raise self._fatal_error

    @property
    def state(self) -> ManagerState:
        """The connection state (for several shards: the least advanced one)."""
        if not self._states:
            return ManagerState.DISCONNECTED
        order = list(ManagerState)
        return min(self._states.values(), key=order.index)

    @property
    def latency(self) -> float | None:
        """The last heartbeat round trip in seconds (mean over connected shards).

        ``None`` until a heartbeat was acknowledged, and while disconnected.
        """
        # The driver writes a float on the I/O loop; reading it here is safe.
        known = [
            latency
            for shard_id, shard in list(self._shards.items())
            if self._states.get(shard_id) is ManagerState.CONNECTED
            and (latency := shard.driver.latency) is not None
        ]
        return sum(known) / len(known) if known else None

    @property
    def fatal_error(self) -> FatalError | None:
        """The error that stopped the client, if a fatal one did."""
        return self._fatal_error

    @property
    def is_ready(self) -> bool:
        """Whether Ready was raised for every shard of the current sessions."""
        return self._ready_event is not None and self._ready_event.is_set()

    @property
    def stats(self) -> ClientStats:
        """Queue sizes and counters; see :class:`ClientStats`."""
        inbox = self._inbox
        lag = self._lag_monitor
        return ClientStats(
            inbox_size=inbox.size if inbox else 0,
            inbox_oldest_s=inbox.oldest_age() if inbox else 0.0,
            inbox_max_age_s=inbox.max_age_s if inbox else 0.0,
            dispatches=inbox.handled if inbox else 0,
            handlers_running=self._dispatcher.stats.running,
            handler_errors=self._dispatcher.stats.handler_errors,
            loop_lag_s=lag.lag_s if lag else 0.0,
            max_loop_lag_s=lag.max_lag_s if lag else 0.0,
        )

    # Commands

    async def request_members(
        self,
        guild_id: int,
        *,
        query: str = "",
        limit: int = 0,
        user_ids: Sequence[int] | None = None,
        presences: bool = False,
        timeout: float = 60.0,  # noqa: ASYNC109 (the documented API)
    ) -> list[Member]:
        """Fetch a guild's members over the gateway (op 8) and cache them.

        Returns when the last GUILD_MEMBERS_CHUNK arrived. Requests wait for the
        session during a reconnect and their turn under the gateway's send limit;
        a request Discord rate-limits (RATE_LIMITED) is sent again after the delay
        it names, and one unanswered after a resume or a new session is sent again.

        Args:
            guild_id: the guild.
            query: members whose username or nick starts with this (``""``: all;
                needs the GUILD_MEMBERS intent).
            limit: at most this many members (0: no limit, with an empty query).
            user_ids: these members instead of a query (at most 100).
            presences: also send their presences (GUILD_PRESENCES intent); they
                reach the cache and the :class:`~tether.events.MembersChunk` events.
            timeout: give up after this many seconds.

        Returns:
            The members, in the order the chunks listed them.

        Raises:
            TimeoutError: the last chunk did not arrive in time.
            ClientStateError: the client is not running.
        """
        loop = asyncio.get_running_loop()
        nonce = f"{self._nonce_prefix}{next(self._nonces):x}"
        shard_id = self._shard_of_guild(guild_id)
        request = _MemberRequest(shard_id, guild_id, loop.create_future(), [], set())
        self._member_requests[nonce] = request
        d: dict[str, Any] = {"guild_id": str(guild_id), "nonce": nonce}
        if user_ids is not None:
            d["user_ids"] = [str(u) for u in user_ids]
        else:
            d["query"] = query
            d["limit"] = limit
        if presences:
            d["presences"] = True
        try:
            async with asyncio.timeout(timeout):
                while True:
                    request.retry = loop.create_future()
                    await self._send_command_to(
                        shard_id, Opcode.REQUEST_GUILD_MEMBERS, d
                    )
                    await asyncio.wait(
                        (request.future, request.retry),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    if request.future.done():
                        return request.future.result()
                    delay = request.retry.result()
                    if delay > 0:
                        logger.info(
                            "member request for guild %d rate limited; "
                            "retrying in %.1f s",
                            guild_id,
                            delay,
                        )
                        # An earlier answer may still complete it meanwhile.
                        await asyncio.wait((request.future,), timeout=delay)
                        if request.future.done():
                            return request.future.result()
        finally:
            self._member_requests.pop(nonce, None)
            if request.retry is not None:
                request.retry.cancel()

    async def update_presence(
        self,
        *,
        status: str = "online",
        activities: Iterable[Mapping[str, Any]] = (),
        afk: bool = False,
        since: int | None = None,
    ) -> None:
        """Set the bot's presence on every shard (op 3)."""
        d = {
            "status": status,
            "activities": [dict(a) for a in activities],
            "afk": afk,
            "since": since,
        }
        for shard_id in list(self._shards) or self.shard_ids:
            await self._send_command_to(shard_id, Opcode.PRESENCE_UPDATE, d)

    async def _send_command_to(self, shard_id: int, op: Opcode, d: Any) -> None:
        if not self._io.is_started:
            raise ClientStateError("the client is not started")

        async def send() -> None:
            shard = self._shards.get(shard_id)
            if shard is None:
                raise ClientStateError(f"shard {shard_id} is not running")
            # During a reconnect a command waits for the session, not fails.
            while shard.protocol.state is not ConnectionState.CONNECTED:
                if self._io_stopping or not shard.manager.is_running:
                    raise ClientStateError(f"shard {shard_id} is stopped")
                shard.session_up.clear()
                # A session, or the end of the shard (a fatal close, a stop, a
                # reshard that removed it): whichever comes first.
                up = asyncio.ensure_future(shard.session_up.wait())
                ended = asyncio.ensure_future(shard.manager.wait_closed())
                try:
                    await asyncio.wait({up, ended}, return_when="FIRST_COMPLETED")
                finally:
                    up.cancel()
                    ended.cancel()
            shard.driver.send_command(op, d)

        await self._io.submit(send())

    def _shard_of_guild(self, guild_id: int) -> int:
        spec = self._shard_spec
        if spec is None:
            return 0
        return spec[0]

    # The I/O side

    def _make_protocol(self, shard_id: int) -> GatewayProtocol:
        """Build a shard's protocol state machine (a hook for subclasses)."""
        return GatewayProtocol(
            IdentifyParams(
                token=self._token,
                intents=int(self.intents),
                properties=default_properties(),
                shard=self._shard_tuple(shard_id),
                presence=self.presence,
                large_threshold=self.large_threshold,
            ),
            rng=random.Random(),
        )

    def _make_driver(
        self,
        shard_id: int,
        protocol: GatewayProtocol,
        on_dispatch: Callable[[Dispatch], None],
    ) -> GatewayDriver:
        """Build a shard's gateway driver (a hook for subclasses)."""
        return GatewayDriver(protocol, **self._driver_options(shard_id, on_dispatch))

    def _driver_options(
        self, shard_id: int, on_dispatch: Callable[[Dispatch], None]
    ) -> dict[str, Any]:
        """The keyword arguments of a shard's :class:`GatewayDriver`."""
        return {
            "fetch_gateway_url": self._fetch_gateway_url,
            "on_dispatch": on_dispatch,
            "identify_queue": self._identify_queue,
            "shard_id": shard_id,
            "compress": self.compress,
            "max_message_size": self.max_message_size,
        }

    def _on_io_event(self, shard_id: int, event: Event) -> None:
        """See a shard's Connected/Disconnected on the I/O loop (a subclass hook)."""

    def _make_shard(self, shard_id: int) -> _Shard:
        inbox = self._inbox
        assert inbox is not None
        protocol = self._make_protocol(shard_id)

        def on_dispatch(dispatch: Dispatch) -> None:
            inbox.put((shard_id, dispatch))

        session_up = asyncio.Event()

        def on_event(event: Event) -> None:
            if isinstance(event, Connected):
                session_up.set()
            elif isinstance(event, Disconnected):
                session_up.clear()
            self._on_io_event(shard_id, event)
            inbox.put((shard_id, event))

        driver = self._make_driver(shard_id, protocol, on_dispatch)
        sharded = self._shard_spec is not None or len(self.shard_ids) > 1
        manager = ConnectionManager(
            driver,
            on_event=on_event,
            attempt_timeout_s=self.attempt_timeout_s,
            backoff=self._backoff_factory() if self._backoff_factory else None,
            shard_id=shard_id if sharded else None,
            name=f"shard {shard_id}",
        )
        return _Shard(shard_id, protocol, driver, manager, session_up)

    async def _fetch_gateway_url(self) -> str:
        if self._io_rest is None:
            self._io_rest = RESTClient(self._token, api_url=self.api_url)
        info = await self._io_rest.get_gateway_bot()
        if isinstance(self._identify_queue, LimitedIdentifyQueue):
            # Concurrency and the daily session start limit, as Discord says now.
            self._identify_queue.update_limits(info.session_start_limit)
        return info.url

    async def _start_async(self) -> None:
        self._start_on_io()

    def _start_on_io(self) -> None:
        self._io_stopping = False
        for shard_id in self.shard_ids:
            shard = self._shards.get(shard_id)
            if shard is None:
                shard = self._shards[shard_id] = self._make_shard(shard_id)
            self._post(shard_id, _StateChange(ManagerState.CONNECTING))
            shard.manager.start()
        if self._io.threaded and self._lag_task is None:
            assert self._user_loop is not None
            self._lag_monitor = LoopLagMonitor(
                self._user_loop,
                threshold_s=self._loop_lag_warning_s,
                on_user_loop_closed=self._abandon_on_io,
            )
            self._lag_task = asyncio.get_running_loop().create_task(
                self._lag_monitor.run()
            )
        self._io_generation += 1
        asyncio.get_running_loop().create_task(self._watch_closed())

    async def _watch_closed(self) -> None:
        generation = self._io_generation
        managers = [s.manager for s in self._shards.values()]
        await asyncio.gather(*(m.wait_closed() for m in managers))
        if any(m.is_running for m in managers) or generation != self._io_generation:
            # A start() came after this run's stop(): its own watcher reports.
            return
        fatal = next((m.fatal_error for m in managers if m.fatal_error), None)
        for shard_id in self._shards:
            self._post(shard_id, _StateChange(ManagerState.DISCONNECTED))
        self._post(-1, _Closed(fatal))

    def _wake_commands(self) -> None:
        # Commands waiting for a session see that none will come.
        for shard in self._shards.values():
            shard.session_up.set()

    async def _stop_on_io(self) -> None:
        self._io_stopping = True
        self._wake_commands()
        code = self._stop_close_code
        futures = [s.manager.stop(code=code) for s in self._shards.values()]
        if futures:
            await asyncio.gather(*futures)

    def _abandon_on_io(self) -> None:
        """The user's loop closed without close(): nobody is left to deliver to.

        Stop every shard and the I/O loop, so that a forgotten client does not keep
        a session (and memory) alive in the background.
        """
        logger.warning(
            "the event loop that started the client closed without close(); "
            "stopping the client"
        )
        loop = asyncio.get_running_loop()

        async def wind_down() -> None:
            await self._stop_on_io()
            await self._release_on_io()
            loop.stop()

        loop.create_task(wind_down())

    async def _release_on_io(self) -> None:
        for shard in self._shards.values():
            await shard.driver.aclose()
        if self._io_rest is not None:
            await self._io_rest.close()
            self._io_rest = None
        if self._lag_task is not None:
            self._lag_task.cancel()
            self._lag_task = None

    def _post(self, shard_id: int, item: object) -> None:
        inbox = self._inbox
        if inbox is not None:
            inbox.put((shard_id, item))

    # The user's side: everything below runs on the user's loop, in order.

    def _handle_item(self, entry: tuple[int, object]) -> None:
        shard_id, item = entry
        if isinstance(item, Dispatch):
            self._handle_dispatch(shard_id, item)
        elif isinstance(item, Connected):
            self._states[shard_id] = ManagerState.CONNECTED
            self._dispatcher.dispatch(item)
        elif isinstance(item, Disconnected):
            self._states[shard_id] = (
                ManagerState.CONNECTING
                if item.will_reconnect
                else ManagerState.DISCONNECTED
            )
            if isinstance(item.error, FatalError):
                self._fatal_error = item.error
            self._dispatcher.dispatch(item)
        elif isinstance(item, _StateChange):
            self._states[shard_id] = item.state
        elif isinstance(item, _Closed):
            if item.fatal is not None:
                self._fatal_error = item.fatal
            self._running = False
            if self._closed_event is not None:
                self._closed_event.set()

    def _handle_dispatch(self, shard_id: int, dispatch: Dispatch) -> None:
        name = dispatch.name
        if name == "READY":
            self._on_ready(shard_id, dispatch)
            return
        data = dispatch.data
        session_id = self._session_ids.get(shard_id)
        token = _current.set(DispatchInfo(shard_id, session_id, dispatch.seq, name))
        try:
            event = self.cache.resolve(ev.parse_dispatch(name, data, shard_id=shard_id))
            self.cache.apply(event)
            # The guild's own event goes first: Ready follows the last GUILD_CREATE,
            # and request_members() returns after its chunks' handlers started.
            self._dispatcher.dispatch(event)
            tracker = self._trackers.get(shard_id)
            if tracker is not None and name in ("GUILD_CREATE", "GUILD_DELETE"):
                self._track_guild(shard_id, tracker, event)
            elif isinstance(event, ev.MembersChunk):
                if tracker is not None:
                    tracker.members_chunk(event.guild_id, time.monotonic())
                self._on_members_chunk(event)
            elif name == "RATE_LIMITED":
                self._on_rate_limited(data)
            elif name == "RESUMED":
                # The replay is in: what is still unanswered may have been lost with
                # the old connection before Discord read it.
                self._resend_member_requests(shard_id)
        finally:
            _current.reset(token)

    def _on_ready(self, shard_id: int, dispatch: Dispatch) -> None:
        try:
            ready = ev.ReadyData.from_payload(dispatch.data)
        except TetherError as exc:
            logger.error("shard %d: unusable READY: %s", shard_id, exc)
            return
        self.user = ready.user
        self._session_ids[shard_id] = ready.session_id
        # READY opens a new session: what it leads to belongs to that one.
        info = DispatchInfo(shard_id, ready.session_id, dispatch.seq, dispatch.name)
        self._ready_dispatch[shard_id] = info
        token = _current.set(info)
        try:
            for leave in self.cache.begin_session(
                ready, shard=self._shard_tuple(shard_id)
            ):
                self._dispatcher.dispatch(leave)
        finally:
            _current.reset(token)
        self._restart_member_requests(shard_id)
        if self._ready_event is not None and shard_id in self._ready_shards:
            self._ready_shards.discard(shard_id)
            self._ready_event.clear()
        tracker = ReadyTracker(
            quiet_period_s=self.ready_timeout_s, fetch_members=self.fetch_members
        )
        self._trackers[shard_id] = tracker
        tracker.ready(
            ready.guild_ids,
            time.monotonic(),
            guilds_intent=bool(self.intents & Intents.GUILDS),
        )
        self._check_ready(shard_id)

    def _restart_member_requests(self, shard_id: int) -> None:
        # A new session answers no request of the old one: the fetches for Ready
        # start over with the new guild stream, the user's requests are sent again.
        for task in self._fetches.pop(shard_id, set()):
            task.cancel()
        self._resend_member_requests(shard_id)

    def _resend_member_requests(self, shard_id: int) -> None:
        for request in self._member_requests.values():
            retry = request.retry
            if request.shard_id == shard_id and retry is not None and not retry.done():
                retry.set_result(0.0)

    def _track_guild(self, shard_id: int, tracker: ReadyTracker, event: Event) -> None:
        now = time.monotonic()
        if isinstance(event, ev.GuildCreate):
            guild_id = event.guild.id
            tracker.guild_arrived(guild_id, now)
            # Every GUILD_CREATE (after Ready too: a join, the end of an outage)
            # replaces the guild's member list with the part Discord sent.
            if self.fetch_members:
                self._spawn_fetch(shard_id, guild_id)
        elif isinstance(event, ev.GuildUnavailable | ev.GuildLeave):
            unavailable = isinstance(event, ev.GuildUnavailable)
            tracker.guild_deleted(event.guild_id, now, unavailable=unavailable)
        self._check_ready(shard_id)

    async def _fetch_members(self, shard_id: int, guild_id: int) -> None:
        try:
            await self.request_members(guild_id)
        except (TetherError, TimeoutError) as exc:
            logger.warning("could not fetch the members of guild %d: %s", guild_id, exc)
            return
        tracker = self._trackers.get(shard_id)
        if tracker is not None:
            tracker.members_complete(guild_id, time.monotonic())
            self._check_ready(shard_id)

    def _spawn_fetch(self, shard_id: int, guild_id: int) -> None:
        task = asyncio.get_running_loop().create_task(
            self._fetch_members(shard_id, guild_id)
        )
        tasks = self._fetches.setdefault(shard_id, set())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def _check_ready(self, shard_id: int) -> None:
        tracker = self._trackers.get(shard_id)
        if tracker is None:
            return
        now = time.monotonic()
        tracker.tick(now)
        timer = self._ready_timers.pop(shard_id, None)
        if timer is not None:
            timer.cancel()
        outcome = tracker.pop_ready()
        if outcome is not None:
            self._fire_ready(shard_id, outcome)
            return
        deadline = tracker.next_deadline()
        if deadline is not None and self._user_loop is not None:
            self._ready_timers[shard_id] = self._user_loop.call_later(
                max(0.0, deadline - now), self._check_ready, shard_id
            )

    def _fire_ready(self, shard_id: int, outcome: ReadyOutcome) -> None:
        if outcome.missing_guild_ids:
            logger.warning(
                "Ready on shard %d with %d guild(s) still unavailable",
                shard_id,
                len(outcome.missing_guild_ids),
            )
        user = self.user
        assert user is not None
        guilds = tuple(
            guild
            for guild_id in outcome.guild_ids
            if (guild := self.cache.guild(guild_id)) is not None
        )
        self._ready_shards.add(shard_id)
        token = _current.set(self._ready_dispatch.get(shard_id))
        try:
            self._dispatcher.dispatch(
                ev.Ready(
                    user=user,
                    guilds=guilds,
                    missing_guild_ids=outcome.missing_guild_ids,
                    session_id=self._session_ids.get(shard_id) or "",
                    members_incomplete_guild_ids=outcome.members_incomplete_guild_ids,
                    shard_id=shard_id,
                )
            )
        finally:
            _current.reset(token)
        if self._ready_event is not None and self._ready_shards.issuperset(
            self.shard_ids
        ):
            self._ready_event.set()

    def _on_members_chunk(self, chunk: ev.MembersChunk) -> None:
        nonce = chunk.nonce
        request = self._member_requests.get(nonce) if nonce is not None else None
        if request is None or request.future.done():
            return
        # A request sent twice (after a resume) may be answered twice.
        if chunk.chunk_index in request.chunks_seen:
            return
        request.members.extend(chunk.members)
        request.chunks_seen.add(chunk.chunk_index)
        request.chunk_count = chunk.chunk_count
        if len(request.chunks_seen) >= request.chunk_count:
            request.future.set_result(request.members)

    def _on_rate_limited(self, data: Any) -> None:
        # Discord refused a gateway command (so far only op 8) for a while.
        if (
            not isinstance(data, dict)
            or data.get("opcode") != Opcode.REQUEST_GUILD_MEMBERS
        ):
            return
        meta = data.get("meta")
        nonce = meta.get("nonce") if isinstance(meta, dict) else None
        request = self._member_requests.get(nonce) if isinstance(nonce, str) else None
        retry_after = data.get("retry_after")
        if request is None or request.retry is None or request.retry.done():
            return
        if not isinstance(retry_after, int | float) or retry_after < 0:
            retry_after = 1.0
        request.retry.set_result(float(retry_after))


def _log_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and (error := future.exception()) is not None:
        logger.error("could not start the client", exc_info=error)


@dataclass(frozen=True, slots=True)
class _StateChange:
    state: ManagerState


@dataclass(frozen=True, slots=True)
class _Closed:
    fatal: FatalError | None
