"""The gateway protocol as a state machine with no I/O.

How it works
------------

:class:`GatewayProtocol` follows Discord's gateway v10 documentation ("Gateway",
sections "Connection Lifecycle", "Sending Heartbeats", "Identifying",
"Resuming", "Rate Limiting" and the close-code table of "Opcodes and Status
Codes"). It never touches a socket, a clock or an event loop: a driver feeds it
*inputs* and drains its *outputs* after each one.

Inputs are verbs, each taking the current monotonic time ``now`` in seconds:
``connection_opened``, ``receive_payload``, ``tick`` (a deadline passed),
``send_identify``, ``send_command`` and ``connection_closed``. Outputs are
drained: ``frames_to_send``, ``events`` and ``next_deadline``.

One protocol object serves one shard for its whole life. The *session*
(``session_id``, ``seq``, ``resume_url``) outlives connections, and a session saved
elsewhere can be handed in with ``restore_session`` between connections; everything
else is reset when a connection opens. The states of one connection::

    DISCONNECTED --open--> AWAITING_HELLO --HELLO--> AWAITING_IDENTIFY
    AWAITING_IDENTIFY --send_identify--> IDENTIFYING --READY--> CONNECTED
    AWAITING_IDENTIFY --(session kept: RESUME at once)--> RESUMING
    RESUMING --RESUMED--> CONNECTED
    any open state --zombie, HELLO timeout, op 7, op 9--> CLOSING
    any state but DISCONNECTED --connection_closed--> DISCONNECTED

The transitions are the table ``_TRANSITIONS``. A local input that the table
does not allow (a driver bug) raises :class:`~tether.errors.LocalProtocolError`
naming the state and the input. A payload from the server that does not fit
the state is the server's fault: it is logged and ignored.

Invariants
----------

* Nothing is sent before HELLO, and nothing once a close was requested.
* The first heartbeat goes out ``interval * rng.random()`` after HELLO, then one
  every interval. When a beat is due and the previous one has no ACK, the
  connection is a zombie: :class:`CloseRequested` (4000, resume).
* At most one heartbeat is outstanding. A server's op 1 is answered at once;
  when no beat is outstanding the answer becomes the outstanding one and the
  timer restarts from it, so its ACK gets a full interval. When one already is
  outstanding the answer is sent anyway (the server asked) but the protocol
  keeps waiting for the first ACK, measured from the first beat.
* Never two IDENTIFYs (nor an IDENTIFY and a RESUME) on one connection.
* ``seq`` follows dispatches only and never decreases within a session; a
  dispatch whose ``s`` is not above ``seq`` is a duplicate and is dropped. It
  restarts only with a new session.
* Every frame goes through a :class:`~tether.gateway.limits.SendWindow`
  (120 per 60 s by default, 5 slots kept for heartbeats). Commands wait in a
  queue and go out in order as the window frees; the queue outlives connections,
  so commands queued when a connection ends go out after the next handshake.
* Every close the protocol requests uses code 4000: Discord ends the session on
  1000 and 1001, so a close meant to resume must use another code, and 4000
  keeps one rule for all.
* Time never runs backwards inside the protocol: a ``now`` earlier than one seen
  before counts as the latest time seen.
"""

from __future__ import annotations

import enum
import logging
import math
import random
import sys
from collections import deque
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias, TypeGuard
from urllib.parse import urlencode, urlsplit, urlunsplit

from tether._secret import Token
from tether.errors import (
    DisallowedIntentsError,
    FatalCloseError,
    InvalidApiVersionError,
    InvalidIntentsError,
    InvalidShardError,
    InvalidTokenError,
    LocalProtocolError,
    ShardingRequiredError,
)
from tether.gateway.codec import encode
from tether.gateway.intents import PRIVILEGED_INTENTS, Intents
from tether.gateway.limits import SendWindow
from tether.gateway.opcodes import CloseCode, Opcode, Recovery, recovery_for

__all__ = [
    "API_VERSION",
    "COMMAND_OPCODES",
    "MAX_PAYLOAD_BYTES",
    "REQUESTED_CLOSE_CODE",
    "CloseRequested",
    "ConnectionState",
    "Dispatch",
    "GatewayProtocol",
    "HeartbeatAcked",
    "IdentifyParams",
    "IdentifyRequired",
    "ProtocolEvent",
    "SessionReady",
    "default_properties",
    "redact_payload",
]

logger = logging.getLogger(__name__)
#: Full payloads, redacted, at DEBUG: opt in by enabling this logger.
payload_logger = logging.getLogger("tether.gateway.payloads")

#: The gateway version tether speaks.
API_VERSION: Final[int] = 10
#: Discord closes with 4002 on a client payload over this many bytes.
MAX_PAYLOAD_BYTES: Final[int] = 4096
#: Opcodes that :meth:`GatewayProtocol.send_command` accepts.
COMMAND_OPCODES: Final[frozenset[Opcode]] = frozenset(
    {
        Opcode.PRESENCE_UPDATE,
        Opcode.VOICE_STATE_UPDATE,
        Opcode.REQUEST_GUILD_MEMBERS,
        Opcode.REQUEST_SOUNDBOARD_SOUNDS,
        Opcode.REQUEST_CHANNEL_INFO,
    }
)
#: The code of every close the protocol asks for (never 1000/1001).
REQUESTED_CLOSE_CODE: Final[int] = int(CloseCode.UNKNOWN_ERROR)

