"""The guild cache: typed records kept current by events, queried by id.

How it works
------------

The client hands every event to :meth:`Cache.resolve` and then to
:meth:`Cache.apply`, in gateway order, from one thread:

- ``resolve`` completes an event from what the cache holds *before* the event
  changes it: a GUILD_CREATE for a guild that is neither listed in this session's
  READY nor known from before becomes :class:`~tether.events.GuildJoin` (otherwise it
  stays :class:`~tether.events.GuildAvailable`), and delete events get the record
  that is about to go (``GuildLeave.guild``, ``MemberRemove.member``, ...).
- ``apply`` changes the cache. Records are immutable: a change replaces a record by
  a new one, so a record a handler holds never changes under it.

Per guild the cache keeps one entry: the :class:`~tether.models.Guild` record and
dicts of channels, threads, roles, emojis, members, presences and voice states keyed
by id. Small indexes map channel, role and emoji ids to their guild. Users are shared:
every cached :class:`~tether.models.Member` of one user points at the same
:class:`~tether.models.User`, which stays cached while at least one cached member
uses it. When a user changes (a new name in any event that carries the whole user),
the records of that user's members are replaced so they all agree.

Sessions
--------

:meth:`Cache.begin_session` is called with each READY (a new session, never a
resume). Afterwards the cache holds exactly what a freshly started client holds:
this session's guilds, all unavailable until their GUILD_CREATE, and nothing else
from the shard (no stale guilds, channels or members). The guilds the cache knew but
READY no longer lists are returned as :class:`~tether.events.GuildLeave` events for
the client to raise. A GUILD_CREATE replaces a guild's whole entry, never merges.

Guild records are always cached: Ready gating and the join/leave decisions need
them. Everything else is chosen by :class:`CacheConfig`.
"""

from __future__ import annotations

import collections
import enum
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from typing import Any, Final

from tether._event import Event
from tether.events import (
    ChannelCreate,
    ChannelDelete,
    ChannelUpdate,
    GuildAvailable,
    GuildCreate,
    GuildEmojisUpdate,
    GuildJoin,
    GuildLeave,
    GuildUnavailable,
    GuildUpdate,
    InteractionCreate,
    MemberAdd,
    MemberRemove,
    MembersChunk,
    MemberUpdate,
    MessageBulkDelete,
    MessageCreate,
    MessageDelete,
    MessageUpdate,
    PresenceUpdate,
    ReactionAdd,
    ReadyData,
    RoleCreate,
    RoleDelete,
    RoleUpdate,
    ThreadCreate,
    ThreadDelete,
    ThreadListSync,
    ThreadUpdate,
    TypingStart,
    UserUpdate,
    VoiceStateUpdate,
)
from tether.models import (
    Channel,
    Emoji,
    Guild,
    Member,
    Message,
    Presence,
    Role,
    User,
    VoiceState,
    _share_ids,
    shard_for,
)

__all__ = ["Cache", "CacheConfig", "CacheCounts", "MemberCachePolicy"]

logger = logging.getLogger(__name__)


class MemberCachePolicy(enum.Enum):
    """Which members the cache keeps."""

    #: Every member Discord sends: GUILD_CREATE's member lists, member chunks and
    #: every event that carries a member.
    ALL = "all"
    #: Members seen in events (joins, updates, messages, voice, typing, reactions,
    #: interactions, member chunks), but not GUILD_CREATE's member lists.
    SEEN = "seen"
    #: No members, except the bot's own.
    NONE = "none"


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheConfig:
    """What the cache keeps, by kind. Guild records are always kept.

    Attributes:
        channels: guild channels (and DM channels seen in CHANNEL_CREATE).
        threads: active threads.
        roles: guild roles.
        emojis: guild emojis.
        members: which members (see :class:`MemberCachePolicy`).
        users: share one :class:`~tether.models.User` per user across the cached
            members and answer :meth:`Cache.user`; when off, each member keeps
            its own copy and user changes are not carried over between guilds.
        presences: presences (GUILD_PRESENCES); offline users have none.
        voice_states: voice states of users in voice channels.
        messages: how many recent messages to keep (0 = none).
    """

    channels: bool = True
    threads: bool = True
    roles: bool = True
    emojis: bool = True
    members: MemberCachePolicy = MemberCachePolicy.ALL
    users: bool = True
    presences: bool = True
    voice_states: bool = True
    messages: int = 0

    def __post_init__(self) -> None:
        if self.messages < 0:
            raise ValueError(f"messages must be 0 or more, got {self.messages}")


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheCounts:
    """How many records of each kind the cache holds (:meth:`Cache.counts`)."""

    guilds: int
    unavailable_guilds: int
    channels: int
    threads: int
    roles: int
    emojis: int
    members: int
    users: int
    presences: int
    voice_states: int
    messages: int


