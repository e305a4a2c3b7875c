"""The RPC connection's state machine, with no I/O: bytes and time in, bytes out.

How it works
------------
One :class:`RPCProtocol` lives for one IPC connection (Discord's local RPC, see
PROTOCOL.md section 8). The driver feeds it what happens and drains what it wants
done; the protocol never reads a clock, a socket or an event loop.

States (one table, :data:`TRANSITIONS`)::

    IDLE --opened--> HANDSHAKING --READY dispatch--> READY
                          |                            |
                          +-- CLOSE sent or received, -+--> CLOSING --lost--> CLOSED
                              or a malformed frame

Inputs: :meth:`connection_opened`, :meth:`receive_data`, :meth:`send_command`,
:meth:`send_close`, :meth:`tick`, :meth:`connection_closed`.
Outputs, drained after every input: :meth:`data_to_send`, :meth:`events`,
:meth:`next_deadline`.

Invariants:

* The HANDSHAKE frame is the first thing sent; no command is sent before READY
  (:class:`~tether.errors.LocalProtocolError` otherwise) or after CLOSE.
* Every command sent gets exactly one outcome event: :class:`CommandCompleted`,
  :class:`CommandFailed` (an ERROR answer), :class:`CommandExpired` (its deadline
  passed first) or :class:`CommandLost` (the connection ended first).
* A PING is answered with a PONG carrying the same body, in any open state.
* A peer fault (bytes that are not a frame, a body over the cap, an unknown opcode,
  a frame cut short by the end of the stream) produces one :class:`ConnectionFailed`
  and the protocol stops reading: the connection is to be dropped.
* What a CLOSE code means is data (:data:`CLOSE_POLICY`).
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from tether.errors import LocalProtocolError, RemoteProtocolError
from tether.rpc.errors import MalformedFrameError
from tether.rpc.framing import (
    DEFAULT_MAX_FRAME_SIZE,
    Frame,
    FrameReader,
    Opcode,
    encode_frame,
)

__all__ = [
    "CLOSE_POLICY",
    "RPC_VERSION",
    "TRANSITIONS",
    "redact",
    "CloseReceived",
    "CommandCompleted",
    "CommandExpired",
    "CommandFailed",
    "CommandLost",
    "ConnectionFailed",
    "ConnectionState",
    "DispatchReceived",
    "ProtocolEvent",
    "RPCProtocol",
    "ReadyReceived",
    "Recovery",
    "RPCCloseCode",
    "RPCErrorCode",
]

logger = logging.getLogger(__name__)
payload_logger = logging.getLogger("tether.rpc.payloads")

#: The RPC version sent in the handshake.
RPC_VERSION: Final = 1

# Keys whose values are secrets: never logged.
_SECRET_KEYS: Final = frozenset({"access_token", "rpc_token", "code"})


class RPCCloseCode(enum.IntEnum):
    """CLOSE codes, as Discord names them."""

    INVALID_CLIENT_ID = 4000
    INVALID_ORIGIN = 4001
    RATE_LIMITED = 4002
    TOKEN_REVOKED = 4003
    INVALID_VERSION = 4004
    INVALID_ENCODING = 4005


class RPCErrorCode(enum.IntEnum):
    """Error codes of ERROR answers, as Discord names them."""

    UNKNOWN_ERROR = 1000
    INVALID_PAYLOAD = 4000
    INVALID_COMMAND = 4002
    INVALID_GUILD = 4003
    INVALID_EVENT = 4004
    INVALID_CHANNEL = 4005
    INVALID_PERMISSIONS = 4006
    INVALID_CLIENT_ID = 4007
    INVALID_ORIGIN = 4008
    INVALID_TOKEN = 4009
    INVALID_USER = 4010
    OAUTH2_ERROR = 5000
    SELECT_CHANNEL_TIMED_OUT = 5001
    GET_GUILD_TIMED_OUT = 5002
    SELECT_VOICE_FORCE_REQUIRED = 5003
    CAPTURE_SHORTCUT_ALREADY_LISTENING = 5004


class Recovery(enum.Enum):
    """What follows a CLOSE from the app."""

    #: Reconnect with the usual backoff.
    RECONNECT = "reconnect"
    #: Reconnect, after a longer wait.
    RECONNECT_LATER = "reconnect later"
    #: Reconnect, without re-authenticating with the access token (it is dead).
    FORGET_TOKEN = "forget the access token"
    #: Stop: retrying cannot help.
    FATAL = "fatal"


#: What each CLOSE code means. Codes not listed (1000 when the app quits, any
#: other) mean :attr:`Recovery.RECONNECT`.
CLOSE_POLICY: Final[Mapping[int, Recovery]] = {
    RPCCloseCode.INVALID_CLIENT_ID: Recovery.FATAL,
    RPCCloseCode.INVALID_ORIGIN: Recovery.FATAL,
    RPCCloseCode.RATE_LIMITED: Recovery.RECONNECT_LATER,
    RPCCloseCode.TOKEN_REVOKED: Recovery.FORGET_TOKEN,
    RPCCloseCode.INVALID_VERSION: Recovery.FATAL,
    RPCCloseCode.INVALID_ENCODING: Recovery.FATAL,
}


class ConnectionState(enum.Enum):
    """Where one connection is in its life."""

    IDLE = "idle"
    HANDSHAKING = "handshaking"
    READY = "ready"
    CLOSING = "closing"
    CLOSED = "closed"


class _Input(enum.Enum):
    OPENED = "opened"
    READY_RECEIVED = "READY received"
    CLOSE_SENT = "CLOSE sent"
    CLOSE_RECEIVED = "CLOSE received"
    FAILED = "peer fault"
    LOST = "connection lost"


_S = ConnectionState
#: Every allowed transition: (state, input) -> next state.
TRANSITIONS: Final[Mapping[tuple[ConnectionState, _Input], ConnectionState]] = {
    (_S.IDLE, _Input.OPENED): _S.HANDSHAKING,
    (_S.IDLE, _Input.LOST): _S.CLOSED,
    (_S.HANDSHAKING, _Input.READY_RECEIVED): _S.READY,
    (_S.HANDSHAKING, _Input.CLOSE_SENT): _S.CLOSING,
    (_S.HANDSHAKING, _Input.CLOSE_RECEIVED): _S.CLOSING,
    (_S.HANDSHAKING, _Input.FAILED): _S.CLOSING,
    (_S.HANDSHAKING, _Input.LOST): _S.CLOSED,
    (_S.READY, _Input.CLOSE_SENT): _S.CLOSING,
    (_S.READY, _Input.CLOSE_RECEIVED): _S.CLOSING,
    (_S.READY, _Input.FAILED): _S.CLOSING,
    (_S.READY, _Input.LOST): _S.CLOSED,
    (_S.CLOSING, _Input.CLOSE_RECEIVED): _S.CLOSING,
    (_S.CLOSING, _Input.LOST): _S.CLOSED,
}

# States in which frames are read and answered.
_OPEN_STATES: Final = frozenset({_S.HANDSHAKING, _S.READY})


# Events (outputs)


@dataclass(frozen=True, slots=True)
class ReadyReceived:
    """The handshake completed: the READY dispatch's ``data``."""

    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CommandCompleted:
    """A command's answer arrived."""

    nonce: str
    cmd: str
    data: Any