# The longest heartbeat interval obeyed (Discord's is about 41 s).
_MAX_HEARTBEAT_INTERVAL_S: Final[float] = 300.0
# op 9 asks for a random wait of 1 to 5 s before the next connection.
_INVALID_SESSION_DELAY_S: Final[tuple[float, float]] = (1.0, 5.0)
_COMPRESSIONS: Final[tuple[str | None, ...]] = (None, "zlib-stream", "zstd-stream")
_REDACTED: Final[str] = "***"

# Which recovery wins when the protocol asked for one and the close code says
# another: the one that keeps less of the session.
_STRICTNESS: Final[dict[Recovery, int]] = {
    Recovery.RESUME: 0,
    Recovery.IDENTIFY: 1,
    Recovery.FATAL: 2,
}

_OPCODES: Final[dict[int, Opcode]] = {int(op): op for op in Opcode}

_FATAL_ERRORS: Final[dict[int, type[FatalCloseError]]] = {
    cls.CODE: cls
    for cls in (
        InvalidTokenError,
        InvalidShardError,
        ShardingRequiredError,
        InvalidApiVersionError,
        InvalidIntentsError,
        DisallowedIntentsError,
    )
}


# Identify parameters


def default_properties() -> dict[str, str]:
    """Return the IDENTIFY ``properties`` tether sends unless told otherwise."""
    return {"os": sys.platform, "browser": "tether", "device": "tether"}


@dataclass(frozen=True, slots=True)
class IdentifyParams:
    """What IDENTIFY sends. The token is only revealed inside the frame.

    Args:
        token: the bot token.
        intents: the intents bitfield.
        properties: connection properties; merged over
            :func:`default_properties`.
        shard: ``(shard_id, shard_count)``, or None for an unsharded bot.
        presence: the initial presence (op 3 shape), or None.
        large_threshold: member count above which a guild counts as large
            (50 to 250).

    Raises:
        ValueError: an out-of-range field.
    """

    token: Token
    intents: int
    properties: Mapping[str, str] = field(default_factory=default_properties)
    shard: tuple[int, int] | None = None
    presence: Mapping[str, Any] | None = None
    large_threshold: int = 250

    def __post_init__(self) -> None:
        if not isinstance(self.token, Token):
            raise ValueError("token must be a tether Token")
        if self.intents < 0:
            raise ValueError(f"intents must not be negative, not {self.intents}")
        if self.shard is not None:
            shard_id, shard_count = self.shard
            if not 0 <= shard_id < shard_count:
                raise ValueError(f"invalid shard {self.shard}: need 0 <= id < count")
        if not 50 <= self.large_threshold <= 250:
            raise ValueError(
                f"large_threshold must be in [50, 250], not {self.large_threshold}"
            )

    def to_payload(self) -> dict[str, Any]:
        """Return the IDENTIFY frame (it holds the token: never log it)."""
        d: dict[str, Any] = {
            "token": self.token.reveal(),
            "intents": int(self.intents),
            "properties": {**default_properties(), **self.properties},
            "large_threshold": self.large_threshold,
        }
        if self.shard is not None:
            d["shard"] = list(self.shard)
        if self.presence is not None:
            d["presence"] = dict(self.presence)
        return {"op": int(Opcode.IDENTIFY), "d": d}

    def privileged_intent_names(self) -> tuple[str, ...]:
        """Return the names of the privileged intents asked for."""
        return tuple(
            flag.name or str(flag.value)
            for flag in Intents
            if flag & PRIVILEGED_INTENTS == flag and self.intents & flag
        )


