"""Server-side gateway sessions and the connections that carry them.

A :class:`Session` outlives connections: it owns the seq counter and the replay
buffer. A :class:`Connection` is one websocket: it owns the outbox, the
compressor, the send-rate window and the heartbeat deadline. Everything a
connection writes goes through its outbox and one writer task, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from tether.emulator._compress import Compressor
from tether.emulator.records import (
    ConnectionInfo,
    DispatchRecord,
    FrameRecord,
    SessionInfo,
    SessionState,
)

__all__ = ["Connection", "Session"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Payload:
    """A non-dispatch payload (HELLO, ACK, op 1, op 7, op 9)."""

    op: int
    d: Any


@dataclass(frozen=True, slots=True)
class _Bad:
    """A fault frame, made by the compressor when its turn comes.

    ``kind`` is ``"corrupt"`` (undecodable bytes) or ``"truncated"`` (the first
    half of ``payload``'s message).
    """

    kind: str
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class _Close:
    """Send a close frame, then end the connection."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class _Pong:
    data: bytes


_Out = DispatchRecord | _Payload | _Bad | _Close | _Pong


class Session:
    """One gateway session, from IDENTIFY until it is closed or invalidated."""

    def __init__(
        self,
        session_id: str,
        *,
        shard: tuple[int, int] | None,
        intents: int,
        large_threshold: int,
        properties: Mapping[str, str],
        payload_compression: bool,
        guild_ids: list[int],
        replay_buffer_size: int,
        max_records: int | None,
        now: float,
    ) -> None:
        self.session_id = session_id
        self.shard = shard
        self.shard_id = shard[0] if shard else 0
        self.intents = intents
        self.large_threshold = large_threshold
        self.properties = dict(properties)
        # IDENTIFY compress: true (payload compression), kept for RESUMEs.
        self.payload_compression = payload_compression
        # Guilds routed to this session's shard when it identified.
        self.guild_ids = guild_ids
        # Guilds whose GUILD_CREATE (or outage GUILD_DELETE) was dispatched: events
        # for a guild only flow once the client knows it.
        self.delivered: set[int] = set()
        self.state = SessionState.ACTIVE
        self.end_reason = ""
        self.seq = 0
        # Every dispatch (the latest max_records), for observability; the replay
        # buffer is a separate bounded tail.
        self.records: deque[DispatchRecord] = deque(maxlen=max_records)
        self.replay: deque[DispatchRecord] = deque(maxlen=replay_buffer_size)
        # Highest seq pushed out of the full replay buffer (0: nothing lost yet).
        self.evicted_through = 0
        self.connection: Connection | None = None
        self.connections: list[Connection] = []
        self.resumes = 0
        self.created_at = now
        self.disconnected_at: float | None = None
        self.ended_at: float | None = None
        # Background work tied to the session (guild stream, late guilds).
        self.tasks: set[asyncio.Task[None]] = set()
        self.timers: list[asyncio.TimerHandle] = []

    @property
    def is_live(self) -> bool:
        """Whether the session still exists (active or resumable)."""
        return self.state in (SessionState.ACTIVE, SessionState.RESUMABLE)

    def add_record(
        self, name: str, data: Any, now: float, *, replayable: bool
    ) -> DispatchRecord:
        """Assign the next seq to a dispatch and buffer it."""
        self.seq += 1
        record = DispatchRecord(self.seq, name, data, now, replayable)
        self.records.append(record)
        if replayable:
            if len(self.replay) == self.replay.maxlen:
                self.evicted_through = self.replay[0].seq
            self.replay.append(record)
        return record

    def can_resume_from(self, seq: int) -> bool:
        """Whether every replayable dispatch after ``seq`` is still buffered."""
        return 0 <= seq <= self.seq and seq >= self.evicted_through

    def end(self, state: SessionState, reason: str, now: float) -> None:
        """Make the session unusable and stop its background work."""
        if not self.is_live:
            return
        self.state = state
        self.end_reason = reason
        self.ended_at = now
        for task in self.tasks:
            task.cancel()
        for timer in self.timers:
            timer.cancel()
        logger.debug("session %s ended (%s): %s", self.session_id, state.value, reason)

    def info(self) -> SessionInfo:
        """A snapshot for tests."""
        frames: list[FrameRecord] = []
        for connection in self.connections:
            frames.extend(connection.frames)
        return SessionInfo(
            session_id=self.session_id,
            shard=self.shard,
            intents=self.intents,
            large_threshold=self.large_threshold,
            properties=dict(self.properties),
            state=self.state,
            end_reason=self.end_reason,
            seq=self.seq,
            dispatches=tuple(self.records),
            connections=tuple(c.connection_id for c in self.connections),
            frames=tuple(frames),
            resumes=self.resumes,
            heartbeats=sum(c.heartbeats for c in self.connections),
            created_at=self.created_at,
            ended_at=self.ended_at,
        )


class Connection:
    """One websocket connection to a gateway listener."""

    def __init__(
        self,
        connection_id: int,
        listener: str,
        ws: web.WebSocketResponse,
        request: web.Request,
        *,
        compress: str | None,
        compressor: Compressor,
        outbox_limit: int,
        on_frame_sent: Callable[[], None],
        max_records: int | None,
        now: float,
    ) -> None:
        self.connection_id = connection_id
        self.listener = listener
        self.ws = ws
        self._transport = request.transport
        self.compress = compress
        self.compressor = compressor
        self.opened_at = now
        self.closed_at: float | None = None
        self.frames: deque[FrameRecord] = deque(maxlen=max_records)
        self.session: Session | None = None
        # Id of the last session this connection carried, for ConnectionInfo.
        self.session_id: str | None = None
        # Bumped on each accepted IDENTIFY/RESUME: delayed closes check it.
        self.generation = 0
        self.acking = True
        self.silent = False
        # A close was queued (or the transport aborted): nothing more is queued.
        self.closing = False
        self.close_code: int | None = None
        self.client_close_code: int | None = None
        self.end = "open"
        self.heartbeats = 0
        self.heartbeat_timer: asyncio.TimerHandle | None = None
        self.send_times: deque[float] = deque()
        self.timers: list[asyncio.TimerHandle] = []
        self._outbox: deque[_Out] = deque()
        self._outbox_limit = outbox_limit
        self._wake = asyncio.Event()
        self._on_frame_sent = on_frame_sent
        # Set when the connection is over, whoever ended it.
        self.ended = asyncio.Event()
        self.writer: asyncio.Task[None] | None = None

    @property
    def authenticated(self) -> bool:
        """Whether IDENTIFY or RESUME succeeded on this connection."""
        return self.session is not None

    @property
    def is_open(self) -> bool:
        """Whether frames can still be queued."""
        return not self.closing and not self.ended.is_set()

    def start_writer(self) -> None:
        """Start the task that drains the outbox."""
        self.writer = asyncio.get_running_loop().create_task(
            self._write_loop(), name=f"tether-emulator-writer-{self.connection_id}"
        )

    # Queueing

    def _queue(self, item: _Out, *, front: bool = False) -> None:
        if self.closing or self.silent:
            return
        if len(self._outbox) >= self._outbox_limit:
            logger.warning(
                "connection %d: %d frames waiting, the client is too slow; dropping it",
                self.connection_id,
                len(self._outbox),
            )
            self.abort("slow consumer")
            return
        if front:
            self._outbox.appendleft(item)
        else:
            self._outbox.append(item)
        self._wake.set()

    def queue_dispatch(self, record: DispatchRecord) -> None:
        """Send a dispatch."""
        self._queue(record)

    def queue_payload(self, op: int, d: Any = None) -> None:
        """Send a non-dispatch payload."""
        self._queue(_Payload(op, d))

    def queue_bad_frame(self, kind: str, payload: bytes = b"") -> None:
        """Send a corrupt frame, or a truncated ``payload``, in turn with the rest."""
        self._queue(_Bad(kind, payload))

    def queue_pong(self, data: bytes) -> None:
        """Answer a websocket ping."""
        self._queue(_Pong(data))

    def queue_close(
        self, code: int, reason: str, *, discard_pending: bool = False
    ) -> None:
        """Close with ``code`` once the frames queued before are sent.

        Args:
            code: the close code.
            reason: the close reason.
            discard_pending: drop the frames not yet sent and close at once.
        """
        if self.closing or self.ended.is_set():
            return
        if discard_pending:
            self._outbox.clear()
        self._outbox.append(_Close(code, reason))
        self.closing = True
        self._wake.set()
        self.cancel_timers()

    def abort(self, end: str) -> None:
        """Drop the TCP connection with no close frame."""
        if self.ended.is_set():
            return
        self.closing = True
        if self.end == "open":
            self.end = end
        self._outbox.clear()
        self.cancel_timers()
        if self._transport is not None:
            self._transport.abort()
        if self.writer is not None and self.writer is not asyncio.current_task():
            self.writer.cancel()
        self.ended.set()

    def release(self) -> None:
        """Free what an ended connection no longer needs; its records stay."""
        # A compression context holds up to a few MiB.
        self.compressor = Compressor()
        self._outbox.clear()
        self._transport = None

    def cancel_timers(self) -> None:
        """Cancel the heartbeat deadline and delayed actions."""
        if self.heartbeat_timer is not None:
            self.heartbeat_timer.cancel()
            self.heartbeat_timer = None
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()

    def go_silent(self) -> None:
        """Send nothing more and ignore input, keeping TCP open."""
        self.silent = True
        self._outbox.clear()
        self.cancel_timers()

    # Writing

    def _encode(
        self, item: DispatchRecord | _Payload
    ) -> tuple[bytes, bool, FrameRecord]:
        if isinstance(item, DispatchRecord):
            payload = {"t": item.name, "s": item.seq, "op": 0, "d": item.data}
            op, t, s = 0, item.name, item.seq
        else:
            payload = {"t": None, "s": None, "op": item.op, "d": item.d}
            op, t, s = item.op, None, None
        message, binary = self.compressor.encode(orjson.dumps(payload))
        frame = FrameRecord(time.monotonic(), "sent", op, t, s, len(message))
        return message, binary, frame

    async def _write_loop(self) -> None:
        try:
            while True:
                if not self._outbox:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                item = self._outbox.popleft()
                if self.silent:
                    continue
                if isinstance(item, _Close):
                    await self._close(item)
                    return
                if isinstance(item, _Pong):
                    await self.ws.pong(item.data)
                    continue
                if isinstance(item, _Bad):
                    # Made here, in order: a compressed stream breaks exactly here.
                    if item.kind == "corrupt":
                        message, binary = self.compressor.garbage()
                    else:
                        message, binary = self.compressor.truncated(item.payload)
                    frame = FrameRecord(
                        time.monotonic(),
                        "sent",
                        None,
                        None,
                        None,
                        len(message),
                        item.kind,
                    )
                else:
                    message, binary, frame = self._encode(item)
                opcode = WSMsgType.BINARY if binary else WSMsgType.TEXT
                await self.ws.send_frame(message, opcode)
                self.frames.append(frame)
                self._on_frame_sent()
        except ConnectionError:
            self.abort("lost")
        except Exception:
            logger.exception("connection %d: writing failed", self.connection_id)
            self.abort("write error")

    async def _close(self, item: _Close) -> None:
        self.close_code = item.code
        if self.end == "open":
            self.end = "server closed"
        reason = item.reason.encode()[:123]
        self.frames.append(
            FrameRecord(
                time.monotonic(),
                "sent",
                None,
                None,
                None,
                2 + len(reason),
                "close",
                item.code,
            )
        )
        with contextlib.suppress(ConnectionError):
            await self.ws.close(code=item.code, message=reason)
        self.ended.set()

    def info(self) -> ConnectionInfo:
        """A snapshot for tests."""
        return ConnectionInfo(
            connection_id=self.connection_id,
            listener=self.listener,
            compress=self.compress,
            opened_at=self.opened_at,
            closed_at=self.closed_at,
            session_id=self.session_id,
            close_code=self.close_code,
            client_close_code=self.client_close_code,
            end=self.end,
            heartbeats=self.heartbeats,
            frames=tuple(self.frames),
        )