@dataclass(frozen=True, slots=True)
class CommandFailed:
    """A command was answered with an ERROR."""

    nonce: str
    cmd: str
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class CommandExpired:
    """A command's deadline passed before its answer; a late answer is ignored."""

    nonce: str
    cmd: str


@dataclass(frozen=True, slots=True)
class CommandLost:
    """The connection ended while a command was awaiting its answer."""

    nonce: str
    cmd: str


@dataclass(frozen=True, slots=True)
class DispatchReceived:
    """An event (``cmd`` DISPATCH) other than READY, ERROR ones included."""

    evt: str
    data: Any


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The app sent CLOSE; the socket is about to end."""

    code: int | None
    message: str
    recovery: Recovery


@dataclass(frozen=True, slots=True)
class ConnectionFailed:
    """The app broke the protocol: drop the connection."""

    error: RemoteProtocolError


ProtocolEvent = (
    ReadyReceived
    | CommandCompleted
    | CommandFailed
    | CommandExpired
    | CommandLost
    | DispatchReceived
    | CloseReceived
    | ConnectionFailed
)


@dataclass(slots=True)
class _Pending:
    cmd: str
    deadline: float


def _new_nonce() -> str:
    return str(uuid.uuid4())


def redact(payload: Any) -> Any:
    """Return ``payload`` with secret values (access tokens, OAuth2 codes) masked."""
    if isinstance(payload, Mapping):
        return {
            key: "***"
            if key in _SECRET_KEYS and isinstance(value, str)
            else redact(value)
            for key, value in payload.items()
        }
    if isinstance(payload, list):
        return [redact(item) for item in payload]
    return payload


class RPCProtocol:
    """One IPC connection's protocol state.

    Args:
        client_id: the application id sent in the handshake.
        max_frame_size: the largest frame body accepted or sent.
        nonce_factory: makes a unique nonce per command (UUID4 strings by default).
    """

    def __init__(
        self,
        client_id: str,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        nonce_factory: Callable[[], str] = _new_nonce,
    ) -> None:
        self.client_id = client_id
        self.max_frame_size = max_frame_size
        self._nonce_factory = nonce_factory
        # Where the connection is; changed only through _apply.
        self._state = ConnectionState.IDLE
        # Turns received bytes into frames; its buffer is capped by max_frame_size.
        self._reader = FrameReader(max_frame_size)
        # Commands awaiting an answer, by nonce, in the order sent.
        self._pending: dict[str, _Pending] = {}
        # Drained outputs.
        self._outgoing = bytearray()
        self._events: list[ProtocolEvent] = []
        #: Counters for tests and diagnostics.
        self.frames_received = 0
        self.frames_sent = 0
        self.pings_answered = 0

    @property
    def state(self) -> ConnectionState:
        """The connection's state."""
        return self._state

    @property
    def pending_commands(self) -> int:
        """Commands sent and awaiting their answer."""
        return len(self._pending)

    def _apply(self, event: _Input) -> None:
        try:
            state = TRANSITIONS[self._state, event]
        except KeyError:
            raise LocalProtocolError(
                f"cannot handle {event.value} in state {self._state.value}"
            ) from None
        if state is not self._state:
            logger.debug("connection: %s -> %s", self._state.value, state.value)
            self._state = state

    # Inputs

    def connection_opened(self, now: float) -> None:
        """A socket is open: queue the HANDSHAKE."""
        self._apply(_Input.OPENED)
        self._send(Opcode.HANDSHAKE, {"v": RPC_VERSION, "client_id": self.client_id})

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes arrived from the app."""
        if self._state not in _OPEN_STATES:
            # After CLOSE or a fault nothing more is trusted or needed.
            return
        try:
            for frame in self._reader.feed(data):
                self.frames_received += 1
                self._receive_frame(frame)
                if self._state not in _OPEN_STATES:
                    return
        except RemoteProtocolError as exc:
            self._fail(exc)

    def send_command(
        self,
        cmd: str,
        args: Mapping[str, Any] | None,
        *,
        deadline: float,
        now: float,
        evt: str | None = None,
    ) -> str:
        """Queue a command; return its nonce. Its outcome comes as an event.

        Raises:
            LocalProtocolError: the connection is not ready, or the frame is over
                the size cap (nothing was queued).
        """
        if self._state is not ConnectionState.READY:
            raise LocalProtocolError(f"cannot send {cmd} in state {self._state.value}")
        nonce = self._nonce_factory()
        payload: dict[str, Any] = {"cmd": cmd, "args": dict(args or {}), "nonce": nonce}
        if evt is not None:
            payload["evt"] = evt
        self._send(Opcode.FRAME, payload)
        self._pending[nonce] = _Pending(cmd, deadline)
        if deadline <= now:
            self.tick(now)
        return nonce

    def send_close(self, code: int, message: str, now: float) -> None:
        """Queue a CLOSE; nothing is sent after it."""
        if self._state in _OPEN_STATES:
            self._send(Opcode.CLOSE, {"code": code, "message": message})
            self._apply(_Input.CLOSE_SENT)

    def tick(self, now: float) -> None:
        """Time passed: expire commands whose deadline is due."""
        expired = [n for n, p in self._pending.items() if p.deadline <= now]
        for nonce in expired:
            pending = self._pending.pop(nonce)
            logger.debug("%s (nonce %s) expired", pending.cmd, nonce)
            self._events.append(CommandExpired(nonce, pending.cmd))

    def connection_closed(self, now: float) -> None:
        """The socket ended (either way). Outstanding commands are lost."""
        if self._state is ConnectionState.CLOSED:
            return
        if self._reader.buffered and self._state in _OPEN_STATES:
            self._fail(
                MalformedFrameError(
                    f"the connection ended inside a frame ({self._reader.buffered} "
                    "bytes of it received)"
                )
            )
        self._apply(_Input.LOST)
        for nonce, pending in self._pending.items():
            self._events.append(CommandLost(nonce, pending.cmd))
        self._pending.clear()

    # Outputs

    def data_to_send(self) -> bytes:
        """Return the bytes to write, and forget them."""
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data

    def events(self) -> list[ProtocolEvent]:
        """Return the events produced since the last call."""
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`tick` has work to do, if any."""
        if not self._pending:
            return None
        return min(p.deadline for p in self._pending.values())

    # Frames received

    def _receive_frame(self, frame: Frame) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("received %s (%d bytes)", frame.op.name, frame.size)
        if payload_logger.isEnabledFor(logging.DEBUG):
            payload_logger.debug("< %s %r", frame.op.name, redact(frame.payload))

        match frame.op:
            case Opcode.FRAME:
                self._receive_message(frame.payload)
            case Opcode.PING:
                self.pings_answered += 1
                self._send(Opcode.PONG, frame.payload)
            case Opcode.PONG:
                pass
            case Opcode.CLOSE:
                self._receive_close(frame.payload)
            case Opcode.HANDSHAKE:
                raise MalformedFrameError("the app sent a HANDSHAKE frame")

    def _receive_message(self, message: Any) -> None:
        if not isinstance(message, Mapping) or not isinstance(message.get("cmd"), str):
            raise MalformedFrameError("received a FRAME that is not a command object")
        cmd: str = message["cmd"]
        evt = message.get("evt")
        data = message.get("data")

        if cmd == "DISPATCH":
            if not isinstance(evt, str):
                raise MalformedFrameError("received a DISPATCH with no event name")
            if evt == "READY":
                self._receive_ready(data)
            else:
                self._events.append(DispatchReceived(evt, data))
            return

        nonce = message.get("nonce")
        if (
            not isinstance(nonce, str)
            or (pending := self._pending.pop(nonce, None)) is None
        ):
            # An answer after its command expired, or one the app made up.
            logger.debug("ignored an answer to %s with unknown nonce %r", cmd, nonce)
            return
        if evt == "ERROR":
            code, text = _error_fields(data)
            logger.debug("%s failed with %d: %s", cmd, code, text)
            self._events.append(CommandFailed(nonce, pending.cmd, code, text))
        else:
            self._events.append(CommandCompleted(nonce, pending.cmd, data))

    def _receive_ready(self, data: Any) -> None:
        if self._state is not ConnectionState.HANDSHAKING:
            logger.warning("ignored a second READY on one connection")
            return
        if not isinstance(data, Mapping):
            raise MalformedFrameError("received a READY with no data object")
        self._apply(_Input.READY_RECEIVED)
        self._events.append(ReadyReceived(data))

    def _receive_close(self, payload: Any) -> None:
        code: int | None = None
        message = ""
        if isinstance(payload, Mapping):
            raw_code = payload.get("code")
            if isinstance(raw_code, int) and not isinstance(raw_code, bool):
                code = raw_code
            raw_message = payload.get("message")
            if isinstance(raw_message, str):
                message = raw_message
        recovery = Recovery.RECONNECT if code is None else CLOSE_POLICY.get(code)
        if recovery is None:
            recovery = Recovery.RECONNECT
        self._apply(_Input.CLOSE_RECEIVED)
        self._events.append(CloseReceived(code, message, recovery))

    # Helpers

    def _send(self, op: Opcode, payload: Any) -> None:
        data = encode_frame(op, payload, max_size=self.max_frame_size)
        self._outgoing += data
        self.frames_sent += 1
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("sending %s (%d bytes)", op.name, len(data))
        if payload_logger.isEnabledFor(logging.DEBUG):
            payload_logger.debug("> %s %r", op.name, redact(payload))

    def _fail(self, error: RemoteProtocolError) -> None:
        self._apply(_Input.FAILED)
        self._events.append(ConnectionFailed(error))


def _error_fields(data: Any) -> tuple[int, str]:
    code = RPCErrorCode.UNKNOWN_ERROR.value
    message = "unknown error"
    if isinstance(data, Mapping):
        raw_code = data.get("code")
        if isinstance(raw_code, int) and not isinstance(raw_code, bool):
            code = raw_code
        raw_message = data.get("message")
        if isinstance(raw_message, str):
            message = raw_message
    return code, message
