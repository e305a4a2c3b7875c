"""The :class:`Emulator`: a local Discord on 127.0.0.1 with faults on command.

It binds four listeners: REST (``api_url``), the gateway (``gateway_url``, what
GET /gateway/bot answers), a second gateway listener for RESUMEs (``resume_url``,
READY's resume_gateway_url) and a control endpoint for other processes
(``control_url``). Every port is ephemeral unless given.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import inspect
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from aiohttp import web

from tether._secret import Token
from tether.emulator._events import WorldEvents
from tether.emulator._listener import Listener
from tether.emulator.activity import ACTIVITY_KINDS, Activity
from tether.emulator.control import Control
from tether.emulator.gateway import Gateway, GatewaySettings
from tether.emulator.records import (
    ConnectionInfo,
    Counters,
    IdentifyRecord,
    RestRecord,
    SessionInfo,
)
from tether.emulator.rest import Rest, RestSettings
from tether.emulator.scenario import ACTIONS, Scenario, Step
from tether.emulator.world import World, WorldConfig
from tether.gateway.intents import PRIVILEGED_INTENTS
from tether.gateway.opcodes import CloseCode

__all__ = ["Emulator"]

logger = logging.getLogger(__name__)

#: Default size of :meth:`Emulator.send_oversized_frame` (just over 16 MiB).
OVERSIZED_FRAME_SIZE = 17 * 1024 * 1024
#: Default inflated size of :meth:`Emulator.send_decompression_bomb`.
BOMB_SIZE = 64 * 1024 * 1024


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _make_token(bot_id: int) -> str:
    head = base64.urlsafe_b64encode(str(bot_id).encode()).rstrip(b"=").decode()
    return f"{head}.{secrets.token_urlsafe(5)}.{secrets.token_urlsafe(28)}"


class Emulator:
    """A local Discord: REST, gateway, a synthetic world and scripted faults.

    Use it as ``async with Emulator(...) as emu:`` or call :meth:`start` and
    :meth:`stop`. Session-targeted faults take ``session`` (a session id) and/or
    ``shard``; with neither they hit every open connection. They return how many
    connections they hit.

    Args:
        world: the world to serve: a :class:`WorldConfig` (generated here), a
            ready :class:`World`, or ``None`` for the default config.
        token: the valid bot token; ``None`` generates one.
        heartbeat_interval_s: the HELLO heartbeat interval.
        shards: the shard count GET /gateway/bot recommends.
        max_concurrency: IDENTIFYs allowed per identify window and bucket.
        session_start_limit: IDENTIFYs allowed per 24 h.
        privileged_intents: privileged intents the application may use (others
            close with 4014); all three by default.
        guild_stream_delay_s: pause between GUILD_CREATEs after READY.
        host: the address REST and the gateway bind to.
        port: REST port (0: any free port).
        gateway_port: gateway port.
        resume_port: resume listener port.
        control_port: control endpoint port (always bound on 127.0.0.1).
        heartbeat_timeout_factor: no heartbeat for ``interval * factor`` closes
            the connection with 4000.
        identify_window_s: the identify concurrency window (5 s on Discord).
        send_limit: client payloads allowed per ``send_window_s`` (4008 above).
        send_window_s: the send window.
        replay_buffer_size: dispatches kept per session for RESUME.
        session_resume_timeout_s: how long a disconnected session stays resumable.
        fault_close_delay_s: after op 7 / op 9 the server closes the connection
            itself if the client has not after this long.
        max_guilds_per_shard: guilds per session above which IDENTIFY gets 4011.
        member_request_interval_s: one all-members request per guild per this.
        max_records: dispatch and frame records kept per session and connection
            (the latest ones); ``None`` keeps all, which long runs pay in memory.
        rest: REST rate-limit settings.
    """

    def __init__(
        self,
        world: WorldConfig | World | None = None,
        *,
        token: str | None = None,
        heartbeat_interval_s: float = 41.25,
        shards: int = 1,
        max_concurrency: int = 1,
        session_start_limit: int = 1000,
        privileged_intents: int = PRIVILEGED_INTENTS,
        guild_stream_delay_s: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        gateway_port: int = 0,
        resume_port: int = 0,
        control_port: int = 0,
        heartbeat_timeout_factor: float = 1.5,
        identify_window_s: float = 5.0,
        send_limit: int = 120,
        send_window_s: float = 60.0,
        replay_buffer_size: int = 10_000,
        session_resume_timeout_s: float = 180.0,
        fault_close_delay_s: float = 2.0,
        max_guilds_per_shard: int = 2500,
        member_request_interval_s: float = 30.0,
        max_records: int | None = None,
        rest: RestSettings | None = None,
    ) -> None:
        if shards < 1 or max_concurrency < 1:
            raise ValueError("shards and max_concurrency must be >= 1")
        if heartbeat_interval_s <= 0:
            raise ValueError("heartbeat_interval_s must be > 0")
        self._world = world if isinstance(world, World) else World(world)
        self._token = Token(
            token if token is not None else _make_token(self._world.bot.id)
        )
        #: The gateway settings in force.
        self.settings = GatewaySettings(
            heartbeat_interval_s=heartbeat_interval_s,
            heartbeat_timeout_factor=heartbeat_timeout_factor,
            recommended_shards=shards,
            max_concurrency=max_concurrency,
            identify_window_s=identify_window_s,
            session_start_limit=session_start_limit,
            privileged_intents=privileged_intents,
            guild_stream_delay_s=guild_stream_delay_s,
            send_limit=send_limit,
            send_window_s=send_window_s,
            replay_buffer_size=replay_buffer_size,
            session_resume_timeout_s=session_resume_timeout_s,
            fault_close_delay_s=fault_close_delay_s,
            max_guilds_per_shard=max_guilds_per_shard,
            member_request_interval_s=member_request_interval_s,
            max_records=max_records,
        )
        self._host = host
        self._ports = {"rest": port, "gateway": gateway_port, "resume": resume_port}
        self._control_port = control_port
        self._gateway = Gateway(self._world, self.settings, self._token)
        self._events = WorldEvents(self._world, self._gateway)
        self._rest = Rest(
            self._world,
            self._gateway,
            self._events,
            self._token,
            rest or RestSettings(),
        )
        self._control = Control(self)
        self._listeners: dict[str, Listener] = {}
        self._activity: Activity | None = None
        self._refuse_until: dict[str, float] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._urls = {"api": "", "gateway": "", "resume": "", "control": ""}

    def __repr__(self) -> str:
        state = "running" if self._started else "stopped"
        return f"<Emulator {state} api_url={self._urls['api']!r}>"

    # Lifecycle

    async def start(self) -> None:
        """Bind the listeners and start serving."""
        if self._started:
            raise RuntimeError("the emulator is already running")
        if self._listeners:
            raise RuntimeError("an emulator runs once; make a new one")
        gateway_app = web.Application()
        gateway_app.router.add_route(
            "GET", "/{tail:.*}", self._gateway_handler("gateway")
        )
        resume_app = web.Application()
        resume_app.router.add_route(
            "GET", "/{tail:.*}", self._gateway_handler("resume")
        )
        self._listeners = {
            "rest": Listener(self._rest.app(), "REST"),
            "gateway": Listener(gateway_app, "gateway"),
            "resume": Listener(resume_app, "resume gateway"),
            "control": Listener(self._control.app(), "control"),
        }
        try:
            for name, listener in self._listeners.items():
                if name == "control":
                    await listener.start("127.0.0.1", self._control_port)
                else:
                    await listener.start(self._host, self._ports[name])
        except BaseException:
            for listener in self._listeners.values():
                await listener.stop()
            raise
        host = _url_host(self._host)
        self._urls = {
            "api": f"http://{host}:{self._listeners['rest'].port}/api/v10",
            "gateway": f"ws://{host}:{self._listeners['gateway'].port}/",
            "resume": f"ws://{host}:{self._listeners['resume'].port}/",
            "control": f"http://127.0.0.1:{self._listeners['control'].port}/",
        }
        self._rest.gateway_url = self._urls["gateway"]
        self._gateway.resume_url = self._urls["resume"]
        self._gateway.voice_endpoint = f"{host}:{self._listeners['gateway'].port}"
        self._started = True
        logger.info(
            "emulator serving %d guilds: REST %s, gateway %s",
            len(self._world.guilds),
            self._urls["api"],
            self._urls["gateway"],
        )

    def _gateway_handler(self, listener: str) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._gateway.handle(request, listener)

        return handler

    async def stop(self) -> None:
        """Stop serving: drop every connection and close the listeners."""
        if not self._started:
            return
        self._started = False
        await self.stop_activity()
        for task in list(self._tasks):
            task.cancel()
        self._rest.stop()
        await self._gateway.stop()
        for listener in self._listeners.values():
            await listener.stop()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=1.0)
        logger.info("emulator stopped")

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # Addresses and identity

    @property
    def is_running(self) -> bool:
        """Whether the emulator serves."""
        return self._started

    @property
    def api_url(self) -> str:
        """The REST base URL, ``http://127.0.0.1:<port>/api/v10``."""
        return self._urls["api"]

    @property
    def gateway_url(self) -> str:
        """The gateway URL GET /gateway and /gateway/bot return."""
        return self._urls["gateway"]

    @property
    def resume_url(self) -> str:
        """READY's resume_gateway_url: the second gateway listener."""
        return self._urls["resume"]

    @property
    def control_url(self) -> str:
        """The control endpoint for other processes (loopback only)."""
        return self._urls["control"]

    @property
    def token(self) -> str:
        """The valid bot token."""
        return self._token.reveal()

    @property
    def world(self) -> World:
        """The world: the truth that sessions are told about."""
        return self._world

    @property
    def events(self) -> WorldEvents:
        """World changes that dispatch (members, presences, reactions, typing...).

        Use it to change the world in ways the activity generator picks at
        random; the world and every session stay in step.
        """
        return self._events

    # Observability

    def sessions(self) -> list[SessionInfo]:
        """Every session ever started (the forgotten ones too), oldest first."""
        return self._gateway.sessions()

    def session(self, session_id: str) -> SessionInfo:
        """One session.

        Raises:
            KeyError: no session has this id.
        """
        info = self._gateway.session(session_id)
        if info is None:
            raise KeyError(session_id)
        return info

    def connections(self) -> list[ConnectionInfo]:
        """Every gateway connection ever accepted, oldest first."""
        return self._gateway.connections()

    @property
    def counters(self) -> Counters:
        """Totals since start."""
        gateway = self._gateway
        return Counters(
            identifies=gateway.identifies,
            resumes=gateway.resumes,
            heartbeats=gateway.heartbeats,
            dispatches=gateway.dispatches,
            connections=gateway.connection_count,
            invalid_sessions=gateway.invalid_sessions,
            rejected_identifies=gateway.rejected_identifies,
            frames_sent=gateway.frames_sent,
            frames_received=gateway.frames_received,
            rest_requests=len(self._rest.log),
        )

    @property
    def identify_log(self) -> list[IdentifyRecord]:
        """Every accepted IDENTIFY: (time, shard_id, shard_count, session_id)."""
        return list(self._gateway.identify_log)

    @property
    def rest_log(self) -> list[RestRecord]:
        """Every REST request answered."""
        return list(self._rest.log)

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        *,
        timeout_s: float = 10.0,
        interval_s: float = 0.01,
    ) -> None:
        """Wait until ``predicate()`` is true.

        Raises:
            TimeoutError: it was still false after ``timeout_s``.
        """
        async with asyncio.timeout(timeout_s):
            # The predicate reads state no event announces, so it is polled.
            while not predicate():  # noqa: ASYNC110
                await asyncio.sleep(interval_s)

    # Session faults

    def _targets(self, session: str | None, shard: int | None) -> list[Any]:
        return self._gateway.targets(session, shard)

    async def drop(
        self, session: str | None = None, *, shard: int | None = None
    ) -> int:
        """Drop the TCP connection with no close frame."""
        return self._gateway.faults.drop(self._targets(session, shard))

    async def go_silent(
        self, session: str | None = None, *, shard: int | None = None
    ) -> int:
        """Keep TCP open but send nothing and ignore every input."""
        return self._gateway.faults.go_silent(self._targets(session, shard))

    async def stop_acking(
        self, session: str | None = None, *, shard: int | None = None
    ) -> int:
        """Stop answering heartbeats on the current connections."""
        return self._gateway.faults.set_acking(self._targets(session, shard), False)

    async def resume_acking(
        self, session: str | None = None, *, shard: int | None = None
    ) -> int:
        """Answer heartbeats again."""
        return self._gateway.faults.set_acking(self._targets(session, shard), True)

    async def request_heartbeat(
        self, session: str | None = None, *, shard: int | None = None
    ) -> int:
        """Send op 1 (the client must heartbeat at once)."""
        return self._gateway.faults.request_heartbeat(self._targets(session, shard))

    async def reconnect(
        self, session: str | None = None, *, shard: int | None = None
    ) -> int:
        """Send op 7; close with 4000 after ``fault_close_delay_s`` if still open."""
        return self._gateway.faults.reconnect(self._targets(session, shard))

    async def invalidate_session(
        self,
        resumable: bool = False,
        session: str | None = None,
        *,
        shard: int | None = None,
    ) -> int:
        """Send op 9; ``resumable=False`` ends the session at once."""
        return self._gateway.faults.invalidate(self._targets(session, shard), resumable)

    async def close(
        self,
        code: int,
        session: str | None = None,
        *,
        shard: int | None = None,
        reason: str = "",
    ) -> int:
        """Close with ``code``; session-ending codes (4007, 4009, 1000...) end it."""
        text = reason or _close_reason(code)
        return self._gateway.faults.close(self._targets(session, shard), code, text)

    async def send_corrupt_frame(
        self, session: str | None = None, *, shard: int | None = None
    ) -> int:
        """Send a frame that does not decode (bad JSON, or bad compressed data)."""
        return self._gateway.faults.send_raw(self._targets(session, shard), "corrupt")

    async def send_truncated_frame(
        self, session: str | None = None, *, shard: int | None = None
    ) -> int:
        """Send the first half of a payload."""
        return self._gateway.faults.send_raw(self._targets(session, shard), "truncated")

    async def send_oversized_frame(
        self,
        size: int = OVERSIZED_FRAME_SIZE,
        session: str | None = None,
        *,
        shard: int | None = None,
    ) -> int:
        """Send a dispatch at least ``size`` bytes big on the wire, compressed or not.

        It carries ``size`` random bytes in base64, which no compression shrinks
        below ``size``. It takes a seq but RESUME does not replay it.
        """
        padding = base64.b64encode(secrets.token_bytes(size)).decode()
        return self._gateway.faults.send_padding(
            self._targets(session, shard), padding, "oversized"
        )

    async def send_decompression_bomb(
        self,
        session: str | None = None,
        *,
        size: int = BOMB_SIZE,
        shard: int | None = None,
    ) -> int:
        """Send a dispatch of ``size`` bytes of blanks: tiny once compressed.

        It takes a seq but RESUME does not replay it.
        """
        return self._gateway.faults.send_padding(
            self._targets(session, shard), " " * size, "bomb"
        )

    # Connection-level faults

    def refuse_connections(
        self, duration_s: float, listener: str | None = None
    ) -> None:
        """Refuse new gateway TCP connections for ``duration_s``.

        Connections already open carry on. Overlapping calls extend the refusal.

        Args:
            duration_s: how long.
            listener: ``"gateway"``, ``"resume"``, or ``None`` for both.
        """
        names = ("gateway", "resume") if listener is None else (listener,)
        if not set(names) <= {"gateway", "resume"}:
            raise ValueError(
                f"listener must be 'gateway' or 'resume', got {listener!r}"
            )
        logger.info("refusing %s connections for %.1fs", "/".join(names), duration_s)
        until = time.monotonic() + duration_s
        for name in names:
            self._refuse_until[name] = max(self._refuse_until.get(name, 0.0), until)
            self._listeners[name].pause()
        self._spawn(self._listen_again(names, duration_s), "tether-emulator-refuse")

    async def _listen_again(self, names: tuple[str, ...], delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        for name in names:
            if time.monotonic() >= self._refuse_until.get(name, 0.0):
                await self._listeners[name].unpause()
                logger.info("accepting %s connections again", name)

    def is_refusing(self, listener: str = "gateway") -> bool:
        """Whether ``listener`` (``"gateway"`` or ``"resume"``) refuses connections."""
        return self._started and not self._listeners[listener].is_listening

    def stall_upgrade(self, duration_s: float) -> None:
        """For ``duration_s``, accept TCP but never answer the websocket upgrade."""
        self._gateway.faults.stall_upgrades(duration_s)

    def close_before_hello(self, count: int = 1, code: int | None = 4000) -> None:
        """Close the next ``count`` connections before HELLO (``code=None``: drop)."""
        self._gateway.faults.close_before_hello(count, code)

    # Guild faults

    def _guild_id(self, guild_id: int | str | None, guild_index: int | None) -> int:
        if guild_id is not None:
            return int(guild_id)
        if guild_index is None:
            raise ValueError("give guild_id or guild_index")
        return list(self._world.guilds)[guild_index]

    def unavailable_at_ready(
        self,
        guild_ids: Iterable[int | str] = (),
        arrive_after_s: float | None = None,
        *,
        guild_indexes: Iterable[int] = (),
    ) -> None:
        """After each later READY, send these guilds late (``None``: never)."""
        ids = [int(g) for g in guild_ids] + [
            self._guild_id(None, index) for index in guild_indexes
        ]
        self._gateway.set_late_guilds(ids, arrive_after_s)

    def clear_unavailable_at_ready(self) -> None:
        """Stream every guild right after READY again."""
        self._gateway.clear_late_guilds()

    def deliver_late_guilds(
        self,
        guild_ids: Iterable[int | str] = (),
        *,
        guild_indexes: Iterable[int] = (),
    ) -> int:
        """Send guilds held back by :meth:`unavailable_at_ready` now.

        Every live session whose READY listed one and that has not had it gets its
        GUILD_CREATE, as Discord sends a guild that comes back. With no ids, every
        held-back guild is sent.

        Returns:
            How many GUILD_CREATEs were sent.
        """
        ids = [int(g) for g in guild_ids] + [
            self._guild_id(None, index) for index in guild_indexes
        ]
        return self._gateway.deliver_late_guilds(ids or None)

    async def guild_outage(
        self,
        guild_id: int | str | None = None,
        duration_s: float | None = None,
        *,
        guild_index: int | None = None,
    ) -> int:
        """GUILD_DELETE (unavailable) now, GUILD_CREATE after ``duration_s``.

        ``duration_s=None`` leaves the guild unavailable until :meth:`end_guild_outage`.

        Returns:
            How many sessions were told.
        """
        gid = self._guild_id(guild_id, guild_index)
        told = self._gateway.start_guild_outage(gid)
        if duration_s is not None:
            self._spawn(
                self._end_outage_later(gid, duration_s), "tether-emulator-outage"
            )
        return told

    async def _end_outage_later(self, guild_id: int, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        self._gateway.end_guild_outage(guild_id)

    async def end_guild_outage(
        self, guild_id: int | str | None = None, *, guild_index: int | None = None
    ) -> int:
        """End an outage now: GUILD_CREATE to the sessions that know the guild."""
        return self._gateway.end_guild_outage(self._guild_id(guild_id, guild_index))

    def stall_guild_stream(self, duration_s: float | None = None) -> None:
        """Hold every GUILD_CREATE stream (``None``: until resumed)."""
        self._gateway.stall_guild_stream(duration_s)

    def resume_guild_stream(self) -> None:
        """Let held guild streams go on."""
        self._gateway.resume_guild_stream()

    def set_guild_stream_delay(self, delay_s: float) -> None:
        """Change the pause between GUILD_CREATEs (streams in progress follow it)."""
        self.settings = dataclasses.replace(self.settings, guild_stream_delay_s=delay_s)
        self._gateway.settings = self.settings

    # REST faults

    def rest_fault(self, route: str, mode: str = "500", count: int = 1) -> None:
        """Make the next ``count`` requests on ``route`` fail.

        Args:
            route: a route name (``"gateway_bot"`` is accepted for
                ``get_gateway_bot``) or ``"METHOD /template"``.
            mode: ``"hang"`` (never answer), ``"500"``, ``"502"`` (HTML body),
                ``"503"`` or ``"504"``.
            count: how many requests.
        """
        self._rest.add_fault(_route_alias(route), mode, count)

    def rate_limit_next(
        self,
        route: str,
        retry_after_s: float,
        *,
        is_global: bool = False,
        count: int = 1,
    ) -> None:
        """Answer the next ``count`` requests on ``route`` with 429."""
        self._rest.force_rate_limit(
            _route_alias(route), retry_after_s, is_global=is_global, count=count
        )

    # Whole-emulator faults

    async def restart(self, downtime_s: float = 0.0) -> None:
        """Drop every connection and forget every session (RESUME gets op 9 false).

        Args:
            downtime_s: also refuse gateway connections for this long.
        """
        logger.info("restarting: every session is forgotten")
        if downtime_s > 0:
            self.refuse_connections(downtime_s)
        self._gateway.restart()
        self._rest.clear_faults()

    # Activity

    async def send_message(
        self,
        channel_id: int | str | None = None,
        content: str = "",
        author_id: int | str | None = None,
        *,
        guild_index: int | None = None,
        embeds: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Have a user post a message (MESSAGE_CREATE to every session that may see it).

        Args:
            channel_id: the channel; ``None`` picks the first text channel of the
                guild at ``guild_index`` (default the first guild).
            content: the text.
            author_id: the author; ``None`` picks a member who is not the bot.
            guild_index: see ``channel_id``.
            embeds: embed objects, in Discord's form.

        Returns:
            The message, in REST form.
        """
        if channel_id is None:
            guild = self._world.guilds[self._guild_id(None, guild_index or 0)]
            channel = int(guild.channel_ids_of_type(0)[0])
        else:
            channel = int(channel_id)
        if author_id is None:
            guild_id = self._world.guild_id_of_channel(channel)
            if guild_id is None:
                dm = self._world.channel(channel)
                if dm is None:
                    raise KeyError(f"no channel {channel}")
                author = int(dm["recipients"][0]["id"])
            else:
                humans = [
                    u
                    for u in self._world.guilds[guild_id].members
                    if u != self._world.bot.id
                ]
                author = humans[0] if humans else self._world.bot.id
        else:
            author = int(author_id)
        return self._events.message_create(channel, author, content, embeds=embeds)

    def start_activity(
        self,
        rate_per_s: float,
        kinds: Iterable[str] = ACTIVITY_KINDS,
        seed: int = 0,
    ) -> None:
        """Emit synthetic events at ``rate_per_s`` until :meth:`stop_activity`."""
        if self._activity is not None and self._activity.is_running:
            raise RuntimeError("activity is already running; stop it first")
        self._activity = Activity(self._events, kinds=kinds, seed=seed)
        self._activity.start(rate_per_s)

    async def stop_activity(self) -> None:
        """Stop synthetic events."""
        if self._activity is not None:
            await self._activity.stop()

    @property
    def activity_emitted(self) -> int:
        """Events the activity generator emitted (last run)."""
        return self._activity.emitted if self._activity is not None else 0

    async def simulate(self, kind: str, count: int = 1, seed: int = 0) -> int:
        """Emit ``count`` events of one activity kind at once.

        Returns:
            How many were emitted.
        """
        activity = Activity(self._events, kinds=(kind,), seed=seed)
        return sum(activity.step(kind) for _ in range(count))

    # Scenarios

    async def run_step(self, step: Step) -> Any:
        """Run one step's action now (its ``at_s`` is ignored)."""
        kwargs = {
            ("is_global" if k == "global" else k): v for k, v in step.args.items()
        }
        if step.action not in ACTIONS:
            raise ValueError(f"unknown action {step.action!r}")
        method = getattr(self, step.action)
        result = method(**kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def play(self, scenario: Scenario) -> None:
        """Run a scenario's steps at their times; return after the last one."""
        start = time.monotonic()
        logger.info(
            "playing scenario %r (%d steps)", scenario.name, len(scenario.steps)
        )
        for step in scenario.steps:
            delay = start + step.at_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            logger.info(
                "scenario step at %.2fs: %s %s", step.at_s, step.action, step.args
            )
            await self.run_step(step)

    def play_in_background(self, scenario: Scenario) -> asyncio.Task[None]:
        """Start :meth:`play` as a task (stopped with the emulator)."""
        return self._spawn(
            self.play(scenario), f"tether-emulator-scenario-{scenario.name}"
        )


def _route_alias(route: str) -> str:
    aliases = {"gateway_bot": "get_gateway_bot", "gateway": "get_gateway"}
    return aliases.get(route, route)


def _close_reason(code: int) -> str:
    try:
        return CloseCode(code).name.replace("_", " ").lower()
    except ValueError:
        return "closed by the emulator"
