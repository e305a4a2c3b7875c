from __future__ import annotations

import copy

import pytest
from test_models_factory import Payload, Payloads

from tether.cache import Cache, CacheConfig, MemberCachePolicy
from tether.events import (
    Event,
    GuildLeave,
    GuildUnavailable,
    MemberRemove,
    MessageBulkDelete,
    MessageDelete,
    ReadyData,
    RoleDelete,
    ThreadDelete,
    parse_dispatch,
)
from tether.models import shard_for


def feed(cache: Cache, name: str, data: Payload, shard_id: int = 0) -> Event:
    event = cache.resolve(parse_dispatch(name, copy.deepcopy(data), shard_id=shard_id))
    cache.apply(event)
    return event


class Scene:
    """One session with two guilds streamed in."""

    def __init__(self, config: CacheConfig | None = None) -> None:
        self.p = Payloads()
        self.me = self.p.user(bot=True)
        self.guild = self.p.guild_create(members=4, extra_members=[self.member_me()])
        self.other = self.p.guild_create(members=2)
        self.gid = int(self.guild["id"])
        self.cache = Cache(config)
        ready = self.p.ready([self.guild["id"], self.other["id"]], user=self.me)
        self.cache.begin_session(ReadyData.from_payload(ready))
        feed(self.cache, "GUILD_CREATE", self.guild)
        feed(self.cache, "GUILD_CREATE", self.other)

    def member_me(self) -> Payload:
        return self.p.member(self.me)

    def user_id(self, index: int) -> int:
        return int(self.guild["members"][index]["user"]["id"])


# Outages


def test_an_outage_keeps_the_guilds_data_and_marks_it_unavailable() -> None:
    scene = Scene()
    cache = scene.cache
    before = (cache.channels(scene.gid), cache.members(scene.gid))

    event = feed(cache, "GUILD_DELETE", {"id": scene.guild["id"], "unavailable": True})

    assert isinstance(event, GuildUnavailable)
    assert event.guild is not None
    assert event.guild.name == scene.guild["name"]
    guild = cache.guild(scene.gid)
    assert guild is not None
    assert guild.unavailable
    assert guild.name == scene.guild["name"]
    assert (cache.channels(scene.gid), cache.members(scene.gid)) == before


def test_the_guild_create_after_an_outage_replaces_the_guild_whole() -> None:
    scene = Scene()
    cache = scene.cache
    feed(cache, "GUILD_DELETE", {"id": scene.guild["id"], "unavailable": True})
    back = copy.deepcopy(scene.guild)
    removed = back["channels"].pop(0)

    event = feed(cache, "GUILD_CREATE", back)

    assert type(event).__name__ == "GuildAvailable"
    guild = cache.guild(scene.gid)
    assert guild is not None
    assert not guild.unavailable
    assert cache.channel(int(removed["id"])) is None
    assert len(cache.channels(scene.gid)) == len(back["channels"])


def test_an_outage_of_an_unknown_guild_adds_a_placeholder() -> None:
    cache = Cache()
    cache.apply(GuildUnavailable(guild_id=5))

    guild = cache.guild(5)
    assert guild is not None
    assert guild.unavailable


def test_leaving_a_guild_removes_everything_of_it() -> None:
    scene = Scene()
    cache = scene.cache
    channel_id = int(scene.guild["channels"][0]["id"])
    role_id = int(scene.guild["roles"][1]["id"])
    only_here = scene.user_id(0)

    event = feed(cache, "GUILD_DELETE", {"id": scene.guild["id"]})

    assert isinstance(event, GuildLeave)
    assert event.guild is not None
    assert cache.guild(scene.gid) is None
    assert cache.channel(channel_id) is None
    assert cache.role(role_id) is None
    assert cache.user(only_here) is None
    assert cache.members(scene.gid) == ()
    assert cache.counts().guilds == 1


# Sessions


