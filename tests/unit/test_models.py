from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from test_models_factory import Payloads

from tether.errors import RemoteProtocolError
from tether.models import (
    Channel,
    ChannelType,
    ClientStatus,
    Emoji,
    Guild,
    Interaction,
    Member,
    Message,
    Overwrite,
    PartialEmoji,
    Presence,
    Role,
    User,
    VoiceState,
    shard_for,
    snowflake_at,
    snowflake_time,
)

# Snowflakes


def test_snowflake_time_matches_discords_documented_example() -> None:
    when = snowflake_time(175928847299117063)

    assert when == datetime(2016, 4, 30, 11, 18, 25, 796000, tzinfo=UTC)


def test_snowflake_at_is_the_smallest_id_of_that_millisecond() -> None:
    when = datetime(2016, 4, 30, 11, 18, 25, 796000, tzinfo=UTC)
    low = snowflake_at(when)

    assert low <= 175928847299117063 < low + (1 << 22)
    assert snowflake_time(low) == when


def test_snowflake_at_takes_a_naive_datetime_as_utc() -> None:
    naive = datetime(2020, 1, 1)

    assert snowflake_at(naive) == snowflake_at(naive.replace(tzinfo=UTC))


def test_shard_for_uses_discords_formula() -> None:
    guild_id = 175928847299117063

    assert shard_for(guild_id, 1) == 0
    assert shard_for(guild_id, 16) == (guild_id >> 22) % 16
    assert {shard_for(guild_id + (i << 22), 4) for i in range(4)} == {0, 1, 2, 3}


def test_shard_for_rejects_a_count_below_one() -> None:
    with pytest.raises(ValueError, match="shard_count"):
        shard_for(1, 0)


def test_records_report_their_creation_time_from_the_id() -> None:
    user = User(id=175928847299117063)

    assert user.created_at.year == 2016


# Records are immutable and slotted


