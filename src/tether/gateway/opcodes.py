"""Gateway opcodes, close codes and the close-code policy table.

These constants are shared by the client and by :mod:`tether.emulator`; the policy
table is reproduced in ``docs/connection.md``.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "CLOSE_POLICY",
    "FATAL_CLOSE_CODES",
    "CloseCode",
    "Opcode",
    "Recovery",
    "recovery_for",
]


class Opcode(enum.IntEnum):
    """Gateway opcodes, named as in Discord's documentation."""

    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    PRESENCE_UPDATE = 3
    VOICE_STATE_UPDATE = 4
    RESUME = 6
    RECONNECT = 7
    REQUEST_GUILD_MEMBERS = 8
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11
    REQUEST_SOUNDBOARD_SOUNDS = 31
    REQUEST_CHANNEL_INFO = 43


class CloseCode(enum.IntEnum):
    """Websocket close codes the gateway uses, plus the standard ones tether meets."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    ABNORMAL_CLOSURE = 1006
    UNKNOWN_ERROR = 4000
    UNKNOWN_OPCODE = 4001
    DECODE_ERROR = 4002
    NOT_AUTHENTICATED = 4003
    AUTHENTICATION_FAILED = 4004
    ALREADY_AUTHENTICATED = 4005
    INVALID_SEQ = 4007
    RATE_LIMITED = 4008
    SESSION_TIMED_OUT = 4009
    INVALID_SHARD = 4010
    SHARDING_REQUIRED = 4011
    INVALID_API_VERSION = 4012
    INVALID_INTENTS = 4013
    DISALLOWED_INTENTS = 4014


class Recovery(enum.Enum):
    """What the client does after a connection ends."""

    #: Reconnect and continue the session with RESUME (op 6).
    RESUME = "resume"
    #: Forget the session, reconnect and start a new one with IDENTIFY (op 2).
    IDENTIFY = "identify"
    #: Stop: retrying cannot help. The manager raises a typed error.
    FATAL = "fatal"


#: What each close code means for the session. Codes not listed here (and a
#: connection that dropped with no close frame) resume.
CLOSE_POLICY: Final[dict[int, Recovery]] = {
    # Sent by the server, 1000/1001 mean the session is over on its side.
    CloseCode.NORMAL_CLOSURE: Recovery.IDENTIFY,
    CloseCode.GOING_AWAY: Recovery.IDENTIFY,
    CloseCode.ABNORMAL_CLOSURE: Recovery.RESUME,
    CloseCode.UNKNOWN_ERROR: Recovery.RESUME,
    CloseCode.UNKNOWN_OPCODE: Recovery.RESUME,
    CloseCode.DECODE_ERROR: Recovery.RESUME,
    CloseCode.NOT_AUTHENTICATED: Recovery.IDENTIFY,
    CloseCode.AUTHENTICATION_FAILED: Recovery.FATAL,
    CloseCode.ALREADY_AUTHENTICATED: Recovery.RESUME,
    CloseCode.INVALID_SEQ: Recovery.IDENTIFY,
    CloseCode.RATE_LIMITED: Recovery.RESUME,
    CloseCode.SESSION_TIMED_OUT: Recovery.IDENTIFY,
    CloseCode.INVALID_SHARD: Recovery.FATAL,
    CloseCode.SHARDING_REQUIRED: Recovery.FATAL,
    CloseCode.INVALID_API_VERSION: Recovery.FATAL,
    CloseCode.INVALID_INTENTS: Recovery.FATAL,
    CloseCode.DISALLOWED_INTENTS: Recovery.FATAL,
}

#: Close codes after which the manager stops.
FATAL_CLOSE_CODES: Final[frozenset[int]] = frozenset(
    code for code, recovery in CLOSE_POLICY.items() if recovery is Recovery.FATAL
)


def recovery_for(code: int | None) -> Recovery:
    """Return what to do after the connection closed with ``code``.

    Args:
        code: the close code, or ``None`` when the connection dropped with no
            close frame.
    """
    if code is None:
        return Recovery.RESUME
    return CLOSE_POLICY.get(code, Recovery.RESUME)
