"""Typed events built from gateway dispatches.

:func:`parse_dispatch` turns one dispatch (its name and ``d``) into one event. Each
dispatch bots commonly use has its own class; any other dispatch, including those
Discord adds later, arrives as :class:`RawDispatch`, so nothing is lost. A dispatch
whose payload is too malformed to type (no ``id`` where one is required, say) is
logged once per dispatch name and also delivered as :class:`RawDispatch`.

Some events need state that a payload does not carry:

- ``GUILD_CREATE`` is parsed as :class:`GuildAvailable`. Whether it is really a
  guild the bot just joined (:class:`GuildJoin`) is for the cache to say:
  :meth:`tether.cache.Cache.resolve` turns it into :class:`GuildJoin` when the guild
  was neither listed in this session's READY nor known before.
- Delete events (:class:`GuildLeave`, :class:`MemberRemove`, :class:`RoleDelete`,
  :class:`ThreadDelete`, :class:`MessageDelete`, ...) get the record the cache held
  from :meth:`~tether.cache.Cache.resolve`; straight from :func:`parse_dispatch`
  that field is ``None``.
- READY is not an event here. :class:`ReadyData` reads its payload; the
  :class:`Ready` event is raised later, once the guild stream is complete (see
  :mod:`tether._ready`).

Every event is a frozen, slotted, keyword-only dataclass and carries ``shard_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from tether._dispatch import HandlerError
from tether._event import Event
from tether.errors import RemoteProtocolError
from tether.models import (
    Channel,
    Emoji,
    Guild,
    Interaction,
    Member,
    Message,
    PartialEmoji,
    Presence,
    Role,
    User,
    VoiceState,
)

__all__ = [
    "ChannelCreate",
    "ChannelDelete",
    "ChannelUpdate",
    "Event",
    "GuildAvailable",
    "GuildCreate",
    "GuildEmojisUpdate",
    "GuildJoin",
    "GuildLeave",
    "GuildUnavailable",
    "GuildUpdate",
    "HandlerError",
    "InteractionCreate",
    "MemberAdd",
    "MemberRemove",
    "MemberUpdate",
    "MembersChunk",
    "MessageBulkDelete",
    "MessageCreate",
    "MessageDelete",
    "MessageUpdate",
    "PresenceUpdate",
    "RawDispatch",
    "ReactionAdd",
    "ReactionRemove",
    "ReactionRemoveAll",
    "ReactionRemoveEmoji",
    "Ready",
    "ReadyData",
    "Resumed",
    "RoleCreate",
    "RoleDelete",
    "RoleUpdate",
    "ThreadCreate",
    "ThreadDelete",
    "ThreadListSync",
    "ThreadUpdate",
    "TypingStart",
    "UserUpdate",
    "VoiceServerUpdate",
    "VoiceStateUpdate",
    "parse_dispatch",
]

logger = logging.getLogger(__name__)

_Payload = Mapping[str, Any]
_T = TypeVar("_T")


# Session lifecycle


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadyData:
    """What a READY dispatch says (not an event: :class:`Ready` comes later).

    Attributes:
        user: the bot's user.
        guild_ids: the guilds of this session, in READY's order.
        session_id: the session's id.
        resume_gateway_url: where to resume the session.
        shard: ``(shard_id, shard_count)`` when the session is sharded.
        application_id: the bot's application.
    """

    user: User
    guild_ids: tuple[int, ...]
    session_id: str
    resume_gateway_url: str | None = None
    shard: tuple[int, int] | None = None
    application_id: int | None = None

    @classmethod
    def from_payload(cls, data: _Payload) -> ReadyData:
        """Read a READY dispatch's ``d``.

        Raises:
            RemoteProtocolError: there is no valid ``user`` or ``session_id``.
        """
        if not isinstance(data, Mapping):
            raise RemoteProtocolError("READY payload is not an object")
        user = data.get("user")
        session_id = data.get("session_id")
        if not isinstance(user, Mapping) or not isinstance(session_id, str):
            raise RemoteProtocolError("READY payload has no valid user or session_id")
        guilds = data.get("guilds")
        guild_ids: list[int] = []
        for item in guilds if isinstance(guilds, list) else ():
            guild_id = _snowflake(item.get("id")) if isinstance(item, Mapping) else None
            if guild_id is not None:
                guild_ids.append(guild_id)
        shard = data.get("shard")
        application = data.get("application")
        resume_url = data.get("resume_gateway_url")
        return cls(
            user=User.from_payload(user),
            # A guild listed twice is still one guild.
            guild_ids=tuple(dict.fromkeys(guild_ids)),
            session_id=session_id,
            resume_gateway_url=resume_url if isinstance(resume_url, str) else None,
            shard=_shard_pair(shard),
            application_id=(
                _snowflake(application.get("id"))
                if isinstance(application, Mapping)
                else None
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready(Event):
    """The session's guild stream is complete and the cache holds it.

    Raised once per new session (after IDENTIFY), never after a resume. See the
    client documentation for exactly when.

    Attributes:
        user: the bot's user.
        guilds: the guilds available at this moment.
        missing_guild_ids: guilds READY listed that did not arrive (outage, or the
            quiet period ran out); they are unavailable in the cache, and each
            raises :class:`GuildAvailable` when it arrives.
        session_id: the session's id.
        members_incomplete_guild_ids: with ``fetch_members``, guilds whose member
            list was not complete when Ready was raised.
        shard_id: the shard.
    """

    user: User
    guilds: tuple[Guild, ...]
    missing_guild_ids: tuple[int, ...] = ()
    session_id: str
    members_incomplete_guild_ids: tuple[int, ...] = ()
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Resumed(Event):
    """The session was resumed: the missed dispatches were delivered before this.

    Attributes:
        shard_id: the shard.
    """

    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RawDispatch(Event):
    """A dispatch tether has no class for, or could not read, as Discord sent it.

    Attributes:
        name: the dispatch name (``t``), e.g. ``"STAGE_INSTANCE_CREATE"``.
        data: the dispatch's ``d``.
        shard_id: the shard.
    """

    name: str
    data: Any
    shard_id: int = 0


# Guilds


@dataclass(frozen=True, slots=True, kw_only=True)
class GuildCreate(Event):
    """Base of the two events a GUILD_CREATE raises; subscribe to it for both.

    Attributes:
        guild: the guild.
        channels: its channels (threads excluded).
        threads: its active threads the bot can see.
        roles: its roles.
        emojis: its custom emojis.
        members: the members Discord sent (all in small guilds; see the docs).
        presences: presences of those members (with GUILD_PRESENCES).
        voice_states: who is in voice channels.
        shard_id: the shard.
    """

    guild: Guild
    channels: tuple[Channel, ...] = ()
    threads: tuple[Channel, ...] = ()
    roles: tuple[Role, ...] = ()
    emojis: tuple[Emoji, ...] = ()
    members: tuple[Member, ...] = ()
    presences: tuple[Presence, ...] = ()
    voice_states: tuple[VoiceState, ...] = ()
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class GuildAvailable(GuildCreate):
    """A known guild became available: streamed after READY, or back from an outage."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GuildJoin(GuildCreate):
    """The bot was added to a guild."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GuildUnavailable(Event):
    """A guild became unavailable (an outage); the cache keeps what it knew.

    Attributes:
        guild_id: the guild's id.
        guild: the record the cache held, if any.
        shard_id: the shard.
    """

    guild_id: int
    guild: Guild | None = None
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class GuildLeave(Event):
    """The bot left or was removed from a guild (or it vanished between sessions).

    Attributes:
        guild_id: the guild's id.
        guild: the record the cache held, if any.
        shard_id: the shard.
    """

    guild_id: int
    guild: Guild | None = None
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class GuildUpdate(Event):
    """A guild's settings changed.

    Attributes:
        guild: the guild as sent; fields named in ``absent_fields`` hold defaults.
        absent_fields: fields the payload did not carry (GUILD_UPDATE has no
            ``member_count``, ``joined_at`` or ``large``); the cache keeps its values.
        shard_id: the shard.
    """

    guild: Guild
    absent_fields: frozenset[str] = frozenset()
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class GuildEmojisUpdate(Event):
    """A guild's custom emojis changed; ``emojis`` is the complete new set.

    Attributes:
        guild_id: the guild's id.
        emojis: every custom emoji of the guild.
        shard_id: the shard.
    """

    guild_id: int
    emojis: tuple[Emoji, ...]
    shard_id: int = 0


# Channels and threads


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelCreate(Event):
    """A channel was created.

    Attributes:
        channel: the channel.
        shard_id: the shard.
    """

    channel: Channel
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelUpdate(Event):
    """A channel changed.

    Attributes:
        channel: the channel as it is now.
        shard_id: the shard.
    """

    channel: Channel
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelDelete(Event):
    """A channel was deleted (its threads go with it).

    Attributes:
        channel: the channel as it was.
        shard_id: the shard.
    """

    channel: Channel
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadCreate(Event):
    """A thread was created, or the bot was added to a private thread.

    Attributes:
        thread: the thread.
        newly_created: ``True`` when the thread was just created.
        shard_id: the shard.
    """

    thread: Channel
    newly_created: bool = False
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadUpdate(Event):
    """A thread changed (an archived thread leaves the cache).

    Attributes:
        thread: the thread as it is now.
        shard_id: the shard.
    """

    thread: Channel
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadDelete(Event):
    """A thread was deleted.

    Attributes:
        thread_id: the thread's id.
        guild_id: its guild.
        parent_id: its parent channel.
        type: its channel type.
        thread: the record the cache held, if any.
        shard_id: the shard.
    """

    thread_id: int
    guild_id: int | None = None
    parent_id: int | None = None
    type: int = 11
    thread: Channel | None = None
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadListSync(Event):
    """The bot gained access to channels: their active threads, complete.

    Attributes:
        guild_id: the guild's id.
        channel_ids: the parent channels synced; ``None`` means the whole guild.
        threads: every active thread in those channels.
        shard_id: the shard.
    """

    guild_id: int
    channel_ids: tuple[int, ...] | None = None
    threads: tuple[Channel, ...] = ()
    shard_id: int = 0


# Roles


@dataclass(frozen=True, slots=True, kw_only=True)
class RoleCreate(Event):
    """A role was created.

    Attributes:
        guild_id: the guild's id.
        role: the role.
        shard_id: the shard.
    """

    guild_id: int
    role: Role
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RoleUpdate(Event):
    """A role changed.

    Attributes:
        guild_id: the guild's id.
        role: the role as it is now.
        shard_id: the shard.
    """

    guild_id: int
    role: Role
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RoleDelete(Event):
    """A role was deleted (the cache also takes it off every member).

    Attributes:
        guild_id: the guild's id.
        role_id: the role's id.
        role: the record the cache held, if any.
        shard_id: the shard.
    """

    guild_id: int
    role_id: int
    role: Role | None = None
    shard_id: int = 0


# Members


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberAdd(Event):
    """A user joined a guild (needs GUILD_MEMBERS).

    Attributes:
        member: the new member.
        shard_id: the shard.
    """

    member: Member
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberUpdate(Event):
    """A member changed (needs GUILD_MEMBERS, except for the bot's own member).

    Attributes:
        member: the member as sent; fields named in ``absent_fields`` hold defaults.
        absent_fields: optional fields the payload did not carry; the cache keeps
            the values it had for them.
        shard_id: the shard.
    """

    member: Member
    absent_fields: frozenset[str] = frozenset()
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberRemove(Event):
    """A user left or was removed from a guild (needs GUILD_MEMBERS).

    Attributes:
        guild_id: the guild's id.
        user: the user.
        member: the record the cache held, if any.
        shard_id: the shard.
    """

    guild_id: int
    user: User
    member: Member | None = None
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class MembersChunk(Event):
    """One GUILD_MEMBERS_CHUNK answering a request for members.

    Attributes:
        guild_id: the guild's id.
        members: the members in this chunk (at most 1000).
        chunk_index: this chunk's index, from 0.
        chunk_count: how many chunks answer the request.
        not_found: requested user ids that are not members.
        presences: the members' presences, when they were asked for.
        nonce: the request's nonce, when it had one.
        shard_id: the shard.
    """

    guild_id: int
    members: tuple[Member, ...] = ()
    chunk_index: int = 0
    chunk_count: int = 1
    not_found: tuple[int, ...] = ()
    presences: tuple[Presence, ...] = ()
    nonce: str | None = None
    shard_id: int = 0


# Messages and reactions


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageCreate(Event):
    """A message was sent.

    Attributes:
        message: the message.
        shard_id: the shard.
    """

    message: Message
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageUpdate(Event):
    """A message was edited.

    Attributes:
        message: the message as it is now.
        shard_id: the shard.
    """

    message: Message
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDelete(Event):
    """A message was deleted.

    Attributes:
        message_id: the message's id.
        channel_id: its channel.
        guild_id: its guild, for guild messages.
        message: the record the cache held (only with the message cache on).
        shard_id: the shard.
    """

    message_id: int
    channel_id: int
    guild_id: int | None = None
    message: Message | None = None
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageBulkDelete(Event):
    """Several messages were deleted at once.

    Attributes:
        message_ids: the messages' ids.
        channel_id: their channel.
        guild_id: their guild.
        messages: the records the cache held (only with the message cache on).
        shard_id: the shard.
    """

    message_ids: tuple[int, ...]
    channel_id: int
    guild_id: int | None = None
    messages: tuple[Message, ...] = ()
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ReactionAdd(Event):
    """A user reacted to a message.

    Attributes:
        user_id: who reacted.
        channel_id: the message's channel.
        message_id: the message.
        guild_id: the guild, for guild messages.
        emoji: the emoji.
        member: who reacted, for guild messages.
        message_author_id: the author of the message.
        burst: whether it is a super reaction.
        type: 0 for normal, 1 for burst.
        shard_id: the shard.
    """

    user_id: int
    channel_id: int
    message_id: int
    guild_id: int | None = None
    emoji: PartialEmoji
    member: Member | None = None
    message_author_id: int | None = None
    burst: bool = False
    type: int = 0
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ReactionRemove(Event):
    """A user removed a reaction.

    Attributes:
        user_id: whose reaction.
        channel_id: the message's channel.
        message_id: the message.
        guild_id: the guild, for guild messages.
        emoji: the emoji.
        burst: whether it was a super reaction.
        type: 0 for normal, 1 for burst.
        shard_id: the shard.
    """

    user_id: int
    channel_id: int
    message_id: int
    guild_id: int | None = None
    emoji: PartialEmoji
    burst: bool = False
    type: int = 0
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ReactionRemoveAll(Event):
    """Every reaction was removed from a message.

    Attributes:
        channel_id: the message's channel.
        message_id: the message.
        guild_id: the guild, for guild messages.
        shard_id: the shard.
    """

    channel_id: int
    message_id: int
    guild_id: int | None = None
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ReactionRemoveEmoji(Event):
    """Every reaction with one emoji was removed from a message.

    Attributes:
        channel_id: the message's channel.
        message_id: the message.
        guild_id: the guild, for guild messages.
        emoji: the emoji.
        shard_id: the shard.
    """

    channel_id: int
    message_id: int
    guild_id: int | None = None
    emoji: PartialEmoji
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TypingStart(Event):
    """A user started typing.

    Attributes:
        channel_id: the channel.
        user_id: the user.
        timestamp: when typing started.
        guild_id: the guild, for guild channels.
        member: the member, for guild channels.
        shard_id: the shard.
    """

    channel_id: int
    user_id: int
    timestamp: datetime | None = None
    guild_id: int | None = None
    member: Member | None = None
    shard_id: int = 0


# Presences, voice, users, interactions


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceUpdate(Event):
    """A user's presence changed in a guild (needs GUILD_PRESENCES).

    Attributes:
        presence: the presence as it is now.
        user: the user, when the payload carried a complete user object (it
            usually carries only the id).
        shard_id: the shard.
    """

    presence: Presence
    user: User | None = None
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceStateUpdate(Event):
    """A user joined, left or moved between voice channels, or changed mute/deaf.

    Attributes:
        voice_state: the state as it is now (``channel_id`` ``None`` = left).
        member: the member, for guild voice.
        shard_id: the shard.
    """

    voice_state: VoiceState
    member: Member | None = None
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceServerUpdate(Event):
    """The voice server for the bot's voice connection in a guild.

    Attributes:
        guild_id: the guild's id.
        endpoint: the voice server's host; ``None`` while none is allocated.
        token: the voice connection's token (not shown in ``repr``).
        shard_id: the shard.
    """

    guild_id: int
    endpoint: str | None = None
    token: str = field(default="", repr=False)
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class InteractionCreate(Event):
    """A user invoked a command, used a component or submitted a modal.

    Attributes:
        interaction: the interaction.
        shard_id: the shard.
    """

    interaction: Interaction
    shard_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class UserUpdate(Event):
    """The bot's own user changed.

    Attributes:
        user: the user as it is now.
        shard_id: the shard.
    """

    user: User
    shard_id: int = 0


# Parsing


def parse_dispatch(name: str, data: Any, *, shard_id: int = 0) -> Event:
    """Build the typed event for one dispatch.

    Args:
        name: the dispatch name (``t``).
        data: the dispatch's ``d``.
        shard_id: the shard it arrived on.

    Returns:
        The event; :class:`RawDispatch` for a dispatch tether has no class for
        (READY included) or whose payload it cannot read.
    """
    parser = _PARSERS.get(name)
    if parser is None:
        return RawDispatch(name=name, data=data, shard_id=shard_id)
    if not isinstance(data, Mapping):
        _warn_once(name, "payload is not an object")
        return RawDispatch(name=name, data=data, shard_id=shard_id)
    try:
        return parser(data, shard_id)
    except (RemoteProtocolError, TypeError, ValueError, AttributeError) as exc:
        _warn_once(name, str(exc))
        return RawDispatch(name=name, data=data, shard_id=shard_id)


_warned: set[str] = set()


def _warn_once(name: str, why: str) -> None:
    if name in _warned:
        logger.debug("%s dispatch not typed: %s", name, why)
        return
    _warned.add(name)
    logger.warning(
        "%s dispatch not typed: %s; delivered as RawDispatch (further ones at DEBUG)",
        name,
        why,
    )


def _snowflake(value: object) -> int | None:
    if isinstance(value, str):
        return int(value) if value.isdigit() else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _required(data: _Payload, key: str) -> int:
    value = _snowflake(data.get(key))
    if value is None:
        raise RemoteProtocolError(f"no valid {key!r}")
    return value


def _shard_pair(value: object) -> tuple[int, int] | None:
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(part, int) and not isinstance(part, bool) for part in value)
    ):
        return (value[0], value[1])
    return None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _each(items: object, parse: Callable[[_Payload], _T]) -> tuple[_T, ...]:
    """Parse each object of a list, skipping the malformed ones."""
    records: list[_T] = []
    for item in _list(items):
        if not isinstance(item, Mapping):
            continue
        try:
            records.append(parse(item))
        except RemoteProtocolError:
            logger.debug("skipped a malformed entry: %r", item)
    return tuple(records)


def _member_or_none(data: object, guild_id: int | None) -> Member | None:
    if not isinstance(data, Mapping) or guild_id is None:
        return None
    try:
        return Member.from_payload(data, guild_id=guild_id)
    except RemoteProtocolError:
        return None


def _guild_create(data: _Payload, shard_id: int) -> Event:
    guild = Guild.from_payload(data)
    if guild.unavailable:
        # The outage form of GUILD_CREATE: {id, unavailable: true}.
        return GuildUnavailable(guild_id=guild.id, shard_id=shard_id)
    gid = guild.id
    channels = _each(
        data.get("channels"), lambda c: Channel.from_payload(c, guild_id=gid)
    )
    threads = _each(
        data.get("threads"), lambda c: Channel.from_payload(c, guild_id=gid)
    )
    return GuildAvailable(
        guild=guild,
        channels=tuple(channel for channel in channels if not channel.is_thread),
        threads=threads,
        roles=_each(data.get("roles"), Role.from_payload),
        emojis=_each(data.get("emojis"), Emoji.from_payload),
        members=_each(
            data.get("members"), lambda m: Member.from_payload(m, guild_id=gid)
        ),
        presences=_each(
            data.get("presences"), lambda p: Presence.from_payload(p, guild_id=gid)
        ),
        voice_states=_each(
            data.get("voice_states"), lambda v: VoiceState.from_payload(v, guild_id=gid)
        ),
        shard_id=shard_id,
    )


def _guild_delete(data: _Payload, shard_id: int) -> Event:
    guild_id = _required(data, "id")
    if data.get("unavailable") is True:
        return GuildUnavailable(guild_id=guild_id, shard_id=shard_id)
    return GuildLeave(guild_id=guild_id, shard_id=shard_id)


_GUILD_FIELDS: Final = tuple(f.name for f in fields(Guild) if f.name != "id")


def _guild_update(data: _Payload, shard_id: int) -> Event:
    absent = frozenset(name for name in _GUILD_FIELDS if name not in data)
    return GuildUpdate(
        guild=Guild.from_payload(data), absent_fields=absent, shard_id=shard_id
    )


def _guild_emojis_update(data: _Payload, shard_id: int) -> Event:
    return GuildEmojisUpdate(
        guild_id=_required(data, "guild_id"),
        emojis=_each(data.get("emojis"), Emoji.from_payload),
        shard_id=shard_id,
    )


def _channel(kind: type[ChannelCreate | ChannelUpdate | ChannelDelete]) -> _Parser:
    def parse(data: _Payload, shard_id: int) -> Event:
        return kind(channel=Channel.from_payload(data), shard_id=shard_id)

    return parse


def _thread_create(data: _Payload, shard_id: int) -> Event:
    return ThreadCreate(
        thread=Channel.from_payload(data),
        newly_created=data.get("newly_created") is True,
        shard_id=shard_id,
    )


def _thread_update(data: _Payload, shard_id: int) -> Event:
    return ThreadUpdate(thread=Channel.from_payload(data), shard_id=shard_id)


def _thread_delete(data: _Payload, shard_id: int) -> Event:
    kind = data.get("type")
    return ThreadDelete(
        thread_id=_required(data, "id"),
        guild_id=_snowflake(data.get("guild_id")),
        parent_id=_snowflake(data.get("parent_id")),
        type=kind if isinstance(kind, int) and not isinstance(kind, bool) else 11,
        shard_id=shard_id,
    )


def _thread_list_sync(data: _Payload, shard_id: int) -> Event:
    guild_id = _required(data, "guild_id")
    channel_ids = data.get("channel_ids")
    return ThreadListSync(
        guild_id=guild_id,
        channel_ids=(
            tuple(filter(None, map(_snowflake, channel_ids)))
            if isinstance(channel_ids, list)
            else None
        ),
        threads=_each(
            data.get("threads"), lambda c: Channel.from_payload(c, guild_id=guild_id)
        ),
        shard_id=shard_id,
    )


def _role(kind: type[RoleCreate | RoleUpdate]) -> _Parser:
    def parse(data: _Payload, shard_id: int) -> Event:
        role = data.get("role")
        if not isinstance(role, Mapping):
            raise RemoteProtocolError("no 'role' object")
        return kind(
            guild_id=_required(data, "guild_id"),
            role=Role.from_payload(role),
            shard_id=shard_id,
        )

    return parse


def _role_delete(data: _Payload, shard_id: int) -> Event:
    return RoleDelete(
        guild_id=_required(data, "guild_id"),
        role_id=_required(data, "role_id"),
        shard_id=shard_id,
    )


def _member_add(data: _Payload, shard_id: int) -> Event:
    member = Member.from_payload(data, guild_id=_required(data, "guild_id"))
    return MemberAdd(member=member, shard_id=shard_id)


# Keys GUILD_MEMBER_UPDATE may leave out; a missing one means "unchanged".
_MEMBER_UPDATE_OPTIONAL: Final = (
    "nick",
    "avatar",
    "joined_at",
    "premium_since",
    "communication_disabled_until",
    "flags",
    "pending",
    "deaf",
    "mute",
)


def _member_update(data: _Payload, shard_id: int) -> Event:
    member = Member.from_payload(data, guild_id=_required(data, "guild_id"))
    absent = frozenset(key for key in _MEMBER_UPDATE_OPTIONAL if key not in data)
    return MemberUpdate(member=member, absent_fields=absent, shard_id=shard_id)


def _member_remove(data: _Payload, shard_id: int) -> Event:
    user = data.get("user")
    if not isinstance(user, Mapping):
        raise RemoteProtocolError("no 'user' object")
    return MemberRemove(
        guild_id=_required(data, "guild_id"),
        user=User.from_payload(user),
        shard_id=shard_id,
    )


def _members_chunk(data: _Payload, shard_id: int) -> Event:
    guild_id = _required(data, "guild_id")
    index = data.get("chunk_index")
    count = data.get("chunk_count")
    nonce = data.get("nonce")
    return MembersChunk(
        guild_id=guild_id,
        members=_each(
            data.get("members"), lambda m: Member.from_payload(m, guild_id=guild_id)
        ),
        chunk_index=index if isinstance(index, int) else 0,
        chunk_count=count if isinstance(count, int) else 1,
        not_found=tuple(
            sf for sf in map(_snowflake, _list(data.get("not_found"))) if sf is not None
        ),
        presences=_each(
            data.get("presences"), lambda p: Presence.from_payload(p, guild_id=guild_id)
        ),
        nonce=nonce if isinstance(nonce, str) else None,
        shard_id=shard_id,
    )


def _message_create(data: _Payload, shard_id: int) -> Event:
    return MessageCreate(message=Message.from_payload(data), shard_id=shard_id)


def _message_update(data: _Payload, shard_id: int) -> Event:
    return MessageUpdate(message=Message.from_payload(data), shard_id=shard_id)


def _message_delete(data: _Payload, shard_id: int) -> Event:
    return MessageDelete(
        message_id=_required(data, "id"),
        channel_id=_required(data, "channel_id"),
        guild_id=_snowflake(data.get("guild_id")),
        shard_id=shard_id,
    )


def _message_delete_bulk(data: _Payload, shard_id: int) -> Event:
    ids = (_snowflake(item) for item in _list(data.get("ids")))
    return MessageBulkDelete(
        message_ids=tuple(sf for sf in ids if sf is not None),
        channel_id=_required(data, "channel_id"),
        guild_id=_snowflake(data.get("guild_id")),
        shard_id=shard_id,
    )


def _emoji(data: _Payload) -> PartialEmoji:
    emoji = data.get("emoji")
    if not isinstance(emoji, Mapping):
        raise RemoteProtocolError("no 'emoji' object")
    return PartialEmoji.from_payload(emoji)


def _int(value: object, default: int = 0) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return default


def _reaction_add(data: _Payload, shard_id: int) -> Event:
    guild_id = _snowflake(data.get("guild_id"))
    return ReactionAdd(
        user_id=_required(data, "user_id"),
        channel_id=_required(data, "channel_id"),
        message_id=_required(data, "message_id"),
        guild_id=guild_id,
        emoji=_emoji(data),
        member=_member_or_none(data.get("member"), guild_id),
        message_author_id=_snowflake(data.get("message_author_id")),
        burst=data.get("burst") is True,
        type=_int(data.get("type")),
        shard_id=shard_id,
    )


def _reaction_remove(data: _Payload, shard_id: int) -> Event:
    return ReactionRemove(
        user_id=_required(data, "user_id"),
        channel_id=_required(data, "channel_id"),
        message_id=_required(data, "message_id"),
        guild_id=_snowflake(data.get("guild_id")),
        emoji=_emoji(data),
        burst=data.get("burst") is True,
        type=_int(data.get("type")),
        shard_id=shard_id,
    )


def _reaction_remove_all(data: _Payload, shard_id: int) -> Event:
    return ReactionRemoveAll(
        channel_id=_required(data, "channel_id"),
        message_id=_required(data, "message_id"),
        guild_id=_snowflake(data.get("guild_id")),
        shard_id=shard_id,
    )


def _reaction_remove_emoji(data: _Payload, shard_id: int) -> Event:
    return ReactionRemoveEmoji(
        channel_id=_required(data, "channel_id"),
        message_id=_required(data, "message_id"),
        guild_id=_snowflake(data.get("guild_id")),
        emoji=_emoji(data),
        shard_id=shard_id,
    )


def _typing_start(data: _Payload, shard_id: int) -> Event:
    guild_id = _snowflake(data.get("guild_id"))
    timestamp = data.get("timestamp")
    return TypingStart(
        channel_id=_required(data, "channel_id"),
        user_id=_required(data, "user_id"),
        timestamp=(
            datetime.fromtimestamp(timestamp, UTC)
            if isinstance(timestamp, int | float) and not isinstance(timestamp, bool)
            else None
        ),
        guild_id=guild_id,
        member=_member_or_none(data.get("member"), guild_id),
        shard_id=shard_id,
    )


def _presence_update(data: _Payload, shard_id: int) -> Event:
    presence = Presence.from_payload(data)
    user_data = data.get("user")
    user = None
    # A presence's user usually carries only its id; a username means it is whole.
    if isinstance(user_data, Mapping) and "username" in user_data:
        user = User.from_payload(user_data)
    return PresenceUpdate(presence=presence, user=user, shard_id=shard_id)


def _voice_state_update(data: _Payload, shard_id: int) -> Event:
    state = VoiceState.from_payload(data)
    return VoiceStateUpdate(
        voice_state=state,
        member=_member_or_none(data.get("member"), state.guild_id),
        shard_id=shard_id,
    )


def _voice_server_update(data: _Payload, shard_id: int) -> Event:
    endpoint = data.get("endpoint")
    token = data.get("token")
    return VoiceServerUpdate(
        guild_id=_required(data, "guild_id"),
        endpoint=endpoint if isinstance(endpoint, str) else None,
        token=token if isinstance(token, str) else "",
        shard_id=shard_id,
    )


def _interaction_create(data: _Payload, shard_id: int) -> Event:
    return InteractionCreate(
        interaction=Interaction.from_payload(data), shard_id=shard_id
    )


def _user_update(data: _Payload, shard_id: int) -> Event:
    return UserUpdate(user=User.from_payload(data), shard_id=shard_id)


def _resumed(data: _Payload, shard_id: int) -> Event:
    return Resumed(shard_id=shard_id)


_Parser = Callable[[_Payload, int], Event]

_PARSERS: Final[dict[str, _Parser]] = {
    "RESUMED": _resumed,
    "GUILD_CREATE": _guild_create,
    "GUILD_UPDATE": _guild_update,
    "GUILD_DELETE": _guild_delete,
    "GUILD_EMOJIS_UPDATE": _guild_emojis_update,
    "CHANNEL_CREATE": _channel(ChannelCreate),
    "CHANNEL_UPDATE": _channel(ChannelUpdate),
    "CHANNEL_DELETE": _channel(ChannelDelete),
    "THREAD_CREATE": _thread_create,
    "THREAD_UPDATE": _thread_update,
    "THREAD_DELETE": _thread_delete,
    "THREAD_LIST_SYNC": _thread_list_sync,
    "GUILD_ROLE_CREATE": _role(RoleCreate),
    "GUILD_ROLE_UPDATE": _role(RoleUpdate),
    "GUILD_ROLE_DELETE": _role_delete,
    "GUILD_MEMBER_ADD": _member_add,
    "GUILD_MEMBER_UPDATE": _member_update,
    "GUILD_MEMBER_REMOVE": _member_remove,
    "GUILD_MEMBERS_CHUNK": _members_chunk,
    "MESSAGE_CREATE": _message_create,
    "MESSAGE_UPDATE": _message_update,
    "MESSAGE_DELETE": _message_delete,
    "MESSAGE_DELETE_BULK": _message_delete_bulk,
    "MESSAGE_REACTION_ADD": _reaction_add,
    "MESSAGE_REACTION_REMOVE": _reaction_remove,
    "MESSAGE_REACTION_REMOVE_ALL": _reaction_remove_all,
    "MESSAGE_REACTION_REMOVE_EMOJI": _reaction_remove_emoji,
    "TYPING_START": _typing_start,
    "PRESENCE_UPDATE": _presence_update,
    "VOICE_STATE_UPDATE": _voice_state_update,
    "VOICE_SERVER_UPDATE": _voice_server_update,
    "INTERACTION_CREATE": _interaction_create,
    "USER_UPDATE": _user_update,
}
