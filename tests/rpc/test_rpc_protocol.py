"""The RPC state machine, fed bytes and times, with no socket and no event loop."""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.errors import LocalProtocolError
from tether.rpc.errors import FrameTooLargeError, MalformedFrameError
from tether.rpc.framing import FrameReader, Opcode, encode_frame
from tether.rpc.protocol import (
    CLOSE_POLICY,
    CloseReceived,
    CommandCompleted,
    CommandExpired,
    CommandFailed,
    CommandLost,
    ConnectionFailed,
    ConnectionState,
    DispatchReceived,
    ReadyReceived,
    Recovery,
    RPCProtocol,
)

CLIENT_ID = "500000000000000001"
READY: dict[str, Any] = {
    "cmd": "DISPATCH",
    "evt": "READY",
    "data": {"v": 1, "user": {"id": "1"}},
}


def sent_frames(protocol: RPCProtocol) -> list[tuple[Opcode, Any]]:
    return [(f.op, f.payload) for f in FrameReader().feed(protocol.data_to_send())]


def frame(payload: Any, op: Opcode = Opcode.FRAME) -> bytes:
    return encode_frame(op, payload)


def ready_protocol() -> RPCProtocol:
    counter = itertools.count(1)
    protocol = RPCProtocol(CLIENT_ID, nonce_factory=lambda: f"n{next(counter)}")
    protocol.connection_opened(0.0)
    protocol.receive_data(frame(READY), 0.0)
    protocol.data_to_send()
    protocol.events()
    return protocol


def test_the_handshake_is_the_first_frame_sent() -> None:
    protocol = RPCProtocol(CLIENT_ID)

    protocol.connection_opened(0.0)

    assert sent_frames(protocol) == [
        (Opcode.HANDSHAKE, {"v": 1, "client_id": CLIENT_ID})
    ]
    assert protocol.state is ConnectionState.HANDSHAKING


def test_no_command_is_sent_before_ready() -> None:
    protocol = RPCProtocol(CLIENT_ID)
    protocol.connection_opened(0.0)
    protocol.data_to_send()

    with pytest.raises(LocalProtocolError, match="handshaking"):
        protocol.send_command("GET_GUILDS", {}, deadline=5.0, now=0.0)

    assert protocol.data_to_send() == b""


def test_ready_completes_the_handshake() -> None:
    protocol = RPCProtocol(CLIENT_ID)
    protocol.connection_opened(0.0)

    protocol.receive_data(frame(READY), 0.1)

    assert protocol.events() == [ReadyReceived(READY["data"])]
    assert protocol.state is ConnectionState.READY


def test_a_command_carries_a_nonce_and_its_answer_is_matched_by_it() -> None:
    protocol = ready_protocol()

    nonce = protocol.send_command("GET_GUILD", {"guild_id": "9"}, deadline=5.0, now=1.0)

    assert sent_frames(protocol) == [
        (Opcode.FRAME, {"cmd": "GET_GUILD", "args": {"guild_id": "9"}, "nonce": nonce})
    ]
    answer = {"cmd": "GET_GUILD", "nonce": nonce, "evt": None, "data": {"id": "9"}}
    protocol.receive_data(frame(answer), 1.5)
    assert protocol.events() == [CommandCompleted(nonce, "GET_GUILD", {"id": "9"})]
    assert protocol.pending_commands == 0


def test_subscribe_puts_the_event_name_at_the_top_level() -> None:
    protocol = ready_protocol()

    nonce = protocol.send_command(
        "SUBSCRIBE", {"channel_id": "3"}, evt="MESSAGE_CREATE", deadline=5.0, now=0.0
    )

    [(_, payload)] = sent_frames(protocol)
    assert payload == {
        "cmd": "SUBSCRIBE",
        "args": {"channel_id": "3"},
        "nonce": nonce,
        "evt": "MESSAGE_CREATE",
    }


def test_an_error_answer_fails_that_command() -> None:
    protocol = ready_protocol()
    nonce = protocol.send_command("GET_GUILDS", {}, deadline=5.0, now=0.0)

    error = {
        "cmd": "GET_GUILDS",
        "evt": "ERROR",
        "nonce": nonce,
        "data": {"code": 4006, "message": "Not authenticated"},
    }
    protocol.receive_data(frame(error), 0.1)

    assert protocol.events() == [
        CommandFailed(nonce, "GET_GUILDS", 4006, "Not authenticated")
    ]


