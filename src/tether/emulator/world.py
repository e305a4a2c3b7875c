"""The emulated world: guilds, channels, roles, members, presences and messages.

A :class:`World` is generated from a :class:`WorldConfig` and its seed, so the same
configuration always gives the same guilds, ids and names. It is the truth the
emulator serves: READY, GUILD_CREATE and REST answers are built from it, and activity,
REST writes, voice state updates and faults change it. Tests compare a client's
cache against it.

Payload dictionaries held by the world are never mutated once built: a change
replaces the dictionary. A dispatch can therefore keep references to them safely.
"""

from __future__ import annotations

import datetime
import itertools
import random
import re
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from tether.emulator import _names

__all__ = [
    "DISCORD_EPOCH_MS",
    "Guild",
    "Member",
    "Presence",
    "User",
    "World",
    "WorldConfig",
    "shard_for",
]

#: 2015-01-01T00:00:00Z, the origin of snowflake timestamps.
DISCORD_EPOCH_MS: Final[int] = 1_420_070_400_000

#: Members above this count get only the bot and voice members in GUILD_CREATE.
HUGE_GUILD_MEMBERS: Final[int] = 75_000

#: Channel types that carry messages.
MESSAGE_CHANNEL_TYPES: Final[frozenset[int]] = frozenset({0, 1, 2, 3, 5, 10, 11, 12})

_EVERYONE_PERMISSIONS: Final[str] = "2248473465835073"
_BOT_PERMISSIONS: Final[str] = "1071698660929"
_MENTION = re.compile(r"<@!?(\d{15,21})>")

# Generated objects get timestamps between these two dates (unix ms).
_WORLD_START_MS: Final[int] = 1_483_228_800_000  # 2017-01-01
_WORLD_END_MS: Final[int] = 1_704_067_200_000  # 2024-01-01


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


class _Snowflakes:
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


