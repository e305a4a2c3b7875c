"""The exceptions of the RPC client, placed in tether's one exception tree.

Every class here derives from a class of :mod:`tether.errors`::

    TetherError
    ├── RPCError                      the app answered a command with an ERROR
    ├── CommandTimeoutError           no answer (or no connection) in time;
    │                                 also a built-in TimeoutError
    ├── CommandInterruptedError       the connection ended while a command was out
    ├── LocalProtocolError
    │   └── InvalidActivityError      an activity breaks a documented limit;
    │                                 also a ValueError
    ├── RemoteProtocolError
    │   ├── MalformedFrameError       bad JSON, unknown opcode, truncated frame
    │   └── FrameTooLargeError        a frame header announces more than the cap
    └── FatalError
        └── RPCFatalCloseError        a CLOSE code that retrying cannot fix
            ├── InvalidClientIdError      4000
            ├── InvalidOriginError        4001
            ├── InvalidVersionError       4004
            └── InvalidEncodingError      4005

Messages say what happened and what to do. No exception text contains a token.
"""

from __future__ import annotations

from tether.errors import (
    FatalCloseError,
    LocalProtocolError,
    RemoteProtocolError,
    TetherError,
)

__all__ = [
    "CommandInterruptedError",
    "CommandTimeoutError",
    "FrameTooLargeError",
    "InvalidActivityError",
    "InvalidClientIdError",
    "InvalidEncodingError",
    "InvalidOriginError",
    "InvalidVersionError",
    "MalformedFrameError",
    "RPCError",
    "RPCFatalCloseError",
    "fatal_close_error",
]


# Answers to commands.


class RPCError(TetherError):
    """The app answered a command with an ERROR event.

    Attributes:
        code: Discord's RPC error code (see :class:`tether.rpc.RPCErrorCode`).
        message: the app's message.
        cmd: the command that failed.
    """

    def __init__(self, code: int, message: str, *, cmd: str = "") -> None:
        where = f"{cmd} failed: " if cmd else ""
        super().__init__(f"{where}{message} (RPC error {code})")
        self.code = code
        self.message = message
        self.cmd = cmd


class CommandTimeoutError(TetherError, TimeoutError):
    """A command got no answer in time, or the app was not reachable in time.

    Attributes:
        cmd: the command.
        timeout_s: the time it was given.
        was_sent: whether it reached the app (if so, the app may still act on it).
    """

    def __init__(self, cmd: str, timeout_s: float, *, was_sent: bool) -> None:
        if was_sent:
            text = f"{cmd} got no answer from Discord within {timeout_s:.1f} s"
        else:
            text = (
                f"{cmd} was not sent: Discord was not connected within "
                f"{timeout_s:.1f} s (is the app running?)"
            )
        super().__init__(text)
        self.cmd = cmd
        self.timeout_s = timeout_s
        self.was_sent = was_sent


class CommandInterruptedError(TetherError):
    """The connection ended after a command was sent and before its answer.

    The app may or may not have acted on it. Commands that are safe to repeat are
    sent again on the next connection instead; this is raised for the others.

    Attributes:
        cmd: the command.
    """

    def __init__(self, cmd: str, reason: str) -> None:
        super().__init__(
            f"{cmd} was sent but the connection ended before its answer ({reason}); "
            "check the outcome before sending it again"
        )
        self.cmd = cmd


# Local misuse.


class InvalidActivityError(LocalProtocolError, ValueError):
    """An activity breaks one of Discord's documented limits; nothing was sent."""


# Peer faults: the connection is ended and a new one made.


class MalformedFrameError(RemoteProtocolError):
    """The app sent bytes that are not a valid IPC frame."""


class FrameTooLargeError(RemoteProtocolError):
    """A frame header announced a body larger than the configured cap.

    Attributes:
        size: the announced body size.
        limit: the cap.
    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the app announced a {size}-byte frame, over the {limit}-byte cap; "
            "the connection is closed and a new one made"
        )
        self.size = size
        self.limit = limit


# Fatal CLOSE codes: the manager stops and never loops on these.


class RPCFatalCloseError(FatalCloseError):
    """The app closed the connection with a code that retrying cannot fix.

    Attributes:
        code: the CLOSE code.
        reason: the app's message.
    """

    ADVICE = "check the client's configuration"
    CLOSED_BY = "Discord closed the RPC connection"


class InvalidClientIdError(RPCFatalCloseError):
    """4000: the app does not know the client id (the application id)."""

    CODE = 4000
    ADVICE = "pass the application id shown in the Developer Portal as client_id"


class InvalidOriginError(RPCFatalCloseError):
    """4001: the connection's origin is not among the application's RPC origins."""

    CODE = 4001
    ADVICE = "add the origin to the application's RPC origins"


class InvalidVersionError(RPCFatalCloseError):
    """4004: the app does not speak the RPC version asked for."""

    CODE = 4004
    ADVICE = "this version of tether speaks RPC version 1; update tether or the app"


class InvalidEncodingError(RPCFatalCloseError):
    """4005: the app refused the encoding asked for."""

    CODE = 4005
    ADVICE = "use the JSON encoding"


_FATAL_BY_CODE: dict[int, type[RPCFatalCloseError]] = {
    cls.CODE: cls
    for cls in (
        InvalidClientIdError,
        InvalidOriginError,
        InvalidVersionError,
        InvalidEncodingError,
    )
}


def fatal_close_error(code: int, reason: str = "") -> RPCFatalCloseError:
    """Return the typed error for a fatal CLOSE code (the base class if unknown)."""
    cls = _FATAL_BY_CODE.get(code, RPCFatalCloseError)
    return cls(code, reason)
