"""Discord's entities as immutable typed records, and snowflake arithmetic.

Every record is a frozen, slotted dataclass: no per-object ``__dict__``, and a record
is never changed once built. The cache replaces records, it never mutates them, so a
record handed to user code stays true to the moment it describes.

Snowflakes are ``int``. Each record has a ``from_payload`` constructor that takes the
decoded JSON object Discord sent. Constructors ignore keys they do not know, and an
optional field that is missing, ``null`` or of an unexpected type takes its default:
Discord adds fields without notice and documents some only loosely. A *required* field
(an ``id``, the ``user`` of a member) that is missing or malformed raises
:class:`~tether.errors.RemoteProtocolError`.

Records kept by the thousand (members, users, presences) are built for memory: values
that repeat across records (role-id tuples, role ids, status words, locales, guild
features) are shared rather than copied, and a field left at its default points at a
shared constant (``None``, ``False``, ``0``, ``()``) instead of a new object.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeGuard, TypeVar

from tether.errors import RemoteProtocolError

__all__ = [
    "DISCORD_EPOCH_MS",
    "Activity",
    "ActivityType",
    "Attachment",
    "Channel",
    "ChannelType",
    "ClientStatus",
    "Emoji",
    "Guild",
    "Interaction",
    "Member",
    "Message",
    "MessageReference",
    "Overwrite",
    "PartialEmoji",
    "Presence",
    "Role",
    "User",
    "VoiceState",
    "shard_for",
    "snowflake_at",
    "snowflake_time",
]

#: Discord's epoch, 2015-01-01T00:00:00Z, in Unix milliseconds.
DISCORD_EPOCH_MS: Final[int] = 1_420_070_400_000

_T = TypeVar("_T")
_Payload = Mapping[str, Any]


# Snowflakes


def snowflake_time(snowflake: int) -> datetime:
    """Return when a snowflake was made (UTC), from its top 42 bits.

    Args:
        snowflake: any Discord id.
    """
    return datetime.fromtimestamp(((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000, UTC)


def snowflake_at(when: datetime) -> int:
    """Return the smallest snowflake made at ``when``: a bound for ``before``/``after``.

    Args:
        when: an aware datetime; a naive one is taken as UTC.
    """
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    unix_ms = int(when.timestamp() * 1000)
    return max(unix_ms - DISCORD_EPOCH_MS, 0) << 22


def shard_for(guild_id: int, shard_count: int) -> int:
    """Return the shard that receives a guild's events: ``(guild_id >> 22) % count``.

    Args:
        guild_id: the guild's id.
        shard_count: the number of shards the bot runs.

    Raises:
        ValueError: ``shard_count`` is below 1.
    """
    if shard_count < 1:
        raise ValueError(f"shard_count must be at least 1, got {shard_count}")
    return (guild_id >> 22) % shard_count


class _Identified:
    """Mixin for records whose ``id`` is a snowflake."""

    __slots__ = ()
    id: int

    @property
    def created_at(self) -> datetime:
        """When the entity was created, from its id (UTC)."""
        return snowflake_time(self.id)


# Shared values. The tables are small and bounded: when one fills up it starts
# afresh, which costs some sharing, never correctness. Role ids differ from guild to
# guild, so a table only needs to span the members of a guild or two; a large one
# would mostly keep values nobody uses any more.

_SHARE_LIMIT: Final[int] = 4096
_shared_ids: dict[int, int] = {}
_shared_tuples: dict[tuple[int, ...], tuple[int, ...]] = {}


def _share_id(value: int) -> int:
    shared = _shared_ids.get(value)
    if shared is not None:
        return shared
    if len(_shared_ids) >= _SHARE_LIMIT:
        _shared_ids.clear()
    _shared_ids[value] = value
    return value


def _share_ids(values: tuple[int, ...]) -> tuple[int, ...]:
    if not values:
        return ()
    shared = _shared_tuples.get(values)
    if shared is not None:
        return shared
    if len(_shared_tuples) >= _SHARE_LIMIT:
        _shared_tuples.clear()
    values = tuple(_share_id(value) for value in values)
    _shared_tuples[values] = values
    return values


def _word(value: object) -> str | None:
    """A string from a small vocabulary (status, locale, feature): interned."""
    if isinstance(value, str) and len(value) <= 64:
        return sys.intern(value)
    return None


# Lenient field readers: a wrong type reads as absent.


def _snowflake(value: object) -> int | None:
    if isinstance(value, str):
        if value.isdigit():
            return int(value)
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _required_snowflake(data: _Payload, key: str, what: str) -> int:
    value = _snowflake(data.get(key))
    if value is None:
        raise RemoteProtocolError(f"{what} payload has no valid {key!r}")
    return value


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object, default: int = 0) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return default


def _opt_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _bitfield(value: object) -> int:
    """Permissions travel as a decimal string; accept an int as well."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return _int(value)