class World:
    """The synthetic Discord world one emulator serves.

    Args:
        config: sizes and seed.
    """

    def __init__(self, config: WorldConfig | None = None) -> None:
        self.config = config if config is not None else WorldConfig()
        self._rng = random.Random(self.config.seed)
        self._snowflakes = _Snowflakes()
        #: Every user, the bot included, by id.
        self.users: dict[int, User] = {}
        #: Every guild by id, in id order.
        self.guilds: dict[int, Guild] = {}
        #: The bot's open DM channels by id.
        self.dm_channels: dict[int, dict[str, Any]] = {}
        # channel or thread id -> guild id (None for DMs)
        self._channel_guild: dict[int, int | None] = {}
        # channel id -> the latest messages, oldest first
        self._messages: dict[int, deque[dict[str, Any]]] = {}
        # user ids available for new members
        self._user_pool: list[int] = []
        self._username_counter = itertools.count(1)

        self.bot = self._make_user(bot=True, username=self.config.bot_username)
        #: The emulated application's id (the bot user's id, as for most bots).
        self.application_id = self.bot.id
        self._generate()

    # Generation

    def _random_ms(self) -> int:
        return self._rng.randrange(_WORLD_START_MS, _WORLD_END_MS)

    def _make_user(self, *, bot: bool = False, username: str | None = None) -> User:
        rng = self._rng
        user_id = self._snowflakes.at(self._random_ms())
        if username is None:
            adjective = rng.choice(_names.ADJECTIVES)
            animal = rng.choice(_names.ANIMALS)
            username = f"{adjective}_{animal}{next(self._username_counter)}"
            global_name = f"{adjective.title()} {animal.title()}"
        else:
            global_name = None
        avatar = f"{rng.getrandbits(128):032x}" if rng.random() < 0.7 else None
        user = User.make(user_id, username, global_name, avatar, bot=bot)
        self.users[user_id] = user
        return user

    def _guild_sizes(self) -> list[int]:
        config = self.config
        sizes = []
        for index in range(config.guilds):
            if index < config.large_guilds:
                sizes.append(config.large_guild_members)
                continue
            spread = config.member_spread * config.members_per_guild
            size = round(config.members_per_guild + self._rng.uniform(-spread, spread))
            sizes.append(max(1, size))
        return sizes

    def _generate(self) -> None:
        config = self.config
        sizes = self._guild_sizes()

        # Users are shared between guilds, as on Discord, from a pool.
        humans = sum(size - 1 for size in sizes)
        largest = max(sizes, default=1) - 1
        pool_size = max(largest, int(humans * 0.7))
        self._user_pool = [self._make_user().id for _ in range(pool_size)]

        guild_times = sorted(
            self._rng.sample(range(_WORLD_START_MS, _WORLD_END_MS), config.guilds)
        )
        for unix_ms, size in zip(guild_times, sizes, strict=True):
            guild = self._generate_guild(self._snowflakes.at(unix_ms), size)
            self.guilds[guild.id] = guild

        for _ in range(config.dm_channels):
            if self._user_pool:
                self.open_dm(self._rng.choice(self._user_pool))

    def _generate_guild(self, guild_id: int, size: int) -> Guild:
        rng = self._rng
        config = self.config
        words = f"{rng.choice(_names.GUILD_WORDS)} {rng.choice(_names.GUILD_KINDS)}"
        human_ids = rng.sample(self._user_pool, min(size - 1, len(self._user_pool)))
        owner_id = human_ids[0] if human_ids else self.bot.id
        guild = Guild(
            id=guild_id,
            name=f"{rng.choice(_names.ADJECTIVES).title()} {words}",
            owner_id=owner_id,
            joined_at=iso_timestamp(self._random_ms()),
            info={},
        )
        self._generate_roles(guild)
        self._generate_channels(guild)
        for index in range(config.emojis_per_guild):
            emoji_id = self._snowflakes.at(self._random_ms())
            round_, base = divmod(index, len(_names.EMOJIS))
            name = f"{_names.EMOJIS[base]}{round_ or ''}"
            guild.emojis[emoji_id] = {
                "id": str(emoji_id),
                "name": name,
                "roles": [],
                "require_colons": True,
                "managed": False,
                "animated": rng.random() < 0.2,
                "available": True,
            }

        assignable = [
            rid
            for rid, role in guild.roles.items()
            if rid != guild.id and not role["managed"]
        ]
        bot_role = next(rid for rid, role in guild.roles.items() if role["managed"])
        guild.members[self.bot.id] = Member(self.bot.id, [bot_role], guild.joined_at)
        guild.presences[self.bot.id] = Presence("online", [], {"web": "online"})
        for user_id in human_ids:
            roles = rng.sample(assignable, min(len(assignable), rng.randrange(3)))
            member = Member(user_id, roles, iso_timestamp(self._random_ms()))
            if rng.random() < 0.15:
                member.nick = (
                    f"{rng.choice(_names.ADJECTIVES)} {rng.choice(_names.ANIMALS)}"
                )
            guild.members[user_id] = member
            if rng.random() < config.online_fraction:
                guild.presences[user_id] = self._random_presence()

        voice_ids = guild.channel_ids_of_type(2)
        if voice_ids:
            for user_id in list(guild.presences):
                if user_id != self.bot.id and rng.random() < config.voice_fraction:
                    self._put_voice_state(
                        guild,
                        user_id,
                        rng.choice(voice_ids),
                        f"{rng.getrandbits(128):032x}",
                    )

        self._generate_threads(guild)
        system_channel = next(iter(guild.channel_ids_of_type(0)), None)
        guild.info = self._guild_info(guild, system_channel)
        return guild

    def _guild_info(self, guild: Guild, system_channel: int | None) -> dict[str, Any]:
        return {
            "icon": f"{self._rng.getrandbits(128):032x}"
            if self._rng.random() < 0.8
            else None,
            "splash": None,
            "discovery_splash": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "widget_enabled": False,
            "widget_channel_id": None,
            "verification_level": self._rng.randrange(3),
            "default_message_notifications": 1,
            "explicit_content_filter": 2,
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": str(system_channel) if system_channel else None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "max_presences": None,
            "max_members": 500_000,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": None,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "nsfw": False,
            "nsfw_level": 0,
            "stickers": [],
            "premium_progress_bar_enabled": False,
            "safety_alerts_channel_id": None,
            "incidents_data": None,
        }

    def _generate_roles(self, guild: Guild) -> None:
        rng = self._rng
        guild.roles[guild.id] = _role(
            guild.id, "@everyone", 0, 0, _EVERYONE_PERMISSIONS
        )
        names = rng.sample(
            _names.ROLES, min(self.config.roles_per_guild, len(_names.ROLES))
        )
        while len(names) < self.config.roles_per_guild:
            names.append(f"Role {len(names) + 1}")
        for position, name in enumerate(names, start=1):
            role_id = self._snowflakes.at(self._random_ms())
            color = rng.choice((0, rng.getrandbits(24)))
            guild.roles[role_id] = _role(
                role_id,
                name,
                position,
                color,
                str(rng.getrandbits(40)),
                hoist=rng.random() < 0.3,
                mentionable=rng.random() < 0.5,
            )
        role_id = self._snowflakes.at(self._random_ms())
        bot_role = _role(
            role_id, self.bot.username, len(names) + 1, 0, _BOT_PERMISSIONS
        )
        bot_role["managed"] = True
        bot_role["tags"] = {"bot_id": str(self.bot.id)}
        guild.roles[role_id] = bot_role

    def _generate_channels(self, guild: Guild) -> None:
        config = self.config
        rng = self._rng
        category_ids: list[int] = []
        position = 0
        for index in range(config.categories_per_guild):
            cid = self._snowflakes.at(self._random_ms())
            name = _names.CATEGORIES[index % len(_names.CATEGORIES)]
            guild.channels[cid] = _channel(cid, guild.id, 4, name, position, None)
            category_ids.append(cid)
            position += 1
        for index in range(config.text_channels_per_guild):
            cid = self._snowflakes.at(self._random_ms())
            name = _names.TEXT_CHANNELS[index % len(_names.TEXT_CHANNELS)]
            if index >= len(_names.TEXT_CHANNELS):
                name = f"{name}-{index // len(_names.TEXT_CHANNELS) + 1}"
            parent = rng.choice(category_ids) if category_ids else None
            channel = _channel(cid, guild.id, 0, name, position, parent)
            channel["topic"] = f"All about {name}" if rng.random() < 0.5 else None
            channel["nsfw"] = False
            channel["rate_limit_per_user"] = 0
            channel["last_message_id"] = None
            guild.channels[cid] = channel
            position += 1
        for index in range(config.voice_channels_per_guild):
            cid = self._snowflakes.at(self._random_ms())
            name = _names.VOICE_CHANNELS[index % len(_names.VOICE_CHANNELS)]
            parent = category_ids[-1] if category_ids else None
            channel = _channel(cid, guild.id, 2, name, position, parent)
            channel.update(
                bitrate=64000,
                user_limit=0,
                rtc_region=None,
                nsfw=False,
                rate_limit_per_user=0,
                last_message_id=None,
                video_quality_mode=1,
            )
            guild.channels[cid] = channel
            position += 1
        for cid in guild.channels:
            self._channel_guild[cid] = guild.id

    def _generate_threads(self, guild: Guild) -> None:
        text_ids = guild.channel_ids_of_type(0)
        humans = [uid for uid in guild.members if uid != self.bot.id] or [self.bot.id]
        for index in range(self.config.threads_per_guild):
            unix_ms = self._random_ms()
            thread_id = self._snowflakes.at(unix_ms)
            parent = self._rng.choice(text_ids)
            guild.threads[thread_id] = {
                "id": str(thread_id),
                "guild_id": str(guild.id),
                "parent_id": str(parent),
                "owner_id": str(self._rng.choice(humans)),
                "type": 11,
                "name": f"thread {index + 1}",
                "last_message_id": None,
                "message_count": 0,
                "member_count": 1,
                "total_message_sent": 0,
                "rate_limit_per_user": 0,
                "flags": 0,
                "thread_metadata": {
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": iso_timestamp(unix_ms),
                    "locked": False,
                    "invitable": True,
                    "create_timestamp": iso_timestamp(unix_ms),
                },
            }
            self._channel_guild[thread_id] = guild.id

    def _random_presence(self) -> Presence:
        rng = self._rng
        status = rng.choices(("online", "idle", "dnd"), weights=(7, 2, 1))[0]
        activities: list[dict[str, Any]] = []
        roll = rng.random()
        now_ms = int(time.time() * 1000)
        if roll < 0.35:
            activities.append(
                {"name": rng.choice(_names.GAMES), "type": 0, "created_at": now_ms}
            )
        elif roll < 0.5:
            state = " ".join(rng.choices(_names.WORDS, k=3))
            activities.append(
                {
                    "name": "Custom Status",
                    "type": 4,
                    "state": state,
                    "created_at": now_ms,
                }
            )
        platform = rng.choices(("desktop", "mobile", "web"), weights=(6, 3, 1))[0]
        return Presence(status, activities, {platform: status})

    # Lookups

    def guild(self, guild_id: int) -> Guild | None:
        """Return the guild with this id, if the bot is in it."""
        return self.guilds.get(guild_id)

    def guild_id_of_channel(self, channel_id: int) -> int | None:
        """Return the guild a channel or thread belongs to (``None`` for DMs)."""
        return self._channel_guild.get(channel_id)

    def channel(self, channel_id: int) -> dict[str, Any] | None:
        """Return a guild channel, a thread or a DM channel, in wire form."""
        if channel_id in self.dm_channels:
            return self.dm_channels[channel_id]
        guild = self.guilds.get(self._channel_guild.get(channel_id) or 0)
        if guild is None:
            return None
        return guild.channels.get(channel_id) or guild.threads.get(channel_id)

    def messages(self, channel_id: int) -> list[dict[str, Any]]:
        """The latest messages kept for a channel, oldest first."""
        return list(self._messages.get(channel_id, ()))

    def message(self, channel_id: int, message_id: int) -> dict[str, Any] | None:
        """Return a kept message."""
        for message in self._messages.get(channel_id, ()):
            if message["id"] == str(message_id):
                return message
        return None

    def guild_ids_for_shard(self, shard_id: int, shard_count: int) -> list[int]:
        """The guilds whose events go to ``shard_id``, in id order."""
        return [gid for gid in self.guilds if shard_for(gid, shard_count) == shard_id]

    def iter_members(self) -> Iterator[tuple[Guild, Member]]:
        """Every (guild, member) pair."""
        for guild in self.guilds.values():
            for member in guild.members.values():
                yield guild, member

    def make_snowflake(self) -> int:
        """A new snowflake for the current time."""
        return self._snowflakes.now()

    # Payloads

    def member_payload(
        self, guild: Guild, member: Member, *, user: bool = True
    ) -> dict[str, Any]:
        """The member's wire form; ``user=False`` leaves the user object out."""
        payload: dict[str, Any] = {
            "nick": member.nick,
            "avatar": None,
            "banner": None,
            "roles": [str(role) for role in member.roles],
            "joined_at": member.joined_at,
            "premium_since": member.premium_since,
            "deaf": member.deaf,
            "mute": member.mute,
            "flags": member.flags,
            "pending": member.pending,
            "communication_disabled_until": member.communication_disabled_until,
        }
        if user:
            payload["user"] = self.users[member.user_id].payload
        return payload

    def presence_payload(
        self, guild: Guild, user_id: int, *, guild_id: bool = True
    ) -> dict[str, Any]:
        """The presence of a member (offline when it has none)."""
        presence = guild.presences.get(user_id)
        payload: dict[str, Any] = {
            "user": {"id": str(user_id)},
            "status": presence.status if presence else "offline",
            "activities": list(presence.activities) if presence else [],
            "client_status": dict(presence.client_status) if presence else {},
        }
        if guild_id:
            payload["guild_id"] = str(guild.id)
        return payload

    def voice_state_payload(self, guild: Guild, user_id: int) -> dict[str, Any] | None:
        """A member's voice state with guild_id and member (VOICE_STATE_UPDATE form)."""
        state = guild.voice_states.get(user_id)
        if state is None:
            return None
        payload = dict(state, guild_id=str(guild.id))
        member = guild.members.get(user_id)
        if member is not None:
            payload["member"] = self.member_payload(guild, member)
        return payload

    def guild_payload(self, guild: Guild, *, counts: bool = False) -> dict[str, Any]:
        """The REST form of a guild (``GET /guilds/{id}``)."""
        payload: dict[str, Any] = {
            "id": str(guild.id),
            "name": guild.name,
            "owner_id": str(guild.owner_id),
            **guild.info,
            "roles": list(guild.roles.values()),
            "emojis": list(guild.emojis.values()),
        }
        if counts:
            payload["approximate_member_count"] = guild.member_count
            payload["approximate_presence_count"] = len(guild.presences)
        return payload

    def guild_create_payload(
        self, guild: Guild, *, large_threshold: int, presences_intent: bool
    ) -> dict[str, Any]:
        """The GUILD_CREATE form of a guild, as one session sees it.

        Args:
            guild: the guild.
            large_threshold: the session's IDENTIFY large_threshold.
            presences_intent: whether the session has GUILD_PRESENCES.
        """
        if guild.unavailable:
            return {"id": str(guild.id), "unavailable": True}
        large = guild.member_count > large_threshold
        in_voice = set(guild.voice_states)
        if not presences_intent or guild.member_count > HUGE_GUILD_MEMBERS:
            # Discord sends only the bot and members in voice in this case.
            member_ids: Iterable[int] = [
                uid for uid in guild.members if uid == self.bot.id or uid in in_voice
            ]
            presence_ids: Iterable[int] = []
        elif large:
            member_ids = [
                uid
                for uid in guild.members
                if uid in guild.presences or uid in in_voice
            ]
            presence_ids = list(guild.presences)
        else:
            member_ids = list(guild.members)
            presence_ids = list(guild.presences)
        payload = self.guild_payload(guild)
        payload.update(
            joined_at=guild.joined_at,
            large=large,
            unavailable=False,
            member_count=guild.member_count,
            voice_states=list(guild.voice_states.values()),
            members=[
                self.member_payload(guild, guild.members[uid]) for uid in member_ids
            ],
            channels=list(guild.channels.values()),
            threads=list(guild.threads.values()),
            presences=[
                self.presence_payload(guild, uid, guild_id=False)
                for uid in presence_ids
            ],
            stage_instances=[],
            guild_scheduled_events=[],
            soundboard_sounds=[],
            embedded_activities=[],
            lazy=True,
        )
        return payload

    def message_create_payload(self, message: dict[str, Any]) -> dict[str, Any]:
        """The MESSAGE_CREATE form of a stored message (adds guild_id and member)."""
        channel_id = int(message["channel_id"])
        guild_id = self._channel_guild.get(channel_id)
        payload = dict(message)
        channel = self.channel(channel_id)
        if channel is not None:
            payload["channel_type"] = channel["type"]
        if guild_id is None:
            return payload
        payload["guild_id"] = str(guild_id)
        guild = self.guilds[guild_id]
        member = guild.members.get(int(message["author"]["id"]))
        if member is not None:
            payload["member"] = self.member_payload(guild, member, user=False)
        return payload

    # Changes

    def open_dm(self, user_id: int) -> dict[str, Any]:
        """Open (or return) the bot's DM channel with a user."""
        for channel in self.dm_channels.values():
            if channel["recipients"][0]["id"] == str(user_id):
                return channel
        channel_id = self._snowflakes.now()
        channel = {
            "id": str(channel_id),
            "type": 1,
            "last_message_id": None,
            "flags": 0,
            "recipients": [self.users[user_id].payload],
        }
        self.dm_channels[channel_id] = channel
        self._channel_guild[channel_id] = None
        return channel

    def _replace_channel(self, channel_id: int, **changes: Any) -> None:
        if channel_id in self.dm_channels:
            self.dm_channels[channel_id] = {**self.dm_channels[channel_id], **changes}
            return
        guild = self.guilds[self._channel_guild[channel_id] or 0]
        if channel_id in guild.threads:
            guild.threads[channel_id] = {**guild.threads[channel_id], **changes}
        else:
            guild.channels[channel_id] = {**guild.channels[channel_id], **changes}

    def create_message(
        self,
        channel_id: int,
        author_id: int,
        content: str,
        *,
        nonce: int | str | None = None,
        tts: bool = False,
        embeds: list[Any] | None = None,
        message_reference: dict[str, Any] | None = None,
        flags: int = 0,
    ) -> dict[str, Any]:
        """Store a new message and return its REST form.

        Raises:
            KeyError: the channel does not exist or holds no messages.
        """
        channel = self.channel(channel_id)
        if channel is None or channel["type"] not in MESSAGE_CHANNEL_TYPES:
            raise KeyError(channel_id)
        guild_id = self._channel_guild.get(channel_id)
        message_id = self._snowflakes.now()
        mentions = []
        for match in _MENTION.finditer(content):
            user = self.users.get(int(match.group(1)))
            if user is not None and user.payload not in mentions:
                mentions.append(user.payload)
        referenced = None
        if message_reference is not None and "message_id" in message_reference:
            referenced = self.message(channel_id, int(message_reference["message_id"]))
        message: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "author": self.users[author_id].payload,
            "content": content,
            "timestamp": iso_timestamp((message_id >> 22) + DISCORD_EPOCH_MS),
            "edited_timestamp": None,
            "tts": tts,
            "mention_everyone": "@everyone" in content,
            "mentions": mentions,
            "mention_roles": [],
            "attachments": [],
            "embeds": list(embeds or []),
            "pinned": False,
            "type": 19 if referenced is not None else 0,
            "flags": flags,
            "components": [],
        }
        if nonce is not None:
            message["nonce"] = nonce
        if message_reference is not None:
            message["message_reference"] = {
                "type": 0,
                "channel_id": str(channel_id),
                "message_id": str(message_reference.get("message_id")),
                **({"guild_id": str(guild_id)} if guild_id else {}),
            }
            message["referenced_message"] = referenced
        history = self._messages.setdefault(
            channel_id, deque(maxlen=self.config.messages_kept)
        )
        history.append(message)
        self._replace_channel(channel_id, last_message_id=str(message_id))
        return message

    def edit_message(
        self, channel_id: int, message_id: int, changes: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Apply ``changes`` (content, embeds, flags) to a kept message; return it."""
        history = self._messages.get(channel_id)
        if history is None:
            return None
        for index, message in enumerate(history):
            if message["id"] == str(message_id):
                allowed = {
                    k: v
                    for k, v in changes.items()
                    if k in ("content", "embeds", "flags")
                }
                edited = {
                    **message,
                    **allowed,
                    "edited_timestamp": iso_timestamp(int(time.time() * 1000)),
                }
                history[index] = edited
                return edited
        return None

    def delete_message(self, channel_id: int, message_id: int) -> bool:
        """Forget a kept message; return whether it existed."""
        history = self._messages.get(channel_id)
        if history is None:
            return False
        for message in history:
            if message["id"] == str(message_id):
                history.remove(message)
                return True
        return False

    def add_reaction(
        self, channel_id: int, message_id: int, user_id: int, emoji: str
    ) -> bool:
        """Count a reaction on a kept message; return whether the message exists."""
        history = self._messages.get(channel_id)
        if history is None:
            return False
        for index, message in enumerate(history):
            if message["id"] != str(message_id):
                continue
            reactions = [dict(r) for r in message.get("reactions", [])]
            for reaction in reactions:
                if reaction["emoji"]["name"] == emoji:
                    reaction["count"] += 1
                    reaction["me"] = reaction["me"] or user_id == self.bot.id
                    break
            else:
                reactions.append(
                    {
                        "count": 1,
                        "count_details": {"burst": 0, "normal": 1},
                        "me": user_id == self.bot.id,
                        "me_burst": False,
                        "burst_colors": [],
                        "emoji": {"id": None, "name": emoji},
                    }
                )
            history[index] = {**message, "reactions": reactions}
            return True
        return False

    def add_member(self, guild_id: int, user_id: int | None = None) -> Member:
        """Add a member (a new user unless ``user_id`` is given)."""
        guild = self.guilds[guild_id]
        if user_id is None:
            user_id = self._make_user().id
            self._user_pool.append(user_id)
        member = Member(user_id, [], iso_timestamp(int(time.time() * 1000)))
        guild.members[user_id] = member
        return member

    def pick_user_outside(self, guild: Guild, rng: random.Random) -> int | None:
        """A known user who is not a member of ``guild`` (``None`` if none is found)."""
        for _ in range(16):
            user_id = rng.choice(self._user_pool) if self._user_pool else None
            if user_id is not None and user_id not in guild.members:
                return user_id
        return None

    def remove_member(self, guild_id: int, user_id: int) -> Member | None:
        """Remove a member, its presence and its voice state."""
        guild = self.guilds[guild_id]
        guild.presences.pop(user_id, None)
        guild.voice_states.pop(user_id, None)
        return guild.members.pop(user_id, None)

    def set_presence(
        self,
        guild_id: int,
        user_id: int,
        status: str,
        activities: list[dict[str, Any]],
        client_status: dict[str, str] | None = None,
    ) -> None:
        """Set a member's presence; ``"offline"`` (or invisible) removes it."""
        guild = self.guilds[guild_id]
        if status in ("offline", "invisible"):
            guild.presences.pop(user_id, None)
            return
        guild.presences[user_id] = Presence(
            status, list(activities), client_status or {"desktop": status}
        )

    def random_presence(self) -> Presence:
        """A random online presence, as generation makes them."""
        return self._random_presence()

    def _put_voice_state(
        self, guild: Guild, user_id: int, channel_id: int, session_id: str
    ) -> None:
        guild.voice_states[user_id] = {
            "channel_id": str(channel_id),
            "user_id": str(user_id),
            "session_id": session_id,
            "deaf": False,
            "mute": False,
            "self_deaf": False,
            "self_mute": self._rng.random() < 0.3,
            "self_stream": False,
            "self_video": False,
            "suppress": False,
            "request_to_speak_timestamp": None,
        }

    def set_voice_state(
        self,
        guild_id: int,
        user_id: int,
        channel_id: int | None,
        session_id: str,
        *,
        self_mute: bool = False,
        self_deaf: bool = False,
    ) -> dict[str, Any]:
        """Move a member to a voice channel (``None``: leave it).

        Returns:
            The VOICE_STATE_UPDATE data.
        """
        guild = self.guilds[guild_id]
        if channel_id is None:
            guild.voice_states.pop(user_id, None)
            payload: dict[str, Any] = {
                "guild_id": str(guild_id),
                "channel_id": None,
                "user_id": str(user_id),
                "session_id": session_id,
                "deaf": False,
                "mute": False,
                "self_deaf": self_deaf,
                "self_mute": self_mute,
                "self_stream": False,
                "self_video": False,
                "suppress": False,
                "request_to_speak_timestamp": None,
            }
            member = guild.members.get(user_id)
            if member is not None:
                payload["member"] = self.member_payload(guild, member)
            return payload
        self._put_voice_state(guild, user_id, channel_id, session_id)
        guild.voice_states[user_id] = {
            **guild.voice_states[user_id],
            "self_mute": self_mute,
            "self_deaf": self_deaf,
        }
        result = self.voice_state_payload(guild, user_id)
        assert result is not None
        return result

    def summary(self) -> dict[str, int]:
        """Counts of everything in the world."""
        return {
            "guilds": len(self.guilds),
            "unavailable_guilds": sum(g.unavailable for g in self.guilds.values()),
            "channels": sum(len(g.channels) for g in self.guilds.values()),
            "threads": sum(len(g.threads) for g in self.guilds.values()),
            "roles": sum(len(g.roles) for g in self.guilds.values()),
            "emojis": sum(len(g.emojis) for g in self.guilds.values()),
            "members": sum(g.member_count for g in self.guilds.values()),
            "presences": sum(len(g.presences) for g in self.guilds.values()),
            "voice_states": sum(len(g.voice_states) for g in self.guilds.values()),
            "users": len(self.users),
            "dm_channels": len(self.dm_channels),
            "messages": sum(len(h) for h in self._messages.values()),
        }


def _role(
    role_id: int,
    name: str,
    position: int,
    color: int,
    permissions: str,
    *,
    hoist: bool = False,
    mentionable: bool = False,
) -> dict[str, Any]:
    return {
        "id": str(role_id),
        "name": name,
        "color": color,
        "colors": {
            "primary_color": color,
            "secondary_color": None,
            "tertiary_color": None,
        },
        "hoist": hoist,
        "icon": None,
        "unicode_emoji": None,
        "position": position,
        "permissions": permissions,
        "managed": False,
        "mentionable": mentionable,
        "flags": 0,
    }


def _channel(
    channel_id: int,
    guild_id: int,
    kind: int,
    name: str,
    position: int,
    parent: int | None,
) -> dict[str, Any]:
    return {
        "id": str(channel_id),
        "type": kind,
        "guild_id": str(guild_id),
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "parent_id": str(parent) if parent is not None else None,
        "flags": 0,
    }
