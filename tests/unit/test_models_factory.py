"""Discord-shaped payloads for the model, event and cache tests (and a check of them).

Snowflakes are strings, as on the wire, and every object carries a key Discord does
not document, to keep the parsers honest about ignoring unknown keys.
"""

from __future__ import annotations

import itertools
from typing import Any

from tether.events import GuildAvailable, parse_dispatch

Payload = dict[str, Any]

# 2016-04-30T11:18:25.796Z, the example snowflake of Discord's documentation.
BASE_ID = 175928847299117063


class Payloads:
    """Builds payloads with fresh, increasing snowflakes."""

    def __init__(self, start: int = BASE_ID) -> None:
        self._ids = itertools.count(start, 1 << 22)

    def id(self) -> str:
        return str(next(self._ids))

    def user(self, user_id: str | None = None, **extra: Any) -> Payload:
        uid = user_id or self.id()
        return {
            "id": uid,
            "username": f"user{uid[-4:]}",
            "discriminator": "0",
            "global_name": None,
            "avatar": "a" * 32,
            "public_flags": 0,
            "clan": None,
            **extra,
        }

    def member(
        self, user: Payload | None = None, roles: list[str] | None = None, **extra: Any
    ) -> Payload:
        return {
            "user": user if user is not None else self.user(),
            "nick": None,
            "avatar": None,
            "roles": roles or [],
            "joined_at": "2021-05-01T12:00:00.000000+00:00",
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "unusual_dm_activity_until": None,
            **extra,
        }

    def role(self, role_id: str | None = None, **extra: Any) -> Payload:
        return {
            "id": role_id or self.id(),
            "name": "role",
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": 1,
            "permissions": "1071698660929",
            "managed": False,
            "mentionable": False,
            "flags": 0,
            **extra,
        }

    def channel(
        self, guild_id: str | None = None, channel_type: int = 0, **extra: Any
    ) -> Payload:
        channel: Payload = {
            "id": self.id(),
            "type": channel_type,
            "name": "general",
            "position": 0,
            "permission_overwrites": [],
            "topic": None,
            "nsfw": False,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
            "version": 1,
        }
        if guild_id is not None:
            channel["guild_id"] = guild_id
        channel.update(extra)
        return channel

    def thread(self, guild_id: str, parent_id: str, **extra: Any) -> Payload:
        thread = self.channel(guild_id, 11, parent_id=parent_id, name="thread")
        thread["owner_id"] = self.id()
        thread["member_count"] = 2
        thread["message_count"] = 5
        thread["thread_metadata"] = {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": "2021-05-01T12:00:00.000000+00:00",
            "locked": False,
            "create_timestamp": None,
        }
        thread.update(extra)
        return thread

    def emoji(self, **extra: Any) -> Payload:
        return {
            "id": self.id(),
            "name": "blob",
            "roles": [],
            "require_colons": True,
            "managed": False,
            "animated": False,
            "available": True,
            **extra,
        }

    def presence(
        self, user_id: str, guild_id: str | None = None, status: str = "online"
    ) -> Payload:
        presence: Payload = {
            "user": {"id": user_id},
            "status": status,
            "activities": [
                {"name": "Chess", "type": 0, "created_at": 1_700_000_000_000}
            ],
            "client_status": {"desktop": status},
            "broadcast": None,
        }
        if guild_id is not None:
            presence["guild_id"] = guild_id
        return presence

    def voice_state(
        self, user_id: str, channel_id: str | None, guild_id: str | None = None
    ) -> Payload:
        state: Payload = {
            "user_id": user_id,
            "channel_id": channel_id,
            "session_id": "9e1a3c",
            "deaf": False,
            "mute": False,
            "self_deaf": False,
            "self_mute": True,
            "self_video": False,
            "suppress": False,
            "request_to_speak_timestamp": None,
        }
        if guild_id is not None:
            state["guild_id"] = guild_id
        return state

    def guild_create(
        self,
        guild_id: str | None = None,
        *,
        members: int = 3,
        channels: int = 2,
        roles: int = 2,
        threads: int = 1,
        emojis: int = 1,
        voice: int = 1,
        large: bool = False,
        extra_members: list[Payload] | None = None,
    ) -> Payload:
        gid = guild_id or self.id()
        role_list = [self.role(gid, name="@everyone", position=0)]
        role_list += [self.role() for _ in range(roles)]
        channel_list = [self.channel(None, 0) for _ in range(channels)]
        channel_list.append(self.channel(None, 2, name="voice", bitrate=64000))
        voice_channel = channel_list[-1]["id"]
        thread_list = [self.thread(gid, channel_list[0]["id"]) for _ in range(threads)]
        member_list = [
            self.member(roles=[role_list[1]["id"]] if roles else [])
            for _ in range(members)
        ]
        member_list += extra_members or []
        presences = [self.presence(m["user"]["id"]) for m in member_list[:2]]
        states = [
            self.voice_state(m["user"]["id"], voice_channel)
            for m in member_list[:voice]
        ]
        return {
            "id": gid,
            "name": f"guild {gid[-4:]}",
            "icon": None,
            "owner_id": member_list[0]["user"]["id"] if member_list else self.id(),
            "afk_timeout": 300,
            "verification_level": 1,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": role_list,
            "emojis": [self.emoji() for _ in range(emojis)],
            "features": ["COMMUNITY", "NEWS"],
            "mfa_level": 0,
            "system_channel_id": channel_list[0]["id"],
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "hub_type": None,
            "joined_at": "2021-05-01T12:00:00.000000+00:00",
            "large": large,
            "unavailable": False,
            "member_count": len(member_list),
            "voice_states": states,
            "members": member_list,
            "channels": channel_list,
            "threads": thread_list,
            "presences": presences,
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "_trace": ["gateway-prd"],
        }

    def ready(self, guild_ids: list[str], user: Payload | None = None) -> Payload:
        return {
            "v": 10,
            "user": user if user is not None else self.user(bot=True),
            "guilds": [{"id": gid, "unavailable": True} for gid in guild_ids],
            "session_id": "c0ffee",
            "resume_gateway_url": "ws://127.0.0.1:1/",
            "application": {"id": self.id(), "flags": 0},
            "private_channels": [],
            "_trace": ["gateway-prd"],
        }

    def message(
        self,
        channel_id: str,
        author: Payload,
        guild_id: str | None = None,
        member: Payload | None = None,
        **extra: Any,
    ) -> Payload:
        message: Payload = {
            "id": self.id(),
            "channel_id": channel_id,
            "author": author,
            "content": "hello",
            "timestamp": "2021-05-01T12:00:00.000000+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
        }
        if guild_id is not None:
            message["guild_id"] = guild_id
        if member is not None:
            message["member"] = member
        message.update(extra)
        return message


def test_a_generated_guild_parses_with_every_list_filled() -> None:
    payloads = Payloads()
    event = parse_dispatch("GUILD_CREATE", payloads.guild_create())

    assert isinstance(event, GuildAvailable)
    assert len(event.members) == 3
    assert len(event.channels) == 3
    assert len(event.threads) == 1
    assert len(event.roles) == 3
    assert len(event.emojis) == 1
    assert len(event.presences) == 2
    assert len(event.voice_states) == 1
