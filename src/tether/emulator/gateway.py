"""The emulated gateway: websocket handler, session semantics and dispatch fan-out.

How it works. Each websocket upgrade becomes a :class:`~._session.Connection`;
HELLO goes out at once and a heartbeat deadline is armed. Every client payload is
handled synchronously by :meth:`Gateway._receive` (no awaits), so the order of
what is queued is the order of what happened. IDENTIFY creates a
:class:`~._session.Session`, READY is its seq 1, then a task streams its guilds.
World changes reach sessions through :meth:`Gateway.publish`, which assigns each
session's next seq, appends the dispatch to the replay buffer and queues it on the
attached connection, if any. A connection that closes abnormally leaves the
session resumable: dispatches keep buffering until RESUME replays them or the
session expires.

Close codes and their effect on the session follow PROTOCOL.md sections 1.10 and
2; the server keeps its own table (:data:`SESSION_ENDING_CLOSES`) rather than the
client's policy, so the two can disagree and a test can notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiohttp import WSMsgType, web

from tether._secret import Token
from tether.emulator._commands import CloseConnection, Commands
from tether.emulator._compress import COMPRESSIONS, make_compressor
from tether.emulator._faults import ConnectionFaults
from tether.emulator._session import Connection, Session
from tether.emulator.records import (
    ConnectionInfo,
    FrameRecord,
    IdentifyRecord,
    SessionInfo,
    SessionState,
)
from tether.emulator.world import World, shard_for
from tether.gateway.intents import ALL_INTENTS, PRIVILEGED_INTENTS, Intents
from tether.gateway.opcodes import CloseCode, Opcode

__all__ = ["SESSION_ENDING_CLOSES", "Gateway", "GatewaySettings"]

logger = logging.getLogger(__name__)

#: Close codes after which the server forgets the session, whoever sends them.
SESSION_ENDING_CLOSES: Final[frozenset[int]] = frozenset(
    {
        CloseCode.NORMAL_CLOSURE,
        CloseCode.GOING_AWAY,
        CloseCode.NOT_AUTHENTICATED,
        CloseCode.AUTHENTICATION_FAILED,
        CloseCode.INVALID_SEQ,
        CloseCode.SESSION_TIMED_OUT,
        CloseCode.INVALID_SHARD,
        CloseCode.SHARDING_REQUIRED,
        CloseCode.INVALID_API_VERSION,
        CloseCode.INVALID_INTENTS,
        CloseCode.DISALLOWED_INTENTS,
    }
)

#: API versions the gateway serves.
API_VERSIONS: Final[frozenset[str]] = frozenset({"9", "10"})

#: Opcodes a client may send (anything else closes with 4001).
_CLIENT_OPCODES: Final[frozenset[int]] = frozenset(
    {
        Opcode.HEARTBEAT,
        Opcode.IDENTIFY,
        Opcode.PRESENCE_UPDATE,
        Opcode.VOICE_STATE_UPDATE,
        Opcode.RESUME,
        Opcode.REQUEST_GUILD_MEMBERS,
        Opcode.REQUEST_SOUNDBOARD_SOUNDS,
        Opcode.REQUEST_CHANNEL_INFO,
    }
)

_TRACE: Final[list[str]] = ['["tether-emulator",{"micros":0}]']
# Application flags: presence, members and message content "limited" (under 100
# guilds), the form unverified bots get.
_INTENT_FLAGS: Final[dict[int, int]] = {
    Intents.GUILD_PRESENCES: 1 << 13,
    Intents.GUILD_MEMBERS: 1 << 15,
    Intents.MESSAGE_CONTENT: 1 << 19,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewaySettings:
    """Gateway behaviour knobs; :class:`~tether.emulator.Emulator` fills them in.

    Attributes:
        heartbeat_interval_s: the HELLO heartbeat interval.
        heartbeat_timeout_factor: a connection with no heartbeat for
            ``interval * factor`` seconds is closed with 4000.
        recommended_shards: the ``shards`` of GET /gateway/bot.
        max_concurrency: IDENTIFYs allowed per identify window, one per bucket
            ``shard_id % max_concurrency``.
        identify_window_s: the identify window (5 s on Discord).
        session_start_limit: IDENTIFYs allowed per ``session_start_reset_s``.
        session_start_reset_s: the session start window (24 h on Discord).
        privileged_intents: privileged intents the application may use.
        guild_stream_delay_s: pause between GUILD_CREATEs after READY.
        send_limit: client payloads allowed in any ``send_window_s`` (sliding).
        send_window_s: the send window.
        max_payload_size: the largest client payload, in bytes.
        replay_buffer_size: dispatches kept per session for RESUME.
        session_resume_timeout_s: how long a disconnected session stays resumable.
        fault_close_delay_s: after op 7 / op 9, the server closes the connection
            itself if the client has not after this long.
        max_guilds_per_shard: above this, IDENTIFY closes with 4011.
        close_timeout_s: how long a server close waits for the client's answer.
        outbox_limit: frames queued for one connection before it is dropped.
        member_request_interval_s: one all-members request per guild per this.
        max_records: dispatch and frame records kept per session and connection
            for observability (the latest ones); ``None`` keeps all.
    """

    heartbeat_interval_s: float = 41.25
    heartbeat_timeout_factor: float = 1.5
    recommended_shards: int = 1
    max_concurrency: int = 1
    identify_window_s: float = 5.0
    session_start_limit: int = 1000
    session_start_reset_s: float = 86_400.0
    privileged_intents: int = PRIVILEGED_INTENTS
    guild_stream_delay_s: float = 0.0
    send_limit: int = 120
    send_window_s: float = 60.0
    max_payload_size: int = 4096
    replay_buffer_size: int = 10_000
    session_resume_timeout_s: float = 180.0
    fault_close_delay_s: float = 2.0
    max_guilds_per_shard: int = 2500
    close_timeout_s: float = 2.0
    outbox_limit: int = 100_000
    member_request_interval_s: float = 30.0
    max_records: int | None = None


class Gateway:
    """Everything on the gateway side of the emulator.

    Args:
        world: the world to serve.
        settings: behaviour knobs.
        token: the valid bot token.
    """

    def __init__(self, world: World, settings: GatewaySettings, token: Token) -> None:
        self.world = world
        self.settings = settings
        self._token = token
        #: READY's resume_gateway_url (set by the emulator once bound).
        self.resume_url = ""
        #: VOICE_SERVER_UPDATE's endpoint (set by the emulator once bound).
        self.voice_endpoint = ""
        self._sessions: dict[str, Session] = {}
        self._live: dict[str, Session] = {}
        self._open: dict[int, Connection] = {}
        self._connections: list[Connection] = []
        self._connection_ids = itertools.count(1)
        self.identify_log: list[IdentifyRecord] = []
        # Counters.
        self.identifies = 0
        self.resumes = 0
        self.heartbeats = 0
        self.dispatches = 0
        self.connection_count = 0
        self.invalid_sessions = 0
        self.rejected_identifies = 0
        self.frames_sent = 0
        self.frames_received = 0
        # Limits.
        self._identify_buckets: dict[int, float] = {}
        self._session_start_window: float | None = None
        self._session_starts = 0
        # Faults.
        self._late_guilds: dict[int, float | None] = {}
        self._stream_open = asyncio.Event()
        self._stream_open.set()
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._commands = Commands(self)
        #: Connection-level faults (drop, op 7, op 9, closes, bad frames...).
        self.faults = ConnectionFaults(self)

    # Helpers

    @staticmethod
    def _now() -> float:
        return time.monotonic()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _frame_sent(self) -> None:
        self.frames_sent += 1

    def later(
        self, delay_s: float, callback: Callable[..., None], *args: Any
    ) -> asyncio.TimerHandle:
        """Call ``callback(*args)`` in ``delay_s`` seconds."""
        return asyncio.get_running_loop().call_later(delay_s, callback, *args)

    def _is_token(self, value: object) -> bool:
        return isinstance(value, str) and hmac.compare_digest(
            value.encode(), self._token.reveal().encode()
        )

    # Observability

    def sessions(self) -> list[SessionInfo]:
        """Every session ever started, oldest first."""
        self._expire(self._now())
        return [session.info() for session in self._sessions.values()]

    def session(self, session_id: str) -> SessionInfo | None:
        """One session, if it was ever started."""
        self._expire(self._now())
        session = self._sessions.get(session_id)
        return session.info() if session else None

    def connections(self) -> list[ConnectionInfo]:
        """Every connection ever accepted, oldest first."""
        return [connection.info() for connection in self._connections]

    def session_start_limit(self) -> dict[str, int]:
        """The session_start_limit object of GET /gateway/bot."""
        now = self._now()
        settings = self.settings
        window = self._session_start_window
        if window is not None and now - window >= settings.session_start_reset_s:
            self._session_start_window, self._session_starts, window = None, 0, None
        reset_after = settings.session_start_reset_s
        if window is not None:
            reset_after = settings.session_start_reset_s - (now - window)
        return {
            "total": settings.session_start_limit,
            "remaining": max(0, settings.session_start_limit - self._session_starts),
            "reset_after": int(reset_after * 1000),
            "max_concurrency": settings.max_concurrency,
        }

    # Websocket handler

    async def handle(self, request: web.Request, listener: str) -> web.StreamResponse:
        """Serve one gateway websocket request from ``listener``."""
        if self.faults.is_stalling(self._now()):
            logger.info("stalling a websocket upgrade on the %s listener", listener)
            await self._stopping.wait()
            return web.Response(status=503)

        ws = web.WebSocketResponse(
            autoclose=False,
            autoping=False,
            compress=False,
            max_msg_size=1 << 20,
            timeout=self.settings.close_timeout_s,
        )
        if not ws.can_prepare(request).ok:
            body = orjson.dumps({"message": "this is a websocket endpoint", "code": 0})
            return web.Response(body=body, status=400, content_type="application/json")
        await ws.prepare(request)

        compress = request.query.get("compress")
        if compress is not None and compress not in COMPRESSIONS:
            logger.warning(
                "unknown compress=%r asked for; sending uncompressed", compress
            )
            compress = None
        connection = Connection(
            next(self._connection_ids),
            listener,
            ws,
            request,
            compress=compress,
            compressor=make_compressor(compress),
            outbox_limit=self.settings.outbox_limit,
            on_frame_sent=self._frame_sent,
            max_records=self.settings.max_records,
            now=self._now(),
        )
        self._open[connection.connection_id] = connection
        self._connections.append(connection)
        self.connection_count += 1
        connection.start_writer()
        logger.debug(
            "connection %d opened on the %s listener (compress=%s)",
            connection.connection_id,
            listener,
            compress,
        )
        try:
            self._open_connection(connection, request)
            await self._read(connection)
            # Let the writer finish a close handshake it started.
            if connection.writer is not None:
                timeout = self.settings.close_timeout_s + 1
                await asyncio.wait({connection.writer}, timeout=timeout)
        finally:
            self._finish(connection)
        return ws

    def _open_connection(self, connection: Connection, request: web.Request) -> None:
        if self.faults.closes_before_hello():
            code = self.faults.take_close_before_hello()
            logger.info("closing connection %d before HELLO", connection.connection_id)
            if code is None:
                connection.abort("dropped before HELLO")
            else:
                connection.queue_close(code, "closed before HELLO")
            return
        if request.query.get("v") not in API_VERSIONS:
            connection.queue_close(CloseCode.INVALID_API_VERSION, "Invalid API version")
            return
        if request.query.get("encoding", "json") != "json":
            connection.queue_close(
                CloseCode.DECODE_ERROR, "only encoding=json is served"
            )
            return
        interval_ms = round(self.settings.heartbeat_interval_s * 1000)
        connection.queue_payload(
            Opcode.HELLO, {"heartbeat_interval": interval_ms, "_trace": _TRACE}
        )
        self._arm_heartbeat_deadline(connection)

    async def _read(self, connection: Connection) -> None:
        ws = connection.ws
        while True:
            message = await ws.receive()
            kind = message.type
            if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                self._receive(connection, message.data)
            elif kind is WSMsgType.PING:
                if not connection.silent:
                    connection.queue_pong(message.data)
            elif kind is WSMsgType.PONG:
                continue
            elif kind is WSMsgType.CLOSE:
                code = message.data if isinstance(message.data, int) else None
                self._client_closed(connection, code)
                if connection.silent:
                    # A dead server never answers; wait for the client to give up.
                    await connection.ended.wait()
                return
            else:
                # CLOSING (our own close in progress), CLOSED or ERROR.
                return

    def _finish(self, connection: Connection) -> None:
        """The connection is over, whatever ended it."""
        if connection.closed_at is None:
            connection.closed_at = self._now()
        if connection.end == "open":
            connection.end = "lost"
        connection.closing = True
        connection.cancel_timers()
        if connection.writer is not None and not connection.writer.done():
            connection.writer.cancel()
        self.detach(connection)
        self._open.pop(connection.connection_id, None)
        connection.ended.set()
        connection.release()
        logger.debug(
            "connection %d ended: %s", connection.connection_id, connection.end
        )

    def detach(self, connection: Connection) -> None:
        """Unhook a connection from its session, leaving the session resumable."""
        session = connection.session
        connection.session = None
        if session is None or session.connection is not connection:
            return
        session.connection = None
        if session.state is SessionState.ACTIVE:
            session.state = SessionState.RESUMABLE
            session.disconnected_at = self._now()
            logger.debug("session %s is now resumable", session.session_id)

    def end_session(self, session: Session, state: SessionState, reason: str) -> None:
        """End a session for good: it can no longer be resumed."""
        connection = session.connection
        if connection is not None:
            self.detach(connection)
        session.end(state, reason, self._now())
        self._live.pop(session.session_id, None)

    def _expire(self, now: float) -> None:
        timeout = self.settings.session_resume_timeout_s
        for session in list(self._live.values()):
            if (
                session.state is SessionState.RESUMABLE
                and session.disconnected_at is not None
                and now - session.disconnected_at > timeout
            ):
                self.end_session(session, SessionState.INVALIDATED, "expired")

    def _client_closed(self, connection: Connection, code: int | None) -> None:
        connection.client_close_code = code
        connection.frames.append(
            FrameRecord(self._now(), "received", None, None, None, 2, "close", code)
        )
        if connection.silent:
            return
        if connection.end == "open":
            connection.end = "client closed"
        session = connection.session
        self.detach(connection)
        if session is not None and code in (
            CloseCode.NORMAL_CLOSURE,
            CloseCode.GOING_AWAY,
        ):
            self.end_session(session, SessionState.CLOSED, f"client closed with {code}")
        # Echo the close frame, as the websocket protocol asks.
        connection.queue_close(
            code or CloseCode.NORMAL_CLOSURE, "", discard_pending=True
        )

    def server_close(self, connection: Connection, code: int, reason: str) -> None:
        """Close a connection; codes in SESSION_ENDING_CLOSES end its session."""
        if not connection.is_open:
            return
        session = connection.session
        self.detach(connection)
        if session is not None and code in SESSION_ENDING_CLOSES:
            self.end_session(session, SessionState.INVALIDATED, f"closed with {code}")
        logger.info(
            "closing connection %d with %d (%s)", connection.connection_id, code, reason
        )
        connection.queue_close(code, reason)

    # Heartbeats

    def _arm_heartbeat_deadline(self, connection: Connection) -> None:
        if connection.heartbeat_timer is not None:
            connection.heartbeat_timer.cancel()
        timeout = (
            self.settings.heartbeat_interval_s * self.settings.heartbeat_timeout_factor
        )
        connection.heartbeat_timer = self.later(
            timeout, self._heartbeat_missed, connection
        )

    def _heartbeat_missed(self, connection: Connection) -> None:
        connection.heartbeat_timer = None
        if connection.silent or not connection.is_open:
            return
        logger.info("connection %d missed its heartbeat", connection.connection_id)
        self.server_close(connection, CloseCode.UNKNOWN_ERROR, "heartbeat timeout")

    # Payloads received

    def _receive(self, connection: Connection, data: str | bytes) -> None:
        now = self._now()
        raw = data.encode() if isinstance(data, str) else data
        payload: Any = None
        with contextlib.suppress(orjson.JSONDecodeError):
            payload = orjson.loads(raw)
        op = payload.get("op") if isinstance(payload, dict) else None
        connection.frames.append(
            FrameRecord(
                now,
                "received",
                op if isinstance(op, int) else None,
                None,
                None,
                len(raw),
            )
        )
        self.frames_received += 1
        if connection.silent or not connection.is_open:
            return
        try:
            self._check_rate(connection, now)
            if len(raw) > self.settings.max_payload_size:
                raise CloseConnection(CloseCode.DECODE_ERROR, "payload too large")
            if not isinstance(payload, dict):
                raise CloseConnection(
                    CloseCode.DECODE_ERROR, "Error while decoding payload"
                )
            if type(op) is not int or op not in _CLIENT_OPCODES:
                raise CloseConnection(CloseCode.UNKNOWN_OPCODE, "Unknown opcode")
            self._handle(connection, op, payload.get("d"), now)
        except CloseConnection as reject:
            self.server_close(connection, reject.code, reject.reason)
        except Exception:
            # An emulator bug: say so loudly, and close the way Discord does when
            # it fails (4000, resumable) rather than blame the client.
            logger.exception("emulator error handling op %r", op)
            self.server_close(connection, CloseCode.UNKNOWN_ERROR, "internal error")

    def _check_rate(self, connection: Connection, now: float) -> None:
        times = connection.send_times
        times.append(now)
        horizon = now - self.settings.send_window_s
        while times and times[0] <= horizon:
            times.popleft()
        if len(times) > self.settings.send_limit:
            raise CloseConnection(CloseCode.RATE_LIMITED, "You are being rate limited.")

    def _handle(self, connection: Connection, op: int, d: Any, now: float) -> None:
        if op == Opcode.HEARTBEAT:
            self._heartbeat(connection, d)
        elif op == Opcode.IDENTIFY:
            self._identify(connection, d, now)
        elif op == Opcode.RESUME:
            self._resume(connection, d, now)
        elif connection.session is None:
            raise CloseConnection(CloseCode.NOT_AUTHENTICATED, "Not authenticated.")
        else:
            self._commands.handle(connection.session, op, d, now)

    def _heartbeat(self, connection: Connection, d: Any) -> None:
        if d is not None and type(d) is not int:
            raise CloseConnection(CloseCode.UNKNOWN_OPCODE, "invalid heartbeat payload")
        connection.heartbeats += 1
        self.heartbeats += 1
        self._arm_heartbeat_deadline(connection)
        if connection.acking:
            connection.queue_payload(Opcode.HEARTBEAT_ACK)

    # IDENTIFY

    def _validate_identify(self, d: Any) -> tuple[tuple[int, int] | None, int, int]:
        """Check an IDENTIFY; return (shard, intents, large_threshold)."""
        if not isinstance(d, dict):
            raise CloseConnection(CloseCode.UNKNOWN_OPCODE, "invalid IDENTIFY payload")
        if not self._is_token(d.get("token")):
            raise CloseConnection(
                CloseCode.AUTHENTICATION_FAILED, "Authentication failed."
            )
        if not isinstance(d.get("properties"), dict):
            raise CloseConnection(
                CloseCode.UNKNOWN_OPCODE, "IDENTIFY properties missing"
            )

        intents = d.get("intents")
        if type(intents) is not int or intents < 0 or intents & ~ALL_INTENTS:
            raise CloseConnection(CloseCode.INVALID_INTENTS, "Invalid intent(s).")
        if intents & PRIVILEGED_INTENTS & ~self.settings.privileged_intents:
            raise CloseConnection(CloseCode.DISALLOWED_INTENTS, "Disallowed intent(s).")

        large_threshold = d.get("large_threshold", 50)
        if type(large_threshold) is not int or not 50 <= large_threshold <= 250:
            raise CloseConnection(
                CloseCode.UNKNOWN_OPCODE, "large_threshold must be 50-250"
            )

        raw_shard = d.get("shard")
        shard: tuple[int, int] | None = None
        if raw_shard is not None:
            if (
                not isinstance(raw_shard, list)
                or len(raw_shard) != 2
                or not all(type(part) is int for part in raw_shard)
                or not 0 <= raw_shard[0] < raw_shard[1]
            ):
                raise CloseConnection(CloseCode.INVALID_SHARD, "Invalid shard.")
            shard = (raw_shard[0], raw_shard[1])
        shard_id, shard_count = shard or (0, 1)
        on_shard = sum(
            1 for gid in self.world.guilds if shard_for(gid, shard_count) == shard_id
        )
        if on_shard > self.settings.max_guilds_per_shard:
            raise CloseConnection(CloseCode.SHARDING_REQUIRED, "Sharding required.")
        return shard, intents, large_threshold

    def _take_identify_slot(self, shard_id: int, now: float) -> str | None:
        """Count an IDENTIFY against the limits; return why it is refused, if it is."""
        settings = self.settings
        bucket = shard_id % settings.max_concurrency
        last = self._identify_buckets.get(bucket)
        if last is not None and now - last < settings.identify_window_s:
            return f"identify bucket {bucket} used {now - last:.2f}s ago"
        if self.session_start_limit()["remaining"] <= 0:
            return "session_start_limit exhausted"
        self._identify_buckets[bucket] = now
        if self._session_start_window is None:
            self._session_start_window = now
        self._session_starts += 1
        return None

    def _identify(self, connection: Connection, d: Any, now: float) -> None:
        if connection.session is not None:
            raise CloseConnection(
                CloseCode.ALREADY_AUTHENTICATED, "Already authenticated."
            )
        shard, intents, large_threshold = self._validate_identify(d)
        shard_id, shard_count = shard or (0, 1)

        refusal = self._take_identify_slot(shard_id, now)
        if refusal is not None:
            logger.info(
                "IDENTIFY on connection %d refused: %s",
                connection.connection_id,
                refusal,
            )
            self.rejected_identifies += 1
            self.send_invalid_session(connection, resumable=False)
            return

        session_id = secrets.token_hex(16)
        properties = {
            str(key): value
            for key, value in d["properties"].items()
            if isinstance(value, str)
        }
        session = Session(
            session_id,
            shard=shard,
            intents=intents,
            large_threshold=large_threshold,
            properties=properties,
            payload_compression=d.get("compress") is True,
            guild_ids=self.world.guild_ids_for_shard(shard_id, shard_count),
            replay_buffer_size=self.settings.replay_buffer_size,
            max_records=self.settings.max_records,
            now=now,
        )
        self._sessions[session_id] = session
        self._live[session_id] = session
        self.identifies += 1
        self.identify_log.append(IdentifyRecord(now, shard_id, shard_count, session_id))
        self._attach(connection, session)
        if isinstance(d.get("presence"), dict):
            with contextlib.suppress(CloseConnection):
                self._commands.presence_update(session, d["presence"])
        logger.info(
            "session %s identified on connection %d (shard %d/%d, intents %d)",
            session_id,
            connection.connection_id,
            shard_id,
            shard_count,
            intents,
        )

        ready: dict[str, Any] = {
            "v": 10,
            "user": {**self.world.bot.payload, "verified": True, "mfa_enabled": False},
            "guilds": [
                {"id": str(gid), "unavailable": True} for gid in session.guild_ids
            ],
            "session_id": session_id,
            "resume_gateway_url": self.resume_url,
            "application": {
                "id": str(self.world.application_id),
                "flags": self.application_flags(),
            },
            "session_type": "normal",
            "private_channels": [],
            "presences": [],
            "relationships": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["local"],
            "user_settings": {},
            "auth": {},
            "_trace": _TRACE,
        }
        if shard is not None:
            ready["shard"] = [shard_id, shard_count]
        self.dispatch_to(session, "READY", ready)
        self._start_guild_stream(session)

    def application_flags(self) -> int:
        allowed = self.settings.privileged_intents
        return sum(flag for intent, flag in _INTENT_FLAGS.items() if allowed & intent)

    def _attach(self, connection: Connection, session: Session) -> None:
        connection.session = session
        connection.session_id = session.session_id
        connection.generation += 1
        connection.compressor = (
            connection.compressor
            if connection.compress
            else make_compressor(None, payload=session.payload_compression)
        )
        session.connection = connection
        session.connections.append(connection)
        session.state = SessionState.ACTIVE
        session.disconnected_at = None

    def send_invalid_session(self, connection: Connection, *, resumable: bool) -> None:
        """Send op 9 with ``resumable``."""
        self.invalid_sessions += 1
        connection.queue_payload(Opcode.INVALID_SESSION, resumable)

    # RESUME

    def _resume(self, connection: Connection, d: Any, now: float) -> None:
        if connection.session is not None:
            raise CloseConnection(
                CloseCode.ALREADY_AUTHENTICATED, "Already authenticated."
            )
        if not isinstance(d, dict):
            raise CloseConnection(CloseCode.UNKNOWN_OPCODE, "invalid RESUME payload")
        if not self._is_token(d.get("token")):
            raise CloseConnection(
                CloseCode.AUTHENTICATION_FAILED, "Authentication failed."
            )
        seq = d.get("seq")
        seq = 0 if seq is None else seq
        if type(seq) is not int:
            raise CloseConnection(CloseCode.UNKNOWN_OPCODE, "invalid RESUME seq")

        self._expire(now)
        session = self._live.get(str(d.get("session_id")))
        if session is None:
            logger.info(
                "RESUME of an unknown or ended session on connection %d",
                connection.connection_id,
            )
            self.send_invalid_session(connection, resumable=False)
            return
        if not session.can_resume_from(seq):
            connection.session_id = session.session_id
            self.end_session(session, SessionState.INVALIDATED, f"invalid seq {seq}")
            raise CloseConnection(CloseCode.INVALID_SEQ, "Invalid seq.")

        previous = session.connection
        if previous is not None:
            # The client moved on: the old connection is a zombie for it.
            self.detach(previous)
            previous.abort("superseded by a resume")
        self._attach(connection, session)
        session.resumes += 1
        self.resumes += 1
        replayed = 0
        for record in session.replay:
            if record.seq > seq:
                connection.queue_dispatch(record)
                replayed += 1
        # RESUMED ends this connection's replay; it belongs to the connection and
        # is never replayed on a later one (which gets its own RESUMED).
        self.dispatch_to(session, "RESUMED", {"_trace": _TRACE}, replayable=False)
        logger.info(
            "session %s resumed on connection %d from seq %d (%d replayed)",
            session.session_id,
            connection.connection_id,
            seq,
            replayed,
        )

    # Dispatching

    def dispatch_to(
        self, session: Session, name: str, data: Any, *, replayable: bool = True
    ) -> None:
        record = session.add_record(name, data, self._now(), replayable=replayable)
        self.dispatches += 1
        if session.connection is not None:
            session.connection.queue_dispatch(record)

    def publish(
        self,
        name: str,
        data: Any,
        *,
        guild_id: int | None,
        intent: int | None = None,
        transform: Callable[[Session, Any], Any] | None = None,
    ) -> int:
        """Dispatch an event to every session that should get it.

        Args:
            name: the dispatch name.
            data: the dispatch data (never mutated afterwards).
            guild_id: the guild it happened in; ``None`` for DMs (shard 0 only).
            intent: the intent a session needs to get it.
            transform: makes a session's own copy of ``data`` (intent gating).

        Returns:
            How many sessions got it.
        """
        self._expire(self._now())
        count = 0
        for session in list(self._live.values()):
            if guild_id is None:
                if session.shard_id != 0:
                    continue
            elif guild_id not in session.delivered:
                continue
            if intent is not None and not session.intents & intent:
                continue
            self.dispatch_to(
                session, name, transform(session, data) if transform else data
            )
            count += 1
        return count

    # Guild streaming and availability

    def _start_guild_stream(self, session: Session) -> None:
        late = {
            gid: delay
            for gid, delay in self._late_guilds.items()
            if gid in session.guild_ids
        }
        ordered = [gid for gid in session.guild_ids if gid not in late]
        task = self._spawn(
            self._stream_guilds(session, ordered),
            f"tether-emulator-stream-{session.session_id}",
        )
        session.tasks.add(task)
        task.add_done_callback(session.tasks.discard)
        for guild_id, delay in late.items():
            if delay is not None:
                session.timers.append(
                    self.later(delay, self._deliver_guild, session, guild_id)
                )

    async def _stream_guilds(self, session: Session, guild_ids: list[int]) -> None:
        for index, guild_id in enumerate(guild_ids):
            await self._stream_open.wait()
            delay = self.settings.guild_stream_delay_s
            if delay > 0:
                await asyncio.sleep(delay)
            elif index % 50 == 49:
                await asyncio.sleep(0)
            if not session.is_live:
                return
            self._deliver_guild(session, guild_id)

    def _guild_create_for(self, session: Session, guild_id: int) -> dict[str, Any]:
        return self.world.guild_create_payload(
            self.world.guilds[guild_id],
            large_threshold=session.large_threshold,
            presences_intent=bool(session.intents & Intents.GUILD_PRESENCES),
        )

    def _deliver_guild(self, session: Session, guild_id: int) -> None:
        guild = self.world.guilds.get(guild_id)
        if not session.is_live or guild is None or guild_id in session.delivered:
            return
        session.delivered.add(guild_id)
        if guild.unavailable:
            self.dispatch_to(
                session, "GUILD_DELETE", {"id": str(guild_id), "unavailable": True}
            )
        else:
            self.dispatch_to(
                session, "GUILD_CREATE", self._guild_create_for(session, guild_id)
            )

    def set_late_guilds(
        self, guild_ids: list[int], arrive_after_s: float | None
    ) -> None:
        """Leave guilds out of the stream after each READY; send them later or never."""
        for guild_id in guild_ids:
            if guild_id not in self.world.guilds:
                raise KeyError(f"no guild {guild_id} in the world")
            self._late_guilds[guild_id] = arrive_after_s

    def clear_late_guilds(self) -> None:
        """Stream every guild right after READY again."""
        self._late_guilds.clear()

    def deliver_late_guilds(self, guild_ids: list[int] | None = None) -> int:
        """Send now the held-back guilds (all, or these) to every live session whose
        READY listed them and that has not had them yet; return how many were sent.
        """
        wanted = set(self._late_guilds if guild_ids is None else guild_ids)
        sent = 0
        for session in list(self._sessions.values()):
            if not session.is_live:
                continue
            for guild_id in session.guild_ids:
                if guild_id in wanted and guild_id not in session.delivered:
                    self._deliver_guild(session, guild_id)
                    sent += 1
        return sent

    def stall_guild_stream(self, duration_s: float | None) -> None:
        """Hold every guild stream for a while (``None``: until resumed)."""
        self._stream_open.clear()
        if duration_s is not None:
            self.later(duration_s, self._stream_open.set)

    def resume_guild_stream(self) -> None:
        """Let held guild streams go on."""
        self._stream_open.set()

    def start_guild_outage(self, guild_id: int) -> int:
        """Make a guild unavailable; sessions that know it get GUILD_DELETE."""
        guild = self.world.guilds[guild_id]
        guild.unavailable = True
        logger.info("guild %d is unavailable", guild_id)
        return self.publish(
            "GUILD_DELETE",
            {"id": str(guild_id), "unavailable": True},
            guild_id=guild_id,
        )

    def end_guild_outage(self, guild_id: int) -> int:
        """Make a guild available again; sessions that know it get GUILD_CREATE."""
        guild = self.world.guilds[guild_id]
        if not guild.unavailable:
            return 0
        guild.unavailable = False
        logger.info("guild %d is available again", guild_id)
        return self.publish(
            "GUILD_CREATE",
            None,
            guild_id=guild_id,
            transform=lambda session, _: self._guild_create_for(session, guild_id),
        )

    # Fault targets

    def targets(
        self, session_id: str | None = None, shard: int | None = None
    ) -> list[Connection]:
        """Open connections picked by session id, shard, or all of them."""
        connections = [c for c in self._open.values() if not c.ended.is_set()]
        if session_id is not None:
            session = self._sessions.get(session_id)
            connection = session.connection if session is not None else None
            connections = (
                [connection]
                if connection is not None and not connection.ended.is_set()
                else []
            )
        if shard is not None:
            connections = [
                c
                for c in connections
                if c.session is not None and c.session.shard_id == shard
            ]
        return connections

    def restart(self) -> None:
        """Drop every connection and forget every session."""
        for connection in list(self._open.values()):
            self.detach(connection)
            connection.abort("emulator restarted")
        for session in list(self._live.values()):
            self.end_session(session, SessionState.INVALIDATED, "emulator restarted")
        self._identify_buckets.clear()
        self._commands.forget_member_requests()
        self.faults.clear()
        self._stream_open.set()

    async def stop(self) -> None:
        """End everything (the listeners are stopped by the emulator)."""
        self._stopping.set()
        for connection in list(self._open.values()):
            self.detach(connection)
            connection.abort("emulator stopped")
        for session in self._live.values():
            # Stop background work but keep each session's state for inspection.
            for timer in session.timers:
                timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=1.0)
