"""What the emulator remembers, as read-only snapshots for tests.

Every snapshot is a frozen dataclass built on demand by :class:`Emulator` methods
(:meth:`~tether.emulator.Emulator.sessions`, ``counters``, ``identify_log`` ...).
Times are :func:`time.monotonic` seconds. No record ever holds the token.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ConnectionInfo",
    "Counters",
    "DispatchRecord",
    "FrameRecord",
    "IdentifyRecord",
    "RestRecord",
    "SessionInfo",
    "SessionState",
]


class SessionState(enum.Enum):
    """Where a gateway session stands, seen from the server."""

    #: A connection is attached and the handshake (READY or RESUMED) is done.
    ACTIVE = "active"
    #: No connection, but the session can still be resumed; dispatches buffer.
    RESUMABLE = "resumable"
    #: The client closed with 1000/1001: the session is over.
    CLOSED = "closed"
    #: The server ended it (op 9 false, 4007, 4009, an expired or forgotten session).
    INVALIDATED = "invalidated"


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """One websocket message sent or received on a connection.

    Attributes:
        time: when it was written (sent) or read (received).
        direction: ``"sent"`` (server to client) or ``"received"``.
        op: the payload's opcode, or ``None`` for close frames and fault frames.
        t: the dispatch name for op 0.
        s: the seq for op 0.
        size: bytes on the wire (after compression for sent frames).
        kind: ``"payload"``, ``"close"``, or the fault that produced the frame
            (``"corrupt"``, ``"truncated"``, ``"oversized"``, ``"bomb"``).
        close_code: the close code of a close frame.
    """

    time: float
    direction: Literal["sent", "received"]
    op: int | None
    t: str | None
    s: int | None
    size: int
    kind: str = "payload"
    close_code: int | None = None


@dataclass(frozen=True, slots=True)
class DispatchRecord:
    """One dispatch (op 0) given a seq in a session.

    The record is made when the seq is assigned: it is then sent at once if a
    connection is attached, or buffered for RESUME otherwise.

    Attributes:
        seq: the ``s`` value.
        name: the ``t`` value (``READY``, ``GUILD_CREATE``, ...).
        data: the ``d`` value, as sent.
        time: when the seq was assigned.
        replayable: ``False`` for what a RESUME does not replay: fault payloads
            (oversized frames, bombs) and RESUMED, which belongs to the connection
            that sent it.
    """

    seq: int
    name: str
    data: Any
    time: float
    replayable: bool = True


@dataclass(frozen=True, slots=True)
class IdentifyRecord:
    """One accepted IDENTIFY.

    Attributes:
        time: when it was accepted.
        shard_id: the shard it asked for (0 when unsharded).
        shard_count: the shard count it asked for (1 when unsharded).
        session_id: the session it started.
    """

    time: float
    shard_id: int
    shard_count: int
    session_id: str


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """One websocket connection to a gateway listener.

    Attributes:
        connection_id: increasing number, unique per emulator.
        listener: ``"gateway"`` or ``"resume"`` (the resume_gateway_url listener).
        compress: the transport compression asked for in the URL, if any.
        opened_at: when the upgrade completed.
        closed_at: when the connection ended, ``None`` while open.
        session_id: the session it identified or resumed, if any.
        close_code: the close code the server sent, if it sent one.
        client_close_code: the close code the client sent, if it sent one.
        end: how it ended (``"open"``, ``"client closed"``, ``"server closed"``,
            ``"dropped"``, ``"lost"``, ...).
        heartbeats: heartbeats received on it.
        frames: every frame sent and received, in order.
    """

    connection_id: int
    listener: str
    compress: str | None
    opened_at: float
    closed_at: float | None
    session_id: str | None
    close_code: int | None
    client_close_code: int | None
    end: str
    heartbeats: int
    frames: tuple[FrameRecord, ...]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A gateway session as the server sees it.

    Attributes:
        session_id: the id given in READY.
        shard: the ``[shard_id, shard_count]`` sent in IDENTIFY, if any.
        intents: the intents of IDENTIFY.
        large_threshold: the large_threshold of IDENTIFY.
        properties: the connection properties of IDENTIFY.
        state: where the session stands.
        end_reason: why it ended (empty while it lives).
        seq: the last seq assigned.
        dispatches: every dispatch of the session, in seq order (the latest
            ``max_records`` when the emulator keeps fewer).
        connections: the ids of the connections it used, in order.
        frames: the frames of those connections, in order.
        resumes: successful RESUMEs.
        heartbeats: heartbeats received on its connections.
        created_at: when IDENTIFY was accepted.
        ended_at: when it stopped being resumable.
    """

    session_id: str
    shard: tuple[int, int] | None
    intents: int
    large_threshold: int
    properties: Mapping[str, str]
    state: SessionState
    end_reason: str
    seq: int
    dispatches: tuple[DispatchRecord, ...]
    connections: tuple[int, ...]
    frames: tuple[FrameRecord, ...]
    resumes: int
    heartbeats: int
    created_at: float
    ended_at: float | None

    @property
    def shard_id(self) -> int:
        """The shard id (0 when IDENTIFY had no shard)."""
        return self.shard[0] if self.shard else 0

    @property
    def identifies(self) -> int:
        """IDENTIFYs behind this session: always 1 (a new IDENTIFY is a new session)."""
        return 1

    def dispatch_names(self) -> list[str]:
        """The names of the session's dispatches, in seq order."""
        return [record.name for record in self.dispatches]

    def sent_seqs(self) -> list[int]:
        """Every seq written to a socket, in order; replays appear more than once."""
        return [
            frame.s
            for frame in self.frames
            if frame.direction == "sent" and frame.op == 0 and frame.s is not None
        ]


@dataclass(frozen=True, slots=True)
class Counters:
    """Totals since the emulator started (a :meth:`Emulator.restart` keeps them).

    Attributes:
        identifies: accepted IDENTIFYs (sessions started).
        resumes: successful RESUMEs.
        heartbeats: heartbeats received.
        dispatches: seqs assigned, over every session.
        connections: websocket upgrades completed.
        invalid_sessions: op 9 payloads sent.
        rejected_identifies: IDENTIFYs refused with op 9 (concurrency, daily limit).
        frames_sent: websocket messages sent.
        frames_received: websocket messages received.
        rest_requests: REST requests answered.
    """

    identifies: int
    resumes: int
    heartbeats: int
    dispatches: int
    connections: int
    invalid_sessions: int
    rejected_identifies: int
    frames_sent: int
    frames_received: int
    rest_requests: int


@dataclass(frozen=True, slots=True)
class RestRecord:
    """One REST request the emulator answered.

    Attributes:
        time: when the answer was sent.
        method: the HTTP method.
        route: the route name (``create_message``), or ``"unknown"``.
        path: the path with the ``/api/v10`` prefix removed, without query.
        status: the HTTP status answered.
    """

    time: float
    method: str
    route: str
    path: str
    status: int
