"""Helpers for the Client's integration tests: a client aimed at an emulator, an
event recorder, and views of the cache and of the emulator's world to compare.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from tether._event import Event
from tether.cache import Cache
from tether.client import Client
from tether.emulator import Emulator, WorldConfig
from tether.emulator.world import World
from tether.gateway.intents import Intents

E = TypeVar("E", bound=Event)
T = TypeVar("T")

View = dict[int, dict[str, Any]]


def make_client(emu: Emulator, **options: Any) -> Client:
    """A client for ``emu`` with every intent and a short Ready quiet period."""
    options.setdefault("intents", Intents.all())
    options.setdefault("ready_timeout_s", 2.0)
    return Client(emu.token, api_url=emu.api_url, **options)


class Recorder:
    """Every event a client delivers, in delivery order."""

    def __init__(self, client: Client) -> None:
        self.events: list[Event] = []
        client.subscribe(Event, self.events.append)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]


async def until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait until ``predicate()`` holds; polled, since it reads plain state."""
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 (state no event announces)
            await asyncio.sleep(0.02)


def world_view(world: World, *, presences: bool = True) -> View:
    """What the emulator says the bot's available guilds hold."""
    view: View = {}
    for guild_id, guild in world.guilds.items():
        if guild.unavailable:
            continue
        view[guild_id] = {
            "name": guild.name,
            "channels": {cid: ch.get("name") for cid, ch in guild.channels.items()},
            "threads": set(guild.threads),
            "roles": {rid: role["name"] for rid, role in guild.roles.items()},
            "emojis": set(guild.emojis),
            "voice": {
                uid: int(state["channel_id"])
                for uid, state in guild.voice_states.items()
                if state.get("channel_id") is not None
            },
            "members": {
                uid: (member.nick, frozenset(member.roles))
                for uid, member in guild.members.items()
            },
            "presences": (
                {uid: p.status for uid, p in guild.presences.items()}
                if presences
                else {}
            ),
        }
    return view


def cache_view(cache: Cache, *, presences: bool = True) -> View:
    """The same view, from a client's cache."""
    view: View = {}
    for guild in cache.guilds():
        if guild.unavailable:
            continue
        gid = guild.id
        view[gid] = {
            "name": guild.name,
            "channels": {c.id: c.name for c in cache.channels(gid)},
            "threads": {t.id for t in cache.threads(gid)},
            "roles": {r.id: r.name for r in cache.roles(gid)},
            "emojis": {e.id for e in cache.emojis(gid)},
            "voice": {v.user_id: v.channel_id for v in cache.voice_states(gid)},
            "members": {
                m.user.id: (m.nick, frozenset(m.roles)) for m in cache.members(gid)
            },
            "presences": (
                {p.user_id: p.status for p in cache.presences(gid)} if presences else {}
            ),
        }
    return view


def first_difference(expected: View, actual: View) -> str | None:
    """Describe the first difference between two views, for assertion messages."""
    if set(expected) != set(actual):
        missing = set(expected) - set(actual)
        extra = set(actual) - set(expected)
        return f"guilds missing {sorted(missing)[:5]}, extra {sorted(extra)[:5]}"
    for gid in expected:
        for key, value in expected[gid].items():
            if actual[gid][key] != value:
                got = actual[gid][key]
                if isinstance(value, dict):
                    diff = {
                        k: (value.get(k), got.get(k))
                        for k in set(value) | set(got)
                        if value.get(k) != got.get(k)
                    }
                    return f"guild {gid} {key}: (world, cache) {list(diff.items())[:5]}"
                return f"guild {gid} {key}: world {value!r}, cache {got!r}"
    return None


class EmulatorThread:
    """An emulator on an event loop of its own, in a thread: it keeps serving (and
    timing heartbeats) while a handler blocks the test's loop."""

    def __init__(self, world: WorldConfig, **options: Any) -> None:
        self._world = world
        self._options = options
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._emu: Emulator | None = None

    @property
    def emu(self) -> Emulator:
        """The emulator; read its counters from any thread, drive it with call()."""
        assert self._emu is not None
        return self._emu

    def call(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Run ``coro`` on the emulator's loop; await the result on the caller's."""
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def __aenter__(self) -> EmulatorThread:
        self._thread.start()
        emu = Emulator(self._world, **self._options)
        await self.call(emu.start())
        self._emu = emu
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self.call(self.emu.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            await asyncio.to_thread(self._thread.join, 10)
            self._loop.close()