def test_a_command_expires_at_its_deadline_and_a_late_answer_is_ignored() -> None:
    protocol = ready_protocol()
    first = protocol.send_command("GET_GUILDS", {}, deadline=2.0, now=0.0)
    protocol.send_command("GET_CHANNELS", {"guild_id": "1"}, deadline=3.0, now=0.0)

    assert protocol.next_deadline() == 2.0
    protocol.tick(1.9)
    assert protocol.events() == []
    protocol.tick(2.0)
    assert protocol.events() == [CommandExpired(first, "GET_GUILDS")]
    assert protocol.next_deadline() == 3.0

    late = {"cmd": "GET_GUILDS", "nonce": first, "data": {"guilds": []}}
    protocol.receive_data(frame(late), 2.5)
    assert protocol.events() == []


def test_a_ping_is_answered_with_a_pong_carrying_the_same_body() -> None:
    protocol = ready_protocol()

    protocol.receive_data(frame({"x": [1, 2]}, Opcode.PING), 0.0)

    assert sent_frames(protocol) == [(Opcode.PONG, {"x": [1, 2]})]
    assert protocol.pings_answered == 1


def test_events_other_than_ready_are_dispatches() -> None:
    protocol = ready_protocol()
    event = {"cmd": "DISPATCH", "evt": "GUILD_CREATE", "data": {"id": "1"}}

    protocol.receive_data(frame(event), 0.0)

    assert protocol.events() == [DispatchReceived("GUILD_CREATE", {"id": "1"})]


@pytest.mark.parametrize(
    ("code", "recovery"),
    [
        (4000, Recovery.FATAL),
        (4001, Recovery.FATAL),
        (4002, Recovery.RECONNECT_LATER),
        (4003, Recovery.FORGET_TOKEN),
        (4004, Recovery.FATAL),
        (4005, Recovery.FATAL),
        (1000, Recovery.RECONNECT),
        (4999, Recovery.RECONNECT),
    ],
)
def test_close_codes_follow_the_policy_table(code: int, recovery: Recovery) -> None:
    protocol = ready_protocol()

    protocol.receive_data(frame({"code": code, "message": "m"}, Opcode.CLOSE), 0.0)

    assert protocol.events() == [CloseReceived(code, "m", recovery)]
    assert CLOSE_POLICY.get(code, Recovery.RECONNECT) is recovery
    assert protocol.state is ConnectionState.CLOSING


def test_nothing_is_read_or_sent_after_a_close() -> None:
    protocol = ready_protocol()
    close = frame({"code": 1000, "message": ""}, Opcode.CLOSE)
    ping = frame(None, Opcode.PING)

    protocol.receive_data(close + ping, 0.0)

    assert protocol.data_to_send() == b""
    with pytest.raises(LocalProtocolError):
        protocol.send_command("GET_GUILDS", {}, deadline=1.0, now=0.0)


def test_garbage_fails_the_connection_once_and_stops_reading() -> None:
    protocol = ready_protocol()

    protocol.receive_data(b"\xde\xad\xbe\xef" * 4, 0.0)
    protocol.receive_data(frame(READY), 0.0)

    [event] = protocol.events()
    assert isinstance(event, ConnectionFailed)
    assert isinstance(event.error, MalformedFrameError)
    assert protocol.state is ConnectionState.CLOSING


def test_an_oversized_frame_fails_the_connection() -> None:
    protocol = RPCProtocol(CLIENT_ID, max_frame_size=100)
    protocol.connection_opened(0.0)

    protocol.receive_data(encode_frame(Opcode.FRAME, {"pad": "x" * 200}), 0.0)

    [event] = protocol.events()
    assert isinstance(event, ConnectionFailed)
    assert isinstance(event.error, FrameTooLargeError)


def test_a_frame_cut_short_by_the_end_of_the_stream_is_a_peer_fault() -> None:
    protocol = ready_protocol()
    protocol.receive_data(frame({"cmd": "DISPATCH", "evt": "X", "data": {}})[:-3], 0.0)

    protocol.connection_closed(0.0)

    [event] = protocol.events()
    assert isinstance(event, ConnectionFailed)
    assert "ended inside a frame" in str(event.error)