def redact_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``payload`` fit for logs: ``d.token`` becomes ``"***"``.

    IDENTIFY and RESUME carry the token in ``d``; nothing else does.
    """
    redacted = dict(payload)
    d = redacted.get("d")
    if isinstance(d, Mapping) and "token" in d:
        redacted["d"] = {**d, "token": _REDACTED}
    return redacted


# Events


@dataclass(frozen=True, slots=True)
class IdentifyRequired:
    """HELLO arrived and no session is kept: identify when the bucket allows.

    The driver waits for its identify-bucket slot, then calls
    :meth:`GatewayProtocol.send_identify`. Heartbeats go on meanwhile.
    """


@dataclass(frozen=True, slots=True)
class Dispatch:
    """A dispatch (op 0) in the order received, READY and RESUMED included.

    Attributes:
        name: the dispatch name (``t``), like ``"GUILD_CREATE"``.
        seq: its sequence number (``s``).
        data: its ``d``, as decoded.
    """

    name: str
    seq: int | None
    data: Any


@dataclass(frozen=True, slots=True)
class SessionReady:
    """The handshake completed: READY (``resumed`` False) or RESUMED (True).

    Emitted right after the :class:`Dispatch` of READY or RESUMED.
    """

    session_id: str
    resumed: bool


@dataclass(frozen=True, slots=True)
class HeartbeatAcked:
    """The outstanding heartbeat was acknowledged after ``latency_s`` seconds."""

    latency_s: float


@dataclass(frozen=True, slots=True)
class CloseRequested:
    """Close this connection, then reconnect after at least ``delay_s`` seconds.

    After this event the protocol sends nothing more on the connection.

    Attributes:
        code: the close code to send (4000, so that the session survives).
        reason: why, for logs and the close frame.
        recovery: what the next connection will do.
        delay_s: the wait the protocol asks for before reconnecting (op 9:
            1 to 5 s; otherwise 0). Backoff may add to it.
    """

    code: int
    reason: str
    recovery: Recovery
    delay_s: float


#: Everything :meth:`GatewayProtocol.events` returns.
ProtocolEvent: TypeAlias = (
    IdentifyRequired | Dispatch | SessionReady | HeartbeatAcked | CloseRequested
)


# States and transitions


class ConnectionState(enum.Enum):
    """The state of the current connection."""

    #: No connection (before the first, between two, or after the last).
    DISCONNECTED = "disconnected"
    #: Socket open; nothing may be sent until HELLO.
    AWAITING_HELLO = "awaiting hello"
    #: HELLO received; heartbeating; waiting for the identify slot. With a
    #: session kept, RESUME is sent at once and this state is left directly.
    AWAITING_IDENTIFY = "awaiting identify"
    #: IDENTIFY sent; waiting for READY.
    IDENTIFYING = "identifying"
    #: RESUME sent; replayed dispatches arrive, then RESUMED.
    RESUMING = "resuming"
    #: The session is running: commands may be sent.
    CONNECTED = "connected"
    #: A close was requested; nothing is sent and received payloads are
    #: ignored (a resume replays any dispatch).
    CLOSING = "closing"


class _Input(enum.Enum):
    OPEN = "connection_opened"
    PAYLOAD = "receive_payload"
    HELLO = "HELLO"
    IDENTIFY = "send_identify"
    RESUME = "RESUME"
    READY = "READY"
    RESUMED = "RESUMED"
    COMMAND = "send_command"
    CLOSE = "close request"
    CLOSED = "connection_closed"


_S = ConnectionState
_I = _Input

#: (state, input) -> next state. Anything missing is not allowed.
_TRANSITIONS: Final[dict[tuple[ConnectionState, _Input], ConnectionState]] = {
    (_S.DISCONNECTED, _I.OPEN): _S.AWAITING_HELLO,
    (_S.AWAITING_HELLO, _I.HELLO): _S.AWAITING_IDENTIFY,
    (_S.AWAITING_IDENTIFY, _I.IDENTIFY): _S.IDENTIFYING,
    (_S.AWAITING_IDENTIFY, _I.RESUME): _S.RESUMING,
    (_S.IDENTIFYING, _I.READY): _S.CONNECTED,
    (_S.RESUMING, _I.RESUMED): _S.CONNECTED,
    (_S.CONNECTED, _I.COMMAND): _S.CONNECTED,
    # Payloads may arrive whenever a socket is open.
    (_S.AWAITING_HELLO, _I.PAYLOAD): _S.AWAITING_HELLO,
    (_S.AWAITING_IDENTIFY, _I.PAYLOAD): _S.AWAITING_IDENTIFY,
    (_S.IDENTIFYING, _I.PAYLOAD): _S.IDENTIFYING,
    (_S.RESUMING, _I.PAYLOAD): _S.RESUMING,
    (_S.CONNECTED, _I.PAYLOAD): _S.CONNECTED,
    (_S.CLOSING, _I.PAYLOAD): _S.CLOSING,
    # The protocol may ask to close any open connection once.
    (_S.AWAITING_HELLO, _I.CLOSE): _S.CLOSING,
    (_S.AWAITING_IDENTIFY, _I.CLOSE): _S.CLOSING,
    (_S.IDENTIFYING, _I.CLOSE): _S.CLOSING,
    (_S.RESUMING, _I.CLOSE): _S.CLOSING,
    (_S.CONNECTED, _I.CLOSE): _S.CLOSING,
    # A socket can end in any state.
    (_S.AWAITING_HELLO, _I.CLOSED): _S.DISCONNECTED,
    (_S.AWAITING_IDENTIFY, _I.CLOSED): _S.DISCONNECTED,
    (_S.IDENTIFYING, _I.CLOSED): _S.DISCONNECTED,
    (_S.RESUMING, _I.CLOSED): _S.DISCONNECTED,
    (_S.CONNECTED, _I.CLOSED): _S.DISCONNECTED,
    (_S.CLOSING, _I.CLOSED): _S.DISCONNECTED,
}

# States with a HELLO behind them and no close requested: heartbeats run.
_HEARTBEATING: Final[frozenset[ConnectionState]] = frozenset(
    {_S.AWAITING_IDENTIFY, _S.IDENTIFYING, _S.RESUMING, _S.CONNECTED}
)
# States in which dispatches belong to a session.
_SESSION_STATES: Final[frozenset[ConnectionState]] = frozenset(
    {_S.IDENTIFYING, _S.RESUMING, _S.CONNECTED}
)


class _ShardLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes every message with the shard id."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = self.extra or {}
        return f"[shard {extra['shard_id']}] {msg}", kwargs


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


class GatewayProtocol:
    """Discord's gateway protocol for one shard, with no I/O.

    Args:
        identify: what IDENTIFY sends.
        rng: the source of heartbeat jitter and op 9 waits.
        hello_timeout_s: how long to wait for HELLO after the socket opens.
        send_limit: frames allowed per send window.
        send_window_s: the send window, in seconds.
        heartbeat_reserve: slots of each window only heartbeats may use.

    Raises:
        ValueError: a limit out of range.
        LocalProtocolError: the IDENTIFY frame would exceed 4096 bytes.
    """

    def __init__(
        self,
        identify: IdentifyParams,
        *,
        rng: random.Random,
        hello_timeout_s: float = 20.0,
        send_limit: int = 120,
        send_window_s: float = 60.0,
        heartbeat_reserve: int = 5,
    ) -> None:
        if not hello_timeout_s > 0:
            raise ValueError(f"hello_timeout_s must be positive, not {hello_timeout_s}")
        # Checks the limits once, here, rather than on the first connection.
        SendWindow(send_limit, send_window_s, heartbeat_reserve)
        self._check_size(identify.to_payload(), "IDENTIFY")

        # Configuration.
        self._identify = identify
        self._rng = rng
        self._hello_timeout_s = hello_timeout_s
        self._send_limit = send_limit
        self._send_window_s = send_window_s
        self._heartbeat_reserve = heartbeat_reserve
        self._log: logging.Logger | _ShardLogger = logger
        self._payload_log: logging.Logger | _ShardLogger = payload_logger
        if identify.shard is not None:
            extra = {"shard_id": identify.shard[0]}
            self._log = _ShardLogger(logger, extra)
            self._payload_log = _ShardLogger(payload_logger, extra)

        # The session; it outlives connections.
        self._session_id: str | None = None
        self._seq: int | None = None
        self._resume_url: str | None = None
        # Commands waiting for the send window, oldest first; they outlive
        # connections so that none is lost when one ends.
        self._commands: deque[dict[str, Any]] = deque()
        # The latest time seen.
        self._now = float("-inf")
        # The last measured heartbeat latency.
        self._latency_s: float | None = None

        # The connection.
        self._state = ConnectionState.DISCONNECTED
        self._window = SendWindow(send_limit, send_window_s, heartbeat_reserve)
        # When HELLO is overdue (AWAITING_HELLO only).
        self._hello_deadline: float | None = None
        # The heartbeat interval from HELLO, in seconds.
        self._interval_s: float | None = None
        # When the next heartbeat is due.
        self._next_beat_at: float | None = None
        # When the outstanding heartbeat was sent; None when none is.
        self._beat_sent_at: float | None = None
        # A heartbeat waits for the send window; `_beat_requested` when it
        # answers a server's op 1.
        self._beat_queued = False
        self._beat_requested = False
        # IDENTIFY or RESUME waiting for the send window.
        self._handshake: dict[str, Any] | None = None
        # What the protocol asked for when it requested a close.
        self._close_recovery: Recovery | None = None
        # The typed error after a fatal close code.
        self._fatal: FatalCloseError | None = None
        # Kinds of bad payload already warned about on this connection.
        self._warned: set[str] = set()

        # Outputs, drained by the driver.
        self._outbox: list[dict[str, Any]] = []
        self._events: list[ProtocolEvent] = []

    # Session

    @property
    def session_id(self) -> str | None:
        """The session to resume, or None."""
        return self._session_id

    @property
    def seq(self) -> int | None:
        """The last dispatch sequence number of the session, or None."""
        return self._seq

    @property
    def resume_url(self) -> str | None:
        """READY's ``resume_gateway_url``, until dropped or forgotten."""
        return self._resume_url

    def has_session(self) -> bool:
        """Return whether a session is kept: the next connection resumes."""
        return self._session_id is not None

    def connect_url(self, gateway_url: str, *, compress: str | None = None) -> str:
        """Return the URL of the next connection.

        The resume URL when a session is kept and has one, else
        ``gateway_url``; either way with the query
        ``?v=10&encoding=json[&compress=...]`` replacing any query it had.

        Args:
            gateway_url: the URL from ``GET /gateway/bot``.
            compress: ``"zlib-stream"``, ``"zstd-stream"`` or None.

        Raises:
            ValueError: an unknown ``compress`` value.
        """
        if compress not in _COMPRESSIONS:
            raise ValueError(f"unknown transport compression {compress!r}")

        url = gateway_url
        if self.has_session() and self._resume_url is not None:
            url = self._resume_url

        query = [("v", str(API_VERSION)), ("encoding", "json")]
        if compress is not None:
            query.append(("compress", compress))
        parts = urlsplit(url)
        return urlunsplit(
            (parts.scheme, parts.netloc, parts.path or "/", urlencode(query), "")
        )

    def drop_resume_url(self) -> None:
        """Resume through the main gateway URL: the resume URL failed to connect."""
        if self._resume_url is not None:
            self._log.info("dropping the resume URL; resuming through the main one")
            self._resume_url = None

    def forget_session(self) -> None:
        """Forget the session: the next connection identifies afresh."""
        if self._session_id is not None:
            self._log.info("forgetting session %s", self._session_id)
        self._session_id = None
        self._seq = None
        self._resume_url = None

    def restore_session(
        self, session_id: str, seq: int | None, resume_url: str | None
    ) -> None:
        """Keep a session saved earlier (by another process, say): the next
        connection resumes it.

        If the gateway no longer knows the session, it answers the RESUME with op 9
        and the protocol falls back to IDENTIFY as for any lost session.

        Args:
            session_id: the session's id, from its READY.
            seq: the last dispatch seq handled in it.
            resume_url: READY's ``resume_gateway_url``, or None for the main URL.

        Raises:
            LocalProtocolError: a connection is open (restore between connections).
            ValueError: an empty ``session_id`` or a negative ``seq``.
        """
        if self._state is not _S.DISCONNECTED:
            raise LocalProtocolError(
                f"cannot restore a session in state {self._state.name}; "
                "restore it before the connection opens"
            )
        if not session_id:
            raise ValueError("session_id must not be empty")
        if seq is not None and seq < 0:
            raise ValueError(f"seq must not be negative, not {seq}")
        self._session_id = session_id
        self._seq = seq
        self._resume_url = resume_url
        self._log.info("restored session %s at seq %s", session_id, seq)

    # State

    @property
    def state(self) -> ConnectionState:
        """The state of the current connection."""
        return self._state

    @property
    def latency_s(self) -> float | None:
        """The last heartbeat round trip in seconds, or None before the first."""
        return self._latency_s

    @property
    def heartbeat_interval_s(self) -> float | None:
        """The heartbeat interval of the current connection, once HELLO came."""
        return self._interval_s

    @property
    def queued_commands(self) -> int:
        """How many commands wait for the send window or the next handshake."""
        return len(self._commands)

    def fatal_error(self) -> FatalCloseError | None:
        """Return the typed error for the fatal close code of the last connection.

        None unless :meth:`connection_closed` returned :attr:`Recovery.FATAL`.
        """
        return self._fatal

    # Inputs: the connection

    def connection_opened(self, now: float) -> None:
        """A new socket is open: wait for HELLO, for ``hello_timeout_s`` at most.

        Raises:
            LocalProtocolError: the previous connection was not closed.
        """
        now = self._advance(now)
        self._apply(_I.OPEN)

        self._window = SendWindow(
            self._send_limit, self._send_window_s, self._heartbeat_reserve
        )
        self._hello_deadline = now + self._hello_timeout_s
        self._interval_s = None
        self._next_beat_at = None
        self._beat_sent_at = None
        self._beat_queued = False
        self._beat_requested = False
        self._handshake = None
        self._close_recovery = None
        self._fatal = None
        self._warned.clear()

    def connection_closed(
        self, code: int | None, now: float, *, reason: str = ""
    ) -> Recovery:
        """The socket ended: decide what the next connection does.

        Applies the close-code policy (:data:`~tether.gateway.opcodes.CLOSE_POLICY`).
        When the protocol had asked for the close, the stricter of its request
        and the code's policy wins (so 4004 is still fatal and 1000 still ends
        the session). Without a session to resume the answer is IDENTIFY.

        Args:
            code: the close code of the closing handshake, or None when the
                connection dropped without a close frame.
            now: the current time.
            reason: the close reason, kept in the fatal error.

        Returns:
            RESUME, IDENTIFY (the session is forgotten) or FATAL (see
            :meth:`fatal_error`; the session is forgotten too).

        Raises:
            LocalProtocolError: no connection was open.
        """
        self._advance(now)
        self._apply(_I.CLOSED)

        recovery = recovery_for(code)
        requested = self._close_recovery
        if requested is not None and _STRICTNESS[requested] > _STRICTNESS[recovery]:
            recovery = requested

        self._return_unsent_commands()
        self._hello_deadline = None
        self._next_beat_at = None
        self._beat_sent_at = None
        self._beat_queued = False
        self._handshake = None
        self._close_recovery = None

        if recovery is Recovery.FATAL:
            assert code is not None
            self._fatal = self._fatal_error_for(code, reason)
            self.forget_session()
            if self._commands:
                self._log.warning(
                    "discarding %d queued commands: the gateway closed with fatal "
                    "code %d",
                    len(self._commands),
                    code,
                )
                self._commands.clear()
        elif recovery is Recovery.IDENTIFY or not self.has_session():
            if self.has_session():
                self._log.info(
                    "close code %s ends the session; the next connection identifies",
                    code,
                )
            self.forget_session()
            recovery = Recovery.IDENTIFY

        self._log.debug("connection closed with %s: %s", code, recovery.value)
        return recovery

    # Inputs: time

    def tick(self, now: float) -> None:
        """Run the timers that are due at ``now`` (any state; no-op when idle)."""
        now = self._advance(now)

        if self._state is _S.AWAITING_HELLO:
            assert self._hello_deadline is not None
            if now >= self._hello_deadline:
                self._request_close(
                    f"no HELLO within {self._hello_timeout_s:g} s",
                    self._retry_recovery(),
                    0.0,
                    logging.WARNING,
                )
                return

        if self._state in _HEARTBEATING:
            assert self._next_beat_at is not None and self._interval_s is not None
            if now >= self._next_beat_at:
                if self._beat_sent_at is not None:
                    self._request_close(
                        "zombied connection: the last heartbeat was not acknowledged",
                        self._retry_recovery(),
                        0.0,
                        logging.WARNING,
                    )
                    return
                self._beat_queued = True
                # Keep the cadence; after a clock jump, count from now.
                due = self._next_beat_at + self._interval_s
                self._next_beat_at = due if due > now else now + self._interval_s

        self._flush()

    # Inputs: payloads

    def receive_payload(self, payload: Mapping[str, Any], now: float) -> None:
        """Handle one decoded payload from the gateway.

        Payloads that break the protocol are logged (WARNING, once per kind and
        connection) and ignored.

        Raises:
            LocalProtocolError: no connection is open.
        """
        self._advance(now)
        self._apply(_I.PAYLOAD)

        op = payload.get("op")
        self._log.debug(
            "received op=%s t=%s s=%s", op, payload.get("t"), payload.get("s")
        )
        if self._payload_log.isEnabledFor(logging.DEBUG):
            self._payload_log.debug("received %s", redact_payload(payload))

        if self._state is _S.CLOSING:
            return
        opcode = _OPCODES.get(op) if _is_int(op) else None
        if opcode is None:
            self._warn_once(f"op:{op!r}", "received unknown opcode %r; ignored", op)
            return

        match opcode:
            case Opcode.HELLO:
                self._on_hello(payload.get("d"))
            case Opcode.HEARTBEAT:
                self._on_heartbeat_request()
            case Opcode.HEARTBEAT_ACK:
                self._on_heartbeat_ack()
            case Opcode.DISPATCH:
                self._on_dispatch(payload)
            case Opcode.RECONNECT:
                self._on_reconnect()
            case Opcode.INVALID_SESSION:
                self._on_invalid_session(payload.get("d"))
            case _:
                self._warn_once(
                    f"op:{op!r}",
                    "received client-only opcode %d (%s); ignored",
                    opcode,
                    opcode.name,
                )

        self._flush()

    def _on_hello(self, d: object) -> None:
        if self._state is not _S.AWAITING_HELLO:
            self._warn_once(
                "hello", "received HELLO in state %s; ignored", self._state.name
            )
            return
        interval_ms = d.get("heartbeat_interval") if isinstance(d, Mapping) else None
        if (
            not isinstance(interval_ms, int | float)
            or isinstance(interval_ms, bool)
            or not math.isfinite(interval_ms)
            or interval_ms <= 0
        ):
            self._warn_once(
                "hello-interval",
                "received HELLO with heartbeat_interval %r; ignored",
                interval_ms,
            )
            return

        self._apply(_I.HELLO)
        now = self._now
        self._hello_deadline = None
        self._interval_s = interval_ms / 1000
        if self._interval_s > _MAX_HEARTBEAT_INTERVAL_S:
            # A server that asks for (almost) no heartbeats would leave a zombie
            # connection undetected for as long.
            self._warn_once(
                "hello-interval-long",
                "HELLO asked for a heartbeat every %.0f s; beating every %.0f s",
                self._interval_s,
                _MAX_HEARTBEAT_INTERVAL_S,
            )
            self._interval_s = _MAX_HEARTBEAT_INTERVAL_S
        self._next_beat_at = now + self._interval_s * self._rng.random()

        if self._session_id is None:
            self._events.append(IdentifyRequired())
            return
        self._apply(_I.RESUME)
        self._handshake = {
            "op": int(Opcode.RESUME),
            "d": {
                "token": self._identify.token.reveal(),
                "session_id": self._session_id,
                "seq": self._seq,
            },
        }
        self._log.info("resuming session %s at seq %s", self._session_id, self._seq)

    def _on_heartbeat_request(self) -> None:
        if self._state not in _HEARTBEATING:
            self._warn_once(
                "heartbeat-early", "received op 1 before HELLO; nothing is sent yet"
            )
            return
        if not self._beat_queued:
            self._beat_queued = True
            self._beat_requested = True

    def _on_heartbeat_ack(self) -> None:
        if self._beat_sent_at is None:
            self._log.debug("received a heartbeat ACK with no heartbeat outstanding")
            return
        self._latency_s = self._now - self._beat_sent_at
        self._beat_sent_at = None
        self._events.append(HeartbeatAcked(self._latency_s))

    def _on_dispatch(self, payload: Mapping[str, Any]) -> None:
        if self._state not in _SESSION_STATES:
            self._warn_once(
                "dispatch-early",
                "received a dispatch before IDENTIFY or RESUME (state %s); ignored",
                self._state.name,
            )
            return
        name = payload.get("t")
        seq = payload.get("s")
        data = payload.get("d")
        if not isinstance(name, str) or not (seq is None or _is_int(seq)):
            self._warn_once(
                "dispatch-shape",
                "received a dispatch with t=%r s=%r; ignored",
                name,
                seq,
            )
            return

        if name == "READY":
            self._on_ready(seq, data)
        elif self._state is _S.IDENTIFYING:
            # A new session begins with READY: nothing can come before it, and
            # what did would belong to no session.
            self._warn_once(
                "dispatch-before-ready",
                "received %s before READY; ignored",
                name,
            )
        elif name == "RESUMED":
            self._on_resumed(seq, data)
        elif seq is not None and self._seq is not None and seq <= self._seq:
            self._warn_once(
                "dispatch-stale",
                "received %s with seq %d, not above %d: a duplicate; dropped",
                name,
                seq,
                self._seq,
            )
        else:
            if seq is not None:
                self._seq = seq
            self._events.append(Dispatch(name, seq, data))

    def _on_ready(self, seq: int | None, data: object) -> None:
        session_id = data.get("session_id") if isinstance(data, Mapping) else None
        if self._state is not _S.IDENTIFYING:
            self._warn_once(
                "ready", "received READY in state %s; ignored", self._state.name
            )
            return
        if not isinstance(session_id, str) or seq is None:
            self._warn_once(
                "ready-shape", "received READY without session_id or seq; ignored"
            )
            return
        assert isinstance(data, Mapping)
        resume_url = data.get("resume_gateway_url")

        self._session_id = session_id
        self._seq = seq
        self._resume_url = resume_url if isinstance(resume_url, str) else None
        self._apply(_I.READY)
        self._events.append(Dispatch("READY", seq, data))
        self._events.append(SessionReady(session_id, resumed=False))

    def _on_resumed(self, seq: int | None, data: object) -> None:
        if self._state is not _S.RESUMING:
            self._warn_once(
                "resumed", "received RESUMED in state %s; ignored", self._state.name
            )
            return
        assert self._session_id is not None

        if seq is not None and (self._seq is None or seq > self._seq):
            self._seq = seq
        self._apply(_I.RESUMED)
        self._events.append(Dispatch("RESUMED", seq, data))
        self._events.append(SessionReady(self._session_id, resumed=True))

    def _on_reconnect(self) -> None:
        self._request_close(
            "the gateway asked for a reconnect (op 7)",
            self._retry_recovery(),
            0.0,
            logging.INFO,
        )

    def _on_invalid_session(self, d: object) -> None:
        delay_s = self._rng.uniform(*_INVALID_SESSION_DELAY_S)
        if d is True and self.has_session():
            recovery = Recovery.RESUME
        else:
            self.forget_session()
            recovery = Recovery.IDENTIFY
        self._request_close(
            f"invalid session (op 9, resumable={d is True})",
            recovery,
            delay_s,
            logging.WARNING,
        )

    # Inputs: commands

    def send_identify(self, now: float) -> None:
        """Send IDENTIFY: the driver got this shard's identify-bucket slot.

        The frame appears in :meth:`frames_to_send` (normally at once; after
        HELLO only heartbeats can have used the send window).

        Raises:
            LocalProtocolError: the state is not AWAITING_IDENTIFY (no HELLO
                yet, already identified or resuming, or the connection ended).
        """
        self._advance(now)
        self._apply(_I.IDENTIFY)

        # A new session numbers its dispatches afresh.
        self._seq = None
        self._handshake = self._identify.to_payload()
        self._log.info("identifying with intents %d", int(self._identify.intents))
        self._flush()

    def send_command(self, op: Opcode, d: Any, now: float) -> None:
        """Queue a command (op 3, 4, 8, 31 or 43) under the send window.

        Commands go out in order as the window allows, keeping the heartbeat
        reserve free; none is dropped. Commands still queued when the
        connection ends go out after the next handshake.

        Raises:
            LocalProtocolError: the session is not running (state is not
                CONNECTED), the opcode is not a command, or the frame is not
                JSON or is over 4096 bytes.
        """
        self._advance(now)
        if op not in COMMAND_OPCODES:
            raise LocalProtocolError(f"opcode {op!r} is not a command one may send")
        frame = {"op": int(op), "d": d}
        self._check_size(frame, Opcode(op).name)
        self._apply(_I.COMMAND)

        self._commands.append(frame)
        self._flush()

    # Outputs

    def frames_to_send(self) -> list[dict[str, Any]]:
        """Drain the frames to send now, in order (the send window allowed them).

        IDENTIFY and RESUME frames hold the token: log them only through
        :func:`redact_payload`.
        """
        frames, self._outbox = self._outbox, []
        return frames

    def events(self) -> list[ProtocolEvent]:
        """Drain the events produced since the last call, in order."""
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> float | None:
        """Return when :meth:`tick` must next run, or None when no timer runs.

        The earliest of the HELLO timeout, the next heartbeat and, when frames
        wait for the send window, the time it reopens.
        """
        if self._state is _S.AWAITING_HELLO:
            return self._hello_deadline
        if self._state not in _HEARTBEATING:
            return None

        deadline = self._next_beat_at
        waiting = self._beat_queued or self._handshake is not None
        if waiting or (self._state is _S.CONNECTED and self._commands):
            reopens = self._window.next_free(self._now, heartbeat=self._beat_queued)
            deadline = reopens if deadline is None else min(deadline, reopens)
        return deadline

    # Internals

    def _advance(self, now: float) -> float:
        self._now = max(self._now, now)
        return self._now

    def _apply(self, event: _Input) -> None:
        """Move to the state the table gives, or raise."""
        new = _TRANSITIONS.get((self._state, event))
        if new is None:
            raise LocalProtocolError(
                f"{event.value} is not allowed in state {self._state.name}"
            )
        if new is not self._state:
            self._log.debug(
                "state %s -> %s (%s)", self._state.name, new.name, event.value
            )
            self._state = new

    def _retry_recovery(self) -> Recovery:
        return Recovery.RESUME if self.has_session() else Recovery.IDENTIFY

    def _request_close(
        self, reason: str, recovery: Recovery, delay_s: float, level: int
    ) -> None:
        self._apply(_I.CLOSE)
        self._close_recovery = recovery
        self._return_unsent_commands()
        self._beat_queued = False
        self._handshake = None
        self._log.log(
            level,
            "closing the connection: %s; will %s after %.1f s",
            reason,
            recovery.value,
            delay_s,
        )
        self._events.append(
            CloseRequested(REQUESTED_CLOSE_CODE, reason, recovery, delay_s)
        )

    def _return_unsent_commands(self) -> None:
        """Put commands the driver has not drained back at the head of the queue."""
        unsent = [frame for frame in self._outbox if frame["op"] in COMMAND_OPCODES]
        self._outbox.clear()
        self._commands.extendleft(reversed(unsent))

    def _flush(self) -> None:
        """Move what the send window allows to the outbox: heartbeat first."""
        if self._state not in _HEARTBEATING:
            return
        now = self._now

        if self._beat_queued:
            if not self._window.try_acquire(now, heartbeat=True):
                return
            self._beat_queued = False
            if self._beat_sent_at is None:
                self._beat_sent_at = now
                if self._beat_requested:
                    assert self._interval_s is not None
                    self._next_beat_at = now + self._interval_s
            self._beat_requested = False
            self._emit({"op": int(Opcode.HEARTBEAT), "d": self._seq})

        if self._handshake is not None:
            if not self._window.try_acquire(now):
                return
            frame, self._handshake = self._handshake, None
            self._emit(frame)

        if self._state is _S.CONNECTED:
            while self._commands and self._window.try_acquire(now):
                self._emit(self._commands.popleft())

    def _emit(self, frame: dict[str, Any]) -> None:
        self._log.debug("sending op=%d", frame["op"])
        if self._payload_log.isEnabledFor(logging.DEBUG):
            self._payload_log.debug("sending %s", redact_payload(frame))
        self._outbox.append(frame)

    def _warn_once(self, kind: str, msg: str, *args: object) -> None:
        """Log a bad payload at WARNING the first time per connection."""
        level = logging.DEBUG if kind in self._warned else logging.WARNING
        self._warned.add(kind)
        self._log.log(level, msg, *args)

    def _fatal_error_for(self, code: int, reason: str) -> FatalCloseError:
        cls = _FATAL_ERRORS.get(code, FatalCloseError)
        if cls is DisallowedIntentsError:
            privileged = self._identify.privileged_intent_names()
            return DisallowedIntentsError(code, reason, privileged=privileged)
        return cls(code, reason)

    @staticmethod
    def _check_size(frame: Mapping[str, Any], what: str) -> None:
        try:
            size = len(encode(frame).encode())
        except TypeError as exc:
            raise LocalProtocolError(f"{what} frame is not JSON: {exc}") from exc
        if size > MAX_PAYLOAD_BYTES:
            raise LocalProtocolError(
                f"{what} frame is {size} bytes; the gateway closes the connection "
                f"on frames over {MAX_PAYLOAD_BYTES} bytes"
            )

    def __repr__(self) -> str:
        return (
            f"GatewayProtocol(state={self._state.name}, "
            f"session_id={self._session_id!r}, seq={self._seq})"
        )
