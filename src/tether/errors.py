"""The one exception hierarchy of tether.

Every exception tether raises on purpose derives from :class:`TetherError`::

    TetherError
    ├── ProtocolError
    │   ├── LocalProtocolError        tether or the caller broke a protocol rule (a bug)
    │   └── RemoteProtocolError       the peer sent something wrong; logged and survived
    │       ├── DecodeError           a frame that is not valid JSON / not an object
    │       ├── PayloadTooLargeError  a message over the decompressed size cap
    │       └── UnknownOpcodeError    an opcode tether does not know
    ├── ConnectionFault               a retryable fault of one connection attempt
    │   ├── HandshakeTimeoutError     the attempt did not reach a session in time
    │   └── ConnectionClosedError     the peer closed or dropped the connection
    ├── FatalError                    a fault that stops the connection manager
    │   ├── FatalCloseError           a close code that must not be retried
    │   │   ├── InvalidTokenError          4004
    │   │   ├── InvalidShardError          4010
    │   │   ├── ShardingRequiredError      4011 (carries the shard count to use)
    │   │   ├── InvalidApiVersionError     4012
    │   │   ├── InvalidIntentsError        4013
    │   │   ├── DisallowedIntentsError     4014 (names the privileged intents)
    │   │   └── tether.rpc.errors.RPCFatalCloseError   the desktop app's closes
    │   └── tether.identify.SessionStartLimitError     no session start left today
    ├── ClientStateError              an API used in a state that does not allow it
    └── HTTPError                     a REST answer that is not a success
        ├── UnauthorizedError         401
        ├── ForbiddenError            403
        ├── NotFoundError             404
        ├── RateLimitedError          429 that tether was told not to wait out
        └── ServerError               5xx

Messages say what happened and what to do. No exception text ever contains a token.
"""

from __future__ import annotations

__all__ = [
    "ClientStateError",
    "ConnectionClosedError",
    "ConnectionFault",
    "DecodeError",
    "DisallowedIntentsError",
    "FatalCloseError",
    "FatalError",
    "ForbiddenError",
    "HTTPError",
    "HandshakeTimeoutError",
    "InvalidApiVersionError",
    "InvalidIntentsError",
    "InvalidShardError",
    "InvalidTokenError",
    "LocalProtocolError",
    "NotFoundError",
    "PayloadTooLargeError",
    "ProtocolError",
    "RateLimitedError",
    "RemoteProtocolError",
    "ServerError",
    "ShardingRequiredError",
    "TetherError",
    "UnauthorizedError",
    "UnknownOpcodeError",
]


class TetherError(Exception):
    """Root of every exception tether raises on purpose."""


# Protocol faults, split by whose fault it was.


class ProtocolError(TetherError):
    """A protocol rule was broken."""


class LocalProtocolError(ProtocolError):
    """tether or the calling code broke a protocol rule: a bug to fix locally."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something that breaks the protocol."""


class DecodeError(RemoteProtocolError):
    """A received frame could not be decoded into a payload."""


class PayloadTooLargeError(RemoteProtocolError):
    """A received message is larger than the configured cap once decompressed."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"a received message exceeds the {limit}-byte cap ({size} bytes or more); "
            "the connection is closed and resumed"
        )
        self.size = size
        self.limit = limit


class UnknownOpcodeError(RemoteProtocolError):
    """A received payload carries an opcode tether does not know."""

    def __init__(self, op: object) -> None:
        super().__init__(f"received unknown opcode {op!r}; the payload was ignored")
        self.op = op


# Retryable faults of a connection attempt.


class ConnectionFault(TetherError):
    """A retryable fault of one connection: the manager reconnects after it."""


class HandshakeTimeoutError(ConnectionFault):
    """The attempt did not reach an established session within its timeout."""


class ConnectionClosedError(ConnectionFault):
    """The peer closed the connection, or it dropped without a close frame."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        text = "without a close frame" if code is None else f"with code {code}"
        if reason:
            text += f" ({reason})"
        super().__init__(f"connection closed {text}")
        self.code = code
        self.reason = reason


# Fatal faults: the manager stops and never loops on these.


class FatalError(TetherError):
    """A fault that stops the connection manager: retrying cannot fix it."""