@pytest.mark.parametrize(
    "record",
    [
        User(id=1),
        Member(user=User(id=1), guild_id=2),
        Role(id=1),
        Channel(id=1, type=0),
        Emoji(id=1),
        Guild(id=1),
        Presence(user_id=1, guild_id=2),
        VoiceState(user_id=1),
        Message(id=1, channel_id=2),
    ],
    ids=lambda record: type(record).__name__,
)
def test_records_are_frozen_and_have_no_instance_dict(record: object) -> None:
    assert not hasattr(record, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(record, dataclasses.fields(record)[0].name, 5)  # type: ignore[arg-type]


# Users and members


def test_user_ignores_unknown_keys_and_reads_snowflakes_as_int() -> None:
    payload = Payloads().user(global_name="Ann", bot=True, _trace=["x"])
    user = User.from_payload(payload)

    assert user.id == int(payload["id"])
    assert user.global_name == "Ann"
    assert user.display_name == "Ann"
    assert user.bot is True
    assert user.mention == f"<@{user.id}>"


def test_user_fields_of_an_odd_type_take_their_defaults() -> None:
    user = User.from_payload(
        {"id": "10", "username": 5, "avatar": 123, "bot": "yes", "public_flags": "1"}
    )

    assert user == User(id=10)


def test_user_without_a_valid_id_is_a_remote_protocol_error() -> None:
    with pytest.raises(RemoteProtocolError, match="'id'"):
        User.from_payload({"username": "ann"})
    with pytest.raises(RemoteProtocolError):
        User.from_payload({"id": "12x"})


def test_member_reads_roles_and_times() -> None:
    payloads = Payloads()
    role = payloads.id()
    data = payloads.member(
        roles=[role, "bogus"], nick="Nick", premium_since="2022-01-01T00:00:00+00:00"
    )
    member = Member.from_payload(data, guild_id=7)

    assert member.guild_id == 7
    assert member.roles == (int(role),)
    assert member.nick == "Nick"
    assert member.display_name == "Nick"
    assert member.id == int(data["user"]["id"])
    assert member.joined_at == datetime(2021, 5, 1, 12, tzinfo=UTC)
    assert member.premium_since == datetime(2022, 1, 1, tzinfo=UTC)


def test_members_with_the_same_roles_share_one_tuple() -> None:
    payloads = Payloads()
    roles = [payloads.id(), payloads.id()]
    first = Member.from_payload(payloads.member(roles=list(roles)), guild_id=1)
    second = Member.from_payload(payloads.member(roles=list(roles)), guild_id=1)

    assert first.roles == second.roles
    assert first.roles is second.roles


def test_member_without_user_uses_the_given_one_or_fails() -> None:
    author = User(id=3, username="ann")
    data = Payloads().member()
    del data["user"]

    assert Member.from_payload(data, guild_id=1, user=author).user is author
    with pytest.raises(RemoteProtocolError, match="user"):
        Member.from_payload(data, guild_id=1)


def test_a_malformed_timestamp_reads_as_none() -> None:
    data = Payloads().member(joined_at="yesterday")

    assert Member.from_payload(data, guild_id=1).joined_at is None


# Guild contents


def test_role_reads_permissions_from_a_string_and_tags() -> None:
    payloads = Payloads()
    bot_id = payloads.id()
    role = Role.from_payload(
        payloads.role(
            permissions="8", tags={"bot_id": bot_id, "premium_subscriber": None}
        )
    )

    assert role.permissions == 8
    assert role.bot_id == int(bot_id)
    assert role.is_premium_subscriber is True
    assert role.mention == f"<@&{role.id}>"


def test_channel_reads_overwrites_and_takes_the_given_guild() -> None:
    payloads = Payloads()
    target = payloads.id()
    data = payloads.channel(
        None,
        0,
        permission_overwrites=[
            {"id": target, "type": 0, "allow": "1024", "deny": "0"},
            {"type": 1},
        ],
    )
    channel = Channel.from_payload(data, guild_id=99)

    assert channel.guild_id == 99
    assert channel.permission_overwrites == (Overwrite(int(target), 0, 1024, 0),)
    assert not channel.is_thread


def test_thread_reads_its_metadata() -> None:
    payloads = Payloads()
    data = payloads.thread(payloads.id(), payloads.id())
    data["thread_metadata"]["archived"] = True
    thread = Channel.from_payload(data)

    assert thread.is_thread
    assert thread.type == ChannelType.PUBLIC_THREAD
    assert thread.archived is True
    assert thread.auto_archive_duration == 1440
    assert thread.member_count == 2
    assert thread.parent_id == int(data["parent_id"])


def test_emoji_defaults_and_text() -> None:
    emoji = Emoji.from_payload({"id": "5", "name": "blob", "animated": True})

    assert emoji.require_colons is True
    assert emoji.available is True
    assert str(emoji) == "<a:blob:5>"
    assert str(PartialEmoji(name="👍")) == "👍"
    assert str(PartialEmoji(id=5, name="blob")) == "<:blob:5>"


def test_guild_reads_gateway_extras_and_tolerates_missing_fields() -> None:
    data = Payloads().guild_create()
    guild = Guild.from_payload(data)

    assert guild.name == data["name"]
    assert guild.member_count == 3
    assert guild.features == ("COMMUNITY", "NEWS")
    assert guild.joined_at == datetime(2021, 5, 1, 12, tzinfo=UTC)
    assert Guild.from_payload({"id": "4", "unavailable": True}) == Guild(
        id=4, unavailable=True
    )


# Presences and voice


def test_presence_reads_activities_and_shares_client_status() -> None:
    payloads = Payloads()
    first = Presence.from_payload(payloads.presence(payloads.id(), payloads.id()))
    second = Presence.from_payload(payloads.presence(payloads.id(), guild_id="8"))

    assert first.status == "online"
    assert first.activities[0].name == "Chess"
    assert first.activities[0].created_at == 1_700_000_000_000
    assert first.client_status == ClientStatus(desktop="online")
    assert first.client_status is second.client_status
    assert second.guild_id == 8


def test_presence_needs_a_guild_id() -> None:
    with pytest.raises(RemoteProtocolError, match="guild_id"):
        Presence.from_payload({"user": {"id": "1"}, "status": "online"})


def test_voice_state_takes_the_given_guild() -> None:
    state = VoiceState.from_payload(Payloads().voice_state("1", "2"), guild_id=3)

    assert state == VoiceState(
        user_id=1, guild_id=3, channel_id=2, session_id="9e1a3c", self_mute=True
    )


# Messages and interactions


def test_message_reads_author_member_and_raw_parts() -> None:
    payloads = Payloads()
    author = payloads.user()
    member = payloads.member()
    del member["user"]
    data = payloads.message(
        "5",
        author,
        guild_id="6",
        member=member,
        embeds=[{"title": "t"}],
        attachments=[{"id": "9", "filename": "a.png", "size": 3, "url": "u"}],
        message_reference={"message_id": "4", "channel_id": "5"},
        referenced_message=payloads.message("5", author),
        nonce=12,
    )
    message = Message.from_payload(data)

    assert message.author is not None
    assert message.member is not None
    assert message.member.user is message.author
    assert message.member.guild_id == 6
    assert message.embeds == ({"title": "t"},)
    assert message.attachments[0].filename == "a.png"
    assert message.reference is not None
    assert message.reference.message_id == 4
    assert message.referenced_message is not None
    assert message.referenced_message.referenced_message is None
    assert message.nonce == 12
    assert hash(message) == hash(message.id)


def test_a_partial_message_has_no_author() -> None:
    message = Message.from_payload({"id": "1", "channel_id": "2", "content": "x"})

    assert message.author is None
    assert message.content == "x"


def test_interaction_keeps_raw_data_and_hides_its_token() -> None:
    payloads = Payloads()
    member = payloads.member(permissions="2048")
    interaction = Interaction.from_payload(
        {
            "id": payloads.id(),
            "application_id": payloads.id(),
            "type": 2,
            "token": "interaction-secret",
            "version": 1,
            "guild_id": "3",
            "channel": {"id": "4"},
            "member": member,
            "data": {"name": "ping"},
            "app_permissions": "8",
            "locale": "en-GB",
        }
    )

    assert interaction.user is not None
    assert interaction.member is not None
    assert interaction.user is interaction.member.user
    assert interaction.member_permissions == 2048
    assert interaction.app_permissions == 8
    assert interaction.channel_id == 4
    assert interaction.data == {"name": "ping"}
    assert "interaction-secret" not in repr(interaction)