def test_begin_session_touches_only_its_own_shard() -> None:
    p = Payloads()
    cache = Cache()
    guilds = [p.guild_create(str((1000 + i) << 22)) for i in range(8)]
    by_shard: dict[int, list[str]] = {0: [], 1: []}
    for guild in guilds:
        by_shard[shard_for(int(guild["id"]), 2)].append(guild["id"])
    assert by_shard[0]
    assert by_shard[1]
    for shard_id, ids in by_shard.items():
        ready = p.ready(ids)
        ready["shard"] = [shard_id, 2]
        cache.begin_session(ReadyData.from_payload(ready))
        for guild in guilds:
            if guild["id"] in ids:
                feed(cache, "GUILD_CREATE", guild, shard_id=shard_id)

    # Shard 1 re-identifies; one of its guilds is gone.
    ready = p.ready(by_shard[1][1:])
    ready["shard"] = [1, 2]
    gone = cache.begin_session(ReadyData.from_payload(ready))

    assert [e.guild_id for e in gone] == [int(by_shard[1][0])]
    assert gone[0].shard_id == 1
    for guild_id in by_shard[0]:
        kept = cache.guild(int(guild_id))
        assert kept is not None
        assert not kept.unavailable
        assert cache.members(int(guild_id))
    for guild_id in by_shard[1][1:]:
        listed = cache.guild(int(guild_id))
        assert listed is not None
        assert listed.unavailable
        assert cache.members(int(guild_id)) == ()


def test_clear_forgets_everything() -> None:
    scene = Scene()
    scene.cache.clear()

    assert scene.cache.guilds() == ()
    assert scene.cache.me is None
    assert scene.cache.counts().users == 0


# Member policies


def test_policy_all_caches_guild_create_members() -> None:
    scene = Scene(CacheConfig(members=MemberCachePolicy.ALL))

    assert len(scene.cache.members(scene.gid)) == 5


@pytest.mark.parametrize("policy", [MemberCachePolicy.SEEN, MemberCachePolicy.NONE])
def test_policies_below_all_keep_only_the_bots_member_from_guild_create(
    policy: MemberCachePolicy,
) -> None:
    scene = Scene(CacheConfig(members=policy))
    me = int(scene.me["id"])

    assert [m.id for m in scene.cache.members(scene.gid)] == [me]
    assert scene.cache.members(int(scene.other["id"])) == ()


def test_policy_seen_caches_members_that_show_up_in_events() -> None:
    scene = Scene(CacheConfig(members=MemberCachePolicy.SEEN))
    cache, p = scene.cache, scene.p
    author = scene.guild["members"][0]
    partial = {k: v for k, v in author.items() if k != "user"}
    channel = scene.guild["channels"][0]["id"]
    joiner = p.member()

    feed(
        cache,
        "MESSAGE_CREATE",
        p.message(channel, author["user"], guild_id=scene.guild["id"], member=partial),
    )
    feed(cache, "GUILD_MEMBER_ADD", {**joiner, "guild_id": scene.guild["id"]})
    feed(
        cache,
        "GUILD_MEMBERS_CHUNK",
        {"guild_id": scene.guild["id"], "members": [scene.guild["members"][1]]},
    )

    cached = {m.id for m in cache.members(scene.gid)}
    assert cached == {
        int(scene.me["id"]),
        int(author["user"]["id"]),
        int(joiner["user"]["id"]),
        scene.user_id(1),
    }


def test_policy_none_caches_no_member_from_events_but_counts_them() -> None:
    scene = Scene(CacheConfig(members=MemberCachePolicy.NONE))
    cache = scene.cache
    joiner = scene.p.member()

    feed(cache, "GUILD_MEMBER_ADD", {**joiner, "guild_id": scene.guild["id"]})

    assert cache.member(scene.gid, int(joiner["user"]["id"])) is None
    guild = cache.guild(scene.gid)
    assert guild is not None
    assert guild.member_count == 6


def test_users_off_keeps_members_but_answers_only_the_bot() -> None:
    scene = Scene(CacheConfig(users=False))

    assert len(scene.cache.members(scene.gid)) == 5
    assert scene.cache.user(scene.user_id(0)) is None
    assert scene.cache.user(int(scene.me["id"])) == scene.cache.me


# Members and users


def test_member_update_keeps_the_fields_its_payload_left_out() -> None:
    scene = Scene()
    cache = scene.cache
    member = scene.guild["members"][0]
    feed(
        cache,
        "VOICE_STATE_UPDATE",
        {
            **scene.p.voice_state(member["user"]["id"], None, scene.guild["id"]),
            "member": {**member, "deaf": True},
        },
    )

    feed(
        cache,
        "GUILD_MEMBER_UPDATE",
        {
            "guild_id": scene.guild["id"],
            "user": member["user"],
            "roles": [],
            "nick": "renamed",
        },
    )

    cached = cache.member(scene.gid, scene.user_id(0))
    assert cached is not None
    assert cached.nick == "renamed"
    assert cached.roles == ()
    assert cached.deaf is True


