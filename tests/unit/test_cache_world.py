"""The cache against a model of Discord's side: after any run of events it must hold
exactly what a freshly started client would build from the same world.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any

import pytest
from test_models_factory import Payload, Payloads

from tether.cache import Cache
from tether.events import Event, GuildJoin, GuildLeave, ReadyData, parse_dispatch

Dispatch = tuple[str, Payload]

_GATEWAY_ONLY = {
    "joined_at",
    "large",
    "unavailable",
    "member_count",
    "voice_states",
    "members",
    "channels",
    "threads",
    "presences",
    "stage_instances",
    "guild_scheduled_events",
    "soundboard_sounds",
    "_trace",
}


class World:
    """Discord's view of the bot's guilds, changed by operations that each return
    the dispatches Discord would send for them."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.p = Payloads()
        self.me = self.p.user(bot=True)
        # A few users are members of several guilds.
        self.shared_users = [self.p.user() for _ in range(4)]
        self.guilds: dict[str, Payload] = {}
        for _ in range(4):
            self.new_guild()

    # Snapshots

    def ready(self) -> Payload:
        return self.p.ready(list(self.guilds), user=copy.deepcopy(self.me))

    def guild_create(self, guild_id: str) -> Payload:
        return copy.deepcopy(self.guilds[guild_id])

    # Helpers

    def new_guild(self) -> Payload:
        shared = self.rng.sample(self.shared_users, 2)
        extra = [self.p.member(self.me)] + [self.p.member(u) for u in shared]
        guild = self.p.guild_create(members=self.rng.randint(1, 5), extra_members=extra)
        self.guilds[guild["id"]] = guild
        return guild

    def pick_guild(self) -> Payload:
        return self.guilds[self.rng.choice(sorted(self.guilds))]

    def others(self, guild: Payload) -> list[Payload]:
        return [m for m in guild["members"] if m["user"]["id"] != self.me["id"]]

    @staticmethod
    def out(name: str, data: Payload) -> list[Dispatch]:
        return [(name, copy.deepcopy(data))]

    # Operations

    def channel_create(self) -> list[Dispatch]:
        guild = self.pick_guild()
        channel = self.p.channel(None, 0, name="new")
        guild["channels"].append(channel)
        return self.out("CHANNEL_CREATE", {**channel, "guild_id": guild["id"]})

    def channel_update(self) -> list[Dispatch]:
        guild = self.pick_guild()
        channel = self.rng.choice(guild["channels"])
        channel["name"] = f"renamed{self.rng.randint(0, 999)}"
        channel["topic"] = "topic"
        return self.out("CHANNEL_UPDATE", {**channel, "guild_id": guild["id"]})

    def channel_delete(self) -> list[Dispatch]:
        guild = self.pick_guild()
        if len(guild["channels"]) < 2:
            return []
        channel = self.rng.choice(guild["channels"])
        guild["channels"].remove(channel)
        guild["threads"] = [
            t for t in guild["threads"] if t["parent_id"] != channel["id"]
        ]
        return self.out("CHANNEL_DELETE", {**channel, "guild_id": guild["id"]})

    def text_channel(self, guild: Payload) -> Payload | None:
        texts = [c for c in guild["channels"] if c["type"] == 0]
        return self.rng.choice(texts) if texts else None

    def thread_create(self) -> list[Dispatch]:
        guild = self.pick_guild()
        parent = self.text_channel(guild)
        if parent is None:
            return []
        thread = self.p.thread(guild["id"], parent["id"])
        guild["threads"].append(thread)
        return self.out("THREAD_CREATE", {**thread, "newly_created": True})

    def thread_archive(self) -> list[Dispatch]:
        guild = self.pick_guild()
        if not guild["threads"]:
            return []
        thread = self.rng.choice(guild["threads"])
        guild["threads"].remove(thread)
        archived = copy.deepcopy(thread)
        archived["thread_metadata"]["archived"] = True
        return self.out("THREAD_UPDATE", archived)

    def thread_delete(self) -> list[Dispatch]:
        guild = self.pick_guild()
        if not guild["threads"]:
            return []
        thread = self.rng.choice(guild["threads"])
        guild["threads"].remove(thread)
        data = {
            "id": thread["id"],
            "guild_id": guild["id"],
            "parent_id": thread["parent_id"],
            "type": 11,
        }
        return self.out("THREAD_DELETE", data)

    def role_create(self) -> list[Dispatch]:
        guild = self.pick_guild()
        role = self.p.role(name="fresh")
        guild["roles"].append(role)
        return self.out("GUILD_ROLE_CREATE", {"guild_id": guild["id"], "role": role})

    def role_update(self) -> list[Dispatch]:
        guild = self.pick_guild()
        role = self.rng.choice(guild["roles"])
        role["name"] = f"role{self.rng.randint(0, 999)}"
        role["color"] = self.rng.randint(0, 0xFFFFFF)
        return self.out("GUILD_ROLE_UPDATE", {"guild_id": guild["id"], "role": role})

    def role_delete(self) -> list[Dispatch]:
        guild = self.pick_guild()
        roles = [r for r in guild["roles"] if r["id"] != guild["id"]]
        if not roles:
            return []
        role = self.rng.choice(roles)
        guild["roles"].remove(role)
        for member in guild["members"]:
            member["roles"] = [r for r in member["roles"] if r != role["id"]]
        data = {"guild_id": guild["id"], "role_id": role["id"]}
        return self.out("GUILD_ROLE_DELETE", data)

    def member_add(self) -> list[Dispatch]:
        guild = self.pick_guild()
        member = self.p.member(deaf=self.rng.random() < 0.3)
        guild["members"].append(member)
        guild["member_count"] += 1
        return self.out("GUILD_MEMBER_ADD", {**member, "guild_id": guild["id"]})

    def member_update(self) -> list[Dispatch]:
        guild = self.pick_guild()
        member = self.rng.choice(guild["members"])
        member["nick"] = self.rng.choice([None, "nick", "other"])
        ids = [r["id"] for r in guild["roles"] if r["id"] != guild["id"]]
        member["roles"] = self.rng.sample(ids, min(len(ids), 2))
        # deaf, mute and pending are left out, as Discord often does.
        data = {
            key: member[key]
            for key in ("user", "roles", "nick", "avatar", "joined_at", "flags")
        }
        data["premium_since"] = member["premium_since"]
        return self.out("GUILD_MEMBER_UPDATE", {**data, "guild_id": guild["id"]})

    def member_remove(self) -> list[Dispatch]:
        guild = self.pick_guild()
        others = self.others(guild)
        if not others:
            return []
        member = self.rng.choice(others)
        uid = member["user"]["id"]
        guild["members"].remove(member)
        guild["member_count"] -= 1
        guild["presences"] = [p for p in guild["presences"] if p["user"]["id"] != uid]
        guild["voice_states"] = [
            v for v in guild["voice_states"] if v["user_id"] != uid
        ]
        data = {"guild_id": guild["id"], "user": member["user"]}
        return self.out("GUILD_MEMBER_REMOVE", data)

    def user_rename(self) -> list[Dispatch]:
        user = self.rng.choice(self.shared_users)
        user["username"] = f"renamed{self.rng.randint(0, 9999)}"
        holder = None
        for guild in self.guilds.values():
            for member in guild["members"]:
                if member["user"]["id"] == user["id"]:
                    member["user"] = copy.deepcopy(user)
                    holder = (guild, member)
        if holder is None:
            return []
        guild, member = holder
        # One guild's update carries the new user; the others learn it from there.
        return self.out("GUILD_MEMBER_UPDATE", {**member, "guild_id": guild["id"]})

    def presence_update(self) -> list[Dispatch]:
        guild = self.pick_guild()
        member = self.rng.choice(guild["members"])
        uid = member["user"]["id"]
        status = self.rng.choice(["online", "idle", "dnd", "offline"])
        presence = self.p.presence(uid, status=status)
        guild["presences"] = [p for p in guild["presences"] if p["user"]["id"] != uid]
        if status != "offline":
            guild["presences"].append(presence)
        return self.out("PRESENCE_UPDATE", {**presence, "guild_id": guild["id"]})

    def voice_update(self) -> list[Dispatch]:
        guild = self.pick_guild()
        member = self.rng.choice(guild["members"])
        uid = member["user"]["id"]
        current = [v for v in guild["voice_states"] if v["user_id"] == uid]
        voice = [c for c in guild["channels"] if c["type"] == 2]
        guild["voice_states"] = [
            v for v in guild["voice_states"] if v["user_id"] != uid
        ]
        if current or not voice:
            state = self.p.voice_state(uid, None)
        else:
            state = self.p.voice_state(uid, voice[0]["id"])
            guild["voice_states"].append(state)
        data = {**state, "guild_id": guild["id"], "member": member}
        return self.out("VOICE_STATE_UPDATE", data)

    def message_create(self) -> list[Dispatch]:
        guild = self.pick_guild()
        targets = [c for c in guild["channels"] if c["type"] == 0] + guild["threads"]
        if not targets:
            return []
        channel = self.rng.choice(targets)
        member = self.rng.choice(guild["members"])
        partial = {k: v for k, v in member.items() if k != "user"}
        message = self.p.message(
            channel["id"], member["user"], guild_id=guild["id"], member=partial
        )
        channel["last_message_id"] = message["id"]
        return self.out("MESSAGE_CREATE", message)

    def emojis_update(self) -> list[Dispatch]:
        guild = self.pick_guild()
        guild["emojis"] = guild["emojis"][1:] + [self.p.emoji()]
        data = {"guild_id": guild["id"], "emojis": guild["emojis"]}
        return self.out("GUILD_EMOJIS_UPDATE", data)

    def guild_update(self) -> list[Dispatch]:
        guild = self.pick_guild()
        guild["name"] = f"guild{self.rng.randint(0, 999)}"
        guild["afk_timeout"] = self.rng.choice([60, 300, 900])
        data = {k: v for k, v in guild.items() if k not in _GATEWAY_ONLY}
        return self.out("GUILD_UPDATE", data)

    def guild_join(self) -> list[Dispatch]:
        guild = self.new_guild()
        return self.out("GUILD_CREATE", guild)

    def guild_leave(self) -> list[Dispatch]:
        if len(self.guilds) < 2:
            return []
        guild = self.pick_guild()
        del self.guilds[guild["id"]]
        return self.out("GUILD_DELETE", {"id": guild["id"]})

    def guild_outage_and_return(self) -> list[Dispatch]:
        guild = self.pick_guild()
        outage = ("GUILD_DELETE", {"id": guild["id"], "unavailable": True})
        return [outage, *self.out("GUILD_CREATE", guild)]

    def operations(self) -> list[Callable[[], list[Dispatch]]]:
        return [
            self.channel_create,
            self.channel_update,
            self.channel_delete,
            self.thread_create,
            self.thread_archive,
            self.thread_delete,
            self.role_create,
            self.role_update,
            self.role_delete,
            self.member_add,
            self.member_update,
            self.member_remove,
            self.user_rename,
            self.presence_update,
            self.voice_update,
            self.message_create,
            self.emojis_update,
            self.guild_update,
            self.guild_join,
            self.guild_leave,
            self.guild_outage_and_return,
        ]


