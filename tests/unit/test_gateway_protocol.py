"""The gateway state machine: payloads and times in, frames and events out."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest

from tether._secret import Token
from tether.errors import (
    DisallowedIntentsError,
    FatalCloseError,
    InvalidApiVersionError,
    InvalidIntentsError,
    InvalidShardError,
    InvalidTokenError,
    LocalProtocolError,
    ShardingRequiredError,
)
from tether.gateway.intents import Intents
from tether.gateway.opcodes import CLOSE_POLICY, Opcode, Recovery
from tether.gateway.protocol import (
    CloseRequested,
    ConnectionState,
    Dispatch,
    GatewayProtocol,
    HeartbeatAcked,
    IdentifyParams,
    IdentifyRequired,
    SessionReady,
    default_properties,
    redact_payload,
)

SECRET = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GsEcRt.not-a-real-token-but-secret"
INTERVAL_S = 40.0
HELLO = {"op": 10, "d": {"heartbeat_interval": INTERVAL_S * 1000}, "s": None}
ACK = {"op": 11, "d": None}


class FixedRandom(random.Random):
    """random() always returns `value`, so jitter and op 9 waits are known."""

    def __init__(self, value: float = 0.5) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def make(
    *,
    intents: int = 513,
    jitter: float = 0.5,
    shard: tuple[int, int] | None = None,
    presence: dict[str, Any] | None = None,
    **kwargs: Any,
) -> GatewayProtocol:
    params = IdentifyParams(
        Token(SECRET), intents, shard=shard, presence=presence, large_threshold=100
    )
    return GatewayProtocol(params, rng=FixedRandom(jitter), **kwargs)


def dispatch(name: str, seq: int | None, data: Any = None) -> dict[str, Any]:
    return {"op": 0, "t": name, "s": seq, "d": data}


def ready(session_id: str = "session-1", seq: int = 1) -> dict[str, Any]:
    data = {"session_id": session_id, "resume_gateway_url": "wss://resume.test/"}
    return dispatch("READY", seq, data)


def identified(p: GatewayProtocol, now: float = 0.0) -> None:
    """Open a connection and complete IDENTIFY/READY; drain everything."""
    p.connection_opened(now)
    p.receive_payload(HELLO, now)
    p.send_identify(now)
    p.receive_payload(ready(), now)
    p.frames_to_send()
    p.events()


def resumed(p: GatewayProtocol, now: float) -> None:
    """Reconnect with the kept session and complete RESUME/RESUMED."""
    p.connection_opened(now)
    p.receive_payload(HELLO, now)
    seq = p.seq
    assert seq is not None
    p.receive_payload(dispatch("RESUMED", seq + 1), now)
    p.frames_to_send()
    p.events()


def ops(frames: list[dict[str, Any]]) -> list[int]:
    return [frame["op"] for frame in frames]


# HELLO and the handshake


def test_nothing_is_sent_before_hello() -> None:
    p = make()
    p.connection_opened(0.0)

    p.tick(5.0)
    p.receive_payload({"op": 1, "d": None}, 6.0)
    p.receive_payload(ACK, 7.0)

    assert p.frames_to_send() == []
    assert p.events() == []
    assert p.state is ConnectionState.AWAITING_HELLO


def test_hello_without_session_asks_for_an_identify_slot() -> None:
    p = make()
    p.connection_opened(0.0)
    p.receive_payload(HELLO, 1.0)

    assert p.events() == [IdentifyRequired()]
    assert p.frames_to_send() == []
    assert p.state is ConnectionState.AWAITING_IDENTIFY
    assert p.heartbeat_interval_s == INTERVAL_S


def test_identify_frame_carries_token_intents_properties_shard_and_presence() -> None:
    presence: dict[str, Any] = {
        "status": "idle",
        "activities": [],
        "since": None,
        "afk": False,
    }
    p = make(intents=33281, shard=(2, 4), presence=presence)
    p.connection_opened(0.0)
    p.receive_payload(HELLO, 0.0)
    p.send_identify(1.0)

    assert p.frames_to_send() == [
        {
            "op": 2,
            "d": {
                "token": SECRET,
                "intents": 33281,
                "properties": default_properties(),
                "large_threshold": 100,
                "shard": [2, 4],
                "presence": presence,
            },
        }
    ]
    assert p.state is ConnectionState.IDENTIFYING


def test_identify_properties_default_to_tether_and_merge_what_is_given() -> None:
    params = IdentifyParams(Token(SECRET), 1, properties={"os": "plan9"})
    d = params.to_payload()["d"]

    assert d["properties"] == {"os": "plan9", "browser": "tether", "device": "tether"}
    assert "shard" not in d and "presence" not in d
    assert IdentifyParams(Token(SECRET), 1).to_payload()["d"]["large_threshold"] == 250


@pytest.mark.parametrize(
    "kwargs",
    [
        {"intents": -1},
        {"intents": 1, "shard": (2, 2)},
        {"intents": 1, "shard": (-1, 2)},
        {"intents": 1, "large_threshold": 49},
        {"intents": 1, "large_threshold": 251},
    ],
)
def test_identify_params_reject_out_of_range_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        IdentifyParams(Token(SECRET), **kwargs)


def test_identify_over_4096_bytes_is_refused_up_front() -> None:
    presence: dict[str, Any] = {"activities": [{"name": "x" * 5000, "type": 0}]}

    with pytest.raises(LocalProtocolError, match="4096"):
        make(presence=presence)


def test_ready_stores_the_session_and_completes_the_handshake() -> None:
    p = make()
    p.connection_opened(0.0)
    p.receive_payload(HELLO, 0.0)
    p.send_identify(0.0)
    p.events()
    p.receive_payload(ready("abc", 1), 1.0)

    assert p.events() == [
        Dispatch("READY", 1, ready("abc", 1)["d"]),
        SessionReady("abc", resumed=False),
    ]
    assert (p.session_id, p.seq, p.resume_url) == ("abc", 1, "wss://resume.test/")
    assert p.has_session()
    assert p.state is ConnectionState.CONNECTED


def test_a_kept_session_is_resumed_right_after_hello() -> None:
    p = make()
    identified(p)
    p.receive_payload(dispatch("GUILD_CREATE", 2), 1.0)
    p.events()
    p.connection_closed(None, 2.0)

    p.connection_opened(3.0)
    p.receive_payload(HELLO, 3.0)

    assert p.events() == []
    assert p.frames_to_send() == [
        {"op": 6, "d": {"token": SECRET, "session_id": "session-1", "seq": 2}}
    ]
    assert p.state is ConnectionState.RESUMING


def test_resume_replays_dispatches_in_order_then_resumed_completes() -> None:
    p = make()
    identified(p)
    p.connection_closed(None, 1.0)
    p.connection_opened(2.0)
    p.receive_payload(HELLO, 2.0)
    p.frames_to_send()

    p.receive_payload(dispatch("MESSAGE_CREATE", 2, {"n": 2}), 2.1)
    p.receive_payload(dispatch("MESSAGE_CREATE", 3, {"n": 3}), 2.2)
    p.receive_payload(dispatch("RESUMED", 4), 2.3)

    assert p.events() == [
        Dispatch("MESSAGE_CREATE", 2, {"n": 2}),
        Dispatch("MESSAGE_CREATE", 3, {"n": 3}),
        Dispatch("RESUMED", 4, None),
        SessionReady("session-1", resumed=True),
    ]
    assert p.seq == 4
    assert p.state is ConnectionState.CONNECTED


def test_send_identify_is_refused_outside_awaiting_identify() -> None:
    p = make()
    with pytest.raises(LocalProtocolError, match="DISCONNECTED"):
        p.send_identify(0.0)

    p.connection_opened(0.0)
    with pytest.raises(LocalProtocolError, match="AWAITING_HELLO"):
        p.send_identify(0.0)

    p.receive_payload(HELLO, 0.0)
    p.send_identify(0.0)
    with pytest.raises(LocalProtocolError, match="send_identify.*IDENTIFYING"):
        p.send_identify(0.0)
    assert ops(p.frames_to_send()) == [2]


def test_identify_is_refused_while_resuming() -> None:
    p = make()
    identified(p)
    p.connection_closed(None, 1.0)
    p.connection_opened(2.0)
    p.receive_payload(HELLO, 2.0)

    with pytest.raises(LocalProtocolError, match="RESUMING"):
        p.send_identify(2.0)


def test_ready_without_session_id_is_ignored() -> None:
    p = make()
    p.connection_opened(0.0)
    p.receive_payload(HELLO, 0.0)
    p.send_identify(0.0)
    p.events()

    p.receive_payload(dispatch("READY", 1, {"v": 10}), 1.0)

    assert p.events() == []
    assert not p.has_session()
    assert p.state is ConnectionState.IDENTIFYING


def test_dispatches_before_identify_are_ignored() -> None:
    p = make()
    p.connection_opened(0.0)
    p.receive_payload(HELLO, 0.0)
    p.events()

    p.receive_payload(dispatch("GUILD_CREATE", 5), 1.0)

    assert p.events() == []
    assert p.seq is None


def test_dispatches_between_identify_and_ready_are_ignored() -> None:
    p = make()
    p.connection_opened(0.0)
    p.receive_payload(HELLO, 0.0)
    p.send_identify(0.0)
    p.events()

    p.receive_payload(dispatch("MESSAGE_CREATE", 1, {"content": "early"}), 1.0)
    p.receive_payload(ready(seq=2), 1.0)

    names = [e.name for e in p.events() if isinstance(e, Dispatch)]
    assert names == ["READY"]
    assert p.seq == 2


# Heartbeats


def test_first_heartbeat_after_interval_times_random_then_every_interval() -> None:
    p = make(jitter=0.25)
    p.connection_opened(0.0)
    p.receive_payload(HELLO, 10.0)

    first = 10.0 + INTERVAL_S * 0.25
    assert p.next_deadline() == first
    p.tick(first - 0.001)
    assert p.frames_to_send() == []

    p.tick(first)
    assert p.frames_to_send() == [{"op": 1, "d": None}]
    p.receive_payload(ACK, first + 0.1)
    assert p.next_deadline() == first + INTERVAL_S

    p.tick(first + INTERVAL_S)
    assert ops(p.frames_to_send()) == [1]


def test_heartbeat_carries_the_last_seq() -> None:
    p = make(jitter=0.0)
    identified(p)
    p.receive_payload(dispatch("GUILD_CREATE", 7), 0.0)

    p.tick(0.0)

    assert p.frames_to_send() == [{"op": 1, "d": 7}]


def test_ack_reports_the_latency_of_the_outstanding_beat() -> None:
    p = make(jitter=0.0)
    identified(p)
    p.tick(0.0)
    p.frames_to_send()

    p.receive_payload(ACK, 0.25)
    p.receive_payload(ACK, 0.5)

    assert p.events() == [HeartbeatAcked(0.25)]
    assert p.latency_s == 0.25


def test_unacknowledged_beat_when_the_next_is_due_is_a_zombie() -> None:
    p = make(jitter=0.0)
    identified(p)
    p.tick(0.0)
    assert ops(p.frames_to_send()) == [1]

    p.tick(INTERVAL_S)

    assert p.frames_to_send() == []
    assert p.events() == [
        CloseRequested(
            4000,
            "zombied connection: the last heartbeat was not acknowledged",
            Recovery.RESUME,
            0.0,
        )
    ]
    assert p.state is ConnectionState.CLOSING


def test_zombie_before_ready_asks_for_identify() -> None:
    p = make(jitter=0.0)
    p.connection_opened(0.0)
    p.receive_payload(HELLO, 0.0)
    p.tick(0.0)
    p.tick(INTERVAL_S)

    closes = [e for e in p.events() if isinstance(e, CloseRequested)]
    assert [c.recovery for c in closes] == [Recovery.IDENTIFY]


def test_server_heartbeat_request_is_answered_at_once() -> None:
    p = make(jitter=0.9)
    identified(p)
    p.receive_payload(dispatch("TYPING_START", 2), 1.0)

    p.receive_payload({"op": 1, "d": None}, 1.0)

    assert p.frames_to_send() == [{"op": 1, "d": 2}]
    # The answer is the outstanding beat and has a full interval for its ACK.
    assert p.next_deadline() == 1.0 + INTERVAL_S


def test_server_request_while_a_beat_is_outstanding_keeps_one_outstanding() -> None:
    p = make(jitter=0.0)
    identified(p)
    p.tick(0.0)
    p.receive_payload({"op": 1, "d": None}, 5.0)
    assert ops(p.frames_to_send()) == [1, 1]

    # One ACK settles it, measured from the first beat; the second is spare.
    p.receive_payload(ACK, 6.0)
    p.receive_payload(ACK, 6.5)
    assert p.events() == [HeartbeatAcked(6.0)]

    # The timer kept its cadence, and the next beat is not a zombie.
    assert p.next_deadline() == INTERVAL_S
    p.tick(INTERVAL_S)
    assert ops(p.frames_to_send()) == [1]
    assert p.events() == []


def test_clock_jump_sends_one_beat_not_a_burst() -> None:
    p = make(jitter=0.0)
    identified(p)
    p.tick(0.0)
    p.receive_payload(ACK, 0.1)
    p.frames_to_send()

    p.tick(10 * INTERVAL_S)

    assert ops(p.frames_to_send()) == [1]
    assert p.next_deadline() == 11 * INTERVAL_S


def test_time_going_backwards_counts_as_the_latest_time() -> None:
    p = make(jitter=0.0)
    identified(p, now=100.0)
    p.tick(100.0)
    p.frames_to_send()

    p.receive_payload(ACK, 50.0)

    assert p.events() == [HeartbeatAcked(0.0)]


# HELLO timeout


def test_hello_timeout_requests_a_close_that_identifies_without_session() -> None:
    p = make(hello_timeout_s=5.0)
    p.connection_opened(0.0)
    assert p.next_deadline() == 5.0

    p.tick(4.9)
    assert p.events() == []
    p.tick(5.0)

    assert p.events() == [
        CloseRequested(4000, "no HELLO within 5 s", Recovery.IDENTIFY, 0.0)
    ]
    assert p.next_deadline() is None


def test_hello_timeout_with_a_session_resumes() -> None:
    p = make(hello_timeout_s=5.0)
    identified(p)
    p.connection_closed(None, 1.0)
    p.connection_opened(2.0)

    p.tick(7.0)

    [close] = p.events()
    assert isinstance(close, CloseRequested)
    assert (close.code, close.recovery) == (4000, Recovery.RESUME)


def test_malformed_hello_is_ignored_and_the_timeout_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    p = make(hello_timeout_s=5.0)
    p.connection_opened(0.0)

    with caplog.at_level(logging.WARNING, logger="tether.gateway"):
        p.receive_payload({"op": 10, "d": {"heartbeat_interval": -1}}, 1.0)
        p.receive_payload({"op": 10, "d": None}, 1.0)

    assert p.state is ConnectionState.AWAITING_HELLO
    assert "heartbeat_interval" in caplog.text
    p.tick(5.0)
    assert isinstance(p.events()[0], CloseRequested)


# op 7 and op 9


def test_reconnect_requests_a_resume_close_at_once() -> None:
    p = make()
    identified(p)

    p.receive_payload({"op": 7, "d": None}, 1.0)

    assert p.events() == [
        CloseRequested(
            4000, "the gateway asked for a reconnect (op 7)", Recovery.RESUME, 0.0
        )
    ]
    assert p.connection_closed(4000, 1.5) is Recovery.RESUME
    assert p.has_session()


def test_reconnect_before_hello_is_honoured() -> None:
    p = make()
    p.connection_opened(0.0)

    p.receive_payload({"op": 7, "d": None}, 0.1)

    assert [type(e) for e in p.events()] == [CloseRequested]
    assert p.frames_to_send() == []


def test_invalid_session_true_resumes_after_a_random_delay() -> None:
    p = make(jitter=0.5)
    identified(p)

    p.receive_payload({"op": 9, "d": True}, 1.0)

    [close] = p.events()
    assert isinstance(close, CloseRequested)
    assert (close.code, close.recovery, close.delay_s) == (4000, Recovery.RESUME, 3.0)
    assert p.has_session()
    assert p.connection_closed(4000, 2.0) is Recovery.RESUME


def test_invalid_session_false_forgets_session() -> None:
    p = make(jitter=0.0)
    identified(p)

    p.receive_payload({"op": 9, "d": False}, 1.0)

    [close] = p.events()
    assert isinstance(close, CloseRequested)
    assert (close.code, close.recovery, close.delay_s) == (
        4000,
        Recovery.IDENTIFY,
        1.0,
    )
    assert not p.has_session() and p.seq is None and p.resume_url is None
    # The server echoes 4000 (resumable), but the session is gone: identify.
    assert p.connection_closed(4000, 2.0) is Recovery.IDENTIFY


def test_invalid_session_in_reply_to_identify_asks_to_identify_again() -> None:
    p = make(jitter=1.0)
    p.connection_opened(0.0)
    p.receive_payload(HELLO, 0.0)
    p.send_identify(0.0)
    p.events()

    p.receive_payload({"op": 9, "d": True}, 1.0)

    [close] = p.events()
    assert isinstance(close, CloseRequested)
    assert (close.recovery, close.delay_s) == (Recovery.IDENTIFY, 5.0)


# After a close was requested


def test_nothing_is_sent_after_a_close_request() -> None:
    p = make(jitter=0.0)
    identified(p)
    p.receive_payload({"op": 7, "d": None}, 1.0)
    p.events()

    p.tick(1000.0)
    p.receive_payload({"op": 1, "d": None}, 1000.0)
    p.receive_payload(HELLO, 1000.0)
    with pytest.raises(LocalProtocolError, match="CLOSING"):
        p.send_command(Opcode.PRESENCE_UPDATE, {"status": "idle"}, 1000.0)

    assert p.frames_to_send() == []
    assert p.next_deadline() is None


def test_payloads_are_ignored_while_closing_so_resume_replays_them() -> None:
    p = make()
    identified(p)
    p.receive_payload({"op": 7, "d": None}, 1.0)
    p.events()

    p.receive_payload(dispatch("MESSAGE_CREATE", 2), 1.1)
    p.receive_payload({"op": 9, "d": False}, 1.2)

    assert p.events() == []
    assert (p.seq, p.session_id) == (1, "session-1")


# seq


def test_seq_follows_dispatches_and_never_goes_backwards() -> None:
    p = make()
    identified(p)

    p.receive_payload(dispatch("A", 5), 1.0)
    p.receive_payload(dispatch("B", 3), 1.0)
    p.receive_payload(dispatch("C", 5), 1.0)
    p.receive_payload(dispatch("D", None), 1.0)
    p.receive_payload(ACK, 1.0)

    assert p.events() == [Dispatch("A", 5, None), Dispatch("D", None, None)]
    assert p.seq == 5


def test_a_new_session_restarts_seq() -> None:
    p = make()
    identified(p)
    p.receive_payload(dispatch("A", 40), 1.0)
    assert p.connection_closed(4009, 2.0) is Recovery.IDENTIFY

    p.connection_opened(3.0)
    p.receive_payload(HELLO, 3.0)
    p.send_identify(3.0)
    p.receive_payload(ready("new", 1), 3.5)

    assert (p.session_id, p.seq) == ("new", 1)


# Close codes


@pytest.mark.parametrize(
    ("code", "expected"),
    [(code, recovery) for code, recovery in sorted(CLOSE_POLICY.items())]
    + [(None, Recovery.RESUME), (4999, Recovery.RESUME)],
)
def test_connection_closed_applies_the_close_policy(
    code: int | None, expected: Recovery
) -> None:
    p = make()
    identified(p)

    assert p.connection_closed(code, 1.0) is expected
    assert p.has_session() is (expected is Recovery.RESUME)
    assert (p.fatal_error() is not None) is (expected is Recovery.FATAL)
    assert p.state is ConnectionState.DISCONNECTED


def test_a_resumable_close_without_a_session_identifies() -> None:
    p = make()
    p.connection_opened(0.0)

    assert p.connection_closed(None, 1.0) is Recovery.IDENTIFY


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (4004, InvalidTokenError),
        (4010, InvalidShardError),
        (4011, ShardingRequiredError),
        (4012, InvalidApiVersionError),
        (4013, InvalidIntentsError),
        (4014, DisallowedIntentsError),
    ],
)
def test_fatal_codes_give_their_typed_error(
    code: int, error_type: type[FatalCloseError]
) -> None:
    p = make()
    p.connection_opened(0.0)

    assert p.connection_closed(code, 1.0, reason="nope") is Recovery.FATAL

    error = p.fatal_error()
    assert type(error) is error_type
    assert (error.code, error.reason) == (code, "nope")
    assert SECRET not in str(error)


def test_disallowed_intents_error_names_the_privileged_intents_asked_for() -> None:
    intents = Intents.GUILDS | Intents.GUILD_MEMBERS | Intents.MESSAGE_CONTENT
    p = make(intents=intents)
    p.connection_opened(0.0)
    p.connection_closed(4014, 1.0)

    error = p.fatal_error()
    assert isinstance(error, DisallowedIntentsError)
    assert error.privileged == ("GUILD_MEMBERS", "MESSAGE_CONTENT")
    assert "GUILD_MEMBERS, MESSAGE_CONTENT" in str(error)


def test_a_fatal_code_wins_over_a_requested_resume() -> None:
    p = make()
    identified(p)
    p.receive_payload({"op": 7, "d": None}, 1.0)

    assert p.connection_closed(4004, 1.0) is Recovery.FATAL
    assert not p.has_session()


def test_closing_with_1000_ends_the_session() -> None:
    p = make()
    identified(p)

    assert p.connection_closed(1000, 1.0) is Recovery.IDENTIFY
    assert not p.has_session()


def test_a_new_connection_clears_the_fatal_error() -> None:
    p = make()
    p.connection_opened(0.0)
    p.connection_closed(4004, 1.0)

    p.connection_opened(2.0)

    assert p.fatal_error() is None


def test_connection_inputs_are_refused_in_the_wrong_state() -> None:
    p = make()
    with pytest.raises(LocalProtocolError, match="connection_closed.*DISCONNECTED"):
        p.connection_closed(None, 0.0)
    with pytest.raises(LocalProtocolError, match="receive_payload.*DISCONNECTED"):
        p.receive_payload(HELLO, 0.0)

    p.connection_opened(0.0)
    with pytest.raises(LocalProtocolError, match="connection_opened.*AWAITING_HELLO"):
        p.connection_opened(0.0)


# Commands and the send window


def test_commands_are_refused_until_the_session_runs() -> None:
    p = make()
    p.connection_opened(0.0)
    p.receive_payload(HELLO, 0.0)

    with pytest.raises(LocalProtocolError, match="send_command.*AWAITING_IDENTIFY"):
        p.send_command(Opcode.PRESENCE_UPDATE, {}, 0.0)


@pytest.mark.parametrize("op", [Opcode.IDENTIFY, Opcode.HEARTBEAT, Opcode.RESUME])
def test_send_command_refuses_opcodes_that_are_not_commands(op: Opcode) -> None:
    p = make()
    identified(p)

    with pytest.raises(LocalProtocolError, match="not a command"):
        p.send_command(op, {}, 1.0)


def test_send_command_refuses_frames_over_4096_bytes() -> None:
    p = make()
    identified(p)

    with pytest.raises(LocalProtocolError, match="4096"):
        p.send_command(Opcode.REQUEST_GUILD_MEMBERS, {"query": "x" * 5000}, 1.0)
    assert p.queued_commands == 0


def test_commands_wait_for_the_send_window_in_order_keeping_the_reserve() -> None:
    p = make(jitter=0.5, send_limit=5, send_window_s=10.0, heartbeat_reserve=2)
    identified(p)  # IDENTIFY took one of the 5 slots at t=0.

    for n in range(4):
        p.send_command(Opcode.REQUEST_GUILD_MEMBERS, {"n": n}, 1.0)

    # 5 - 2 reserved - 1 used by IDENTIFY: two commands now, two wait.
    assert [f["d"]["n"] for f in p.frames_to_send()] == [0, 1]
    assert p.queued_commands == 2
    assert p.next_deadline() == 10.0

    p.tick(10.0)
    assert [f["d"]["n"] for f in p.frames_to_send()] == [2]
    p.tick(11.0)
    assert [f["d"]["n"] for f in p.frames_to_send()] == [3]
    assert p.queued_commands == 0


def test_heartbeats_use_the_reserve_when_commands_filled_the_window() -> None:
    p = make(jitter=0.5, send_limit=4, send_window_s=60.0, heartbeat_reserve=1)
    identified(p)
    for n in range(5):
        p.send_command(Opcode.PRESENCE_UPDATE, {"n": n}, 1.0)
    assert len(p.frames_to_send()) == 2

    p.tick(INTERVAL_S * 0.5)

    assert p.frames_to_send() == [{"op": 1, "d": 1}]
    assert p.queued_commands == 3


def test_commands_queued_when_a_connection_ends_go_out_after_the_resume() -> None:
    p = make(send_limit=3, send_window_s=60.0, heartbeat_reserve=1)
    identified(p)
    for n in range(3):
        p.send_command(Opcode.PRESENCE_UPDATE, {"n": n}, 1.0)
    assert [f["d"]["n"] for f in p.frames_to_send()] == [0]
    p.connection_closed(None, 2.0)

    p.connection_opened(3.0)
    p.receive_payload(HELLO, 3.0)
    assert ops(p.frames_to_send()) == [6]
    p.receive_payload(dispatch("RESUMED", 2), 3.5)

    assert [f["d"]["n"] for f in p.frames_to_send()] == [1]
    assert p.queued_commands == 1


def test_undrained_commands_are_kept_when_a_close_is_requested() -> None:
    p = make()
    identified(p)
    p.send_command(Opcode.PRESENCE_UPDATE, {"n": 0}, 1.0)

    p.receive_payload({"op": 7, "d": None}, 1.0)

    assert p.frames_to_send() == []
    assert p.queued_commands == 1


# URLs


@pytest.mark.parametrize(
    ("gateway_url", "compress", "expected"),
    [
        ("wss://gw.test", None, "wss://gw.test/?v=10&encoding=json"),
        (
            "wss://gw.test/",
            "zlib-stream",
            "wss://gw.test/?v=10&encoding=json&compress=zlib-stream",
        ),
        (
            "ws://127.0.0.1:8080/gateway?v=6&encoding=etf",
            "zstd-stream",
            "ws://127.0.0.1:8080/gateway?v=10&encoding=json&compress=zstd-stream",
        ),
    ],
)
def test_connect_url_sets_the_query_and_keeps_the_path(
    gateway_url: str, compress: str | None, expected: str
) -> None:
    assert make().connect_url(gateway_url, compress=compress) == expected


def test_connect_url_uses_the_resume_url_with_the_same_query() -> None:
    p = make()
    identified(p)

    url = p.connect_url("wss://gw.test/?v=10", compress="zlib-stream")
    assert url == "wss://resume.test/?v=10&encoding=json&compress=zlib-stream"

    p.drop_resume_url()
    assert p.has_session()
    url = p.connect_url("wss://gw.test/", compress=None)
    assert url == "wss://gw.test/?v=10&encoding=json"


def test_connect_url_uses_the_main_url_once_the_session_is_forgotten() -> None:
    p = make()
    identified(p)
    p.forget_session()

    assert p.connect_url("wss://gw.test", compress=None).startswith("wss://gw.test/")


def test_connect_url_rejects_unknown_compression() -> None:
    with pytest.raises(ValueError, match="gzip"):
        make().connect_url("wss://gw.test", compress="gzip")


# Bad payloads


def test_unknown_opcodes_are_warned_about_once_and_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    p = make()
    identified(p)

    with caplog.at_level(logging.WARNING, logger="tether.gateway"):
        for _ in range(3):
            p.receive_payload({"op": 99, "d": None}, 1.0)
        p.receive_payload({"op": "ten"}, 1.0)
        p.receive_payload({"d": {}}, 1.0)
        p.receive_payload({"op": 2, "d": {}}, 1.0)

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4
    assert "unknown opcode 99" in warnings[0].getMessage()
    assert p.events() == [] and p.frames_to_send() == []
    assert p.state is ConnectionState.CONNECTED


# Logging


def test_the_token_never_appears_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        p = make(shard=(0, 1))
        identified(p)
        p.connection_closed(4000, 1.0)
        resumed(p, 2.0)
        p.connection_closed(4004, 3.0)
        repr(p)
        str(p.fatal_error())

    assert SECRET not in caplog.text
    payload_logs = [r for r in caplog.records if r.name == "tether.gateway.payloads"]
    sent = [r.getMessage() for r in payload_logs if "sending" in r.getMessage()]
    assert len(sent) == 2 and all("'token': '***'" in m for m in sent)


def test_frame_summaries_and_state_changes_are_logged_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="tether.gateway.protocol"):
        p = make(shard=(3, 4))
        p.connection_opened(0.0)
        p.receive_payload(dispatch("X", 1), 0.0)

    messages = [r.getMessage() for r in caplog.records]
    assert "[shard 3] state DISCONNECTED -> AWAITING_HELLO (connection_opened)" in (
        messages
    )
    assert "[shard 3] received op=0 t=X s=1" in messages


def test_redact_payload_hides_the_token_and_leaves_the_frame_alone() -> None:
    frame: dict[str, Any] = {
        "op": 6,
        "d": {"token": SECRET, "session_id": "s", "seq": 3},
    }

    assert redact_payload(frame) == {
        "op": 6,
        "d": {"token": "***", "session_id": "s", "seq": 3},
    }
    assert frame["d"]["token"] == SECRET
    assert redact_payload({"op": 1, "d": 5}) == {"op": 1, "d": 5}


def test_reprs_hide_the_token() -> None:
    p = make()

    assert SECRET not in repr(p)
    assert SECRET not in repr(IdentifyParams(Token(SECRET), 1))


# Deadlines


def test_next_deadline_follows_the_state() -> None:
    p = make(jitter=0.5, hello_timeout_s=20.0)
    assert p.next_deadline() is None

    p.connection_opened(1.0)
    assert p.next_deadline() == 21.0

    p.receive_payload(HELLO, 2.0)
    assert p.next_deadline() == 2.0 + INTERVAL_S / 2

    p.connection_closed(None, 3.0)
    assert p.next_deadline() is None


def test_a_hello_asking_for_almost_no_heartbeats_is_capped() -> None:
    p = make(jitter=0.0)
    p.connection_opened(0.0)
    p.receive_payload({"op": 10, "d": {"heartbeat_interval": 1e300}}, 0.0)

    assert p.heartbeat_interval_s == 300.0
    deadline = p.next_deadline()
    assert deadline is not None and deadline <= 300.0