def test_commands_outstanding_when_the_connection_ends_are_lost() -> None:
    protocol = ready_protocol()
    first = protocol.send_command("GET_GUILDS", {}, deadline=5.0, now=0.0)
    second = protocol.send_command("GET_VOICE_SETTINGS", {}, deadline=5.0, now=0.0)

    protocol.connection_closed(1.0)

    assert protocol.events() == [
        CommandLost(first, "GET_GUILDS"),
        CommandLost(second, "GET_VOICE_SETTINGS"),
    ]
    assert protocol.next_deadline() is None
    assert protocol.state is ConnectionState.CLOSED


def test_a_close_sent_by_the_client_is_its_last_frame() -> None:
    protocol = ready_protocol()

    protocol.send_close(1000, "bye", 0.0)
    protocol.send_close(1000, "bye", 0.0)

    assert sent_frames(protocol) == [(Opcode.CLOSE, {"code": 1000, "message": "bye"})]


def test_an_answer_for_no_command_is_ignored() -> None:
    protocol = ready_protocol()

    protocol.receive_data(
        frame({"cmd": "GET_GUILDS", "nonce": "nope", "data": {}}), 0.0
    )

    assert protocol.events() == []
    assert protocol.state is ConnectionState.READY


def test_payload_logs_mask_access_tokens_and_oauth2_codes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="tether.rpc.payloads")
    protocol = ready_protocol()

    nonce = protocol.send_command(
        "AUTHENTICATE", {"access_token": "sekrit-token"}, deadline=5.0, now=0.0
    )
    answer = {"cmd": "AUTHORIZE", "nonce": nonce, "data": {"code": "sekrit-code"}}
    protocol.receive_data(frame(answer), 0.0)

    assert "AUTHENTICATE" in caplog.text
    assert "sekrit" not in caplog.text


SANS_IO_MODULES = [
    "tether.rpc.framing",
    "tether.rpc.protocol",
    "tether.rpc.discovery",
    "tether.rpc.events",
    "tether.rpc.activity",
    "tether.rpc.models",
    "tether.rpc.errors",
]


@pytest.mark.parametrize("name", SANS_IO_MODULES)
def test_the_protocol_modules_import_no_event_loop_socket_or_clock(name: str) -> None:
    tree = ast.parse(inspect.getsource(importlib.import_module(name)))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.partition(".")[0])

    assert not roots & {"asyncio", "socket", "time", "selectors"}


def outcome_nonces(protocol: RPCProtocol) -> list[str]:
    outcomes = (CommandCompleted, CommandFailed, CommandExpired, CommandLost)
    events = protocol.events()
    assert all(isinstance(e, outcomes) for e in events)
    return [e.nonce for e in events if isinstance(e, outcomes)]


operations = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.floats(0.0, 10.0)),
        st.tuples(st.just("answer"), st.integers(0, 20)),
        st.tuples(st.just("error"), st.integers(0, 20)),
        st.tuples(st.just("tick"), st.floats(0.0, 10.0)),
    ),
    max_size=40,
)


@given(operations, st.booleans())
def test_every_command_gets_exactly_one_outcome(
    ops: list[tuple[str, float]], close_by_app: bool
) -> None:
    protocol = ready_protocol()
    sent: list[str] = []
    outcomes: list[str] = []
    now = 0.0

    for kind, value in ops:
        if kind == "send":
            sent.append(protocol.send_command("C", {}, deadline=now + value, now=now))
        elif kind == "tick":
            now += value
            protocol.tick(now)
        elif sent:
            nonce = sent[int(value) % len(sent)]
            answer: dict[str, Any] = {"cmd": "C", "nonce": nonce, "data": {}}
            if kind == "error":
                answer |= {"evt": "ERROR", "data": {"code": 4000, "message": "no"}}
            protocol.receive_data(frame(answer), now)
        outcomes += outcome_nonces(protocol)
    if close_by_app:
        protocol.receive_data(frame({"code": 1000}, Opcode.CLOSE), now)
        protocol.events()
    protocol.connection_closed(now)
    outcomes += outcome_nonces(protocol)

    assert sorted(outcomes) == sorted(sent)
