"""Random frame sequences and clock jumps against the gateway protocol's invariants.

A harness plays a random script of inputs (connections opening and closing,
server payloads well-formed or not, identify slots, commands, time moving
forwards, jumping and going backwards) and records what went over the wire from
its own point of view: which frames left when, on which connection, after
which server payloads. Each test checks one invariant over those records.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether._secret import Token
from tether.errors import LocalProtocolError
from tether.gateway.opcodes import CLOSE_POLICY, Opcode, Recovery
from tether.gateway.protocol import (
    CloseRequested,
    ConnectionState,
    Dispatch,
    GatewayProtocol,
    IdentifyParams,
    ProtocolEvent,
    SessionReady,
)

SECRET = "property.test.token"
COMMANDS = [Opcode.PRESENCE_UPDATE, Opcode.REQUEST_GUILD_MEMBERS, Opcode.IDENTIFY]

# Local inputs and the only state each is allowed in.
ALLOWED_STATE = {
    "identify": {ConnectionState.AWAITING_IDENTIFY},
    "command": {ConnectionState.CONNECTED},
    "open": {ConnectionState.DISCONNECTED},
    "close": set(ConnectionState) - {ConnectionState.DISCONNECTED},
    "payload": set(ConnectionState) - {ConnectionState.DISCONNECTED},
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 10**6)
    | st.floats()
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
garbage = st.dictionaries(
    st.sampled_from(["op", "d", "s", "t", "x"]), json_values, max_size=4
)
seqs = st.none() | st.integers(0, 40)
names = st.sampled_from(["MESSAGE_CREATE", "GUILD_CREATE", "READY", "RESUMED", "X"])

ack = st.tuples(st.just("ack"))
deadline = st.tuples(st.just("deadline"))
advance = st.tuples(st.just("advance"), st.floats(0, 120))
# A dispatch's s is given relative to the protocol's seq: repeats, steps back
# and gaps all come often.
dispatch = st.tuples(st.just("dispatch"), names, st.none() | st.integers(-3, 3))
command = st.tuples(st.just("command"), st.sampled_from(COMMANDS), st.integers(1, 8))
open_ = st.tuples(st.just("open"))
hello = st.tuples(st.just("hello"), st.sampled_from([1, 250, 1000, 41250]))
identify = st.tuples(st.just("identify"))
ready = st.tuples(st.just("ready"), st.sampled_from(["a", "b", 7]), seqs)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Pick a strategy with the given weights (one_of would pick them evenly)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


# "drive" is the next step of a well-behaved driver and server in the current
# state (see `drive`). It and what a live session sees come often, so sessions
# last long enough for heartbeats, dispatches and the send window to matter;
# what ends a connection (closes, op 7, op 9, clock jumps) or breaks the rules
# comes about one step in eight.
actions = weighted(
    (16, st.tuples(st.just("drive"))),
    (4, dispatch),
    (3, command),
    (3, ack),
    (3, deadline),
    (2, advance),
    (1, st.tuples(st.just("server_beat"))),
    (1, open_),
    (1, hello),
    (1, identify),
    (1, ready),
    (1, st.tuples(st.just("close"), st.sampled_from([None, 4999, *CLOSE_POLICY]))),
    (1, st.tuples(st.just("jump"), st.floats(-100, 10_000))),
    (1, st.tuples(st.just("hello"), json_values)),
    (1, st.tuples(st.just("reconnect"))),
    (1, st.tuples(st.just("invalid_session"), st.booleans() | json_values)),
    (1, st.tuples(st.just("garbage"), garbage)),
)
scripts = st.lists(actions, min_size=10, max_size=80)
configs = st.sampled_from(
    [
        {"send_limit": 120, "send_window_s": 60.0, "heartbeat_reserve": 5},
        {"send_limit": 6, "send_window_s": 10.0, "heartbeat_reserve": 2},
        {"send_limit": 3, "send_window_s": 1.0, "heartbeat_reserve": 1},
    ]
)
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass
class Step:
    """What one input did, seen from outside."""

    action: tuple[Any, ...]
    now: float
    connection: int
    state_before: ConnectionState
    session_before: str | None
    seq_before: int | None
    session_after: str | None
    seq_after: int | None
    has_session_after: bool
    hello_fed: bool
    close_requested_before: bool
    frames: list[dict[str, Any]]
    events: list[ProtocolEvent]
    recovery: Recovery | None = None


@dataclass
class Trace:
    config: dict[str, Any]
    steps: list[Step] = field(default_factory=list)


def payload_for(action: tuple[Any, ...], seq: int | None) -> dict[str, Any] | None:
    match action:
        case ("hello", interval):
            return {"op": 10, "d": {"heartbeat_interval": interval}}
        case ("ack",):
            return {"op": 11}
        case ("server_beat",):
            return {"op": 1, "d": None}
        case ("dispatch", name, delta):
            s = None if delta is None else max(0, (seq or 0) + delta)
            return {"op": 0, "t": name, "s": s, "d": {}}
        case ("ready", session_id, s):
            d = {"session_id": session_id, "resume_gateway_url": "wss://r.test"}
            return {"op": 0, "t": "READY", "s": s, "d": d}
        case ("reconnect",):
            return {"op": 7, "d": None}
        case ("invalid_session", d):
            return {"op": 9, "d": d}
        case ("garbage", payload):
            return dict(payload)
    return None


def drive(p: GatewayProtocol, beat_unacked: bool) -> tuple[Any, ...]:
    """The next step a well-behaved driver and server would take."""
    match p.state:
        case ConnectionState.DISCONNECTED:
            return ("open",)
        case ConnectionState.AWAITING_HELLO:
            return ("hello", 1000)
        case ConnectionState.AWAITING_IDENTIFY:
            return ("identify",)
        case ConnectionState.IDENTIFYING:
            return ("ready", "a", 1)
        case ConnectionState.RESUMING:
            return ("dispatch", "RESUMED", 1)
        case ConnectionState.CLOSING:
            return ("close", 4000)
    return ("ack",) if beat_unacked else ("deadline",)


def run(script: list[tuple[Any, ...]], config: dict[str, Any], seed: int) -> Trace:
    """Play the script; fail on any error that is not a documented one."""
    params = IdentifyParams(Token(SECRET), 513)
    p = GatewayProtocol(params, rng=random.Random(seed), **config)
    trace = Trace(config)
    now = 0.0
    clock = 0.0  # the latest time given: the protocol never goes backwards
    connection = 0
    hello_fed = False
    close_requested = False
    beat_unacked = False

    for scripted in script:
        action = drive(p, beat_unacked) if scripted[0] == "drive" else scripted
        kind = action[0]
        state = p.state
        session, seq = p.session_id, p.seq
        recovery: Recovery | None = None
        payload = payload_for(action, seq)
        local = "payload" if payload is not None else kind

        match kind:
            case "advance":
                now += action[1]
            case "jump":
                now = action[1]
            case "deadline":
                deadline = p.next_deadline()
                if deadline is not None:
                    now = max(now, deadline)
        clock = max(clock, now)

        try:
            match kind:
                case "open":
                    p.connection_opened(now)
                    connection += 1
                    hello_fed = close_requested = beat_unacked = False
                case "close":
                    recovery = p.connection_closed(action[1], now)
                case "identify":
                    p.send_identify(now)
                case "command":
                    for n in range(action[2]):
                        p.send_command(action[1], {"n": n}, now)
                case "advance" | "jump" | "deadline":
                    p.tick(now)
                case _:
                    assert payload is not None
                    hello_fed = hello_fed or kind == "hello"
                    beat_unacked = beat_unacked and kind != "ack"
                    p.receive_payload(payload, now)
        except LocalProtocolError:
            # Documented: a local input in a state that does not allow it, or
            # a command that is not a command.
            bad_op = kind == "command" and action[1] is Opcode.IDENTIFY
            assert bad_op or state not in ALLOWED_STATE[local], (action, state)

        events = p.events()
        frames = p.frames_to_send()
        beat_unacked = beat_unacked or any(f["op"] == Opcode.HEARTBEAT for f in frames)
        trace.steps.append(
            Step(
                action=action,
                now=clock,
                connection=connection,
                state_before=state,
                session_before=session,
                seq_before=seq,
                session_after=p.session_id,
                seq_after=p.seq,
                has_session_after=p.has_session(),
                hello_fed=hello_fed,
                close_requested_before=close_requested,
                frames=frames,
                events=events,
                recovery=recovery,
            )
        )
        if any(isinstance(e, CloseRequested) for e in events) or kind == "close":
            close_requested = True
    return trace


@PROPERTY
@given(scripts, configs, st.integers(0, 2**32))
def test_random_frames_and_clock_jumps_raise_only_documented_errors(
    script: list[tuple[Any, ...]], config: dict[str, Any], seed: int
) -> None:
    trace = run(script, config, seed)

    assert len(trace.steps) == len(script)


@PROPERTY
@given(scripts, configs, st.integers(0, 2**32))
def test_seq_never_decreases_within_a_session(
    script: list[tuple[Any, ...]], config: dict[str, Any], seed: int
) -> None:
    for step in run(script, config, seed).steps:
        same_session = step.session_before == step.session_after
        if same_session and step.session_before is not None:
            assert step.seq_before is not None and step.seq_after is not None
            assert step.seq_after >= step.seq_before

        # Dispatches never repeat or go back: each one moves seq forward.
        last = step.seq_before
        for event in step.events:
            if (
                isinstance(event, Dispatch)
                and event.name not in ("READY", "RESUMED")
                and event.seq is not None
            ):
                assert last is None or event.seq > last
                last = event.seq


@PROPERTY
@given(scripts, configs, st.integers(0, 2**32))
def test_at_most_one_heartbeat_outstanding(
    script: list[tuple[Any, ...]], config: dict[str, Any], seed: int
) -> None:
    beats = requests = 0
    connection = 0
    for step in run(script, config, seed).steps:
        if step.connection != connection:
            connection, beats, requests = step.connection, 0, 0
        if step.action[0] == "ack":
            beats = requests = 0
        if step.action[0] == "server_beat":
            requests += 1
        beats += sum(frame["op"] == Opcode.HEARTBEAT for frame in step.frames)

        # Only a server's op 1 may add a beat while one awaits its ACK.
        assert beats <= 1 + requests, step


@PROPERTY
@given(scripts, configs, st.integers(0, 2**32))
def test_never_two_identifies_on_one_connection(
    script: list[tuple[Any, ...]], config: dict[str, Any], seed: int
) -> None:
    identifies: dict[int, int] = {}
    handshakes: dict[int, int] = {}
    for step in run(script, config, seed).steps:
        for frame in step.frames:
            if frame["op"] == Opcode.IDENTIFY:
                identifies[step.connection] = identifies.get(step.connection, 0) + 1
            if frame["op"] in (Opcode.IDENTIFY, Opcode.RESUME):
                handshakes[step.connection] = handshakes.get(step.connection, 0) + 1

    assert all(count <= 1 for count in identifies.values())
    assert all(count <= 1 for count in handshakes.values())


@PROPERTY
@given(scripts, configs, st.integers(0, 2**32))
def test_nothing_sent_before_hello_or_after_close(
    script: list[tuple[Any, ...]], config: dict[str, Any], seed: int
) -> None:
    for step in run(script, config, seed).steps:
        if not step.hello_fed or step.close_requested_before:
            assert step.frames == [], step
        if step.action[0] == "close":
            assert step.frames == []


@PROPERTY
@given(scripts, configs, st.integers(0, 2**32))
def test_frames_sent_never_exceed_the_send_window(
    script: list[tuple[Any, ...]], config: dict[str, Any], seed: int
) -> None:
    trace = run(script, config, seed)
    limit, window_s = config["send_limit"], config["send_window_s"]
    others = limit - config["heartbeat_reserve"]
    sent: list[float] = []
    connection = 0

    for step in trace.steps:
        if step.connection != connection:
            connection, sent = step.connection, []
        for frame in step.frames:
            in_window = sum(t + window_s > step.now for t in sent)
            if frame["op"] == Opcode.HEARTBEAT:
                assert in_window < limit, step
            else:
                assert in_window < others, step
            sent.append(step.now)


@PROPERTY
@given(scripts, configs, st.integers(0, 2**32))
def test_closes_the_protocol_asks_for_keep_the_session_resumable(
    script: list[tuple[Any, ...]], config: dict[str, Any], seed: int
) -> None:
    closes: dict[int, int] = {}
    for step in run(script, config, seed).steps:
        for event in step.events:
            if isinstance(event, CloseRequested):
                closes[step.connection] = closes.get(step.connection, 0) + 1
                assert event.code not in (1000, 1001)
                assert 1.0 <= event.delay_s <= 5.0 or event.delay_s == 0.0
                if event.recovery is Recovery.RESUME:
                    assert step.has_session_after
        if step.recovery is Recovery.RESUME:
            assert step.has_session_after
        if step.recovery is Recovery.IDENTIFY:
            assert not step.has_session_after

    assert all(count <= 1 for count in closes.values())


@PROPERTY
@given(scripts, configs, st.integers(0, 2**32))
def test_session_ready_follows_its_dispatch(
    script: list[tuple[Any, ...]], config: dict[str, Any], seed: int
) -> None:
    for step in run(script, config, seed).steps:
        for index, event in enumerate(step.events):
            if isinstance(event, SessionReady):
                assert index > 0
                before = step.events[index - 1]
                assert isinstance(before, Dispatch)
                assert before.name == ("RESUMED" if event.resumed else "READY")