def test_a_user_dropped_with_its_last_membership() -> None:
    scene = Scene()
    cache = scene.cache
    user = scene.guild["members"][0]["user"]

    event = feed(
        cache, "GUILD_MEMBER_REMOVE", {"guild_id": scene.guild["id"], "user": user}
    )

    assert isinstance(event, MemberRemove)
    assert event.member is not None
    assert event.member.id == int(user["id"])
    assert cache.user(int(user["id"])) is None
    assert cache.presence(scene.gid, int(user["id"])) is None
    assert cache.voice_state(scene.gid, int(user["id"])) is None


def test_user_update_changes_the_bot_everywhere() -> None:
    scene = Scene()
    cache = scene.cache
    renamed = {**scene.me, "username": "newname"}

    feed(cache, "USER_UPDATE", renamed)

    assert cache.me is not None
    assert cache.me.username == "newname"
    member = cache.member(scene.gid, int(scene.me["id"]))
    assert member is not None
    assert member.user is cache.me


def test_a_whole_user_in_a_presence_updates_the_cached_user() -> None:
    scene = Scene()
    cache = scene.cache
    user = {**scene.guild["members"][0]["user"], "username": "fresh"}
    presence = scene.p.presence(user["id"], scene.guild["id"])
    presence["user"] = user

    feed(cache, "PRESENCE_UPDATE", presence)

    cached = cache.user(int(user["id"]))
    assert cached is not None
    assert cached.username == "fresh"


def test_an_offline_presence_is_dropped() -> None:
    scene = Scene()
    cache = scene.cache
    uid = scene.guild["members"][0]["user"]["id"]
    assert cache.presence(scene.gid, int(uid)) is not None

    feed(
        cache,
        "PRESENCE_UPDATE",
        scene.p.presence(uid, scene.guild["id"], status="offline"),
    )

    assert cache.presence(scene.gid, int(uid)) is None


def test_role_delete_takes_the_role_off_every_member() -> None:
    scene = Scene()
    cache = scene.cache
    role_id = scene.guild["roles"][1]["id"]
    assert any(int(role_id) in m.roles for m in cache.members(scene.gid))

    event = feed(
        cache, "GUILD_ROLE_DELETE", {"guild_id": scene.guild["id"], "role_id": role_id}
    )

    assert isinstance(event, RoleDelete)
    assert event.role is not None
    assert cache.role(int(role_id)) is None
    assert all(int(role_id) not in m.roles for m in cache.members(scene.gid))


# Channels and threads


def test_channel_delete_takes_its_threads_along() -> None:
    scene = Scene()
    cache = scene.cache
    parent = scene.guild["channels"][0]
    thread_id = int(scene.guild["threads"][0]["id"])
    assert cache.thread(thread_id) is not None

    feed(cache, "CHANNEL_DELETE", {**parent, "guild_id": scene.guild["id"]})

    assert cache.channel(int(parent["id"])) is None
    assert cache.thread(thread_id) is None
    assert cache.channel(thread_id) is None


def test_thread_delete_reports_the_cached_thread() -> None:
    scene = Scene()
    thread = scene.guild["threads"][0]

    event = feed(
        scene.cache,
        "THREAD_DELETE",
        {"id": thread["id"], "guild_id": scene.guild["id"], "type": 11},
    )

    assert isinstance(event, ThreadDelete)
    assert event.thread is not None
    assert scene.cache.threads(scene.gid) == ()


def test_thread_list_sync_replaces_the_threads_of_the_synced_channels() -> None:
    scene = Scene()
    cache, p = scene.cache, scene.p
    first, second = scene.guild["channels"][0], scene.guild["channels"][1]
    kept = p.thread(scene.guild["id"], second["id"])
    feed(cache, "THREAD_CREATE", kept)
    synced = p.thread(scene.guild["id"], first["id"])

    feed(
        cache,
        "THREAD_LIST_SYNC",
        {
            "guild_id": scene.guild["id"],
            "channel_ids": [first["id"]],
            "threads": [synced],
        },
    )

    assert {t.id for t in cache.threads(scene.gid)} == {
        int(kept["id"]),
        int(synced["id"]),
    }


