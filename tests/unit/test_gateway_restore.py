"""GatewayProtocol.restore_session: a session saved elsewhere is resumed."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tether._secret import Token
from tether.errors import LocalProtocolError
from tether.gateway.opcodes import Recovery
from tether.gateway.protocol import (
    CloseRequested,
    ConnectionState,
    Dispatch,
    GatewayProtocol,
    IdentifyParams,
    IdentifyRequired,
    SessionReady,
)

SECRET = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GsEcRt.restore-test-token-secret"
HELLO = {"op": 10, "d": {"heartbeat_interval": 40_000}, "s": None}


def make() -> GatewayProtocol:
    params = IdentifyParams(Token(SECRET), 513, shard=(3, 8))
    return GatewayProtocol(params, rng=random.Random(7))


def dispatch(name: str, seq: int | None, data: Any = None) -> dict[str, Any]:
    return {"op": 0, "t": name, "s": seq, "d": data}


def test_a_restored_session_is_kept_and_reported() -> None:
    p = make()

    p.restore_session("saved-session", 41, "wss://resume.test/")

    assert p.has_session()
    assert p.session_id == "saved-session"
    assert p.seq == 41
    assert p.resume_url == "wss://resume.test/"


def test_a_restored_session_connects_to_its_resume_url() -> None:
    p = make()
    p.restore_session("saved-session", 41, "wss://resume.test/")

    url = p.connect_url("wss://gateway.test/", compress=None)

    assert url == "wss://resume.test/?v=10&encoding=json"


def test_a_restored_session_without_resume_url_uses_the_main_url() -> None:
    p = make()
    p.restore_session("saved-session", 41, None)

    url = p.connect_url("wss://gateway.test/", compress=None)

    assert url.startswith("wss://gateway.test/?")


def test_a_restored_session_is_resumed_after_hello_with_its_seq() -> None:
    p = make()
    p.restore_session("saved-session", 41, "wss://resume.test/")

    p.connection_opened(0.0)
    p.receive_payload(HELLO, 0.0)

    frames = p.frames_to_send()
    assert [f["op"] for f in frames] == [6]
    assert frames[0]["d"]["session_id"] == "saved-session"
    assert frames[0]["d"]["seq"] == 41
    assert IdentifyRequired() not in p.events()
    assert p.state is ConnectionState.RESUMING


def test_replayed_dispatches_then_resumed_complete_a_restored_session() -> None:
    p = make()
    p.restore_session("saved-session", 41, "wss://resume.test/")
    p.connection_opened(0.0)
    p.receive_payload(HELLO, 0.0)
    p.frames_to_send()

    p.receive_payload(dispatch("MESSAGE_CREATE", 42, {}), 0.1)
    p.receive_payload(dispatch("RESUMED", 43), 0.2)

    events = p.events()
    assert [e.seq for e in events if isinstance(e, Dispatch)] == [42, 43]
    assert SessionReady("saved-session", resumed=True) in events
    assert p.state is ConnectionState.CONNECTED
    assert p.seq == 43


def test_a_restored_session_that_no_longer_resumes_falls_back_to_identify() -> None:
    p = make()
    p.restore_session("expired-session", 41, "wss://resume.test/")
    p.connection_opened(0.0)
    p.receive_payload(HELLO, 0.0)
    p.frames_to_send()

    p.receive_payload({"op": 9, "d": False}, 0.5)
    closes = [e for e in p.events() if isinstance(e, CloseRequested)]
    recovery = p.connection_closed(closes[0].code, 0.6)

    assert closes[0].recovery is Recovery.IDENTIFY
    assert recovery is Recovery.IDENTIFY
    assert not p.has_session()
    p.connection_opened(5.0)
    p.receive_payload(HELLO, 5.0)
    assert p.events() == [IdentifyRequired()]


def test_restoring_while_connected_is_refused() -> None:
    p = make()
    p.connection_opened(0.0)

    with pytest.raises(LocalProtocolError, match="AWAITING_HELLO"):
        p.restore_session("saved-session", 41, None)
    assert not p.has_session()


@pytest.mark.parametrize(("session_id", "seq"), [("", 1), ("saved", -1)])
def test_a_malformed_saved_session_is_refused(session_id: str, seq: int) -> None:
    p = make()

    with pytest.raises(ValueError):
        p.restore_session(session_id, seq, None)
    assert not p.has_session()


def test_the_token_stays_out_of_the_restore_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG", logger="tether")
    p = make()

    p.restore_session("saved-session", 41, "wss://resume.test/")
    p.connection_opened(0.0)
    p.receive_payload(HELLO, 0.0)
    p.frames_to_send()

    assert "saved-session" in caplog.text
    assert SECRET not in caplog.text