class _GuildEntry:
    """Everything cached about one guild."""

    __slots__ = (
        "channels",
        "emojis",
        "guild",
        "members",
        "presences",
        "roles",
        "threads",
        "voice_states",
    )

    def __init__(self, guild: Guild) -> None:
        self.guild = guild
        self.channels: dict[int, Channel] = {}
        self.threads: dict[int, Channel] = {}
        self.roles: dict[int, Role] = {}
        self.emojis: dict[int, Emoji] = {}
        self.members: dict[int, Member] = {}
        self.presences: dict[int, Presence] = {}
        self.voice_states: dict[int, VoiceState] = {}


_OFFLINE: Final = "offline"


class Cache:
    """Guilds, channels, threads, roles, emojis, members, users, presences, voice
    states and (optionally) recent messages, kept current by events.

    Not thread-safe: events must be applied from one thread, the one that queries.

    Args:
        config: what to cache; the default caches every kind but messages.
    """

    def __init__(self, config: CacheConfig | None = None) -> None:
        #: What is cached.
        self.config = config if config is not None else CacheConfig()
        # The bot's own user, from READY and USER_UPDATE.
        self._me: User | None = None
        # guild id -> entry, for every guild of the running sessions.
        self._guilds: dict[int, _GuildEntry] = {}
        # channel or thread id -> guild id.
        self._channel_guild: dict[int, int] = {}
        # role id -> guild id, emoji id -> guild id.
        self._role_guild: dict[int, int] = {}
        self._emoji_guild: dict[int, int] = {}
        # Channels outside guilds (DMs).
        self._private_channels: dict[int, Channel] = {}
        # user id -> the one User record the cached members share. A user is kept
        # while it has a cached member; most users are members of one guild only, so
        # only the memberships beyond the first are counted, for the others.
        self._users: dict[int, User] = {}
        self._user_refs: dict[int, int] = {}
        # Recent messages, oldest first.
        self._messages: collections.OrderedDict[int, Message] = (
            collections.OrderedDict()
        )
        self._appliers: dict[type[Event], Callable[[Any], None]] = {
            GuildAvailable: self._apply_guild_create,
            GuildJoin: self._apply_guild_create,
            GuildUnavailable: self._apply_guild_unavailable,
            GuildLeave: self._apply_guild_leave,
            GuildUpdate: self._apply_guild_update,
            GuildEmojisUpdate: self._apply_emojis_update,
            ChannelCreate: self._apply_channel,
            ChannelUpdate: self._apply_channel,
            ChannelDelete: self._apply_channel_delete,
            ThreadCreate: self._apply_thread,
            ThreadUpdate: self._apply_thread,
            ThreadDelete: self._apply_thread_delete,
            ThreadListSync: self._apply_thread_list_sync,
            RoleCreate: self._apply_role,
            RoleUpdate: self._apply_role,
            RoleDelete: self._apply_role_delete,
            MemberAdd: self._apply_member_add,
            MemberUpdate: self._apply_member_update,
            MemberRemove: self._apply_member_remove,
            MembersChunk: self._apply_members_chunk,
            PresenceUpdate: self._apply_presence,
            VoiceStateUpdate: self._apply_voice_state,
            MessageCreate: self._apply_message_create,
            MessageUpdate: self._apply_message_update,
            MessageDelete: self._apply_message_delete,
            MessageBulkDelete: self._apply_message_bulk_delete,
            TypingStart: self._apply_carried_member,
            ReactionAdd: self._apply_carried_member,
            InteractionCreate: self._apply_interaction,
            UserUpdate: self._apply_user_update,
        }

    # Sessions

    def begin_session(
        self, ready: ReadyData, *, shard: tuple[int, int] | None = None
    ) -> list[GuildLeave]:
        """Start a new session's view: what a freshly started client would hold.

        Drops everything cached for the session's shard, then lists READY's guilds
        as unavailable until their GUILD_CREATE arrives.

        Args:
            ready: the READY dispatch's data.
            shard: ``(shard_id, shard_count)``; defaults to READY's ``shard``, else
                ``(0, 1)`` (one session for every guild).

        Returns:
            A :class:`~tether.events.GuildLeave` for each guild of the shard that
            the cache knew and READY no longer lists, to be raised by the client.
        """
        shard_id, shard_count = shard or ready.shard or (0, 1)
        listed = set(ready.guild_ids)
        gone: list[GuildLeave] = []
        for guild_id in [
            gid for gid in self._guilds if shard_for(gid, shard_count) == shard_id
        ]:
            entry = self._guilds[guild_id]
            if guild_id not in listed:
                gone.append(
                    GuildLeave(guild_id=guild_id, guild=entry.guild, shard_id=shard_id)
                )
            self._drop_guild(guild_id)
        if shard_id == 0:
            # Direct messages arrive on shard 0.
            self._private_channels.clear()
            self._drop_messages(lambda m: m.guild_id is None)

        self._set_me(ready.user)
        for guild_id in ready.guild_ids:
            self._guilds[guild_id] = _GuildEntry(Guild(id=guild_id, unavailable=True))
        logger.debug(
            "new session on shard %d: %d guilds listed, %d gone",
            shard_id,
            len(listed),
            len(gone),
        )
        return gone

    def clear(self) -> None:
        """Forget everything, as if the cache had just been created."""
        self._me = None
        self._guilds.clear()
        self._channel_guild.clear()
        self._role_guild.clear()
        self._emoji_guild.clear()
        self._private_channels.clear()
        self._users.clear()
        self._user_refs.clear()
        self._messages.clear()

    # Events

    def resolve(self, event: Event) -> Event:
        """Return ``event`` completed from the cache, before it is applied.

        A :class:`~tether.events.GuildAvailable` for a guild the cache does not
        know becomes a :class:`~tether.events.GuildJoin`; delete events get the
        record the cache holds. Any other event is returned as it is.

        Args:
            event: an event from :func:`tether.events.parse_dispatch`.
        """
        if type(event) is GuildAvailable:
            if event.guild.id in self._guilds:
                return event
            return GuildJoin(**{name: getattr(event, name) for name in _GUILD_CREATE})
        if isinstance(event, GuildLeave | GuildUnavailable) and event.guild is None:
            entry = self._guilds.get(event.guild_id)
            if entry is not None:
                return replace(event, guild=entry.guild)
        elif isinstance(event, MemberRemove) and event.member is None:
            member = self.member(event.guild_id, event.user.id)
            if member is not None:
                return replace(event, member=member)
        elif isinstance(event, RoleDelete) and event.role is None:
            role = self.role(event.role_id)
            if role is not None:
                return replace(event, role=role)
        elif isinstance(event, ThreadDelete) and event.thread is None:
            thread = self.thread(event.thread_id)
            if thread is not None:
                return replace(event, thread=thread)
        elif isinstance(event, MessageDelete) and event.message is None:
            message = self._messages.get(event.message_id)
            if message is not None:
                return replace(event, message=message)
        elif isinstance(event, MessageBulkDelete) and not event.messages:
            found = (self._messages.get(mid) for mid in event.message_ids)
            messages = tuple(message for message in found if message is not None)
            if messages:
                return replace(event, messages=messages)
        return event

    def apply(self, event: Event) -> None:
        """Update the cache from one event; events it does not concern are ignored.

        Applying the same event twice leaves the cache as applying it once, except
        for member counts under member policies other than ``ALL``.

        Args:
            event: the event, ideally after :meth:`resolve`.
        """
        applier = self._appliers.get(type(event))
        if applier is not None:
            applier(event)

    # Queries

    @property
    def me(self) -> User | None:
        """The bot's own user, once a session began."""
        return self._me

    def guild(self, guild_id: int) -> Guild | None:
        """Return a guild (unavailable ones included), or ``None``."""
        entry = self._guilds.get(guild_id)
        return entry.guild if entry is not None else None

    def guilds(self) -> tuple[Guild, ...]:
        """Return every guild, unavailable ones included (``Guild.unavailable``)."""
        return tuple(entry.guild for entry in self._guilds.values())

    def channel(self, channel_id: int) -> Channel | None:
        """Return a channel of any kind (guild channel, thread, DM), or ``None``."""
        guild_id = self._channel_guild.get(channel_id)
        if guild_id is None:
            return self._private_channels.get(channel_id)
        entry = self._guilds[guild_id]
        return entry.channels.get(channel_id) or entry.threads.get(channel_id)

    def channels(self, guild_id: int) -> tuple[Channel, ...]:
        """Return a guild's channels, threads excluded."""
        entry = self._guilds.get(guild_id)
        return tuple(entry.channels.values()) if entry is not None else ()

    def thread(self, thread_id: int) -> Channel | None:
        """Return an active thread, or ``None``."""
        guild_id = self._channel_guild.get(thread_id)
        if guild_id is None:
            return None
        return self._guilds[guild_id].threads.get(thread_id)

    def threads(self, guild_id: int) -> tuple[Channel, ...]:
        """Return a guild's active threads."""
        entry = self._guilds.get(guild_id)
        return tuple(entry.threads.values()) if entry is not None else ()

    def role(self, role_id: int) -> Role | None:
        """Return a role, or ``None``."""
        guild_id = self._role_guild.get(role_id)
        if guild_id is None:
            return None
        return self._guilds[guild_id].roles.get(role_id)

    def roles(self, guild_id: int) -> tuple[Role, ...]:
        """Return a guild's roles."""
        entry = self._guilds.get(guild_id)
        return tuple(entry.roles.values()) if entry is not None else ()

    def emoji(self, emoji_id: int) -> Emoji | None:
        """Return a custom emoji, or ``None``."""
        guild_id = self._emoji_guild.get(emoji_id)
        if guild_id is None:
            return None
        return self._guilds[guild_id].emojis.get(emoji_id)

    def emojis(self, guild_id: int) -> tuple[Emoji, ...]:
        """Return a guild's custom emojis."""
        entry = self._guilds.get(guild_id)
        return tuple(entry.emojis.values()) if entry is not None else ()

    def member(self, guild_id: int, user_id: int) -> Member | None:
        """Return a cached member, or ``None``."""
        entry = self._guilds.get(guild_id)
        return entry.members.get(user_id) if entry is not None else None

    def members(self, guild_id: int) -> tuple[Member, ...]:
        """Return a guild's cached members (see :class:`MemberCachePolicy`)."""
        entry = self._guilds.get(guild_id)
        return tuple(entry.members.values()) if entry is not None else ()

    def user(self, user_id: int) -> User | None:
        """Return a user that a cached member (or the bot itself) is, or ``None``."""
        if self._me is not None and user_id == self._me.id:
            return self._me
        return self._users.get(user_id)

    def presence(self, guild_id: int, user_id: int) -> Presence | None:
        """Return a user's presence in a guild; ``None`` when offline or unknown."""
        entry = self._guilds.get(guild_id)
        return entry.presences.get(user_id) if entry is not None else None

    def presences(self, guild_id: int) -> tuple[Presence, ...]:
        """Return the presences of a guild's users that are not offline."""
        entry = self._guilds.get(guild_id)
        return tuple(entry.presences.values()) if entry is not None else ()

    def voice_state(self, guild_id: int, user_id: int) -> VoiceState | None:
        """Return a user's voice state in a guild; ``None`` when not in voice."""
        entry = self._guilds.get(guild_id)
        return entry.voice_states.get(user_id) if entry is not None else None

    def voice_states(self, guild_id: int) -> tuple[VoiceState, ...]:
        """Return the voice states of a guild's users in voice channels."""
        entry = self._guilds.get(guild_id)
        return tuple(entry.voice_states.values()) if entry is not None else ()

    def message(self, message_id: int) -> Message | None:
        """Return a recent message (with the message cache on), or ``None``."""
        return self._messages.get(message_id)

    def messages(self) -> tuple[Message, ...]:
        """Return the cached messages, oldest first."""
        return tuple(self._messages.values())

    def counts(self) -> CacheCounts:
        """Count the records held, by kind."""
        entries = self._guilds.values()
        users = len(self._users)
        if self._me is not None and self._me.id not in self._users:
            users += 1
        return CacheCounts(
            guilds=len(self._guilds),
            unavailable_guilds=sum(1 for e in entries if e.guild.unavailable),
            channels=sum(len(e.channels) for e in entries)
            + len(self._private_channels),
            threads=sum(len(e.threads) for e in entries),
            roles=sum(len(e.roles) for e in entries),
            emojis=sum(len(e.emojis) for e in entries),
            members=sum(len(e.members) for e in entries),
            users=users,
            presences=sum(len(e.presences) for e in entries),
            voice_states=sum(len(e.voice_states) for e in entries),
            messages=len(self._messages),
        )

    # Guilds

    def _apply_guild_create(self, event: GuildCreate) -> None:
        guild_id = event.guild.id
        # A GUILD_CREATE describes the whole guild: start its entry afresh.
        if guild_id in self._guilds:
            self._drop_guild(guild_id, keep_messages=True)
        entry = _GuildEntry(event.guild)
        self._guilds[guild_id] = entry
        config = self.config

        if config.channels:
            for channel in event.channels:
                self._put_channel(entry, channel)
        if config.threads:
            for thread in event.threads:
                self._put_channel(entry, thread)
        if config.roles:
            for role in event.roles:
                entry.roles[role.id] = role
                self._role_guild[role.id] = guild_id
        if config.emojis:
            self._put_emojis(entry, event.emojis)

        keep_all = config.members is MemberCachePolicy.ALL
        for member in event.members:
            if keep_all or self._is_me(member.user.id):
                self._put_member(entry, member)
        if config.presences:
            for presence in event.presences:
                if presence.status != _OFFLINE:
                    entry.presences[presence.user_id] = presence
        if config.voice_states:
            for state in event.voice_states:
                if state.channel_id is not None:
                    entry.voice_states[state.user_id] = state

    def _apply_guild_unavailable(self, event: GuildUnavailable) -> None:
        entry = self._guilds.get(event.guild_id)
        if entry is None:
            unavailable = Guild(id=event.guild_id, unavailable=True)
            self._guilds[event.guild_id] = _GuildEntry(unavailable)
        elif not entry.guild.unavailable:
            # An outage: keep everything, only mark the guild.
            entry.guild = replace(entry.guild, unavailable=True)

    def _apply_guild_leave(self, event: GuildLeave) -> None:
        if event.guild_id in self._guilds:
            self._drop_guild(event.guild_id)

    def _apply_guild_update(self, event: GuildUpdate) -> None:
        entry = self._guilds.get(event.guild.id)
        if entry is None:
            return
        old = entry.guild
        kept = {name: getattr(old, name) for name in event.absent_fields}
        entry.guild = replace(event.guild, **kept) if kept else event.guild

    def _apply_emojis_update(self, event: GuildEmojisUpdate) -> None:
        entry = self._guilds.get(event.guild_id)
        if entry is None or not self.config.emojis:
            return
        for emoji_id in entry.emojis:
            self._emoji_guild.pop(emoji_id, None)
        entry.emojis.clear()
        self._put_emojis(entry, event.emojis)

    # Channels and threads

    def _apply_channel(self, event: ChannelCreate | ChannelUpdate) -> None:
        channel = event.channel
        if channel.is_thread:
            self._put_thread(channel)
            return
        if not self.config.channels:
            return
        if channel.guild_id is None:
            self._private_channels[channel.id] = channel
            return
        entry = self._guilds.get(channel.guild_id)
        if entry is not None:
            self._put_channel(entry, channel)

    def _apply_channel_delete(self, event: ChannelDelete) -> None:
        channel = event.channel
        gone = {channel.id}
        if channel.guild_id is None:
            self._private_channels.pop(channel.id, None)
        else:
            entry = self._guilds.get(channel.guild_id)
            if entry is not None:
                self._remove_channel(entry, channel.id)
                # A deleted channel's threads go with it.
                for thread in list(entry.threads.values()):
                    if thread.parent_id == channel.id:
                        self._remove_channel(entry, thread.id)
                        gone.add(thread.id)
        self._drop_messages(lambda m: m.channel_id in gone)

    def _apply_thread(self, event: ThreadCreate | ThreadUpdate) -> None:
        self._put_thread(event.thread)

    def _put_thread(self, thread: Channel) -> None:
        if not self.config.threads or thread.guild_id is None:
            return
        entry = self._guilds.get(thread.guild_id)
        if entry is None:
            return
        if thread.archived:
            # A fresh client is sent active threads only.
            self._remove_channel(entry, thread.id)
        else:
            self._put_channel(entry, thread)

    def _apply_thread_delete(self, event: ThreadDelete) -> None:
        guild_id = event.guild_id or self._channel_guild.get(event.thread_id)
        entry = self._guilds.get(guild_id) if guild_id is not None else None
        if entry is not None:
            self._remove_channel(entry, event.thread_id)

    def _apply_thread_list_sync(self, event: ThreadListSync) -> None:
        entry = self._guilds.get(event.guild_id)
        if entry is None or not self.config.threads:
            return
        parents = set(event.channel_ids) if event.channel_ids is not None else None
        for thread in list(entry.threads.values()):
            if parents is None or thread.parent_id in parents:
                self._remove_channel(entry, thread.id)
        for thread in event.threads:
            if not thread.archived:
                self._put_channel(entry, thread)

    def _put_channel(self, entry: _GuildEntry, channel: Channel) -> None:
        store = entry.threads if channel.is_thread else entry.channels
        store[channel.id] = channel
        self._channel_guild[channel.id] = entry.guild.id

    def _remove_channel(self, entry: _GuildEntry, channel_id: int) -> None:
        if (
            entry.channels.pop(channel_id, None) is not None
            or entry.threads.pop(channel_id, None) is not None
        ):
            self._channel_guild.pop(channel_id, None)

    # Roles and emojis

    def _apply_role(self, event: RoleCreate | RoleUpdate) -> None:
        entry = self._guilds.get(event.guild_id)
        if entry is None or not self.config.roles:
            return
        entry.roles[event.role.id] = event.role
        self._role_guild[event.role.id] = event.guild_id

    def _apply_role_delete(self, event: RoleDelete) -> None:
        entry = self._guilds.get(event.guild_id)
        if entry is None:
            return
        if entry.roles.pop(event.role_id, None) is not None:
            self._role_guild.pop(event.role_id, None)
        # Discord sends no member update for this; a fresh client would not see the
        # role on anyone.
        role_id = event.role_id
        for user_id, member in entry.members.items():
            if role_id in member.roles:
                roles = _share_ids(tuple(r for r in member.roles if r != role_id))
                entry.members[user_id] = replace(member, roles=roles)

    def _put_emojis(self, entry: _GuildEntry, emojis: Iterable[Emoji]) -> None:
        for emoji in emojis:
            entry.emojis[emoji.id] = emoji
            self._emoji_guild[emoji.id] = entry.guild.id

    # Members and users

    def _apply_member_add(self, event: MemberAdd) -> None:
        member = event.member
        entry = self._guilds.get(member.guild_id)
        if entry is None:
            return
        cached = member.user.id in entry.members
        if self._keeps_member(member.user.id):
            self._put_member(entry, member)
        else:
            self._refresh_user(member.user)
        # A replayed join must not count twice.
        if not cached:
            self._count_members(entry, +1)

    def _apply_member_update(self, event: MemberUpdate) -> None:
        member = event.member
        entry = self._guilds.get(member.guild_id)
        if entry is None:
            return
        cached = entry.members.get(member.user.id)
        if cached is not None and event.absent_fields:
            kept = {name: getattr(cached, name) for name in event.absent_fields}
            member = replace(member, **kept)
        if cached is not None or self._keeps_member(member.user.id):
            self._put_member(entry, member)
        else:
            self._refresh_user(member.user)

    def _apply_member_remove(self, event: MemberRemove) -> None:
        entry = self._guilds.get(event.guild_id)
        if entry is None:
            return
        user_id = event.user.id
        cached = self._drop_member(entry, user_id)
        entry.presences.pop(user_id, None)
        entry.voice_states.pop(user_id, None)
        # With every member of a small guild cached, an uncached one has already
        # left (a replayed event); otherwise the count cannot tell.
        complete = (
            self.config.members is MemberCachePolicy.ALL and not entry.guild.large
        )
        if cached or not complete:
            self._count_members(entry, -1)

    def _apply_members_chunk(self, event: MembersChunk) -> None:
        entry = self._guilds.get(event.guild_id)
        if entry is None:
            return
        for member in event.members:
            if self._keeps_member(member.user.id):
                self._put_member(entry, member)
        if self.config.presences:
            for presence in event.presences:
                self._put_presence(entry, presence)

    def _apply_presence(self, event: PresenceUpdate) -> None:
        if event.user is not None:
            self._refresh_user(event.user)
        entry = self._guilds.get(event.presence.guild_id)
        if entry is not None and self.config.presences:
            self._put_presence(entry, event.presence)

    def _put_presence(self, entry: _GuildEntry, presence: Presence) -> None:
        if presence.status == _OFFLINE:
            entry.presences.pop(presence.user_id, None)
        else:
            entry.presences[presence.user_id] = presence

    def _apply_voice_state(self, event: VoiceStateUpdate) -> None:
        state = event.voice_state
        entry = self._guilds.get(state.guild_id) if state.guild_id else None
        if entry is None:
            return
        if self.config.voice_states:
            if state.channel_id is None:
                entry.voice_states.pop(state.user_id, None)
            else:
                entry.voice_states[state.user_id] = state
        if event.member is not None:
            self._see_member(event.member)

    def _apply_carried_member(self, event: TypingStart | ReactionAdd) -> None:
        if event.member is not None:
            self._see_member(event.member)

    def _apply_interaction(self, event: InteractionCreate) -> None:
        interaction = event.interaction
        if interaction.member is not None:
            self._see_member(interaction.member)
        elif interaction.user is not None:
            self._refresh_user(interaction.user)

    def _apply_user_update(self, event: UserUpdate) -> None:
        self._set_me(event.user)

    def _set_me(self, user: User) -> None:
        self._me = user
        if user.id in self._users:
            self._refresh_user(user)

    def _is_me(self, user_id: int) -> bool:
        return self._me is not None and self._me.id == user_id

    def _keeps_member(self, user_id: int) -> bool:
        """Whether a member seen outside GUILD_CREATE's lists is cached."""
        return self.config.members is not MemberCachePolicy.NONE or self._is_me(user_id)

    def _see_member(self, member: Member) -> None:
        entry = self._guilds.get(member.guild_id)
        if entry is not None and (
            member.user.id in entry.members or self._keeps_member(member.user.id)
        ):
            self._put_member(entry, member)
        else:
            self._refresh_user(member.user)

    def _count_members(self, entry: _GuildEntry, delta: int) -> None:
        count = entry.guild.member_count
        if count is not None:
            entry.guild = replace(entry.guild, member_count=max(count + delta, 0))

    def _put_member(self, entry: _GuildEntry, member: Member) -> None:
        existing = entry.members.get(member.user.id)
        if existing is not None and existing == member:
            # Nothing changed (most messages carry an unchanged member): keep the
            # shared records as they are.
            return
        if self.config.users:
            known = member.user.id in self._users
            user = self._share_user(member.user)
            if user is not member.user:
                member = replace(member, user=user)
            if known and user.id not in entry.members:
                self._user_refs[user.id] = self._user_refs.get(user.id, 0) + 1
        # Keyed by the shared user's own id object, not a copy of it.
        entry.members[member.user.id] = member

    def _drop_member(self, entry: _GuildEntry, user_id: int) -> bool:
        if entry.members.pop(user_id, None) is None:
            return False
        if self.config.users:
            more = self._user_refs.get(user_id, 0)
            if more > 1:
                self._user_refs[user_id] = more - 1
            elif more == 1:
                del self._user_refs[user_id]
            else:
                self._users.pop(user_id, None)
        return True

    def _share_user(self, user: User) -> User:
        """Return the one record to use for ``user``, updating it if it changed."""
        cached = self._users.get(user.id)
        if cached is None:
            self._users[user.id] = user
            return user
        if cached == user:
            return cached
        self._replace_user(user)
        return user

    def _refresh_user(self, user: User) -> None:
        """A whole user object arrived: update the cached one, if any."""
        cached = self._users.get(user.id)
        if cached is not None and cached != user:
            self._replace_user(user)

    def _replace_user(self, user: User) -> None:
        self._users[user.id] = user
        if self._is_me(user.id):
            self._me = user
        # Rare (a user changed name or avatar): every membership gets the new user.
        for entry in self._guilds.values():
            member = entry.members.get(user.id)
            if member is not None and member.user is not user:
                entry.members[user.id] = replace(member, user=user)

    # Messages

    def _apply_message_create(self, event: MessageCreate) -> None:
        message = event.message
        if message.member is not None:
            self._see_member(message.member)
        elif message.author is not None:
            self._refresh_user(message.author)

        guild_id = self._channel_guild.get(message.channel_id)
        if guild_id is not None:
            entry = self._guilds[guild_id]
            channel = entry.channels.get(message.channel_id) or entry.threads.get(
                message.channel_id
            )
            if channel is not None and (channel.last_message_id or 0) < message.id:
                self._put_channel(entry, replace(channel, last_message_id=message.id))

        limit = self.config.messages
        if limit:
            self._messages[message.id] = message
            self._messages.move_to_end(message.id)
            while len(self._messages) > limit:
                self._messages.popitem(last=False)

    def _apply_message_update(self, event: MessageUpdate) -> None:
        message = event.message
        if message.author is not None:
            self._refresh_user(message.author)
        # Only a whole message (one with an author) replaces a cached one.
        if message.id in self._messages and message.author is not None:
            self._messages[message.id] = message

    def _apply_message_delete(self, event: MessageDelete) -> None:
        self._messages.pop(event.message_id, None)

    def _apply_message_bulk_delete(self, event: MessageBulkDelete) -> None:
        for message_id in event.message_ids:
            self._messages.pop(message_id, None)

    def _drop_messages(self, doomed: Callable[[Message], bool]) -> None:
        if not self._messages:
            return
        for message_id in [m.id for m in self._messages.values() if doomed(m)]:
            del self._messages[message_id]

    # Whole guilds

    def _drop_guild(self, guild_id: int, *, keep_messages: bool = False) -> None:
        entry = self._guilds.pop(guild_id)
        for channel_id in entry.channels:
            self._channel_guild.pop(channel_id, None)
        for thread_id in entry.threads:
            self._channel_guild.pop(thread_id, None)
        for role_id in entry.roles:
            self._role_guild.pop(role_id, None)
        for emoji_id in entry.emojis:
            self._emoji_guild.pop(emoji_id, None)
        for user_id in list(entry.members):
            self._drop_member(entry, user_id)
        if not keep_messages:
            self._drop_messages(lambda m: m.guild_id == guild_id)


_GUILD_CREATE: Final = tuple(f.name for f in fields(GuildCreate))
