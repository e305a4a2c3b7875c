"""The synthetic world: determinism, sizes, sharding and payload shapes."""

from __future__ import annotations

import pytest

from tether.emulator import World, WorldConfig
from tether.emulator.world import shard_for


def test_same_seed_gives_the_same_world() -> None:
    config = WorldConfig(guilds=6, members_per_guild=30, seed=42)
    first, second = World(config), World(config)
    assert list(first.guilds) == list(second.guilds)
    assert first.bot.id == second.bot.id
    for guild_id, guild in first.guilds.items():
        other = second.guilds[guild_id]
        assert guild.name == other.name
        assert list(guild.members) == list(other.members)
        assert list(guild.channels) == list(other.channels)


def test_different_seeds_give_different_worlds() -> None:
    first = World(WorldConfig(guilds=3, seed=1))
    second = World(WorldConfig(guilds=3, seed=2))
    assert set(first.guilds).isdisjoint(second.guilds)


def test_sizes_follow_the_config() -> None:
    config = WorldConfig(
        guilds=5,
        members_per_guild=40,
        large_guilds=1,
        large_guild_members=300,
        categories_per_guild=1,
        text_channels_per_guild=3,
        voice_channels_per_guild=2,
        threads_per_guild=2,
        roles_per_guild=3,
        emojis_per_guild=4,
    )
    world = World(config)
    sizes = [guild.member_count for guild in world.guilds.values()]
    assert sizes == [300, 40, 40, 40, 40]
    for guild in world.guilds.values():
        assert world.bot.id in guild.members
        assert len(guild.channels) == 6
        assert len(guild.threads) == 2
        # @everyone, three named roles and the bot's managed role.
        assert len(guild.roles) == 5
        assert guild.id in guild.roles
        assert len(guild.emojis) == 4
        assert guild.owner_id in guild.members


def test_member_spread_varies_guild_sizes() -> None:
    world = World(
        WorldConfig(guilds=20, members_per_guild=100, member_spread=0.5, seed=5)
    )
    sizes = {guild.member_count for guild in world.guilds.values()}
    assert len(sizes) > 1
    assert all(50 <= size <= 150 for size in sizes)


def test_invalid_configs_are_refused() -> None:
    with pytest.raises(ValueError, match="guilds"):
        WorldConfig(guilds=-1)
    with pytest.raises(ValueError, match="at least one member"):
        WorldConfig(members_per_guild=0)
    with pytest.raises(ValueError, match="online_fraction"):
        WorldConfig(online_fraction=1.5)


def test_guilds_spread_over_shards_by_the_routing_formula() -> None:
    world = World(WorldConfig(guilds=40, members_per_guild=3, seed=9))
    per_shard = [world.guild_ids_for_shard(shard, 4) for shard in range(4)]
    assert sorted(gid for ids in per_shard for gid in ids) == sorted(world.guilds)
    for shard, ids in enumerate(per_shard):
        assert all((gid >> 22) % 4 == shard for gid in ids)
        assert all(shard_for(gid, 4) == shard for gid in ids)
    assert all(ids for ids in per_shard)


def test_guild_create_has_discords_field_names() -> None:
    world = World(WorldConfig(guilds=1, members_per_guild=20, seed=1))
    guild = next(iter(world.guilds.values()))
    payload = world.guild_create_payload(
        guild, large_threshold=250, presences_intent=True
    )
    for key in (
        "id", "name", "icon", "owner_id", "afk_timeout", "verification_level",
        "default_message_notifications", "explicit_content_filter", "roles", "emojis",
        "features", "mfa_level", "system_channel_id", "premium_tier",
        "preferred_locale",
        "nsfw_level", "joined_at", "large", "member_count", "voice_states", "members",
        "channels", "threads", "presences", "stage_instances", "guild_scheduled_events",
    ):  # fmt: skip
        assert key in payload, key
    assert isinstance(payload["id"], str)
    member = payload["members"][0]
    assert {"user", "roles", "joined_at", "deaf", "mute", "flags"} <= set(member)
    assert {"id", "username", "discriminator", "global_name", "avatar"} <= set(
        member["user"]
    )
    role = payload["roles"][0]
    assert isinstance(role["permissions"], str)
    assert {
        "id",
        "name",
        "color",
        "hoist",
        "position",
        "managed",
        "mentionable",
    } <= set(role)
    thread = payload["threads"][0]
    assert thread["type"] == 11
    assert {"archived", "auto_archive_duration", "locked"} <= set(
        thread["thread_metadata"]
    )


def test_large_guilds_leave_offline_members_out() -> None:
    world = World(
        WorldConfig(guilds=1, members_per_guild=120, online_fraction=0.3, seed=2)
    )
    guild = next(iter(world.guilds.values()))
    online = set(guild.presences)
    assert 0 < len(online) < guild.member_count

    small = world.guild_create_payload(
        guild, large_threshold=250, presences_intent=True
    )
    assert small["large"] is False
    assert len(small["members"]) == guild.member_count

    large = world.guild_create_payload(guild, large_threshold=50, presences_intent=True)
    assert large["large"] is True
    assert large["member_count"] == guild.member_count
    sent = {int(m["user"]["id"]) for m in large["members"]}
    assert online <= sent
    assert sent <= online | set(guild.voice_states)
    assert {int(p["user"]["id"]) for p in large["presences"]} == online


def test_without_presences_only_the_bot_and_voice_members_come() -> None:
    world = World(
        WorldConfig(guilds=1, members_per_guild=60, voice_fraction=1.0, seed=4)
    )
    guild = next(iter(world.guilds.values()))
    payload = world.guild_create_payload(
        guild, large_threshold=250, presences_intent=False
    )
    sent = {int(m["user"]["id"]) for m in payload["members"]}
    assert sent == {world.bot.id} | set(guild.voice_states)
    assert payload["presences"] == []


def test_messages_are_stored_and_payloads_are_not_mutated() -> None:
    world = World(WorldConfig(guilds=1, members_per_guild=5, seed=1))
    guild = next(iter(world.guilds.values()))
    channel_id = guild.channel_ids_of_type(0)[0]
    before = world.channel(channel_id)
    message = world.create_message(channel_id, world.bot.id, "hello")
    assert world.messages(channel_id) == [message]
    assert before is not None and before["last_message_id"] is None
    assert world.channel(channel_id)["last_message_id"] == message["id"]  # type: ignore[index]
    edited = world.edit_message(channel_id, int(message["id"]), {"content": "bye"})
    assert edited is not None and edited["content"] == "bye"
    assert message["content"] == "hello"
    assert world.delete_message(channel_id, int(message["id"]))
    assert world.messages(channel_id) == []
