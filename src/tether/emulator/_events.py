"""World changes that emit dispatches: one method per kind of thing that happens.

REST writes, the activity generator and the :class:`Emulator` facade all change
the world through :class:`WorldEvents`, so the world and what sessions are told
never disagree.
"""

from __future__ import annotations

import time
from typing import Any

from tether.emulator._session import Session
from tether.emulator.gateway import Gateway
from tether.emulator.world import Member, World
from tether.gateway.intents import Intents

__all__ = ["WorldEvents"]


class WorldEvents:
    """Changes the world and publishes the matching dispatches.

    Args:
        world: the world.
        gateway: where dispatches go.
    """

    def __init__(self, world: World, gateway: Gateway) -> None:
        self.world = world
        self.gateway = gateway

    def _gate_content(self, session: Session, data: dict[str, Any]) -> dict[str, Any]:
        """Blank content fields for sessions without MESSAGE_CONTENT, as Discord."""
        if session.intents & Intents.MESSAGE_CONTENT or "guild_id" not in data:
            return data
        bot_id = str(self.world.bot.id)
        if data["author"]["id"] == bot_id:
            return data
        if any(user["id"] == bot_id for user in data.get("mentions", ())):
            return data
        return {
            **data,
            "content": "",
            "embeds": [],
            "attachments": [],
            "components": [],
        }

    def _message_intent(self, guild_id: int | None, guild: Intents, dm: Intents) -> int:
        return guild if guild_id is not None else dm

    # Messages

    def message_create(
        self, channel_id: int, author_id: int, content: str, **fields: Any
    ) -> dict[str, Any]:
        """Store a message and dispatch MESSAGE_CREATE; return the REST form.

        Raises:
            KeyError: no such channel, or it holds no messages.
        """
        message = self.world.create_message(channel_id, author_id, content, **fields)
        data = self.world.message_create_payload(message)
        guild_id = self.world.guild_id_of_channel(channel_id)
        self.gateway.publish(
            "MESSAGE_CREATE",
            data,
            guild_id=guild_id,
            intent=self._message_intent(
                guild_id, Intents.GUILD_MESSAGES, Intents.DIRECT_MESSAGES
            ),
            transform=lambda session, d: self._gate_content(session, d),
        )
        return message

    def message_update(
        self, channel_id: int, message_id: int, changes: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Edit a kept message and dispatch MESSAGE_UPDATE; return the REST form."""
        message = self.world.edit_message(channel_id, message_id, changes)
        if message is None:
            return None
        guild_id = self.world.guild_id_of_channel(channel_id)
        self.gateway.publish(
            "MESSAGE_UPDATE",
            self.world.message_create_payload(message),
            guild_id=guild_id,
            intent=self._message_intent(
                guild_id, Intents.GUILD_MESSAGES, Intents.DIRECT_MESSAGES
            ),
            transform=lambda session, d: self._gate_content(session, d),
        )
        return message

    def message_delete(self, channel_id: int, message_id: int) -> bool:
        """Forget a kept message and dispatch MESSAGE_DELETE."""
        if not self.world.delete_message(channel_id, message_id):
            return False
        guild_id = self.world.guild_id_of_channel(channel_id)
        data: dict[str, Any] = {"id": str(message_id), "channel_id": str(channel_id)}
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
        self.gateway.publish(
            "MESSAGE_DELETE",
            data,
            guild_id=guild_id,
            intent=self._message_intent(
                guild_id, Intents.GUILD_MESSAGES, Intents.DIRECT_MESSAGES
            ),
        )
        return True

    def reaction_add(
        self, channel_id: int, message_id: int, user_id: int, emoji: str
    ) -> bool:
        """Count a reaction and dispatch MESSAGE_REACTION_ADD."""
        message = self.world.message(channel_id, message_id)
        if message is None or not self.world.add_reaction(
            channel_id, message_id, user_id, emoji
        ):
            return False
        guild_id = self.world.guild_id_of_channel(channel_id)
        data: dict[str, Any] = {
            "user_id": str(user_id),
            "channel_id": str(channel_id),
            "message_id": str(message_id),
            "message_author_id": message["author"]["id"],
            "emoji": {"id": None, "name": emoji},
            "burst": False,
            "burst_colors": [],
            "type": 0,
        }
        if guild_id is not None:
            guild = self.world.guilds[guild_id]
            data["guild_id"] = str(guild_id)
            member = guild.members.get(user_id)
            if member is not None:
                data["member"] = self.world.member_payload(guild, member)
        self.gateway.publish(
            "MESSAGE_REACTION_ADD",
            data,
            guild_id=guild_id,
            intent=self._message_intent(
                guild_id,
                Intents.GUILD_MESSAGE_REACTIONS,
                Intents.DIRECT_MESSAGE_REACTIONS,
            ),
        )
        return True

    def typing_start(self, channel_id: int, user_id: int) -> None:
        """Dispatch TYPING_START."""
        guild_id = self.world.guild_id_of_channel(channel_id)
        data: dict[str, Any] = {
            "channel_id": str(channel_id),
            "user_id": str(user_id),
            "timestamp": int(time.time()),
        }
        if guild_id is not None:
            guild = self.world.guilds[guild_id]
            data["guild_id"] = str(guild_id)
            member = guild.members.get(user_id)
            if member is not None:
                data["member"] = self.world.member_payload(guild, member)
        self.gateway.publish(
            "TYPING_START",
            data,
            guild_id=guild_id,
            intent=self._message_intent(
                guild_id, Intents.GUILD_MESSAGE_TYPING, Intents.DIRECT_MESSAGE_TYPING
            ),
        )

    # Members and presences

    def member_add(self, guild_id: int, user_id: int | None = None) -> Member:
        """Add a member and dispatch GUILD_MEMBER_ADD."""
        member = self.world.add_member(guild_id, user_id)
        guild = self.world.guilds[guild_id]
        data = {**self.world.member_payload(guild, member), "guild_id": str(guild_id)}
        self.gateway.publish(
            "GUILD_MEMBER_ADD", data, guild_id=guild_id, intent=Intents.GUILD_MEMBERS
        )
        return member

    def member_remove(self, guild_id: int, user_id: int) -> bool:
        """Remove a member and dispatch GUILD_MEMBER_REMOVE."""
        if self.world.remove_member(guild_id, user_id) is None:
            return False
        data = {"guild_id": str(guild_id), "user": self.world.users[user_id].payload}
        self.gateway.publish(
            "GUILD_MEMBER_REMOVE", data, guild_id=guild_id, intent=Intents.GUILD_MEMBERS
        )
        return True

    def member_update(
        self,
        guild_id: int,
        user_id: int,
        *,
        nick: str | None = None,
        roles: list[int] | None = None,
    ) -> bool:
        """Change a member's nick and/or roles and dispatch GUILD_MEMBER_UPDATE."""
        guild = self.world.guilds[guild_id]
        member = guild.members.get(user_id)
        if member is None:
            return False
        member.nick = nick
        if roles is not None:
            member.roles = [role for role in roles if role in guild.roles]
        data = {**self.world.member_payload(guild, member), "guild_id": str(guild_id)}
        # The bot hears about its own member even without GUILD_MEMBERS.
        intent = None if user_id == self.world.bot.id else Intents.GUILD_MEMBERS
        self.gateway.publish(
            "GUILD_MEMBER_UPDATE", data, guild_id=guild_id, intent=intent
        )
        return True

    def presence_update(
        self,
        guild_id: int,
        user_id: int,
        status: str,
        activities: list[dict[str, Any]],
    ) -> None:
        """Set a member's presence and dispatch PRESENCE_UPDATE."""
        self.world.set_presence(guild_id, user_id, status, activities)
        guild = self.world.guilds[guild_id]
        data = self.world.presence_payload(guild, user_id)
        self.gateway.publish(
            "PRESENCE_UPDATE", data, guild_id=guild_id, intent=Intents.GUILD_PRESENCES
        )