def test_dm_channels_are_kept_apart_from_guilds() -> None:
    cache = Cache()
    feed(cache, "CHANNEL_CREATE", {"id": "70", "type": 1})

    channel = cache.channel(70)
    assert channel is not None
    assert channel.guild_id is None
    assert cache.counts().channels == 1


# Kinds switched off


def test_kinds_switched_off_are_not_cached() -> None:
    scene = Scene(
        CacheConfig(
            channels=False,
            threads=False,
            roles=False,
            emojis=False,
            presences=False,
            voice_states=False,
        )
    )
    counts = scene.cache.counts()

    assert (counts.channels, counts.threads, counts.roles, counts.emojis) == (
        0,
        0,
        0,
        0,
    )
    assert (counts.presences, counts.voice_states) == (0, 0)
    assert counts.members == 7
    assert counts.guilds == 2


def test_a_negative_message_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="messages"):
        CacheConfig(messages=-1)


# Messages


def test_messages_are_not_cached_by_default() -> None:
    scene = Scene()
    channel = scene.guild["channels"][0]["id"]
    feed(scene.cache, "MESSAGE_CREATE", scene.p.message(channel, scene.me))

    assert scene.cache.messages() == ()


def test_the_message_cache_keeps_the_most_recent_and_follows_edits() -> None:
    scene = Scene(CacheConfig(messages=2))
    cache, p = scene.cache, scene.p
    channel = scene.guild["channels"][0]["id"]
    sent = [p.message(channel, scene.me, guild_id=scene.guild["id"]) for _ in range(3)]
    for message in sent:
        feed(cache, "MESSAGE_CREATE", message)

    assert [m.id for m in cache.messages()] == [int(sent[1]["id"]), int(sent[2]["id"])]
    feed(cache, "MESSAGE_UPDATE", {**sent[2], "content": "edited"})
    edited = cache.message(int(sent[2]["id"]))
    assert edited is not None
    assert edited.content == "edited"

    deleted = feed(
        cache, "MESSAGE_DELETE", {"id": sent[2]["id"], "channel_id": channel}
    )
    assert isinstance(deleted, MessageDelete)
    assert deleted.message == edited
    bulk = feed(
        cache, "MESSAGE_DELETE_BULK", {"ids": [sent[1]["id"]], "channel_id": channel}
    )
    assert isinstance(bulk, MessageBulkDelete)
    assert len(bulk.messages) == 1
    assert cache.messages() == ()


def test_leaving_a_guild_drops_its_messages() -> None:
    scene = Scene(CacheConfig(messages=10))
    channel = scene.guild["channels"][0]["id"]
    feed(
        scene.cache,
        "MESSAGE_CREATE",
        scene.p.message(channel, scene.me, guild_id=scene.guild["id"]),
    )

    feed(scene.cache, "GUILD_DELETE", {"id": scene.guild["id"]})

    assert scene.cache.messages() == ()


# Queries


def test_counts_sum_every_kind() -> None:
    scene = Scene()
    counts = scene.cache.counts()

    assert counts.guilds == 2
    assert counts.unavailable_guilds == 0
    assert counts.channels == 3 + 3
    assert counts.threads == 2
    assert counts.roles == 3 + 3
    assert counts.emojis == 2
    assert counts.members == 5 + 2
    assert counts.users == 7
    assert counts.presences == 4
    assert counts.voice_states == 2


def test_queries_for_unknown_ids_answer_none_or_empty() -> None:
    cache = Cache()

    assert cache.guild(1) is None
    assert cache.channel(1) is None
    assert cache.thread(1) is None
    assert cache.role(1) is None
    assert cache.emoji(1) is None
    assert cache.member(1, 2) is None
    assert cache.user(1) is None
    assert cache.presence(1, 2) is None
    assert cache.voice_state(1, 2) is None
    assert cache.message(1) is None
    assert cache.members(1) == ()
    assert cache.channels(1) == ()
    assert cache.roles(1) == ()


def test_events_about_unknown_guilds_are_ignored() -> None:
    cache = Cache()
    p = Payloads()

    feed(cache, "GUILD_MEMBER_ADD", {**p.member(), "guild_id": "5"})
    feed(cache, "CHANNEL_CREATE", p.channel("5"))
    feed(cache, "GUILD_ROLE_CREATE", {"guild_id": "5", "role": p.role()})
    feed(cache, "GUILD_UPDATE", {"id": "5", "name": "x"})

    assert cache.counts() == Cache().counts()
