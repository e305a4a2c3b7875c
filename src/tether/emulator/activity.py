"""Synthetic activity: members talking, reacting, typing, joining and changing status.

:class:`Activity` emits events at a steady rate through
:class:`~tether.emulator._events.WorldEvents`, so every event also changes the
world. One step picks a guild that is available, then a kind among those asked
for, then who does what, all from a seeded :class:`random.Random`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable
from typing import Final

from tether.emulator import _names
from tether.emulator._events import WorldEvents
from tether.emulator.world import Guild

__all__ = ["ACTIVITY_KINDS", "Activity"]

logger = logging.getLogger(__name__)

#: Kinds of activity that can be asked for.
ACTIVITY_KINDS: Final[tuple[str, ...]] = (
    "message",
    "reaction",
    "typing",
    "member",
    "presence",
)

# Longest pause between two wakeups of the activity loop.
_MAX_TICK_S: Final[float] = 0.05


class Activity:
    """Emits synthetic events.

    Args:
        events: the world changes that dispatch.
        kinds: which kinds to emit (subset of :data:`ACTIVITY_KINDS`).
        seed: the seed of the choices.
    """

    def __init__(
        self,
        events: WorldEvents,
        *,
        kinds: Iterable[str] = ACTIVITY_KINDS,
        seed: int = 0,
    ) -> None:
        self.kinds = tuple(kinds)
        unknown = set(self.kinds) - set(ACTIVITY_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"kinds must be among {ACTIVITY_KINDS}, got {self.kinds}")
        self._events = events
        self._world = events.world
        self._rng = random.Random(seed)
        # Guild sizes when activity started: joins and leaves hover around them.
        self._base_sizes = {
            gid: g.member_count for gid, g in self._world.guilds.items()
        }
        self._task: asyncio.Task[None] | None = None
        self._guild_ids: list[int] = []
        self._member_ids: dict[int, list[int]] = {}
        self._channel_ids: dict[int, list[int]] = {}
        #: Events emitted so far.
        self.emitted = 0

    # Running

    def start(self, rate_per_s: float) -> None:
        """Emit about ``rate_per_s`` events per second until :meth:`stop`."""
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be > 0")
        if self._task is not None:
            raise RuntimeError("activity is already running")
        self._task = asyncio.get_running_loop().create_task(
            self._run(rate_per_s), name="tether-emulator-activity"
        )

    @property
    def is_running(self) -> bool:
        """Whether the loop runs."""
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        """Stop emitting."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self, rate_per_s: float) -> None:
        start = time.monotonic()
        tick = min(1.0 / rate_per_s, _MAX_TICK_S)
        emitted_here = 0
        while True:
            await asyncio.sleep(tick)
            due = int((time.monotonic() - start) * rate_per_s) - emitted_here
            # After a stall, catch up with at most one second's worth.
            if due > rate_per_s:
                skipped = due - int(rate_per_s)
                emitted_here += skipped
                due -= skipped
            for _ in range(max(0, due)):
                self.step()
            emitted_here += max(0, due)

    # One event

    def _pick_guild(self) -> Guild | None:
        guilds = self._world.guilds
        if len(self._guild_ids) != len(guilds):
            self._guild_ids = list(guilds)
        for _ in range(8):
            guild = guilds.get(self._rng.choice(self._guild_ids)) if guilds else None
            if guild is not None and not guild.unavailable and guild.member_count > 1:
                return guild
        return None

    def _pick_human(self, guild: Guild) -> int:
        # Member ids are cached per guild (a list to pick from in O(1)) and
        # rebuilt when the guild changed size or a pick is no longer a member.
        bot_id = self._world.bot.id
        for _ in range(16):
            ids = self._member_ids.get(guild.id)
            if ids is None or len(ids) != guild.member_count:
                ids = self._member_ids[guild.id] = list(guild.members)
            user_id = self._rng.choice(ids)
            if user_id not in guild.members:
                self._member_ids.pop(guild.id)
            elif user_id != bot_id:
                return user_id
        return next(uid for uid in guild.members if uid != bot_id)

    def _pick_channel(self, guild: Guild) -> int | None:
        channels = self._channel_ids.get(guild.id)
        if channels is None:
            channels = guild.channel_ids_of_type(0) + list(guild.threads)
            self._channel_ids[guild.id] = channels
        return self._rng.choice(channels) if channels else None

    def step(self, kind: str | None = None) -> bool:
        """Emit one event of ``kind`` (a random allowed kind when ``None``).

        Returns:
            Whether an event was emitted (an empty or unavailable world has none).
        """
        kind = kind if kind is not None else self._rng.choice(self.kinds)
        guild = self._pick_guild()
        if guild is None:
            return False
        done = {
            "message": self._message,
            "reaction": self._reaction,
            "typing": self._typing,
            "member": self._member,
            "presence": self._presence,
        }[kind](guild)
        if done:
            self.emitted += 1
        return done

    def _message(self, guild: Guild) -> bool:
        channel_id = self._pick_channel(guild)
        if channel_id is None:
            return False
        rng = self._rng
        words = rng.choices(_names.WORDS, k=rng.randrange(2, 12))
        if rng.random() < 0.05:
            words.insert(0, f"<@{self._world.bot.id}>")
        self._events.message_create(
            channel_id, self._pick_human(guild), " ".join(words)
        )
        return True

    def _reaction(self, guild: Guild) -> bool:
        channel_id = self._pick_channel(guild)
        if channel_id is None:
            return False
        messages = self._world.messages(channel_id)
        if not messages:
            return self._message(guild)
        message = self._rng.choice(messages)
        emoji = self._rng.choice(_names.UNICODE_EMOJIS)
        user_id = self._pick_human(guild)
        return self._events.reaction_add(channel_id, int(message["id"]), user_id, emoji)

    def _typing(self, guild: Guild) -> bool:
        channel_id = self._pick_channel(guild)
        if channel_id is None:
            return False
        self._events.typing_start(channel_id, self._pick_human(guild))
        return True

    def _member(self, guild: Guild) -> bool:
        rng = self._rng
        roll = rng.random()
        if roll < 0.2:
            user_id = self._pick_human(guild)
            nick = f"{rng.choice(_names.ADJECTIVES)} {rng.choice(_names.ANIMALS)}"
            return self._events.member_update(guild.id, user_id, nick=nick, roles=None)
        base = self._base_sizes.get(guild.id, guild.member_count)
        if guild.member_count > base or (guild.member_count == base and roll < 0.6):
            user_id = self._pick_human(guild)
            if user_id != guild.owner_id:
                return self._events.member_remove(guild.id, user_id)
        # Joins reuse known users, so a long run does not grow the world.
        self._events.member_add(
            guild.id, self._world.pick_user_outside(guild, self._rng)
        )
        return True

    def _presence(self, guild: Guild) -> bool:
        user_id = self._pick_human(guild)
        if self._rng.random() < 0.25:
            self._events.presence_update(guild.id, user_id, "offline", [])
            return True
        presence = self._world.random_presence()
        self._events.presence_update(
            guild.id, user_id, presence.status, presence.activities
        )
        return True
