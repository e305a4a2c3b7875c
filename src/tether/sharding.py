"""ShardedClient: one client, many shards, Discord's identify rules kept exactly.

How it works
------------
A :class:`ShardedClient` is a :class:`~tether.client.Client` that runs several
shards: one :class:`~tether.gateway.protocol.GatewayProtocol`, gateway driver and
:class:`~tether.manager.ConnectionManager` per shard, all on the client's I/O
loop, all feeding the one cache and the one set of handlers. Every event carries
its ``shard_id``; a guild's shard is ``(guild_id >> 22) % shard_count``.

Starting (on the I/O loop, before any shard connects):

1. The session store is read. Sessions saved by an earlier stop are restored
   into their shards' protocols, which then RESUME instead of identifying.
2. The shard count is the one given, else the count of the stored sessions,
   else the ``shards`` of ``GET /gateway/bot``.
3. Every shard's manager starts. Shards that must IDENTIFY take a turn from the
   identify queue: one IDENTIFY per bucket (``shard_id % max_concurrency``) per
   5 s, and, at start, in ascending shard order within each bucket. A shard
   waiting for its turn keeps heartbeating and holds nothing another shard
   needs.

Faults stay inside their shard: each manager reconnects and resumes on its own.
A shard that fails fatally (4011, the daily session start limit used up) stops
alone, and its error is kept on :meth:`ShardedClient.shard` and raised as
:class:`~tether.manager.Disconnected`.

Stopping closes every connection with a resumable code (4000, not 1000) and saves
each shard's session in the store, unless ``stop(keep_sessions=False)``.

Re-sharding and rolling restarts stop shards, let every event of theirs reach the
user's loop, reset their Ready state, and start new shards. The cache keeps the
guilds it holds across the new READYs; GUILD_CREATE refreshes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, Final

from tether._event import Event
from tether._ready import ReadyOutcome
from tether._secret import Token
from tether.cache import Cache, CacheConfig
from tether.client import Client, _Closed, _StateChange
from tether.drivers.gateway import GatewayDriver
from tether.errors import (
    ClientStateError,
    FatalError,
    HTTPError,
    InvalidTokenError,
    ShardingRequiredError,
    TetherError,
    UnauthorizedError,
)
from tether.events import GuildLeave, GuildUnavailable, ReadyData
from tether.gateway.protocol import (
    Dispatch,
    GatewayProtocol,
)
from tether.identify import (
    IDENTIFY_WINDOW_S,
    IdentifyQueue,
    LimitedIdentifyQueue,
    LocalIdentifyQueue,
    SessionStartLimitError,
    identify_bucket,
)
from tether.manager import (
    RESUMABLE_CLOSE_CODE,
    STOP_CLOSE_CODE,
    Attempt,
    Backoff,
    Connected,
    Disconnected,
    ManagerState,
    Retry,
)
from tether.models import User, shard_for
from tether.rest import RESTClient
from tether.rest.gateway import GatewayBot
from tether.sessions import MemorySessionStore, SessionStore, StoredSession

__all__ = ["ShardInfo", "ShardedClient"]

logger = logging.getLogger(__name__)

#: How long an answer of ``GET /gateway/bot`` is reused by shards that connect.
GATEWAY_BOT_TTL_S: Final = 30.0
#: How long a stop waits for the shards' closing to be reported.
CLOSE_NOTICE_S: Final = 10.0
#: The longest a starting shard waits for the shard before it in its identify
#: bucket to take its turn (a shard that cannot connect must not hold the rest).
START_ORDER_WAIT_S: Final = 2 * IDENTIFY_WINDOW_S


@dataclass(frozen=True, slots=True)
class ShardInfo:
    """One shard as the user's loop sees it (:meth:`ShardedClient.shard`).

    Attributes:
        shard_id: the shard.
        shard_count: the shard count it runs under.
        state: its connection state.
        latency: its last heartbeat round trip in seconds, if measured.
        is_ready: whether its session is ready (Ready raised, or resumed).
        session_id: its session, once READY or a restored session named it.
        fatal_error: the error that stopped it, if one did.
    """

    shard_id: int
    shard_count: int
    state: ManagerState
    latency: float | None
    is_ready: bool
    session_id: str | None
    fatal_error: FatalError | None


# Items the I/O side posts to the user's loop, besides the Client's own.


@dataclass(frozen=True, slots=True)
class _Barrier:
    """Resolves once every item posted before it has been handled."""

    future: asyncio.Future[None]


@dataclass(frozen=True, slots=True)
class _Restored:
    """The shard resumes a kept session: no READY, so no Ready, will follow."""

    session_id: str


class _ShardCache(Cache):
    """The cache, able to keep its guilds across a new session of a shard.

    A new session normally starts the shard's guilds afresh. When shards are
    restarted on purpose (re-sharding, rolling restarts), the guilds the new
    READY lists keep their entries until their GUILD_CREATE replaces them.
    """

    def __init__(self, config: CacheConfig) -> None:
        super().__init__(config)
        # Shards whose next READY keeps the cached guilds.
        self._keep: set[int] = set()

    def keep_guilds(self, shard_ids: Iterable[int]) -> None:
        self._keep.update(shard_ids)

    def begin_session(
        self, ready: ReadyData, *, shard: tuple[int, int] | None = None
    ) -> list[GuildLeave]:
        shard_id, shard_count = shard or ready.shard or (0, 1)
        if shard_id not in self._keep:
            return super().begin_session(ready, shard=shard)
        self._keep.discard(shard_id)

        listed = set(ready.guild_ids)
        gone: list[GuildLeave] = []
        for guild in self.guilds():
            if guild.id in listed or shard_for(guild.id, shard_count) != shard_id:
                continue
            leave = GuildLeave(guild_id=guild.id, guild=guild, shard_id=shard_id)
            self.apply(leave)
            gone.append(leave)
        for guild_id in ready.guild_ids:
            if self.guild(guild_id) is None:
                self.apply(GuildUnavailable(guild_id=guild_id, shard_id=shard_id))
        return gone

    def forget_guilds_outside(self, shard_ids: Collection[int], count: int) -> int:
        """Drop the guilds of shards this process does not run; return how many."""
        moved = [g for g in self.guilds() if shard_for(g.id, count) not in shard_ids]
        for guild in moved:
            self.apply(GuildLeave(guild_id=guild.id, guild=guild))
        return len(moved)


class _ShardDriver(GatewayDriver):
    """The gateway driver of one shard of a :class:`ShardedClient`.

    Adds the shard count to use to a 4011.
    """

    def __init__(
        self,
        protocol: GatewayProtocol,
        *,
        recommend_shards: Callable[[], Awaitable[int]],
        **options: Any,
    ) -> None:
        super().__init__(protocol, **options)
        self._recommend_shards = recommend_shards

    async def run(self, attempt: Attempt) -> Retry | None:
        try:
            return await super().run(attempt)
        except ShardingRequiredError as exc:
            if exc.recommended_shards is not None:
                raise
            raise await self._with_recommendation(exc) from exc

    async def _with_recommendation(
        self, exc: ShardingRequiredError
    ) -> ShardingRequiredError:
        try:
            shards = await self._recommend_shards()
        except (HTTPError, OSError, TimeoutError) as fetch_exc:
            logger.warning(
                "shard %d: could not ask GET /gateway/bot for a shard count: %s",
                self.shard_id,
                fetch_exc,
            )
            return exc
        return ShardingRequiredError(exc.code, exc.reason, recommended_shards=shards)


class _ShardTurns:
    """The identify queue as one shard sees it: start order first, then the
    queue's turn. A refusal releases the start order and ends the attempt (the
    driver ends an attempt whose turn raised)."""

    def __init__(
        self,
        queue: IdentifyQueue,
        *,
        wait_for_order: Callable[[int], Awaitable[None]],
        took_turn: Callable[[int], None],
        refused: Callable[[int, SessionStartLimitError], None],
    ) -> None:
        self._queue = queue
        self._wait_for_order = wait_for_order
        self._took_turn = took_turn
        self._refused = refused

    @contextlib.asynccontextmanager
    async def turn(self, shard_id: int) -> AsyncIterator[None]:
        await self._wait_for_order(shard_id)
        async with contextlib.AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(self._queue.turn(shard_id))
            except SessionStartLimitError as exc:
                self._refused(shard_id, exc)
                raise
            self._took_turn(shard_id)
            yield


class ShardedClient(Client):
    """A client that runs many shards of one bot, in one process.

    Same events, cache, handlers and REST as :class:`~tether.client.Client`; every
    event carries its ``shard_id``.

    Args:
        token: the bot token (kept out of every log, repr and error).
        shard_count: the total shard count; ``None`` takes the count of the
            stored sessions, else the one ``GET /gateway/bot`` recommends.
        shard_ids: the shards this process runs, for a bot split across
            processes (needs ``shard_count``); all of them by default.
        session_store: where sessions are kept between a stop and the next start
            (:class:`~tether.sessions.MemorySessionStore` by default; a
            :class:`~tether.sessions.JSONFileSessionStore` outlives the process).
        identify_queue: the identify queue; share one between clients of one
            bot. A :class:`~tether.identify.LocalIdentifyQueue` by default.
        **options: any other keyword argument of :class:`~tether.client.Client`
            (``intents``, ``api_url``, ``compress``, ``cache``, ...), except
            ``shard``.

    Raises:
        ValueError: ``shard_ids`` without ``shard_count``, or ids out of range.
    """

    def __init__(
        self,
        token: str | Token,
        *,
        shard_count: int | None = None,
        shard_ids: Iterable[int] | None = None,
        session_store: SessionStore | None = None,
        identify_queue: IdentifyQueue | None = None,
        **options: Any,
    ) -> None:
        if "shard" in options:
            raise TypeError("ShardedClient takes shard_count and shard_ids, not shard")
        wanted = _check_shards(shard_count, shard_ids)
        super().__init__(
            token, identify_queue=identify_queue or LocalIdentifyQueue(), **options
        )
        self._shard_cache = _ShardCache(self.cache.config)
        self.cache = self._shard_cache
        #: Where sessions are kept between a stop and the next start.
        self.session_store: SessionStore = session_store or MemorySessionStore()

        # Shared by both loops; written on the I/O loop.
        self._total_shards = shard_count
        self._chosen_ids = wanted
        self._running_ids: list[int] = list(wanted) if wanted is not None else []
        self._identify_concurrency = 1

        # The I/O side.
        self._io_start_task: asyncio.Task[None] | None = None
        self._io_watching = False
        self._io_generation = 0
        self._io_closed: asyncio.Event | None = None
        self._io_stopping = False
        self._keep_on_stop = True
        self._bot_info: GatewayBot | None = None
        self._bot_info_at = 0.0
        self._bot_fetch: asyncio.Task[GatewayBot] | None = None
        self._to_restore: dict[int, StoredSession] = {}
        # Start order: set once a shard took its first identify turn (or no
        # longer needs one), for the shard after it in its bucket.
        self._start_order: dict[int, asyncio.Event] = {}
        # Shard changes in progress (re-sharding, restarts), and their end.
        self._changes_running = 0
        self._changes_settled: asyncio.Event | None = None

        # The user's side.
        self._resuming: set[int] = set()
        self._shard_errors: dict[int, FatalError] = {}
        self._shards_progress: asyncio.Event | None = None
        self._topology_lock: asyncio.Lock | None = None
        self._user_fetch: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        count = self._total_shards if self._total_shards is not None else "?"
        running = len(self._running_ids)
        return f"<ShardedClient state={self.state.value} shards={running}/{count}>"

    async def __aenter__(self) -> ShardedClient:
        """``async with ShardedClient(...) as client:`` starts it, and closes it."""
        self.start()
        return self

    # Shards

    @property
    def shard_ids(self) -> list[int]:
        """The shard ids this client runs (empty until the count is known)."""
        return list(self._running_ids)

    @property
    def shard_count(self) -> int | None:
        """The total shard count, or None until it is known (after start)."""
        return self._total_shards

    def shard_for_guild(self, guild_id: int) -> int:
        """Return the shard that receives a guild's events.

        Raises:
            ClientStateError: the shard count is not known yet.
        """
        if self._total_shards is None:
            raise ClientStateError("the shard count is not known before start()")
        return shard_for(guild_id, self._total_shards)

    def shard(self, shard_id: int) -> ShardInfo:
        """Return what is known of one shard (on the user's loop).

        Raises:
            KeyError: this client does not run ``shard_id``.
        """
        if shard_id not in self._running_ids:
            raise KeyError(shard_id)
        running = self._shards.get(shard_id)
        return ShardInfo(
            shard_id=shard_id,
            shard_count=self._total_shards or 0,
            state=self._states.get(shard_id, ManagerState.DISCONNECTED),
            latency=running.driver.latency if running is not None else None,
            is_ready=shard_id in self._ready_shards,
            session_id=self._session_ids.get(shard_id),
            fatal_error=self._shard_errors.get(shard_id),
        )

    @property
    def shards(self) -> dict[int, ShardInfo]:
        """Every shard of this client, by id (see :meth:`shard`)."""
        return {shard_id: self.shard(shard_id) for shard_id in self._running_ids}

    def _shard_tuple(self, shard_id: int) -> tuple[int, int] | None:
        assert self._total_shards is not None
        return (shard_id, self._total_shards)

    def _shard_of_guild(self, guild_id: int) -> int:
        shard_id = self.shard_for_guild(guild_id)
        if shard_id not in self._running_ids:
            raise ClientStateError(
                f"guild {guild_id} is on shard {shard_id}, which this process "
                "does not run"
            )
        return shard_id

    # Lifecycle

    def stop(self, *, keep_sessions: bool = True) -> asyncio.Future[None]:
        """Ask for every shard to stop; returns at once.

        Args:
            keep_sessions: close with a resumable code and save every shard's
                session in the store, so that the next start resumes them (the
                default); ``False`` ends the sessions (close code 1000).

        Await the returned future to wait until everything is closed and saved.
        """
        self._keep_on_stop = keep_sessions
        return super().stop()

    async def reshard(
        self, shard_count: int | None = None, *, shard_ids: Iterable[int] | None = None
    ) -> None:
        """Restart every shard onto a new shard count.

        The old sessions end; the new shards identify through the identify queue.
        Guilds that stay with this process keep their cache entries throughout;
        guilds that moved to shards of other processes are dropped from the cache.
        Returns when every new shard is ready. A client that stopped because its
        shards failed (every one closed with 4011, say) is started again on the
        new count. A call that asks for the shards already running, all healthy,
        does nothing (so that every shard's 4011 handler may call it).

        Args:
            shard_count: the new count; ``None`` takes the one ``GET /gateway/bot``
                recommends.
            shard_ids: the shards this process runs afterwards; needed when it
                was given a subset, all of them otherwise.

        Raises:
            ClientStateError: the client was never started or was stopped by
                ``stop()``, or it stopped meanwhile.
            FatalError: a new shard failed fatally (for example 4011 again).
            ValueError: shard ids out of range.
        """
        if not self._running and self.fatal_error is None:
            raise ClientStateError("start() the client first")
        async with self._topology_guard():
            if shard_count is None:
                shard_count = (await self.rest.get_gateway_bot()).shards
            if shard_ids is None and self._chosen_ids is not None:
                raise ValueError(
                    "this client runs a subset of the shards: name the new shard_ids"
                )
            wanted = _check_shards(shard_count, shard_ids)
            new_ids = wanted if wanted is not None else list(range(shard_count))
            if (
                self._running
                and shard_count == self._total_shards
                and new_ids == self._running_ids
                and not any(self._shard_errors.get(i) for i in new_ids)
            ):
                logger.info("already running shards %s of %d", new_ids, shard_count)
                return
            logger.info(
                "re-sharding from %s to %d shards (%d here)",
                self._total_shards,
                shard_count,
                len(new_ids),
            )
            self._chosen_ids = wanted
            await self._replace_shards(
                self.shard_ids, new_ids, shard_count, start_if_closed=True
            )
            await self._wait_shards_ready(new_ids)
            moved = self._shard_cache.forget_guilds_outside(new_ids, shard_count)
            logger.info(
                "re-sharded onto %d shards; %d guilds moved away", shard_count, moved
            )

    async def rolling_restart(self) -> None:
        """Restart every shard with a new session, one identify group at a time.

        Shards ``0..max_concurrency-1`` restart together (one per identify
        bucket), then the next group once those are ready, and so on: at most one
        group is down at any moment. New sessions pick up changed settings
        (``intents``, ``presence``, ...). The cache keeps its guilds.

        Raises:
            ClientStateError: the client is not running, or stopped meanwhile.
            FatalError: a restarted shard failed fatally.
        """
        self._check_running()
        async with self._topology_guard():
            groups: dict[int, list[int]] = {}
            for shard_id in self.shard_ids:
                groups.setdefault(shard_id // self._identify_concurrency, []).append(
                    shard_id
                )
            for group_no, group in sorted(groups.items()):
                logger.info("rolling restart: group %d, shards %s", group_no, group)
                await self._replace_shards(group, group, None)
                await self._wait_shards_ready(group)

    def _check_running(self) -> None:
        if not self._running or not self._running_ids:
            raise ClientStateError("start() the client and let its shards start first")

    def _topology_guard(self) -> asyncio.Lock:
        if self._topology_lock is None:
            self._topology_lock = asyncio.Lock()
        return self._topology_lock

    async def _replace_shards(
        self,
        old_ids: list[int],
        new_ids: list[int],
        shard_count: int | None,
        *,
        start_if_closed: bool = False,
    ) -> None:
        """Stop ``old_ids``, reset their state here, start ``new_ids``."""
        live = await self._io.submit(self._stop_shards_on_io(old_ids))
        try:
            await self._drain_inbox()
            self._forget_shards(old_ids)
            self._shard_cache.keep_guilds(new_ids)
        finally:
            if live:
                await self._io.submit(self._start_shards_on_io(new_ids, shard_count))
        if live:
            return
        if not start_if_closed:
            raise ClientStateError("the client stopped")
        # Every shard had stopped, so the client had closed: start it afresh.
        if shard_count is not None:
            self._total_shards = shard_count
        self._running_ids = list(new_ids)
        self.start()

    async def _drain_inbox(self) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._post(-1, _Barrier(future))
        await future

    def _forget_shards(self, shard_ids: Iterable[int]) -> None:
        shard_ids = list(shard_ids)
        if any(self._shard_errors.get(i) is self._fatal_error for i in shard_ids):
            # The shard that failed is gone; the client did not stop for it.
            self._fatal_error = None
        for shard_id in shard_ids:
            self._trackers.pop(shard_id, None)
            timer = self._ready_timers.pop(shard_id, None)
            if timer is not None:
                timer.cancel()
            self._ready_shards.discard(shard_id)
            self._states.pop(shard_id, None)
            self._session_ids.pop(shard_id, None)
            self._ready_dispatch.pop(shard_id, None)
            self._shard_errors.pop(shard_id, None)
            self._resuming.discard(shard_id)
        if self._ready_event is not None:
            self._ready_event.clear()

    async def _wait_shards_ready(self, shard_ids: Collection[int]) -> None:
        if self._shards_progress is None:
            self._shards_progress = asyncio.Event()
        progress = self._shards_progress
        while True:
            progress.clear()
            for shard_id in shard_ids:
                error = self._shard_errors.get(shard_id)
                if error is not None:
                    raise error
            if self._ready_shards.issuperset(shard_ids):
                return
            if not self._running:
                raise ClientStateError(
                    "the client stopped before the shards were ready"
                )
            await progress.wait()

    def _note_progress(self) -> None:
        if self._shards_progress is not None:
            self._shards_progress.set()

    # The I/O side: starting

    def _start_on_io(self) -> None:
        self._io_stopping = False
        loop = asyncio.get_running_loop()
        self._io_start_task = loop.create_task(
            self._start_shards(), name="tether:sharded-start"
        )

    async def _start_shards(self) -> None:
        try:
            await self._prepare_start()
        except FatalError as exc:
            logger.error("cannot start: %s", exc)
            self._post(-1, _Closed(exc))
            return
        self._new_start_order(self._running_ids)
        for shard_id, shard in self._shards.items():
            # Shards kept from an earlier start resume their sessions too.
            if shard.protocol.session_id is not None:
                self._post(shard_id, _Restored(shard.protocol.session_id))
        self._io_generation += 1
        self._io_watching = True
        self._io_closed = asyncio.Event()
        super()._start_on_io()
        self._to_restore.clear()

    async def _prepare_start(self) -> None:
        """Read the store, settle the shard count and ids, restore sessions."""
        try:
            stored = await self.session_store.load(self._chosen_ids)
        except (OSError, ValueError) as exc:
            logger.warning("cannot read the session store (%s); identifying", exc)
            stored = {}

        if self._total_shards is None:
            counts = {session.shard_count for session in stored.values()}
            if len(counts) == 1 and self._chosen_ids is None:
                self._total_shards = counts.pop()
                logger.info("%d shards, as the stored sessions", self._total_shards)
            else:
                self._total_shards = (await self._gateway_bot_at_start()).shards
                logger.info(
                    "%d shards, as GET /gateway/bot recommends", self._total_shards
                )
        count = self._total_shards
        if self._chosen_ids is None:
            self._running_ids = list(range(count))

        ids = set(self._running_ids)
        self._to_restore = {
            shard_id: session
            for shard_id, session in stored.items()
            if shard_id in ids and session.shard_count == count
        }
        # A stored session is used once: resuming it again later would replay
        # events that were handled already.
        used = [shard_id for shard_id in stored if shard_id in ids]
        if used:
            try:
                await self.session_store.discard(used)
            except OSError as exc:
                logger.warning("cannot update the session store: %s", exc)

    async def _gateway_bot_at_start(self) -> GatewayBot:
        backoff = self._backoff_factory() if self._backoff_factory else Backoff()
        while True:
            try:
                return await self._gateway_bot()
            except UnauthorizedError as exc:
                raise InvalidTokenError.refused_by_rest() from exc
            except (TetherError, OSError, TimeoutError) as exc:
                delay = backoff.next_delay()
                logger.warning(
                    "GET /gateway/bot failed (%s); retrying in %.1f s", exc, delay
                )
                await asyncio.sleep(delay)

    def _make_protocol(self, shard_id: int) -> GatewayProtocol:
        protocol = super()._make_protocol(shard_id)
        stored = self._to_restore.pop(shard_id, None)
        if stored is not None:
            protocol.restore_session(stored.session_id, stored.seq, stored.resume_url)
            self._post(shard_id, _Restored(stored.session_id))
        return protocol

    def _make_driver(
        self,
        shard_id: int,
        protocol: GatewayProtocol,
        on_dispatch: Callable[[Dispatch], None],
    ) -> GatewayDriver:
        options = self._driver_options(shard_id, on_dispatch)
        options["identify_queue"] = _ShardTurns(
            self._identify_queue,
            wait_for_order=self._wait_for_order,
            took_turn=self._release_order,
            refused=self._refuse,
        )
        return _ShardDriver(
            protocol, recommend_shards=self._recommended_shards, **options
        )

    def _on_io_event(self, shard_id: int, event: Event) -> None:
        if isinstance(event, Connected) or (
            isinstance(event, Disconnected) and not event.will_reconnect
        ):
            self._release_order(shard_id)

    # The I/O side: GET /gateway/bot

    async def _gateway_bot(self, *, fresh: bool = False) -> GatewayBot:
        """One answer of GET /gateway/bot for every shard that connects now."""
        loop = asyncio.get_running_loop()
        info = self._bot_info
        if (
            info is not None
            and not fresh
            and loop.time() - self._bot_info_at < GATEWAY_BOT_TTL_S
        ):
            return info
        task = self._bot_fetch
        if task is None or task.done():
            task = self._bot_fetch = loop.create_task(self._fetch_gateway_bot())
        return await asyncio.shield(task)

    async def _fetch_gateway_bot(self) -> GatewayBot:
        if self._io_rest is None:
            self._io_rest = RESTClient(self._token, api_url=self.api_url)
        info = await self._io_rest.get_gateway_bot()
        self._bot_info = info
        self._bot_info_at = asyncio.get_running_loop().time()
        self._identify_concurrency = max(1, info.session_start_limit.max_concurrency)
        queue = self._identify_queue
        if isinstance(queue, LimitedIdentifyQueue):
            queue.update_limits(info.session_start_limit)
        return info

    async def _fetch_gateway_url(self) -> str:
        return (await self._gateway_bot()).url

    async def _recommended_shards(self) -> int:
        return (await self._gateway_bot(fresh=True)).shards

    # The I/O side: identify order and refusals

    def _new_start_order(self, shard_ids: Iterable[int]) -> None:
        self._start_order = {shard_id: asyncio.Event() for shard_id in shard_ids}

    def _release_order(self, shard_id: int) -> None:
        event = self._start_order.get(shard_id)
        if event is not None:
            event.set()

    async def _wait_for_order(self, shard_id: int) -> None:
        # Discord wants the shards of a bucket started in ascending order.
        bucket = identify_bucket(shard_id, self._identify_concurrency)
        before = [
            other
            for other in self._start_order
            if other < shard_id
            and identify_bucket(other, self._identify_concurrency) == bucket
        ]
        if not before:
            return
        event = self._start_order[max(before)]
        if event.is_set():
            return
        try:
            async with asyncio.timeout(START_ORDER_WAIT_S):
                await event.wait()
        except TimeoutError:
            logger.warning(
                "shard %d: shard %d has not identified yet; not waiting for it",
                shard_id,
                max(before),
            )
            event.set()

    def _refuse(self, shard_id: int, error: SessionStartLimitError) -> None:
        self._release_order(shard_id)

    # The I/O side: changes, closing, stopping

    def _begin_change(self) -> None:
        if self._changes_settled is None:
            self._changes_settled = asyncio.Event()
        self._changes_running += 1
        self._changes_settled.clear()

    def _end_change(self) -> None:
        self._changes_running -= 1
        if self._changes_running == 0 and self._changes_settled is not None:
            self._changes_settled.set()

    async def _stop_shards_on_io(self, shard_ids: list[int]) -> bool:
        """Stop and remove shards; return whether the client is still running."""
        live = self._io_watching and not self._io_stopping
        if live:
            # Until the new shards start, the watcher must not report a close.
            self._begin_change()
        shards = [self._shards.pop(i) for i in shard_ids if i in self._shards]
        if shards:
            await asyncio.gather(*(shard.manager.stop() for shard in shards))
        for shard in shards:
            await shard.driver.aclose()
        return live

    async def _start_shards_on_io(
        self, shard_ids: list[int], shard_count: int | None
    ) -> None:
        try:
            if shard_count is not None:
                self._total_shards = shard_count
                self._running_ids = list(shard_ids)
                self._new_start_order(shard_ids)
            if self._io_stopping:
                return
            for shard_id in shard_ids:
                shard = self._shards[shard_id] = self._make_shard(shard_id)
                self._post(shard_id, _StateChange(ManagerState.CONNECTING))
                shard.manager.start()
        finally:
            self._end_change()

    async def _watch_closed(self) -> None:
        generation = self._io_generation
        closed = self._io_closed
        while True:
            managers = [shard.manager for shard in self._shards.values()]
            await asyncio.gather(*(m.wait_closed() for m in managers))
            if self._changes_running and self._changes_settled is not None:
                await self._changes_settled.wait()
                continue
            if any(shard.manager.is_running for shard in self._shards.values()):
                continue
            break
        if generation != self._io_generation:
            # A later start has its own watcher.
            return
        ordered = [self._shards[i] for i in sorted(self._shards)]
        fatal = next(
            (s.manager.fatal_error for s in ordered if s.manager.fatal_error), None
        )
        for shard_id in self._shards:
            self._post(shard_id, _StateChange(ManagerState.DISCONNECTED))
        self._io_watching = False
        self._post(-1, _Closed(fatal))
        if closed is not None:
            closed.set()

    async def _stop_on_io(self) -> None:
        self._io_stopping = True
        task = self._io_start_task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not self._io_watching:
            # Stopped before any shard started: nothing else will say so.
            self._post(-1, _Closed(None))
            return
        keep = self._keep_on_stop
        # Discord ends a session closed with 1000; one to be resumed by the next
        # process closes with 4000.
        self._stop_close_code = RESUMABLE_CLOSE_CODE if keep else STOP_CLOSE_CODE
        await super()._stop_on_io()
        if keep:
            await self._save_sessions()
        # The watcher posts the close; it must reach the user's loop before the
        # stop does, or a start right after the stop would see it.
        closed = self._io_closed
        if closed is not None:
            try:
                async with asyncio.timeout(CLOSE_NOTICE_S):
                    await closed.wait()
            except TimeoutError:
                logger.warning("the shards did not report closing; stop goes on")

    async def _save_sessions(self) -> None:
        count = self._total_shards
        if count is None:
            return
        now = time.time()
        sessions = [
            StoredSession(
                shard_id=shard_id,
                shard_count=count,
                session_id=shard.protocol.session_id,
                seq=shard.protocol.seq,
                resume_url=shard.protocol.resume_url,
                saved_at=now,
            )
            for shard_id, shard in sorted(self._shards.items())
            if shard.protocol.session_id is not None
        ]
        try:
            await self.session_store.save(sessions)
        except OSError as exc:
            logger.error(
                "could not save %d sessions (%s); the next start identifies",
                len(sessions),
                exc,
            )
            return
        logger.info("saved %d sessions for the next start", len(sessions))

    # The user's side

    def _handle_item(self, entry: tuple[int, object]) -> None:
        shard_id, item = entry
        if isinstance(item, _Barrier):
            if not item.future.done():
                item.future.set_result(None)
            return
        if isinstance(item, _Restored):
            self._resuming.add(shard_id)
            self._session_ids[shard_id] = item.session_id
            return
        super()._handle_item(entry)

        if isinstance(item, Dispatch):
            if item.name == "READY":
                self._resuming.discard(shard_id)
            elif item.name == "RESUMED" and shard_id in self._resuming:
                self._resuming.discard(shard_id)
                self._resumed_ready(shard_id)
        elif isinstance(item, Connected):
            self._shard_errors.pop(shard_id, None)
        elif isinstance(item, Disconnected):
            if isinstance(item.error, FatalError) and not item.will_reconnect:
                self._shard_errors[shard_id] = item.error
            self._note_progress()
        elif isinstance(item, _Closed):
            self._note_progress()

    def _resumed_ready(self, shard_id: int) -> None:
        # A session kept from before is ready once resumed; Ready is raised only
        # for new sessions, so none is raised here.
        self._ready_shards.add(shard_id)
        if self._ready_event is not None and self._ready_shards.issuperset(
            self._running_ids
        ):
            self._ready_event.set()
        self._note_progress()
        if self.user is None and self._user_fetch is None:
            self._user_fetch = asyncio.get_running_loop().create_task(
                self._fetch_user()
            )

    async def _fetch_user(self) -> None:
        try:
            self.user = User.from_payload(await self.rest.get_current_user())
        except (HTTPError, OSError, TimeoutError, ValueError) as exc:
            logger.warning("could not fetch the bot's user: %s", exc)

    def _fire_ready(self, shard_id: int, outcome: ReadyOutcome) -> None:
        super()._fire_ready(shard_id, outcome)
        self._note_progress()


def _check_shards(
    shard_count: int | None, shard_ids: Iterable[int] | None
) -> list[int] | None:
    if shard_count is not None and shard_count < 1:
        raise ValueError(f"shard_count must be at least 1, not {shard_count}")
    if shard_ids is None:
        return None
    if shard_count is None:
        raise ValueError("shard_ids needs shard_count")
    wanted = sorted(set(shard_ids))
    if not wanted:
        raise ValueError("shard_ids must name at least one shard")
    bad = [shard_id for shard_id in wanted if not 0 <= shard_id < shard_count]
    if bad:
        raise ValueError(f"shard ids {bad} are not below shard_count {shard_count}")
    return wanted
