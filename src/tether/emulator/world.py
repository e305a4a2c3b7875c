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

import random
import re
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any, Final

from tether.emulator._generate import Generator
from tether.emulator._model import (
    DISCORD_EPOCH_MS,
    Guild,
    Member,
    Presence,
    User,
    WorldConfig,
    iso_timestamp,
    shard_for,
)

__all__ = [
    "DISCORD_EPOCH_MS",
    "MESSAGE_CHANNEL_TYPES",
    "Guild",
    "Member",
    "Presence",
    "User",
    "World",
    "WorldConfig",
    "shard_for",
]

#: Members above this count get only the bot and voice members in GUILD_CREATE.
HUGE_GUILD_MEMBERS: Final[int] = 75_000

#: Channel types that carry messages.
MESSAGE_CHANNEL_TYPES: Final[frozenset[int]] = frozenset({0, 1, 2, 3, 5, 10, 11, 12})

_MENTION = re.compile(r"<@!?(\d{15,21})>")


class World:
    """The synthetic Discord world one emulator serves.

    Args:
        config: sizes and seed.
    """

    def __init__(self, config: WorldConfig | None = None) -> None:
        self.config = config if config is not None else WorldConfig()
        self._generator = Generator(self.config)
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
        # user ids new members are drawn from
        self._user_pool: list[int] = []

        generator = self._generator
        self.bot = self._add_user(
            generator.make_user(bot=True, username=self.config.bot_username)
        )
        #: The emulated application's id (the bot user's id, as for most bots).
        self.application_id = self.bot.id

        sizes = generator.guild_sizes()
        # Users are shared between guilds, as on Discord, from a pool.
        humans = sum(size - 1 for size in sizes)
        pool_size = max(max(sizes, default=1) - 1, int(humans * 0.7))
        self._user_pool = [
            self._add_user(generator.make_user()).id for _ in range(pool_size)
        ]
        for guild_id, size in zip(generator.guild_ids(), sizes, strict=True):
            guild = generator.guild(guild_id, size, self._user_pool, self.bot)
            self.guilds[guild.id] = guild
            for channel_id in (*guild.channels, *guild.threads):
                self._channel_guild[channel_id] = guild.id
        for _ in range(self.config.dm_channels):
            if self._user_pool:
                self.open_dm(generator.rng.choice(self._user_pool))

    def _add_user(self, user: User) -> User:
        self.users[user.id] = user
        return user

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
        return self._generator.snowflakes.now()

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
        channel_id = self._generator.snowflakes.now()
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
        message_id = self._generator.snowflakes.now()
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
            user_id = self._add_user(self._generator.make_user()).id
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
        return self._generator.random_presence()

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
        guild.voice_states[user_id] = {
            **self._generator.voice_state(user_id, channel_id, session_id),
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