def _bool(value: object, default: bool = False) -> bool:
    return value if isinstance(value, bool) else default


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _snowflakes(value: object) -> tuple[int, ...]:
    if not isinstance(value, list | tuple):
        return ()
    ids = []
    for item in value:
        snowflake = _snowflake(item)
        if snowflake is not None:
            ids.append(snowflake)
    return tuple(ids)


def _is_mapping(value: object) -> TypeGuard[_Payload]:
    # Decoded JSON objects are dicts: the exact check skips the ABC machinery.
    return type(value) is dict or isinstance(value, Mapping)


def _mapping(value: object) -> _Payload | None:
    return value if _is_mapping(value) else None


def _mappings(value: object) -> tuple[_Payload, ...]:
    if type(value) is not list and not isinstance(value, list | tuple):
        return ()
    return tuple(item for item in value if _is_mapping(item))


def _parse_each(value: object, parse: Callable[[_Payload], _T]) -> tuple[_T, ...]:
    """Parse every object of a list; an entry that is malformed is skipped."""
    records = []
    for item in _mappings(value):
        try:
            records.append(parse(item))
        except RemoteProtocolError:
            continue
    return tuple(records)


def _ensure_mapping(data: object, what: str) -> _Payload:
    if not _is_mapping(data):
        raise RemoteProtocolError(f"{what} payload is not an object")
    return data


# Enumerations (records keep the raw int, so values Discord adds later still fit)


class ChannelType(enum.IntEnum):
    """Channel types, named as in Discord's documentation."""

    GUILD_TEXT = 0
    DM = 1
    GUILD_VOICE = 2
    GROUP_DM = 3
    GUILD_CATEGORY = 4
    GUILD_ANNOUNCEMENT = 5
    ANNOUNCEMENT_THREAD = 10
    PUBLIC_THREAD = 11
    PRIVATE_THREAD = 12
    GUILD_STAGE_VOICE = 13
    GUILD_DIRECTORY = 14
    GUILD_FORUM = 15
    GUILD_MEDIA = 16


_THREAD_TYPES: Final[frozenset[int]] = frozenset({10, 11, 12})


class ActivityType(enum.IntEnum):
    """Activity types, named as in Discord's documentation."""

    PLAYING = 0
    STREAMING = 1
    LISTENING = 2
    WATCHING = 3
    CUSTOM = 4
    COMPETING = 5


# Users and members


