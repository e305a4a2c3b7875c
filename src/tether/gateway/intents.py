"""Gateway intents: which dispatches a session receives."""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["ALL_INTENTS", "PRIVILEGED_INTENTS", "Intents"]


class Intents(enum.IntFlag):
    """The intents bitfield of IDENTIFY, named as in Discord's documentation."""

    NONE = 0
    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_MODERATION = 1 << 2
    GUILD_EXPRESSIONS = 1 << 3
    GUILD_INTEGRATIONS = 1 << 4
    GUILD_WEBHOOKS = 1 << 5
    GUILD_INVITES = 1 << 6
    GUILD_VOICE_STATES = 1 << 7
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_REACTIONS = 1 << 10
    GUILD_MESSAGE_TYPING = 1 << 11
    DIRECT_MESSAGES = 1 << 12
    DIRECT_MESSAGE_REACTIONS = 1 << 13
    DIRECT_MESSAGE_TYPING = 1 << 14
    MESSAGE_CONTENT = 1 << 15
    GUILD_SCHEDULED_EVENTS = 1 << 16
    AUTO_MODERATION_CONFIGURATION = 1 << 20
    AUTO_MODERATION_EXECUTION = 1 << 21
    GUILD_MESSAGE_POLLS = 1 << 24
    DIRECT_MESSAGE_POLLS = 1 << 25

    @classmethod
    def default(cls) -> Intents:
        """Every intent that needs no approval in the Developer Portal."""
        return cls(ALL_INTENTS & ~PRIVILEGED_INTENTS)

    @classmethod
    def all(cls) -> Intents:
        """Every documented intent, privileged ones included."""
        return cls(ALL_INTENTS)


#: Every documented intent bit (53608447).
ALL_INTENTS: Final[int] = 0x331FFFF
#: GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT (33026).
PRIVILEGED_INTENTS: Final[int] = (
    Intents.GUILD_MEMBERS | Intents.GUILD_PRESENCES | Intents.MESSAGE_CONTENT
)
