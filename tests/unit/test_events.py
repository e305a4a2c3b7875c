from __future__ import annotations

import logging
from typing import Any

import pytest
from test_models_factory import Payloads

from tether import events as ev
from tether.errors import RemoteProtocolError
from tether.events import parse_dispatch
from tether.models import PartialEmoji


@pytest.fixture
def payloads() -> Payloads:
    return Payloads()


def test_guild_create_becomes_guild_available_with_typed_lists(
    payloads: Payloads,
) -> None:
    data = payloads.guild_create(members=4, channels=2, threads=2)
    event = parse_dispatch("GUILD_CREATE", data, shard_id=3)

    assert isinstance(event, ev.GuildAvailable)
    gid = int(data["id"])
    assert event.shard_id == 3
    assert event.guild.id == gid
    assert [c.id for c in event.channels] == [int(c["id"]) for c in data["channels"]]
    assert all(c.guild_id == gid for c in event.channels + event.threads)
    assert all(t.is_thread for t in event.threads)
    assert len(event.threads) == 2
    assert all(m.guild_id == gid for m in event.members)
    assert {p.user_id for p in event.presences} <= {m.id for m in event.members}
    assert event.voice_states[0].guild_id == gid
    assert event.voice_states[0].channel_id == event.channels[-1].id


def test_members_of_one_guild_create_share_the_guild_id_object(
    payloads: Payloads,
) -> None:
    event = parse_dispatch("GUILD_CREATE", payloads.guild_create(members=3))

    assert isinstance(event, ev.GuildAvailable)
    assert all(m.guild_id is event.guild.id for m in event.members)


def test_a_malformed_member_is_skipped_not_fatal(payloads: Payloads) -> None:
    data = payloads.guild_create(members=2)
    data["members"].append({"nick": "no user"})
    data["members"].append("not an object")
    event = parse_dispatch("GUILD_CREATE", data)

    assert isinstance(event, ev.GuildAvailable)
    assert len(event.members) == 2


def test_guild_create_in_outage_form_is_guild_unavailable() -> None:
    event = parse_dispatch("GUILD_CREATE", {"id": "41", "unavailable": True})

    assert event == ev.GuildUnavailable(guild_id=41)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"id": "41", "unavailable": True}, ev.GuildUnavailable(guild_id=41)),
        ({"id": "41"}, ev.GuildLeave(guild_id=41)),
        ({"id": "41", "unavailable": False}, ev.GuildLeave(guild_id=41)),
    ],
)
def test_guild_delete_tells_outage_from_leave(
    data: dict[str, Any], expected: ev.Event
) -> None:
    assert parse_dispatch("GUILD_DELETE", data) == expected


def test_guild_update_names_the_fields_it_lacks(payloads: Payloads) -> None:
    data = payloads.guild_create()
    for key in ("member_count", "joined_at", "large", "members", "unavailable"):
        del data[key]
    event = parse_dispatch("GUILD_UPDATE", data)

    assert isinstance(event, ev.GuildUpdate)
    assert {"member_count", "joined_at", "large", "unavailable"} <= (
        event.absent_fields
    )
    assert "name" not in event.absent_fields


def test_member_update_names_the_optional_keys_it_lacks(payloads: Payloads) -> None:
    data: dict[str, Any] = {
        "guild_id": "5",
        "user": payloads.user(),
        "roles": [],
        "nick": "new",
        "joined_at": None,
    }
    event = parse_dispatch("GUILD_MEMBER_UPDATE", data)

    assert isinstance(event, ev.MemberUpdate)
    assert event.member.nick == "new"
    assert {"deaf", "mute", "pending", "flags"} <= event.absent_fields
    assert "nick" not in event.absent_fields
    assert "joined_at" not in event.absent_fields


def test_member_add_and_remove(payloads: Payloads) -> None:
    member = payloads.member()
    add = parse_dispatch("GUILD_MEMBER_ADD", {**member, "guild_id": "5"})
    remove = parse_dispatch(
        "GUILD_MEMBER_REMOVE", {"guild_id": "5", "user": member["user"]}
    )

    assert isinstance(add, ev.MemberAdd)
    assert add.member.guild_id == 5
    assert isinstance(remove, ev.MemberRemove)
    assert remove.user == add.member.user
    assert remove.member is None


def test_members_chunk(payloads: Payloads) -> None:
    members = [payloads.member() for _ in range(3)]
    event = parse_dispatch(
        "GUILD_MEMBERS_CHUNK",
        {
            "guild_id": "5",
            "members": members,
            "chunk_index": 1,
            "chunk_count": 2,
            "not_found": ["77", 78],
            "presences": [payloads.presence(members[0]["user"]["id"])],
            "nonce": "n1",
        },
    )

    assert isinstance(event, ev.MembersChunk)
    assert len(event.members) == 3
    assert (event.chunk_index, event.chunk_count, event.nonce) == (1, 2, "n1")
    assert event.not_found == (77, 78)
    assert event.presences[0].guild_id == 5


