"""The RPC client against the emulated app over a real Unix socket: handshake,
every command's round trip and error mapping, subscriptions and their events."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import _rpc_support
import pytest
from _rpc_support import (
    GUILD,
    OTHER_VOICE_CHANNEL,
    TEXT_CHANNEL,
    VOICE_CHANNEL,
    WAIT_S,
    Recorder,
    make_client,
)

from tether.emulator.desktop import (
    AUTHORIZE_CODE,
    DEFAULT_ACCESS_TOKEN,
    DEFAULT_CLIENT_ID,
    DesktopApp,
)
from tether.errors import ClientStateError, LocalProtocolError
from tether.rpc import (
    Activity,
    ActivityJoinRequest,
    CommandTimeoutError,
    MessageCreate,
    Pan,
    Ready,
    RPCClient,
    RPCError,
    RPCErrorCode,
    SpeakingStart,
    VoiceChannelSelect,
    VoiceSettingsUpdate,
)

# The shared fixtures, bound here so that pytest finds them.
app = _rpc_support.app
client = _rpc_support.client
runtime_dir = _rpc_support.runtime_dir


# Handshake


async def test_handshake_raises_connected_then_ready_with_the_user(
    app: DesktopApp,
) -> None:
    rpc = make_client()
    recorder = Recorder(rpc)

    rpc.start()
    await recorder.wait_for(Ready)

    assert recorder.names()[:2] == ["Connected", "Ready"]
    [ready] = recorder.of(Ready)
    assert isinstance(ready, Ready)
    assert ready.user is not None and ready.user.username == "tester"
    assert ready.version == 1 and ready.config.environment == "production"
    assert rpc.user == ready.user and rpc.is_ready
    first = app.frames[0]
    assert first.op == 0 and first.payload == {"v": 1, "client_id": DEFAULT_CLIENT_ID}
    async with asyncio.timeout(WAIT_S):
        await rpc.close()


async def test_a_ping_from_the_app_is_answered_with_the_same_body(
    app: DesktopApp, client: RPCClient
) -> None:
    await app.ping({"token": 17})

    await app.wait_until(lambda: app.pongs == [{"token": 17}])


# Commands: round trips


async def test_authorize_returns_the_oauth2_code(client: RPCClient) -> None:
    code = await client.authorize(["rpc", "identify"], timeout_s=WAIT_S)

    assert code == AUTHORIZE_CODE


async def test_authenticate_then_guild_and_channel_queries(
    app: DesktopApp, client: RPCClient
) -> None:
    answer = await client.authenticate(DEFAULT_ACCESS_TOKEN)

    assert answer["user"]["id"] == "600000000000000001"
    assert client.is_authenticated
    guilds = await client.get_guilds()
    assert [g["id"] for g in guilds] == [GUILD, "100000000000000002"]
    guild = await client.get_guild(int(GUILD))
    assert guild["name"] == "Tether Lab" and guild["members"] == []
    channels = await client.get_channels(GUILD)
    assert {c["id"] for c in channels} == {TEXT_CHANNEL, VOICE_CHANNEL}
    channel = await client.get_channel(TEXT_CHANNEL)
    assert channel["name"] == "general" and channel["messages"] == []
    [auth] = app.commands_named("AUTHENTICATE")
    assert auth.args == {"access_token": "***"}


async def test_set_activity_shows_it_and_none_clears_it(
    app: DesktopApp, client: RPCClient
) -> None:
    activity = Activity(state="In a match", details="Ranked")

    stored = await client.set_activity(activity)

    assert stored is not None and stored["state"] == "In a match"
    assert app.activity_for() == {"type": 0, "state": "In a match", "details": "Ranked"}
    [info] = app.connections()
    assert info.pid is not None
    await client.clear_activity()
    assert app.activity_for() is None and client.activity is None


async def test_voice_channel_selection_and_settings(
    app: DesktopApp, client: RPCClient
) -> None:
    await client.authenticate(DEFAULT_ACCESS_TOKEN)

    channel = await client.select_voice_channel(VOICE_CHANNEL)
    assert channel is not None and channel["id"] == VOICE_CHANNEL
    selected = await client.get_selected_voice_channel()
    assert selected is not None and selected["id"] == VOICE_CHANNEL
    with pytest.raises(RPCError) as caught:
        await client.select_voice_channel(OTHER_VOICE_CHANNEL)
    assert caught.value.code == RPCErrorCode.SELECT_VOICE_FORCE_REQUIRED
    moved = await client.select_voice_channel(OTHER_VOICE_CHANNEL, force=True)
    assert moved is not None and app.selected_voice_channel == OTHER_VOICE_CHANNEL
    assert await client.select_voice_channel(None) is None

    settings = await client.set_voice_settings(
        {"mute": True, "output": {"volume": 150}}
    )
    assert settings["mute"] is True and settings["output"]["volume"] == 150
    assert (await client.get_voice_settings())["mute"] is True

    user = await client.set_user_voice_settings(
        "42", pan=Pan(0.25, 1.0), volume=80, mute=False
    )
    assert user == {
        "user_id": "42",
        "pan": {"left": 0.25, "right": 1.0},
        "volume": 80,
        "mute": False,
    }


async def test_ask_to_join_requests_are_answered(
    app: DesktopApp, client: RPCClient
) -> None:
    await client.subscribe_event(ActivityJoinRequest)
    request = asyncio.ensure_future(
        client.wait_for(ActivityJoinRequest, timeout=WAIT_S)
    )
    await app.request_to_join({"id": "7", "username": "bob"})
    await app.request_to_join({"id": "8", "username": "eve"})

    event = await request
    assert event.user is not None and event.user.id == 7
    await client.send_activity_join_invite(7)
    await client.close_activity_request("8")
    assert app.join_replies == [
        ("SEND_ACTIVITY_JOIN_INVITE", "7"),
        ("CLOSE_ACTIVITY_REQUEST", "8"),
    ]
    with pytest.raises(RPCError) as caught:
        await client.send_activity_join_invite(7)
    assert caught.value.code == RPCErrorCode.INVALID_USER


# Commands: error mapping


@pytest.mark.parametrize(
    ("call", "code"),
    [
        ("get_guilds", RPCErrorCode.INVALID_PERMISSIONS),
        ("bad_token", RPCErrorCode.INVALID_TOKEN),
        ("bad_guild", RPCErrorCode.INVALID_GUILD),
        ("bad_channel", RPCErrorCode.INVALID_CHANNEL),
        ("bad_event", RPCErrorCode.INVALID_EVENT),
        ("bad_command", RPCErrorCode.INVALID_COMMAND),
        ("bad_activity", RPCErrorCode.INVALID_PAYLOAD),
    ],
)
async def test_error_answers_raise_rpc_error_with_the_code(
    client: RPCClient, call: str, code: RPCErrorCode
) -> None:
    with pytest.raises(RPCError) as caught:
        match call:
            case "get_guilds":
                await client.get_guilds()
            case "bad_token":
                await client.authenticate("wrong-token")
            case "bad_guild":
                await client.authenticate(DEFAULT_ACCESS_TOKEN)
                await client.get_guild(1)
            case "bad_channel":
                await client.authenticate(DEFAULT_ACCESS_TOKEN)
                await client.get_channel(1)
            case "bad_event":
                await client.authenticate(DEFAULT_ACCESS_TOKEN)
                await client.subscribe_event("NOT_AN_EVENT")
            case "bad_command":
                await client.command("FROB")
            case "bad_activity":
                await client.command(
                    "SET_ACTIVITY", {"pid": 1, "activity": {"type": 1}}
                )

    assert caught.value.code == code
    assert caught.value.message and caught.value.cmd
    assert "wrong-token" not in str(caught.value)


async def test_a_scripted_error_is_mapped_and_the_next_call_succeeds(
    app: DesktopApp, client: RPCClient
) -> None:
    app.fail_next("AUTHORIZE", 5000, "OAuth2 Error: denied")

    with pytest.raises(RPCError, match=r"AUTHORIZE failed: OAuth2 Error: denied \(RPC"):
        await client.authorize(["rpc"])

    assert await client.authorize(["rpc"]) == AUTHORIZE_CODE


async def test_a_failed_authenticate_keeps_no_token(
    app: DesktopApp, client: RPCClient
) -> None:
    with pytest.raises(RPCError):
        await client.authenticate("wrong-token")

    assert not client.is_authenticated


async def test_an_unanswered_command_times_out_and_says_it_was_sent(
    app: DesktopApp, client: RPCClient
) -> None:
    app.unanswered.add("GET_VOICE_SETTINGS")

    with pytest.raises(CommandTimeoutError) as caught:
        await client.get_voice_settings(timeout_s=0.2)

    assert caught.value.was_sent and isinstance(caught.value, TimeoutError)
    assert "no answer" in str(caught.value)
    assert client.is_ready


async def test_a_command_over_the_frame_cap_is_refused_locally(
    client: RPCClient,
) -> None:
    with pytest.raises(LocalProtocolError, match="cap"):
        await client.command("SET_ACTIVITY", {"pad": "x" * 70_000})

    assert client.is_ready


async def test_local_checks_refuse_before_sending(
    app: DesktopApp, client: RPCClient
) -> None:
    sent = len(app.commands)

    with pytest.raises(ValueError, match="volume"):
        await client.set_user_voice_settings(1, volume=201)
    with pytest.raises(ValueError, match="unknown voice settings: loudness"):
        await client.set_voice_settings({"loudness": 3})
    with pytest.raises(ValueError, match="needs channel_id"):
        await client.subscribe_event(MessageCreate)
    with pytest.raises(ValueError, match="snowflake"):
        await client.get_guild("not-an-id")

    assert len(app.commands) == sent


# Commands and the connection's state


async def test_a_command_before_start_fails_clearly(runtime_dir: Path) -> None:
    rpc = make_client()

    with pytest.raises(ClientStateError, match="call start"):
        await rpc.get_guilds()


async def test_a_command_while_the_app_is_absent_times_out_unsent(
    runtime_dir: Path,
) -> None:
    rpc = make_client()
    rpc.start()

    with pytest.raises(CommandTimeoutError) as caught:
        await rpc.set_activity(Activity(state="waiting"), timeout_s=0.2)

    assert not caught.value.was_sent
    assert "is the app running" in str(caught.value)
    async with asyncio.timeout(WAIT_S):
        await rpc.close()


async def test_a_command_waits_for_the_app_and_is_sent_once_it_is_up(
    runtime_dir: Path,
) -> None:
    rpc = make_client()
    rpc.start()
    call = asyncio.ensure_future(
        rpc.set_activity(Activity(state="queued"), timeout_s=WAIT_S)
    )
    desktop = DesktopApp(runtime_dir)
    await asyncio.sleep(0.05)
    assert not call.done()

    await desktop.start()
    async with asyncio.timeout(WAIT_S):
        await call

    assert desktop.activity_for() == {"type": 0, "state": "queued"}
    async with asyncio.timeout(WAIT_S):
        await rpc.close()
    await desktop.stop()


async def test_commands_fail_at_once_after_stop(client: RPCClient) -> None:
    await client.stop()

    with pytest.raises(ClientStateError, match="stopped"):
        await client.get_guilds()


async def test_stop_fails_commands_waiting_for_a_connection(runtime_dir: Path) -> None:
    rpc = make_client()
    rpc.start()
    call = asyncio.ensure_future(rpc.get_guilds(timeout_s=WAIT_S))
    await asyncio.sleep(0.02)

    async with asyncio.timeout(WAIT_S):
        await rpc.stop()
        with pytest.raises(ClientStateError):
            await call


# Subscriptions and events


async def test_subscriptions_receive_their_events_in_every_style(
    app: DesktopApp, client: RPCClient
) -> None:
    await client.authenticate(DEFAULT_ACCESS_TOKEN)
    await client.subscribe_event(MessageCreate, channel_id=TEXT_CHANNEL)
    handled: list[MessageCreate] = []

    @client.on(MessageCreate)
    def on_message(event: MessageCreate) -> None:
        handled.append(event)

    stream = client.stream(MessageCreate)
    waiter = asyncio.ensure_future(client.wait_for(MessageCreate, timeout=WAIT_S))
    message = {"channel_id": TEXT_CHANNEL, "message": {"id": "77", "content": "hey"}}
    sent = await app.dispatch("MESSAGE_CREATE", message, channel_id=TEXT_CHANNEL)

    assert sent == 1
    event = await waiter
    assert event.message_id == 77 and event.channel_id == int(TEXT_CHANNEL)
    async with asyncio.timeout(WAIT_S):
        assert (await anext(stream)).message_id == 77
        await client.dispatcher.wait_idle()
    assert [e.message_id for e in handled] == [77]
    await stream.aclose()


async def test_unsubscribed_events_stop_arriving(
    app: DesktopApp, client: RPCClient
) -> None:
    await client.authenticate(DEFAULT_ACCESS_TOKEN)
    await client.subscribe_event(SpeakingStart, channel_id=VOICE_CHANNEL)
    assert client.subscriptions == [("SPEAKING_START", {"channel_id": VOICE_CHANNEL})]

    await client.unsubscribe_event(SpeakingStart, channel_id=VOICE_CHANNEL)

    assert client.subscriptions == []
    assert (
        await app.dispatch("SPEAKING_START", {"user_id": "1"}, channel_id=VOICE_CHANNEL)
        == 0
    )


async def test_app_side_changes_raise_events(
    app: DesktopApp, client: RPCClient
) -> None:
    await client.authenticate(DEFAULT_ACCESS_TOKEN)
    await client.subscribe_event(VoiceSettingsUpdate)
    await client.subscribe_event(VoiceChannelSelect)
    settings = asyncio.ensure_future(
        client.wait_for(VoiceSettingsUpdate, timeout=WAIT_S)
    )
    selected = asyncio.ensure_future(
        client.wait_for(VoiceChannelSelect, timeout=WAIT_S)
    )

    await client.set_voice_settings({"deaf": True})
    await client.select_voice_channel(VOICE_CHANNEL)

    assert (await settings).settings["deaf"] is True
    event = await selected
    assert event.channel_id == int(VOICE_CHANNEL) and event.guild_id == int(GUILD)


async def test_no_token_or_code_appears_in_logs(
    app: DesktopApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rpc = make_client()
    recorder = Recorder(rpc)
    rpc.start()
    await rpc.wait_until_ready(timeout_s=WAIT_S)

    await rpc.authenticate(DEFAULT_ACCESS_TOKEN)
    await rpc.authorize(["rpc"])
    await app.restart()
    await recorder.wait_for(Ready, 2)

    assert len(app.commands_named("AUTHENTICATE")) == 2
    assert rpc.is_authenticated
    assert "AUTHENTICATE" in caplog.text
    assert DEFAULT_ACCESS_TOKEN not in caplog.text
    assert AUTHORIZE_CODE not in caplog.text
    assert DEFAULT_ACCESS_TOKEN not in repr(rpc)
    async with asyncio.timeout(WAIT_S):
        await rpc.close()
