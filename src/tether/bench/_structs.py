"""Typed msgspec structs for the decoder and cache-model comparisons.

Imported only when msgspec is installed (it is no dependency of tether).
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["Envelope", "MemberRecord"]


class User(msgspec.Struct):
    """The user fields the flood's handler could need."""

    id: str
    username: str
    global_name: str | None = None
    avatar: str | None = None
    bot: bool = False


class Member(msgspec.Struct):
    """A message author's membership."""

    roles: list[str]
    joined_at: str
    nick: str | None = None


class Message(msgspec.Struct):
    """A MESSAGE_CREATE's data, typed where a bot reads it."""

    id: str
    channel_id: str
    author: User
    content: str
    timestamp: str
    mentions: list[User]
    embeds: list[dict[str, Any]]
    guild_id: str | None = None
    member: Member | None = None


class Envelope(msgspec.Struct):
    """A gateway payload carrying a message."""

    op: int
    d: Message
    s: int | None = None
    t: str | None = None


class CachedUser(msgspec.Struct, gc=False):
    """A user as a cache would keep it."""

    id: str
    username: str
    global_name: str | None = None
    avatar: str | None = None


class MemberRecord(msgspec.Struct, gc=False):
    """A member as a cache would keep it."""

    user: CachedUser
    roles: list[str]
    joined_at: str
    guild_id: str
    nick: str | None = None