class FatalCloseError(FatalError):
    """The gateway closed with a code that must not be retried."""

    #: The close code this class stands for (0 on the base class).
    CODE: int = 0
    #: What the user should do about it.
    ADVICE: str = "check the bot's configuration"
    #: Who closed, for the message.
    CLOSED_BY: str = "the gateway closed"

    def __init__(self, code: int, reason: str = "") -> None:
        detail = f" ({reason})" if reason else ""
        super().__init__(
            f"{self.CLOSED_BY} with {code}{detail}; {self.ADVICE}. "
            "The client stopped and will not reconnect"
        )
        self.code = code
        self.reason = reason


class InvalidTokenError(FatalCloseError):
    """4004: the token was rejected."""

    CODE = 4004
    ADVICE = "the token is wrong or was reset: get a new one from the Developer Portal"

    @classmethod
    def refused_by_rest(cls) -> InvalidTokenError:
        """The error for a token that REST refused (401) before any gateway saw it.

        The class and code stay those of the gateway's refusal, so one ``except``
        serves both; the message says what happened.
        """
        error = cls(cls.CODE)
        error.args = (
            f"GET /gateway/bot refused the token (HTTP 401); {cls.ADVICE}. "
            "The client stopped and will not reconnect",
        )
        return error


class InvalidShardError(FatalCloseError):
    """4010: the shard id or shard count is invalid."""

    CODE = 4010
    ADVICE = "use a shard id below the shard count, and a count Discord accepts"


class ShardingRequiredError(FatalCloseError):
    """4011: the bot is in too many guilds for one session; it must shard."""

    CODE = 4011
    ADVICE = "start more shards (GET /gateway/bot recommends a count)"

    def __init__(
        self, code: int, reason: str = "", recommended_shards: int | None = None
    ) -> None:
        super().__init__(code, reason)
        #: The shard count to use, when known (from GET /gateway/bot).
        self.recommended_shards = recommended_shards
        if recommended_shards is not None:
            self.args = (f"{self.args[0]}; use {recommended_shards} shards",)


class InvalidApiVersionError(FatalCloseError):
    """4012: the gateway version asked for is not served."""

    CODE = 4012
    ADVICE = "connect with gateway version 10"


class InvalidIntentsError(FatalCloseError):
    """4013: the intents bitfield is invalid."""

    CODE = 4013
    ADVICE = "pass a valid tether.Intents value"


class DisallowedIntentsError(FatalCloseError):
    """4014: privileged intents were asked for that the application may not use."""

    CODE = 4014
    ADVICE = "enable them for the application in the Developer Portal or stop asking"

    def __init__(
        self, code: int, reason: str = "", privileged: tuple[str, ...] = ()
    ) -> None:
        super().__init__(code, reason)
        #: Names of the privileged intents that were asked for.
        self.privileged = privileged
        if privileged:
            names = ", ".join(privileged)
            self.args = (f"{self.args[0]}; privileged intents asked for: {names}",)


class ClientStateError(TetherError):
    """An API was used in a state that does not allow it (for example, not started)."""


# REST.


class HTTPError(TetherError):
    """A REST request got an answer that is not a success."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: int = 0,
        method: str = "",
        route: str = "",
    ) -> None:
        where = f"{method} {route}: " if route else ""
        suffix = f" (Discord code {code})" if code else ""
        super().__init__(f"{where}HTTP {status}: {message}{suffix}")
        #: The HTTP status.
        self.status = status
        #: Discord's JSON error code (0 when the answer had none).
        self.code = code
        #: Discord's error message.
        self.message = message
        self.method = method
        #: The route template (``/channels/{channel_id}/messages``), never a URL
        #: with a query or a token.
        self.route = route


class UnauthorizedError(HTTPError):
    """401: the token is missing or wrong."""


class ForbiddenError(HTTPError):
    """403: the bot lacks a permission for this request."""


class NotFoundError(HTTPError):
    """404: the resource does not exist (or the bot cannot see it)."""


class RateLimitedError(HTTPError):
    """429 that was not waited out (the wait was longer than allowed)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        retry_after: float,
        is_global: bool = False,
        code: int = 0,
        method: str = "",
        route: str = "",
    ) -> None:
        super().__init__(status, message, code=code, method=method, route=route)
        #: Seconds to wait before retrying.
        self.retry_after = retry_after
        self.is_global = is_global


class ServerError(HTTPError):
    """5xx: Discord (or the emulator) failed; idempotent requests were retried."""