def feed(cache: Cache, name: str, data: Payload) -> Event:
    event = cache.resolve(parse_dispatch(name, data))
    cache.apply(event)
    return event


def start(cache: Cache, world: World) -> list[GuildLeave]:
    gone = cache.begin_session(ReadyData.from_payload(world.ready()))
    for guild_id in world.guilds:
        feed(cache, "GUILD_CREATE", world.guild_create(guild_id))
    return gone


def fresh_client_view(world: World) -> Cache:
    cache = Cache()
    start(cache, world)
    return cache


def view(cache: Cache) -> dict[str, Any]:
    """Everything the cache answers, in comparable form."""
    guilds = {}
    for guild in cache.guilds():
        gid = guild.id
        members = {m.id: m for m in cache.members(gid)}
        guilds[gid] = {
            "guild": guild,
            "channels": {c.id: c for c in cache.channels(gid)},
            "threads": {t.id: t for t in cache.threads(gid)},
            "roles": {r.id: r for r in cache.roles(gid)},
            "emojis": {e.id: e for e in cache.emojis(gid)},
            "members": members,
            "users": {uid: cache.user(uid) for uid in members},
            "presences": {p.user_id: p for p in cache.presences(gid)},
            "voice_states": {v.user_id: v for v in cache.voice_states(gid)},
        }
    return {"me": cache.me, "guilds": guilds, "counts": cache.counts()}


