"""Typed events from DISPATCH data; surprising shapes never stop delivery."""

from __future__ import annotations

from typing import Any

import pytest

from tether.rpc import (
    ActivityInvite,
    ActivityJoin,
    ActivityJoinRequest,
    ChannelCreate,
    CurrentUserUpdate,
    ErrorReceived,
    GuildStatus,
    MessageCreate,
    MessageDelete,
    Pan,
    RawRPCEvent,
    SpeakingStart,
    VoiceChannelSelect,
    VoiceConnectionStatus,
    VoiceSettingsUpdate,
    VoiceStateUpdate,
)
from tether.rpc.events import RPCEvent, event_class, parse_event

USER = {"id": "42", "username": "ann", "discriminator": "0", "global_name": "Ann"}


def test_message_create_keeps_the_message_and_converts_ids() -> None:
    event = parse_event(
        "MESSAGE_CREATE", {"channel_id": "7", "message": {"id": "9", "content": "hi"}}
    )

    assert isinstance(event, MessageCreate)
    assert event.channel_id == 7
    assert event.message_id == 9
    assert event.message["content"] == "hi"


def test_message_delete_has_only_the_id() -> None:
    event = parse_event("MESSAGE_DELETE", {"channel_id": "7", "message": {"id": "9"}})

    assert isinstance(event, MessageDelete) and event.message_id == 9


def test_voice_state_update_has_user_pan_and_volume() -> None:
    data = {
        "voice_state": {"mute": False},
        "user": USER,
        "nick": "annie",
        "volume": 110,
        "mute": True,
        "pan": {"left": 0.5, "right": 1},
    }

    event = parse_event("VOICE_STATE_UPDATE", data)

    assert isinstance(event, VoiceStateUpdate)
    assert event.user is not None and event.user.id == 42
    assert (event.nick, event.volume, event.mute) == ("annie", 110.0, True)
    assert event.pan == Pan(0.5, 1.0)


@pytest.mark.parametrize(
    "pings", [[10, 20, 30], [{"time": 1, "value": 10}, {"time": 2, "value": 20}, 30]]
)
def test_voice_connection_status_accepts_both_ping_shapes(pings: list[Any]) -> None:
    event = parse_event(
        "VOICE_CONNECTION_STATUS",
        {"state": "VOICE_CONNECTED", "hostname": "h", "pings": pings, "last_ping": 30},
    )

    assert isinstance(event, VoiceConnectionStatus)
    assert event.pings[:2] == (10.0, 20.0)
    assert event.last_ping == 30.0 and event.average_ping is None


@pytest.mark.parametrize(
    ("evt", "data", "kind", "check"),
    [
        ("GUILD_STATUS", {"guild": {"id": "1", "name": "g"}, "online": 0}, GuildStatus,
         lambda e: e.guild_id == 1 and e.name == "g"),
        ("CHANNEL_CREATE", {"id": "2", "name": "c", "type": 2}, ChannelCreate,
         lambda e: e.channel_id == 2 and e.type == 2),
        ("VOICE_CHANNEL_SELECT", {"channel_id": None, "guild_id": None},
         VoiceChannelSelect, lambda e: e.channel_id is None),
        ("VOICE_SETTINGS_UPDATE", {"mute": True}, VoiceSettingsUpdate,
         lambda e: e.settings["mute"] is True),
        ("SPEAKING_START", {"user_id": "42"}, SpeakingStart, lambda e: e.user_id == 42),
        ("ACTIVITY_JOIN", {"secret": "s"}, ActivityJoin, lambda e: e.secret == "s"),
        ("ACTIVITY_JOIN_REQUEST", {"user": USER}, ActivityJoinRequest,
         lambda e: e.user.username == "ann"),
        ("ACTIVITY_INVITE", {"type": 1, "user": USER, "activity": {},
                             "channel_id": "3", "message_id": "4"},
         ActivityInvite, lambda e: e.message_id == 4),
        ("CURRENT_USER_UPDATE", USER, CurrentUserUpdate, lambda e: e.user.id == 42),
        ("ERROR", {"code": 4000, "message": "bad"}, ErrorReceived,
         lambda e: e.code == 4000),
    ],
)  # fmt: skip
def test_each_documented_event_has_its_class(
    evt: str, data: Any, kind: type[RPCEvent], check: Any
) -> None:
    event = parse_event(evt, data)

    assert isinstance(event, kind)
    assert check(event)
    assert event_class(evt) is kind


def test_an_unknown_event_is_delivered_raw() -> None:
    event = parse_event("GAME_JOIN_SOMETHING_NEW", {"a": 1})

    assert event == RawRPCEvent(evt="GAME_JOIN_SOMETHING_NEW", data={"a": 1})


@pytest.mark.parametrize("data", [None, [], "text", {"channel_id": {"x": 1}}])
def test_malformed_data_gives_empty_fields_not_an_exception(data: Any) -> None:
    event = parse_event("MESSAGE_CREATE", data)

    assert isinstance(event, MessageCreate)
    assert event.channel_id is None and event.message_id is None