@dataclass(frozen=True, slots=True, kw_only=True)
class User(_Identified):
    """A Discord user (or bot).

    Attributes:
        id: the user's id.
        username: the unique username.
        discriminator: ``"0"`` for users migrated to unique usernames.
        global_name: the display name, when set.
        avatar: the avatar hash.
        bot: whether the user is a bot.
        system: whether the user is an official Discord system user.
        public_flags: the public user flags bitfield.
    """

    id: int
    username: str = ""
    discriminator: str = "0"
    global_name: str | None = None
    avatar: str | None = None
    bot: bool = False
    system: bool = False
    public_flags: int = 0

    @property
    def display_name(self) -> str:
        """The global name when set, else the username."""
        return self.global_name or self.username

    @property
    def mention(self) -> str:
        """The text that mentions the user in a message."""
        return f"<@{self.id}>"

    @classmethod
    def from_payload(cls, data: _Payload) -> User:
        """Build a user from a user object.

        Raises:
            RemoteProtocolError: the object has no valid ``id``.
        """
        data = _ensure_mapping(data, "user")
        return cls(
            id=_required_snowflake(data, "id", "user"),
            username=_str(data.get("username")) or "",
            discriminator=_word(data.get("discriminator")) or "0",
            global_name=_str(data.get("global_name")),
            avatar=_str(data.get("avatar")),
            bot=_bool(data.get("bot")),
            system=_bool(data.get("system")),
            public_flags=_int(data.get("public_flags")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """A user's membership of one guild.

    Attributes:
        user: the user (the cache shares one object between a user's memberships).
        guild_id: the guild's id.
        roles: ids of the member's roles, ``@everyone`` excluded.
        nick: the guild nickname, when set.
        avatar: the guild avatar hash, when set.
        joined_at: when the user joined (``None`` for guests of a voice channel).
        premium_since: when the user started boosting the guild.
        communication_disabled_until: the end of a timeout, when timed out.
        flags: the guild member flags bitfield.
        pending: whether the user has yet to pass membership screening.
        deaf: whether the user is deafened in voice channels.
        mute: whether the user is muted in voice channels.
    """

    user: User
    guild_id: int
    roles: tuple[int, ...] = ()
    nick: str | None = None
    avatar: str | None = None
    joined_at: datetime | None = None
    premium_since: datetime | None = None
    communication_disabled_until: datetime | None = None
    flags: int = 0
    pending: bool = False
    deaf: bool = False
    mute: bool = False

    @property
    def id(self) -> int:
        """The user's id."""
        return self.user.id

    @property
    def display_name(self) -> str:
        """The nickname when set, else the user's display name."""
        return self.nick or self.user.display_name

    @property
    def mention(self) -> str:
        """The text that mentions the member in a message."""
        return f"<@{self.user.id}>"

    @classmethod
    def from_payload(
        cls, data: _Payload, *, guild_id: int, user: User | None = None
    ) -> Member:
        """Build a member from a guild member object.

        Args:
            data: the member object.
            guild_id: the guild it belongs to (member objects rarely say).
            user: the user, for member objects sent without one (a message's
                ``member`` goes with its ``author``).

        Raises:
            RemoteProtocolError: there is no user, in ``data`` or as ``user``.
        """
        data = _ensure_mapping(data, "member")
        user_data = _mapping(data.get("user"))
        if user_data is not None:
            user = User.from_payload(user_data)
        elif user is None:
            raise RemoteProtocolError("member payload has no 'user'")
        return cls(
            user=user,
            guild_id=guild_id,
            roles=_share_ids(_snowflakes(data.get("roles"))),
            nick=_str(data.get("nick")),
            avatar=_str(data.get("avatar")),
            joined_at=_time(data.get("joined_at")),
            premium_since=_time(data.get("premium_since")),
            communication_disabled_until=_time(
                data.get("communication_disabled_until")
            ),
            flags=_int(data.get("flags")),
            pending=_bool(data.get("pending")),
            deaf=_bool(data.get("deaf")),
            mute=_bool(data.get("mute")),
        )


# Guild contents


@dataclass(frozen=True, slots=True, kw_only=True)
class Role(_Identified):
    """A guild role. The ``@everyone`` role has the guild's id.

    Attributes:
        id: the role's id.
        name: the role's name.
        color: the primary color as an RGB integer (0 = none).
        hoist: whether members are listed separately.
        icon: the role icon hash.
        unicode_emoji: the role's unicode emoji.
        position: the sorting position.
        permissions: the permissions bitfield.
        managed: whether an integration manages the role.
        mentionable: whether anyone may mention the role.
        flags: the role flags bitfield.
        bot_id: the bot the role belongs to, for a bot's managed role.
        integration_id: the integration the role belongs to.
        is_premium_subscriber: whether this is the guild's booster role.
    """

    id: int
    name: str = ""
    color: int = 0
    hoist: bool = False
    icon: str | None = None
    unicode_emoji: str | None = None
    position: int = 0
    permissions: int = 0
    managed: bool = False
    mentionable: bool = False
    flags: int = 0
    bot_id: int | None = None
    integration_id: int | None = None
    is_premium_subscriber: bool = False

    @property
    def mention(self) -> str:
        """The text that mentions the role in a message."""
        return f"<@&{self.id}>"

    @classmethod
    def from_payload(cls, data: _Payload) -> Role:
        """Build a role from a role object.

        Raises:
            RemoteProtocolError: the object has no valid ``id``.
        """
        data = _ensure_mapping(data, "role")
        tags = _mapping(data.get("tags")) or {}
        return cls(
            id=_share_id(_required_snowflake(data, "id", "role")),
            name=_str(data.get("name")) or "",
            color=_int(data.get("color")),
            hoist=_bool(data.get("hoist")),
            icon=_str(data.get("icon")),
            unicode_emoji=_str(data.get("unicode_emoji")),
            position=_int(data.get("position")),
            permissions=_bitfield(data.get("permissions")),
            managed=_bool(data.get("managed")),
            mentionable=_bool(data.get("mentionable")),
            flags=_int(data.get("flags")),
            bot_id=_snowflake(tags.get("bot_id")),
            integration_id=_snowflake(tags.get("integration_id")),
            # Discord marks this one with a key whose value is null.
            is_premium_subscriber="premium_subscriber" in tags,
        )


@dataclass(frozen=True, slots=True)
class Overwrite:
    """A channel permission overwrite.

    Attributes:
        id: the role or user it applies to.
        type: 0 for a role, 1 for a member.
        allow: permissions granted.
        deny: permissions denied.
    """

    id: int
    type: int
    allow: int
    deny: int

    @classmethod
    def from_payload(cls, data: _Payload) -> Overwrite:
        """Build an overwrite from a permission overwrite object.

        Raises:
            RemoteProtocolError: the object has no valid ``id``.
        """
        data = _ensure_mapping(data, "overwrite")
        return cls(
            id=_share_id(_required_snowflake(data, "id", "overwrite")),
            type=_int(data.get("type")),
            allow=_bitfield(data.get("allow")),
            deny=_bitfield(data.get("deny")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Channel(_Identified):
    """A channel of any type, threads included (see :attr:`is_thread`).

    Attributes:
        id: the channel's id.
        type: the channel type (see :class:`ChannelType`; unknown types are kept).
        guild_id: the guild, for guild channels.
        name: the channel's name.
        position: the sorting position.
        parent_id: the category of a channel, or the parent channel of a thread.
        topic: the topic.
        nsfw: whether the channel is age-restricted.
        last_message_id: the id of the last message sent in it.
        bitrate: the bitrate of a voice channel, in bits per second.
        user_limit: the user limit of a voice channel (0 = none).
        rate_limit_per_user: slow mode, in seconds.
        rtc_region: the voice region, ``None`` for automatic.
        permission_overwrites: the channel's overwrites.
        flags: the channel flags bitfield.
        owner_id: the creator of a thread.
        member_count: a thread's approximate member count (stops at 50).
        message_count: a thread's approximate message count.
        archived: whether a thread is archived.
        locked: whether a thread is locked.
        auto_archive_duration: a thread's inactivity timeout, in minutes.
        archive_timestamp: when a thread's archive status last changed.
    """

    id: int
    type: int
    guild_id: int | None = None
    name: str | None = None
    position: int = 0
    parent_id: int | None = None
    topic: str | None = None
    nsfw: bool = False
    last_message_id: int | None = None
    bitrate: int | None = None
    user_limit: int | None = None
    rate_limit_per_user: int = 0
    rtc_region: str | None = None
    permission_overwrites: tuple[Overwrite, ...] = ()
    flags: int = 0
    owner_id: int | None = None
    member_count: int | None = None
    message_count: int | None = None
    archived: bool = False
    locked: bool = False
    auto_archive_duration: int | None = None
    archive_timestamp: datetime | None = None

    @property
    def is_thread(self) -> bool:
        """Whether the channel is a thread."""
        return self.type in _THREAD_TYPES

    @property
    def mention(self) -> str:
        """The text that links the channel in a message."""
        return f"<#{self.id}>"

    @classmethod
    def from_payload(cls, data: _Payload, *, guild_id: int | None = None) -> Channel:
        """Build a channel from a channel object.

        Args:
            data: the channel object.
            guild_id: the guild, when the object does not say (GUILD_CREATE's channels).

        Raises:
            RemoteProtocolError: the object has no valid ``id``.
        """
        data = _ensure_mapping(data, "channel")
        meta = _mapping(data.get("thread_metadata")) or {}
        own_guild = _snowflake(data.get("guild_id"))
        return cls(
            id=_required_snowflake(data, "id", "channel"),
            type=_int(data.get("type")),
            guild_id=guild_id if guild_id is not None else own_guild,
            name=_str(data.get("name")),
            position=_int(data.get("position")),
            parent_id=_snowflake(data.get("parent_id")),
            topic=_str(data.get("topic")),
            nsfw=_bool(data.get("nsfw")),
            last_message_id=_snowflake(data.get("last_message_id")),
            bitrate=_opt_int(data.get("bitrate")),
            user_limit=_opt_int(data.get("user_limit")),
            rate_limit_per_user=_int(data.get("rate_limit_per_user")),
            rtc_region=_str(data.get("rtc_region")),
            permission_overwrites=_parse_each(
                data.get("permission_overwrites"), Overwrite.from_payload
            ),
            flags=_int(data.get("flags")),
            owner_id=_snowflake(data.get("owner_id")),
            member_count=_opt_int(data.get("member_count")),
            message_count=_opt_int(data.get("message_count")),
            archived=_bool(meta.get("archived")),
            locked=_bool(meta.get("locked")),
            auto_archive_duration=_opt_int(meta.get("auto_archive_duration")),
            archive_timestamp=_time(meta.get("archive_timestamp")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PartialEmoji:
    """An emoji as reactions and activities name it.

    Attributes:
        id: the custom emoji's id; ``None`` for a unicode emoji.
        name: the custom emoji's name, or the unicode emoji itself.
        animated: whether a custom emoji is animated.
    """

    id: int | None = None
    name: str | None = None
    animated: bool = False

    @classmethod
    def from_payload(cls, data: _Payload) -> PartialEmoji:
        """Build an emoji from a (partial) emoji object."""
        data = _ensure_mapping(data, "emoji")
        return cls(
            id=_snowflake(data.get("id")),
            name=_str(data.get("name")),
            animated=_bool(data.get("animated")),
        )

    def __str__(self) -> str:
        if self.id is None:
            return self.name or ""
        prefix = "a" if self.animated else ""
        return f"<{prefix}:{self.name or '_'}:{self.id}>"


@dataclass(frozen=True, slots=True, kw_only=True)
class Emoji(_Identified):
    """A guild's custom emoji.

    Attributes:
        id: the emoji's id.
        name: the emoji's name.
        roles: roles allowed to use it (empty = everyone).
        user_id: the user who created it, when known.
        require_colons: whether it must be wrapped in colons.
        managed: whether an integration manages it.
        animated: whether it is animated.
        available: ``False`` when lost to a drop in boosts.
    """

    id: int
    name: str = ""
    roles: tuple[int, ...] = ()
    user_id: int | None = None
    require_colons: bool = True
    managed: bool = False
    animated: bool = False
    available: bool = True

    @classmethod
    def from_payload(cls, data: _Payload) -> Emoji:
        """Build a guild emoji from an emoji object.

        Raises:
            RemoteProtocolError: the object has no valid ``id``.
        """
        data = _ensure_mapping(data, "emoji")
        user = _mapping(data.get("user")) or {}
        return cls(
            id=_required_snowflake(data, "id", "emoji"),
            name=_str(data.get("name")) or "",
            roles=_share_ids(_snowflakes(data.get("roles"))),
            user_id=_snowflake(user.get("id")),
            require_colons=_bool(data.get("require_colons"), True),
            managed=_bool(data.get("managed")),
            animated=_bool(data.get("animated")),
            available=_bool(data.get("available"), True),
        )

    def __str__(self) -> str:
        prefix = "a" if self.animated else ""
        return f"<{prefix}:{self.name}:{self.id}>"


@dataclass(frozen=True, slots=True, kw_only=True)
class Guild(_Identified):
    """A guild's own settings; its channels, roles and members are kept apart.

    A guild that is unavailable (an outage, or not yet streamed after READY) is a
    record with ``unavailable=True``; in an outage the cache keeps the fields it had.

    Attributes:
        id: the guild's id.
        name: the guild's name.
        unavailable: whether the guild is unavailable.
        icon: the icon hash.
        splash: the invite splash hash.
        banner: the banner hash.
        description: the description of a discoverable guild.
        owner_id: the owner's user id.
        application_id: the application that created the guild, if any.
        afk_channel_id: the AFK voice channel.
        afk_timeout: the AFK timeout, in seconds.
        system_channel_id: where system messages go.
        rules_channel_id: the rules channel of a community guild.
        public_updates_channel_id: where Discord's notices go, in a community guild.
        verification_level: the verification level.
        default_message_notifications: the default notification level.
        explicit_content_filter: the explicit content filter level.
        mfa_level: the MFA level required for moderation.
        nsfw_level: the guild NSFW level.
        premium_tier: the boost tier.
        premium_subscription_count: the number of boosts.
        preferred_locale: the community guild's locale.
        vanity_url_code: the vanity invite code.
        features: the guild's feature names.
        joined_at: when the bot joined (GUILD_CREATE only).
        large: whether the guild is over the large threshold (GUILD_CREATE only).
        member_count: the member count (GUILD_CREATE only; the cache keeps it up to
            date with member adds and removes).
    """

    id: int
    name: str = ""
    unavailable: bool = False
    icon: str | None = None
    splash: str | None = None
    banner: str | None = None
    description: str | None = None
    owner_id: int | None = None
    application_id: int | None = None
    afk_channel_id: int | None = None
    afk_timeout: int = 0
    system_channel_id: int | None = None
    rules_channel_id: int | None = None
    public_updates_channel_id: int | None = None
    verification_level: int = 0
    default_message_notifications: int = 0
    explicit_content_filter: int = 0
    mfa_level: int = 0
    nsfw_level: int = 0
    premium_tier: int = 0
    premium_subscription_count: int = 0
    preferred_locale: str = "en-US"
    vanity_url_code: str | None = None
    features: tuple[str, ...] = ()
    joined_at: datetime | None = None
    large: bool = False
    member_count: int | None = None

    @classmethod
    def from_payload(cls, data: _Payload) -> Guild:
        """Build a guild from a guild object (its lists are not read here).

        Raises:
            RemoteProtocolError: the object has no valid ``id``.
        """
        data = _ensure_mapping(data, "guild")
        features = data.get("features")
        return cls(
            id=_share_id(_required_snowflake(data, "id", "guild")),
            name=_str(data.get("name")) or "",
            unavailable=_bool(data.get("unavailable")),
            icon=_str(data.get("icon")),
            splash=_str(data.get("splash")),
            banner=_str(data.get("banner")),
            description=_str(data.get("description")),
            owner_id=_snowflake(data.get("owner_id")),
            application_id=_snowflake(data.get("application_id")),
            afk_channel_id=_snowflake(data.get("afk_channel_id")),
            afk_timeout=_int(data.get("afk_timeout")),
            system_channel_id=_snowflake(data.get("system_channel_id")),
            rules_channel_id=_snowflake(data.get("rules_channel_id")),
            public_updates_channel_id=_snowflake(data.get("public_updates_channel_id")),
            verification_level=_int(data.get("verification_level")),
            default_message_notifications=_int(
                data.get("default_message_notifications")
            ),
            explicit_content_filter=_int(data.get("explicit_content_filter")),
            mfa_level=_int(data.get("mfa_level")),
            nsfw_level=_int(data.get("nsfw_level")),
            premium_tier=_int(data.get("premium_tier")),
            premium_subscription_count=_int(data.get("premium_subscription_count")),
            preferred_locale=_word(data.get("preferred_locale")) or "en-US",
            vanity_url_code=_str(data.get("vanity_url_code")),
            features=_words(features),
            joined_at=_time(data.get("joined_at")),
            large=_bool(data.get("large")),
            member_count=_opt_int(data.get("member_count")),
        )


def _words(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(word for word in map(_word, value) if word is not None)


# Presences and voice


@dataclass(frozen=True, slots=True, kw_only=True)
class Activity:
    """One activity of a presence.

    Attributes:
        name: the activity's name.
        type: the activity type (see :class:`ActivityType`).
        url: the stream URL, for streaming.
        state: the party status, or the text of a custom status.
        details: what the user is doing.
        created_at: when the activity was added, in Unix milliseconds.
        application_id: the application, for a game.
        emoji: the emoji of a custom status.
        start: when the activity started, in Unix milliseconds.
        end: when the activity ends, in Unix milliseconds.
    """

    name: str
    type: int = 0
    url: str | None = None
    state: str | None = None
    details: str | None = None
    created_at: int | None = None
    application_id: int | None = None
    emoji: PartialEmoji | None = None
    start: int | None = None
    end: int | None = None

    @classmethod
    def from_payload(cls, data: _Payload) -> Activity:
        """Build an activity from an activity object."""
        data = _ensure_mapping(data, "activity")
        emoji = _mapping(data.get("emoji"))
        timestamps = _mapping(data.get("timestamps")) or {}
        return cls(
            name=_str(data.get("name")) or "",
            type=_int(data.get("type")),
            url=_str(data.get("url")),
            state=_str(data.get("state")),
            details=_str(data.get("details")),
            created_at=_opt_int(data.get("created_at")),
            application_id=_snowflake(data.get("application_id")),
            emoji=PartialEmoji.from_payload(emoji) if emoji is not None else None,
            start=_opt_int(timestamps.get("start")),
            end=_opt_int(timestamps.get("end")),
        )


@dataclass(frozen=True, slots=True)
class ClientStatus:
    """A user's status on each platform (``None`` where not signed in).

    Attributes:
        desktop: the status on the desktop app.
        mobile: the status on a mobile app.
        web: the status in a browser.
    """

    desktop: str | None = None
    mobile: str | None = None
    web: str | None = None

    @classmethod
    def from_payload(cls, data: _Payload) -> ClientStatus:
        """Build a client status, shared with every equal one already built."""
        data = _ensure_mapping(data, "client_status")
        status = cls(
            _word(data.get("desktop")),
            _word(data.get("mobile")),
            _word(data.get("web")),
        )
        shared = _shared_statuses.get(status)
        if shared is not None:
            return shared
        if len(_shared_statuses) >= _SHARE_LIMIT:
            _shared_statuses.clear()
        _shared_statuses[status] = status
        return status


_shared_statuses: dict[ClientStatus, ClientStatus] = {}
_NO_CLIENT_STATUS: Final = ClientStatus()


@dataclass(frozen=True, slots=True, kw_only=True)
class Presence:
    """A user's presence in one guild.

    Attributes:
        user_id: the user's id.
        guild_id: the guild's id.
        status: ``online``, ``idle``, ``dnd`` or ``offline``.
        activities: the user's activities.
        client_status: the status per platform.
    """

    user_id: int
    guild_id: int
    status: str = "offline"
    activities: tuple[Activity, ...] = ()
    client_status: ClientStatus = _NO_CLIENT_STATUS

    @classmethod
    def from_payload(cls, data: _Payload, *, guild_id: int | None = None) -> Presence:
        """Build a presence from a presence object.

        Args:
            data: the presence object.
            guild_id: the guild, when the object does not say (GUILD_CREATE's).

        Raises:
            RemoteProtocolError: there is no valid user id or guild id.
        """
        data = _ensure_mapping(data, "presence")
        user = _mapping(data.get("user")) or {}
        if guild_id is None:
            guild_id = _required_snowflake(data, "guild_id", "presence")
        client_status = _mapping(data.get("client_status"))
        return cls(
            user_id=_required_snowflake(user, "id", "presence user"),
            guild_id=guild_id,
            status=_word(data.get("status")) or "offline",
            activities=_parse_each(data.get("activities"), Activity.from_payload),
            client_status=(
                ClientStatus.from_payload(client_status)
                if client_status
                else _NO_CLIENT_STATUS
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceState:
    """A user's voice connection state.

    Attributes:
        user_id: the user's id.
        guild_id: the guild, for guild voice.
        channel_id: the voice channel; ``None`` once the user left.
        session_id: the voice session's id.
        deaf: deafened by the guild.
        mute: muted by the guild.
        self_deaf: deafened by the user.
        self_mute: muted by the user.
        self_stream: streaming with Go Live.
        self_video: the camera is on.
        suppress: the user cannot speak (stage channels).
        request_to_speak_timestamp: when the user asked to speak (stage channels).
    """

    user_id: int
    guild_id: int | None = None
    channel_id: int | None = None
    session_id: str = ""
    deaf: bool = False
    mute: bool = False
    self_deaf: bool = False
    self_mute: bool = False
    self_stream: bool = False
    self_video: bool = False
    suppress: bool = False
    request_to_speak_timestamp: datetime | None = None

    @classmethod
    def from_payload(cls, data: _Payload, *, guild_id: int | None = None) -> VoiceState:
        """Build a voice state from a voice state object.

        Args:
            data: the voice state object.
            guild_id: the guild, when the object does not say (GUILD_CREATE's).

        Raises:
            RemoteProtocolError: the object has no valid ``user_id``.
        """
        data = _ensure_mapping(data, "voice state")
        own_guild = _snowflake(data.get("guild_id"))
        return cls(
            user_id=_required_snowflake(data, "user_id", "voice state"),
            guild_id=guild_id if guild_id is not None else own_guild,
            channel_id=_snowflake(data.get("channel_id")),
            session_id=_str(data.get("session_id")) or "",
            deaf=_bool(data.get("deaf")),
            mute=_bool(data.get("mute")),
            self_deaf=_bool(data.get("self_deaf")),
            self_mute=_bool(data.get("self_mute")),
            self_stream=_bool(data.get("self_stream")),
            self_video=_bool(data.get("self_video")),
            suppress=_bool(data.get("suppress")),
            request_to_speak_timestamp=_time(data.get("request_to_speak_timestamp")),
        )


# Messages


@dataclass(frozen=True, slots=True, kw_only=True)
class Attachment(_Identified):
    """A file attached to a message.

    Attributes:
        id: the attachment's id.
        filename: the file's name.
        size: the size in bytes.
        url: where to download it.
        proxy_url: the proxied download URL.
        content_type: the media type, when known.
        width: the width of an image or video.
        height: the height of an image or video.
    """

    id: int
    filename: str = ""
    size: int = 0
    url: str = ""
    proxy_url: str = ""
    content_type: str | None = None
    width: int | None = None
    height: int | None = None

    @classmethod
    def from_payload(cls, data: _Payload) -> Attachment:
        """Build an attachment from an attachment object.

        Raises:
            RemoteProtocolError: the object has no valid ``id``.
        """
        data = _ensure_mapping(data, "attachment")
        return cls(
            id=_required_snowflake(data, "id", "attachment"),
            filename=_str(data.get("filename")) or "",
            size=_int(data.get("size")),
            url=_str(data.get("url")) or "",
            proxy_url=_str(data.get("proxy_url")) or "",
            content_type=_str(data.get("content_type")),
            width=_opt_int(data.get("width")),
            height=_opt_int(data.get("height")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReference:
    """What a message replies to, forwards or crossposts.

    Attributes:
        type: 0 for a reply, 1 for a forward.
        message_id: the message referred to.
        channel_id: its channel.
        guild_id: its guild.
    """

    type: int = 0
    message_id: int | None = None
    channel_id: int | None = None
    guild_id: int | None = None

    @classmethod
    def from_payload(cls, data: _Payload) -> MessageReference:
        """Build a reference from a message reference object."""
        data = _ensure_mapping(data, "message reference")
        return cls(
            type=_int(data.get("type")),
            message_id=_snowflake(data.get("message_id")),
            channel_id=_snowflake(data.get("channel_id")),
            guild_id=_snowflake(data.get("guild_id")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Message(_Identified):
    """A message. Embeds, components and stickers are kept as Discord sent them.

    Attributes:
        id: the message's id.
        channel_id: the channel it was sent in.
        guild_id: the guild, for guild messages.
        author: who sent it (``None`` in a partial MESSAGE_UPDATE).
        member: the author's membership, for guild messages not from webhooks.
        content: the text (empty without the MESSAGE_CONTENT intent, mostly).
        timestamp: when it was sent.
        edited_timestamp: when it was last edited.
        type: the message type (0 default, 19 reply, ...).
        flags: the message flags bitfield.
        tts: whether it was sent as text-to-speech.
        mention_everyone: whether it mentions ``@everyone``.
        pinned: whether it is pinned.
        mentions: users it mentions.
        mention_roles: roles it mentions.
        attachments: attached files.
        embeds: embed objects, raw.
        components: component objects, raw.
        sticker_items: sticker items, raw.
        reference: what it replies to or forwards.
        referenced_message: the message replied to, when Discord sent it.
        webhook_id: the webhook that sent it.
        application_id: the application, for interaction replies.
        nonce: the nonce the sender chose, if any.
    """

    id: int
    channel_id: int
    guild_id: int | None = None
    author: User | None = None
    member: Member | None = None
    content: str = ""
    timestamp: datetime | None = None
    edited_timestamp: datetime | None = None
    type: int = 0
    flags: int = 0
    tts: bool = False
    mention_everyone: bool = False
    pinned: bool = False
    mentions: tuple[User, ...] = ()
    mention_roles: tuple[int, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    embeds: tuple[Mapping[str, Any], ...] = ()
    components: tuple[Mapping[str, Any], ...] = ()
    sticker_items: tuple[Mapping[str, Any], ...] = ()
    reference: MessageReference | None = None
    referenced_message: Message | None = None
    webhook_id: int | None = None
    application_id: int | None = None
    nonce: str | int | None = None

    def __hash__(self) -> int:
        # The raw mappings are not hashable; the id identifies a message.
        return hash(self.id)

    @classmethod
    def from_payload(cls, data: _Payload, *, depth: int = 0) -> Message:
        """Build a message from a message object.

        Args:
            data: the message object.
            depth: how deep in ``referenced_message`` this is; nesting stops at 1.

        Raises:
            RemoteProtocolError: the object has no valid ``id`` or ``channel_id``.
        """
        data = _ensure_mapping(data, "message")
        guild_id = _snowflake(data.get("guild_id"))
        author_data = _mapping(data.get("author"))
        author = User.from_payload(author_data) if author_data is not None else None
        member_data = _mapping(data.get("member"))
        member = None
        if member_data is not None and author is not None and guild_id is not None:
            member = Member.from_payload(member_data, guild_id=guild_id, user=author)
        reference = _mapping(data.get("message_reference"))
        referenced = _mapping(data.get("referenced_message"))
        nonce = data.get("nonce")
        return cls(
            id=_required_snowflake(data, "id", "message"),
            channel_id=_required_snowflake(data, "channel_id", "message"),
            guild_id=guild_id,
            author=author,
            member=member,
            content=_str(data.get("content")) or "",
            timestamp=_time(data.get("timestamp")),
            edited_timestamp=_time(data.get("edited_timestamp")),
            type=_int(data.get("type")),
            flags=_int(data.get("flags")),
            tts=_bool(data.get("tts")),
            mention_everyone=_bool(data.get("mention_everyone")),
            pinned=_bool(data.get("pinned")),
            mentions=_parse_each(data.get("mentions"), User.from_payload),
            mention_roles=_share_ids(_snowflakes(data.get("mention_roles"))),
            attachments=_parse_each(data.get("attachments"), Attachment.from_payload),
            embeds=_mappings(data.get("embeds")),
            components=_mappings(data.get("components")),
            sticker_items=_mappings(data.get("sticker_items")),
            reference=(
                MessageReference.from_payload(reference)
                if reference is not None
                else None
            ),
            referenced_message=(
                _referenced(referenced, depth) if referenced is not None else None
            ),
            webhook_id=_snowflake(data.get("webhook_id")),
            application_id=_snowflake(data.get("application_id")),
            nonce=nonce if isinstance(nonce, str | int) else None,
        )


def _referenced(data: _Payload, depth: int) -> Message | None:
    if depth >= 1:
        return None
    try:
        return Message.from_payload(data, depth=depth + 1)
    except RemoteProtocolError:
        return None


# Interactions


@dataclass(frozen=True, slots=True, kw_only=True)
class Interaction(_Identified):
    """An interaction (command, component, modal, autocomplete), mostly raw.

    Attributes:
        id: the interaction's id.
        application_id: the application it is for.
        type: the interaction type (2 = application command, 3 = component, ...).
        token: the token to answer with (valid 15 minutes; not shown in ``repr``).
        version: always 1.
        guild_id: the guild it came from.
        channel_id: the channel it came from.
        user: who triggered it (the member's user in a guild).
        member: the member who triggered it, in a guild.
        member_permissions: the member's permissions in the channel, in a guild.
        app_permissions: the bot's permissions in the channel.
        locale: the user's locale.
        guild_locale: the guild's preferred locale.
        data: the ``data`` object, raw.
        message: the message a component was on, raw.
        raw: the whole payload (not shown in ``repr``).
    """

    id: int
    application_id: int
    type: int
    token: str = field(repr=False)
    version: int = 1
    guild_id: int | None = None
    channel_id: int | None = None
    user: User | None = None
    member: Member | None = None
    member_permissions: int = 0
    app_permissions: int = 0
    locale: str | None = None
    guild_locale: str | None = None
    data: Mapping[str, Any] | None = None
    message: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __hash__(self) -> int:
        return hash(self.id)

    @classmethod
    def from_payload(cls, data: _Payload) -> Interaction:
        """Build an interaction from an interaction object.

        Raises:
            RemoteProtocolError: the object has no valid ``id`` or
                ``application_id``.
        """
        data = _ensure_mapping(data, "interaction")
        guild_id = _snowflake(data.get("guild_id"))
        member_data = _mapping(data.get("member"))
        member = None
        member_permissions = 0
        if member_data is not None and guild_id is not None:
            try:
                member = Member.from_payload(member_data, guild_id=guild_id)
            except RemoteProtocolError:
                member = None
            member_permissions = _bitfield(member_data.get("permissions"))
        user_data = _mapping(data.get("user"))
        user = member.user if member is not None else None
        if user is None and user_data is not None:
            user = User.from_payload(user_data)
        channel = _mapping(data.get("channel")) or {}
        channel_id = _snowflake(data.get("channel_id"))
        return cls(
            id=_required_snowflake(data, "id", "interaction"),
            application_id=_required_snowflake(data, "application_id", "interaction"),
            type=_int(data.get("type")),
            token=_str(data.get("token")) or "",
            version=_int(data.get("version"), 1),
            guild_id=guild_id,
            channel_id=channel_id
            if channel_id is not None
            else _snowflake(channel.get("id")),
            user=user,
            member=member,
            member_permissions=member_permissions,
            app_permissions=_bitfield(data.get("app_permissions")),
            locale=_word(data.get("locale")),
            guild_locale=_word(data.get("guild_locale")),
            data=_mapping(data.get("data")),
            message=_mapping(data.get("message")),
            raw=data,
        )