@pytest.mark.parametrize("seed", range(6))
def test_after_random_activity_the_cache_equals_a_fresh_clients(seed: int) -> None:
    world = World(seed)
    cache = Cache()
    start(cache, world)
    operations = world.operations()

    for _ in range(300):
        for name, data in world.rng.choice(operations)():
            feed(cache, name, data)

    assert view(cache) == view(fresh_client_view(world))


@pytest.mark.parametrize("seed", range(3))
def test_applying_every_event_twice_changes_nothing(seed: int) -> None:
    world = World(seed)
    cache = Cache()
    start(cache, world)
    operations = world.operations()

    for _ in range(300):
        for name, data in world.rng.choice(operations)():
            event = cache.resolve(parse_dispatch(name, data))
            cache.apply(event)
            cache.apply(event)

    assert view(cache) == view(fresh_client_view(world))


def test_a_user_in_several_guilds_is_one_shared_record() -> None:
    world = World(1)
    cache = Cache()
    start(cache, world)
    user_id = int(world.me["id"])

    records = [cache.member(g.id, user_id) for g in cache.guilds()]
    assert len(records) == len(world.guilds)
    users = {id(m.user) for m in records if m is not None}
    assert len(users) == 1
    assert cache.user(user_id) is cache.me


def test_reidentify_rebuilds_the_cache_and_reports_vanished_guilds() -> None:
    world = World(2)
    cache = Cache()
    start(cache, world)
    for _ in range(100):
        for name, data in world.rng.choice(world.operations())():
            feed(cache, name, data)

    # While the bot was away: one guild gone, one new, changes in another.
    vanished = sorted(world.guilds)[0]
    del world.guilds[vanished]
    world.new_guild()
    for _ in range(30):
        world.rng.choice(
            [world.channel_create, world.member_add, world.member_remove]
        )()

    gone = start(cache, world)

    assert [event.guild_id for event in gone] == [int(vanished)]
    assert gone[0].guild is not None
    assert gone[0].guild.id == int(vanished)
    assert view(cache) == view(fresh_client_view(world))


