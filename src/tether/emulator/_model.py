"""Value types of the emulated world and snowflake helpers."""

from __future__ import annotations

import datetime
import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "DISCORD_EPOCH_MS",
    "Guild",
    "Member",
    "Presence",
    "Snowflakes",
    "User",
    "WorldConfig",
    "iso_timestamp",
    "shard_for",
]

#: 2015-01-01T00:00:00Z, the origin of snowflake timestamps.
DISCORD_EPOCH_MS: Final[int] = 1_420_070_400_000


def shard_for(guild_id: int, shard_count: int) -> int:
    """Return the shard that receives a guild's events.

    Args:
        guild_id: the guild's snowflake.
        shard_count: the number of shards.
    """
    return (guild_id >> 22) % shard_count


def iso_timestamp(unix_ms: int) -> str:
    """Return Discord's ISO 8601 form of a unix time in milliseconds."""
    moment = datetime.datetime.fromtimestamp(unix_ms / 1000, tz=datetime.UTC)
    return moment.isoformat(timespec="microseconds")


class Snowflakes:
    """Makes unique snowflakes for given times."""

    def __init__(self) -> None:
        self._increment = itertools.count()

    def at(self, unix_ms: int) -> int:
        increment = next(self._increment) & 0xFFF
        return ((unix_ms - DISCORD_EPOCH_MS) << 22) | (1 << 17) | increment

    def now(self) -> int:
        return self.at(int(time.time() * 1000))


@dataclass(frozen=True, slots=True, kw_only=True)
class WorldConfig:
    """How big and how busy the generated world is.

    Attributes:
        guilds: number of guilds the bot is in.
        members_per_guild: members per guild, the bot included.
        member_spread: relative spread of guild sizes: 0 gives every guild
            ``members_per_guild`` members, 0.5 gives sizes within +-50 %.
        large_guilds: how many of the guilds (the first ones) instead have
            ``large_guild_members`` members.
        large_guild_members: the size of those large guilds.
        categories_per_guild: category channels per guild.
        text_channels_per_guild: text channels per guild.
        voice_channels_per_guild: voice channels per guild.
        threads_per_guild: active public threads per guild.
        roles_per_guild: roles per guild besides @everyone and the bot's role.
        emojis_per_guild: custom emojis per guild.
        online_fraction: share of members whose presence is not offline.
        voice_fraction: share of online members connected to a voice channel.
        dm_channels: DM channels the bot has open.
        messages_kept: messages kept per channel (older ones are forgotten).
        seed: the seed; the same config gives the same world.
        bot_username: the bot user's name.
    """

    guilds: int = 10
    members_per_guild: int = 50
    member_spread: float = 0.0
    large_guilds: int = 0
    large_guild_members: int = 1000
    categories_per_guild: int = 2
    text_channels_per_guild: int = 4
    voice_channels_per_guild: int = 2
    threads_per_guild: int = 1
    roles_per_guild: int = 4
    emojis_per_guild: int = 2
    online_fraction: float = 0.4
    voice_fraction: float = 0.05
    dm_channels: int = 1
    messages_kept: int = 50
    seed: int = 0
    bot_username: str = "tether-emulated-bot"

    def __post_init__(self) -> None:
        counts = {
            "guilds": self.guilds,
            "large_guilds": self.large_guilds,
            "categories_per_guild": self.categories_per_guild,
            "text_channels_per_guild": self.text_channels_per_guild,
            "voice_channels_per_guild": self.voice_channels_per_guild,
            "threads_per_guild": self.threads_per_guild,
            "roles_per_guild": self.roles_per_guild,
            "emojis_per_guild": self.emojis_per_guild,
            "dm_channels": self.dm_channels,
        }
        for name, value in counts.items():
            if value < 0:
                raise ValueError(f"WorldConfig.{name} must be >= 0, got {value}")
        if self.members_per_guild < 1 or self.large_guild_members < 1:
            raise ValueError("guilds have at least one member (the bot)")
        if self.large_guilds > self.guilds:
            raise ValueError("large_guilds cannot exceed guilds")
        if self.threads_per_guild and not self.text_channels_per_guild:
            raise ValueError("threads need at least one text channel")
        for name in ("member_spread", "online_fraction", "voice_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"WorldConfig.{name} must be within [0, 1]")
        if self.messages_kept < 1:
            raise ValueError("messages_kept must be >= 1")


@dataclass(frozen=True, slots=True, eq=False)
class User:
    """A Discord user; ``payload`` is its wire form (built once)."""

    id: int
    username: str
    global_name: str | None
    avatar: str | None
    bot: bool
    payload: dict[str, Any] = field(repr=False)

    @classmethod
    def make(
        cls,
        user_id: int,
        username: str,
        global_name: str | None,
        avatar: str | None,
        *,
        bot: bool = False,
    ) -> User:
        """Build a user and its payload."""
        payload: dict[str, Any] = {
            "id": str(user_id),
            "username": username,
            "discriminator": "0",
            "global_name": global_name,
            "avatar": avatar,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "primary_guild": None,
        }
        if bot:
            payload["bot"] = True
        return cls(user_id, username, global_name, avatar, bot, payload)


@dataclass(slots=True, eq=False)
class Member:
    """A user's membership of a guild."""

    user_id: int
    roles: list[int]
    joined_at: str
    nick: str | None = None
    premium_since: str | None = None
    deaf: bool = False
    mute: bool = False
    pending: bool = False
    flags: int = 0
    communication_disabled_until: str | None = None


@dataclass(slots=True, eq=False)
class Presence:
    """A member's status and activities in a guild."""

    status: str
    activities: list[dict[str, Any]]
    client_status: dict[str, str]


@dataclass(slots=True, eq=False)
class Guild:
    """A guild and everything in it.

    Attributes:
        id: the guild id.
        name: the guild name.
        owner_id: the owner's user id.
        joined_at: when the bot joined (ISO 8601).
        info: the guild's remaining top-level fields, in wire form.
        roles: role id to role payload (@everyone has the guild's id).
        channels: channel id to channel payload.
        threads: thread id to thread payload (active threads).
        emojis: emoji id to emoji payload.
        members: user id to member.
        presences: user id to presence, for members that are not offline.
        voice_states: user id to voice state payload (without guild_id).
        unavailable: ``True`` during an outage.
    """

    id: int
    name: str
    owner_id: int
    joined_at: str
    info: dict[str, Any]
    roles: dict[int, dict[str, Any]] = field(default_factory=dict)
    channels: dict[int, dict[str, Any]] = field(default_factory=dict)
    threads: dict[int, dict[str, Any]] = field(default_factory=dict)
    emojis: dict[int, dict[str, Any]] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    presences: dict[int, Presence] = field(default_factory=dict)
    voice_states: dict[int, dict[str, Any]] = field(default_factory=dict)
    unavailable: bool = False

    @property
    def member_count(self) -> int:
        """How many members the guild has."""
        return len(self.members)

    def channel_ids_of_type(self, *types: int) -> list[int]:
        """Ids of the guild's channels (threads excluded) whose type is in ``types``."""
        return [cid for cid, ch in self.channels.items() if ch["type"] in types]
