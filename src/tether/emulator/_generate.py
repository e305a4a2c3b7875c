"""Generation of the synthetic world from a seed: users, guilds and their contents.

:class:`Generator` holds the seeded :class:`random.Random` and the snowflake
factory; :class:`~tether.emulator.world.World` uses it to build everything at
start and to make new users and presences at runtime.
"""

from __future__ import annotations

import itertools
import random
import time
from typing import Any, Final

from tether.emulator import _names
from tether.emulator._model import (
    Guild,
    Member,
    Presence,
    Snowflakes,
    User,
    WorldConfig,
    iso_timestamp,
)

__all__ = ["Generator"]

_EVERYONE_PERMISSIONS: Final[str] = "2248473465835073"
_BOT_PERMISSIONS: Final[str] = "1071698660929"

# Generated objects get timestamps between these two dates (unix ms).
_WORLD_START_MS: Final[int] = 1_483_228_800_000  # 2017-01-01
_WORLD_END_MS: Final[int] = 1_704_067_200_000  # 2024-01-01


class Generator:
    """Makes the world's users, guilds, presences and voice states from a seed.

    Args:
        config: sizes and seed.
    """

    def __init__(self, config: WorldConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.snowflakes = Snowflakes()
        self._username_counter = itertools.count(1)

    def guild_ids(self) -> list[int]:
        """Snowflakes for ``config.guilds`` guilds, created at distinct times."""
        times = self.rng.sample(
            range(_WORLD_START_MS, _WORLD_END_MS), self.config.guilds
        )
        return [self.snowflakes.at(unix_ms) for unix_ms in sorted(times)]

    def voice_state(
        self, user_id: int, channel_id: int, session_id: str
    ) -> dict[str, Any]:
        """A voice state in a channel, without guild_id (GUILD_CREATE form)."""
        return {
            "channel_id": str(channel_id),
            "user_id": str(user_id),
            "session_id": session_id,
            "deaf": False,
            "mute": False,
            "self_deaf": False,
            "self_mute": self.rng.random() < 0.3,
            "self_stream": False,
            "self_video": False,
            "suppress": False,
            "request_to_speak_timestamp": None,
        }

    def random_ms(self) -> int:
        return self.rng.randrange(_WORLD_START_MS, _WORLD_END_MS)

    def make_user(self, *, bot: bool = False, username: str | None = None) -> User:
        rng = self.rng
        user_id = self.snowflakes.at(self.random_ms())
        if username is None:
            adjective = rng.choice(_names.ADJECTIVES)
            animal = rng.choice(_names.ANIMALS)
            username = f"{adjective}_{animal}{next(self._username_counter)}"
            global_name = f"{adjective.title()} {animal.title()}"
        else:
            global_name = None
        avatar = f"{rng.getrandbits(128):032x}" if rng.random() < 0.7 else None
        return User.make(user_id, username, global_name, avatar, bot=bot)

    def guild_sizes(self) -> list[int]:
        config = self.config
        sizes = []
        for index in range(config.guilds):
            if index < config.large_guilds:
                sizes.append(config.large_guild_members)
                continue
            spread = config.member_spread * config.members_per_guild
            size = round(config.members_per_guild + self.rng.uniform(-spread, spread))
            sizes.append(max(1, size))
        return sizes

    def guild(self, guild_id: int, size: int, pool: list[int], bot: User) -> Guild:
        rng = self.rng
        config = self.config
        words = f"{rng.choice(_names.GUILD_WORDS)} {rng.choice(_names.GUILD_KINDS)}"
        human_ids = rng.sample(pool, min(size - 1, len(pool)))
        owner_id = human_ids[0] if human_ids else bot.id
        guild = Guild(
            id=guild_id,
            name=f"{rng.choice(_names.ADJECTIVES).title()} {words}",
            owner_id=owner_id,
            joined_at=iso_timestamp(self.random_ms()),
            info={},
        )
        self._roles(guild, bot)
        self._channels(guild)
        for index in range(config.emojis_per_guild):
            emoji_id = self.snowflakes.at(self.random_ms())
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
        guild.members[bot.id] = Member(bot.id, [bot_role], guild.joined_at)
        guild.presences[bot.id] = Presence("online", [], {"web": "online"})
        for user_id in human_ids:
            roles = rng.sample(assignable, min(len(assignable), rng.randrange(3)))
            member = Member(user_id, roles, iso_timestamp(self.random_ms()))
            if rng.random() < 0.15:
                member.nick = (
                    f"{rng.choice(_names.ADJECTIVES)} {rng.choice(_names.ANIMALS)}"
                )
            guild.members[user_id] = member
            if rng.random() < config.online_fraction:
                guild.presences[user_id] = self.random_presence()

        voice_ids = guild.channel_ids_of_type(2)
        if voice_ids:
            for user_id in list(guild.presences):
                if user_id != bot.id and rng.random() < config.voice_fraction:
                    session_id = f"{rng.getrandbits(128):032x}"
                    channel_id = rng.choice(voice_ids)
                    guild.voice_states[user_id] = self.voice_state(
                        user_id, channel_id, session_id
                    )

        self._threads(guild, bot)
        system_channel = next(iter(guild.channel_ids_of_type(0)), None)
        guild.info = self._guild_info(guild, system_channel)
        return guild

    def _guild_info(self, guild: Guild, system_channel: int | None) -> dict[str, Any]:
        return {
            "icon": f"{self.rng.getrandbits(128):032x}"
            if self.rng.random() < 0.8
            else None,
            "splash": None,
            "discovery_splash": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "widget_enabled": False,
            "widget_channel_id": None,
            "verification_level": self.rng.randrange(3),
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

    def _roles(self, guild: Guild, bot: User) -> None:
        rng = self.rng
        guild.roles[guild.id] = _role(
            guild.id, "@everyone", 0, 0, _EVERYONE_PERMISSIONS
        )
        names = rng.sample(
            _names.ROLES, min(self.config.roles_per_guild, len(_names.ROLES))
        )
        while len(names) < self.config.roles_per_guild:
            names.append(f"Role {len(names) + 1}")
        for position, name in enumerate(names, start=1):
            role_id = self.snowflakes.at(self.random_ms())
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
        role_id = self.snowflakes.at(self.random_ms())
        bot_role = _role(role_id, bot.username, len(names) + 1, 0, _BOT_PERMISSIONS)
        bot_role["managed"] = True
        bot_role["tags"] = {"bot_id": str(bot.id)}
        guild.roles[role_id] = bot_role

    def _channels(self, guild: Guild) -> None:
        config = self.config
        rng = self.rng
        category_ids: list[int] = []
        position = 0
        for index in range(config.categories_per_guild):
            cid = self.snowflakes.at(self.random_ms())
            name = _names.CATEGORIES[index % len(_names.CATEGORIES)]
            guild.channels[cid] = _channel(cid, guild.id, 4, name, position, None)
            category_ids.append(cid)
            position += 1
        for index in range(config.text_channels_per_guild):
            cid = self.snowflakes.at(self.random_ms())
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
            cid = self.snowflakes.at(self.random_ms())
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

    def _threads(self, guild: Guild, bot: User) -> None:
        text_ids = guild.channel_ids_of_type(0)
        humans = [uid for uid in guild.members if uid != bot.id] or [bot.id]
        for index in range(self.config.threads_per_guild):
            unix_ms = self.random_ms()
            thread_id = self.snowflakes.at(unix_ms)
            parent = self.rng.choice(text_ids)
            guild.threads[thread_id] = {
                "id": str(thread_id),
                "guild_id": str(guild.id),
                "parent_id": str(parent),
                "owner_id": str(self.rng.choice(humans)),
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

    def random_presence(self) -> Presence:
        rng = self.rng
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