def test_after_begin_session_listed_guilds_are_unavailable_placeholders() -> None:
    world = World(3)
    cache = Cache()
    start(cache, world)
    first = sorted(world.guilds)[0]

    cache.begin_session(ReadyData.from_payload(world.ready()))

    assert all(g.unavailable for g in cache.guilds())
    assert cache.channels(int(first)) == ()
    assert cache.members(int(first)) == ()
    counts = cache.counts()
    assert counts.guilds == counts.unavailable_guilds == len(world.guilds)
    assert counts.members == counts.channels == counts.roles == 0
    assert counts.users == 1


def test_a_listed_guild_is_available_and_an_unknown_one_is_a_join() -> None:
    world = World(4)
    cache = Cache()
    cache.begin_session(ReadyData.from_payload(world.ready()))
    listed = sorted(world.guilds)[0]

    streamed = feed(cache, "GUILD_CREATE", world.guild_create(listed))
    joined = feed(cache, "GUILD_CREATE", world.new_guild())
    left = feed(cache, "GUILD_DELETE", {"id": listed})
    rejoined = feed(cache, "GUILD_CREATE", world.guild_create(listed))

    assert type(streamed).__name__ == "GuildAvailable"
    assert isinstance(joined, GuildJoin)
    assert isinstance(left, GuildLeave)
    assert isinstance(rejoined, GuildJoin)