def test_channel_and_thread_events(payloads: Payloads) -> None:
    channel = payloads.channel("5")
    thread = payloads.thread("5", channel["id"], newly_created=True)

    assert isinstance(parse_dispatch("CHANNEL_CREATE", channel), ev.ChannelCreate)
    assert isinstance(parse_dispatch("CHANNEL_UPDATE", channel), ev.ChannelUpdate)
    assert isinstance(parse_dispatch("CHANNEL_DELETE", channel), ev.ChannelDelete)
    created = parse_dispatch("THREAD_CREATE", thread)
    assert isinstance(created, ev.ThreadCreate)
    assert created.newly_created is True
    assert isinstance(parse_dispatch("THREAD_UPDATE", thread), ev.ThreadUpdate)
    deleted = parse_dispatch(
        "THREAD_DELETE",
        {"id": thread["id"], "guild_id": "5", "parent_id": channel["id"], "type": 11},
    )
    assert deleted == ev.ThreadDelete(
        thread_id=int(thread["id"]), guild_id=5, parent_id=int(channel["id"]), type=11
    )


def test_thread_list_sync_with_and_without_channel_ids(payloads: Payloads) -> None:
    parent = payloads.id()
    thread = payloads.thread("5", parent)
    del thread["guild_id"]
    some = parse_dispatch(
        "THREAD_LIST_SYNC",
        {"guild_id": "5", "channel_ids": [parent], "threads": [thread], "members": []},
    )
    whole = parse_dispatch("THREAD_LIST_SYNC", {"guild_id": "5", "threads": []})

    assert isinstance(some, ev.ThreadListSync)
    assert some.channel_ids == (int(parent),)
    assert some.threads[0].guild_id == 5
    assert isinstance(whole, ev.ThreadListSync)
    assert whole.channel_ids is None


def test_role_events(payloads: Payloads) -> None:
    role = payloads.role()
    created = parse_dispatch("GUILD_ROLE_CREATE", {"guild_id": "5", "role": role})
    updated = parse_dispatch("GUILD_ROLE_UPDATE", {"guild_id": "5", "role": role})
    deleted = parse_dispatch(
        "GUILD_ROLE_DELETE", {"guild_id": "5", "role_id": role["id"]}
    )

    assert isinstance(created, ev.RoleCreate)
    assert created.role.id == int(role["id"])
    assert isinstance(updated, ev.RoleUpdate)
    assert deleted == ev.RoleDelete(guild_id=5, role_id=int(role["id"]))


def test_message_events(payloads: Payloads) -> None:
    data = payloads.message("6", payloads.user(), guild_id="5")
    created = parse_dispatch("MESSAGE_CREATE", data)
    updated = parse_dispatch("MESSAGE_UPDATE", {**data, "content": "edited"})
    deleted = parse_dispatch(
        "MESSAGE_DELETE", {"id": data["id"], "channel_id": "6", "guild_id": "5"}
    )
    bulk = parse_dispatch(
        "MESSAGE_DELETE_BULK", {"ids": [data["id"], "x"], "channel_id": "6"}
    )

    assert isinstance(created, ev.MessageCreate)
    assert created.message.guild_id == 5
    assert isinstance(updated, ev.MessageUpdate)
    assert updated.message.content == "edited"
    assert deleted == ev.MessageDelete(
        message_id=int(data["id"]), channel_id=6, guild_id=5
    )
    assert bulk == ev.MessageBulkDelete(message_ids=(int(data["id"]),), channel_id=6)


def test_reaction_events(payloads: Payloads) -> None:
    base = {"user_id": "1", "channel_id": "2", "message_id": "3", "guild_id": "4"}
    emoji = {"id": None, "name": "👍"}
    added = parse_dispatch(
        "MESSAGE_REACTION_ADD",
        {**base, "emoji": emoji, "member": payloads.member(), "burst": False},
    )
    removed = parse_dispatch("MESSAGE_REACTION_REMOVE", {**base, "emoji": emoji})
    cleared = parse_dispatch(
        "MESSAGE_REACTION_REMOVE_ALL",
        {"channel_id": "2", "message_id": "3", "guild_id": "4"},
    )
    one_emoji = parse_dispatch(
        "MESSAGE_REACTION_REMOVE_EMOJI",
        {"channel_id": "2", "message_id": "3", "emoji": emoji},
    )

    assert isinstance(added, ev.ReactionAdd)
    assert added.emoji == PartialEmoji(name="👍")
    assert added.member is not None
    assert added.member.guild_id == 4
    assert isinstance(removed, ev.ReactionRemove)
    assert removed.user_id == 1
    assert cleared == ev.ReactionRemoveAll(channel_id=2, message_id=3, guild_id=4)
    assert one_emoji == ev.ReactionRemoveEmoji(
        channel_id=2, message_id=3, emoji=PartialEmoji(name="👍")
    )


def test_typing_start_reads_unix_seconds(payloads: Payloads) -> None:
    event = parse_dispatch(
        "TYPING_START",
        {
            "channel_id": "2",
            "user_id": "1",
            "timestamp": 1_700_000_000,
            "guild_id": "4",
            "member": payloads.member(),
        },
    )

    assert isinstance(event, ev.TypingStart)
    assert event.timestamp is not None
    assert event.timestamp.timestamp() == 1_700_000_000
    assert event.member is not None


def test_presence_update_keeps_a_whole_user_only(payloads: Payloads) -> None:
    partial = parse_dispatch("PRESENCE_UPDATE", payloads.presence("1", "4"))
    whole_data = payloads.presence("1", "4")
    whole_data["user"] = payloads.user("1")
    whole = parse_dispatch("PRESENCE_UPDATE", whole_data)

    assert isinstance(partial, ev.PresenceUpdate)
    assert partial.user is None
    assert partial.presence.user_id == 1
    assert isinstance(whole, ev.PresenceUpdate)
    assert whole.user is not None
    assert whole.user.username == whole_data["user"]["username"]


def test_voice_events_hide_the_voice_token(payloads: Payloads) -> None:
    state = payloads.voice_state("1", "2", "4")
    state["member"] = payloads.member(payloads.user("1"))
    voice = parse_dispatch("VOICE_STATE_UPDATE", state)
    server = parse_dispatch(
        "VOICE_SERVER_UPDATE",
        {"token": "voice-secret", "guild_id": "4", "endpoint": "127.0.0.1:1"},
    )

    assert isinstance(voice, ev.VoiceStateUpdate)
    assert voice.member is not None
    assert voice.member.id == 1
    assert isinstance(server, ev.VoiceServerUpdate)
    assert server.token == "voice-secret"
    assert "voice-secret" not in repr(server)


def test_interaction_user_and_emoji_updates(payloads: Payloads) -> None:
    interaction = parse_dispatch(
        "INTERACTION_CREATE",
        {
            "id": "1",
            "application_id": "2",
            "type": 2,
            "token": "t",
            "user": payloads.user(),
        },
    )
    user = parse_dispatch("USER_UPDATE", payloads.user())
    emojis = parse_dispatch(
        "GUILD_EMOJIS_UPDATE", {"guild_id": "4", "emojis": [payloads.emoji()]}
    )

    assert isinstance(interaction, ev.InteractionCreate)
    assert interaction.interaction.user is not None
    assert isinstance(user, ev.UserUpdate)
    assert isinstance(emojis, ev.GuildEmojisUpdate)
    assert len(emojis.emojis) == 1


def test_resumed_is_typed_and_ready_is_left_raw() -> None:
    assert parse_dispatch("RESUMED", {"_trace": []}, shard_id=2) == ev.Resumed(
        shard_id=2
    )
    raw = parse_dispatch("READY", {"v": 10})
    assert isinstance(raw, ev.RawDispatch)
    assert raw.name == "READY"


def test_an_unknown_dispatch_is_delivered_raw() -> None:
    data = {"id": "1", "name": "stage"}
    event = parse_dispatch("STAGE_INSTANCE_CREATE", data, shard_id=1)

    assert event == ev.RawDispatch(name="STAGE_INSTANCE_CREATE", data=data, shard_id=1)


def test_a_malformed_known_dispatch_is_delivered_raw_and_warned_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="tether.events")
    ev._warned.discard("GUILD_ROLE_DELETE")
    first = parse_dispatch("GUILD_ROLE_DELETE", {"guild_id": "1"})
    second = parse_dispatch("GUILD_ROLE_DELETE", {"guild_id": "1"})
    not_object = parse_dispatch("GUILD_ROLE_DELETE", ["x"])

    assert isinstance(first, ev.RawDispatch)
    assert isinstance(second, ev.RawDispatch)
    assert isinstance(not_object, ev.RawDispatch)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "GUILD_ROLE_DELETE" in warnings[0].getMessage()


def test_ready_data_reads_guilds_shard_and_ignores_extras(payloads: Payloads) -> None:
    data = payloads.ready(["3", "4", "3"])
    data["shard"] = [1, 4]
    data["guilds"].append({"unavailable": True})
    ready = ev.ReadyData.from_payload(data)

    assert ready.guild_ids == (3, 4)
    assert ready.shard == (1, 4)
    assert ready.session_id == "c0ffee"
    assert ready.user.bot is True
    assert ready.resume_gateway_url == "ws://127.0.0.1:1/"


def test_ready_data_without_session_is_a_remote_protocol_error(
    payloads: Payloads,
) -> None:
    data = payloads.ready([])
    del data["session_id"]

    with pytest.raises(RemoteProtocolError):
        ev.ReadyData.from_payload(data)


def test_every_event_is_slotted_frozen_and_carries_a_shard_id() -> None:
    classes = [
        getattr(ev, name)
        for name in ev.__all__
        if isinstance(getattr(ev, name), type)
        and issubclass(getattr(ev, name), ev.Event)
        and name not in {"Event", "HandlerError"}
    ]

    assert len(classes) >= 38
    for cls in classes:
        params = cls.__dataclass_params__
        assert params.frozen, cls
        assert "__dict__" not in dir(cls), cls
        assert "shard_id" in cls.__dataclass_fields__, cls
