"""Faults on command: every one observable from a client."""

from __future__ import annotations

import asyncio
import json
import zlib

import aiohttp
import pytest
from _emu_client import Closed, EmulatorFactory, RawGateway, open_session

from tether.emulator import Emulator, SessionState


async def test_drop_ends_tcp_without_a_close_frame(emu: Emulator) -> None:
    gateway, ready, _ = await open_session(emu)
    try:
        assert await emu.drop() == 1
        assert await gateway.closed() is None
    finally:
        await gateway.aclose()
    assert emu.session(ready["session_id"]).state is SessionState.RESUMABLE
    assert emu.connections()[0].end == "dropped"


async def test_go_silent_sends_nothing_and_ignores_input(emu: Emulator) -> None:
    gateway, ready, _ = await open_session(emu)
    try:
        assert await emu.go_silent() == 1
        await gateway.heartbeat()
        await emu.send_message(content="unsent")
        with pytest.raises(TimeoutError):
            await gateway.receive(within_s=0.3)
        assert not gateway.ws.closed
    finally:
        await gateway.aclose()
    # The session is still there: the message waits in its buffer.
    session_id = ready["session_id"]
    await emu.wait_until(
        lambda: emu.session(session_id).state is SessionState.RESUMABLE
    )
    assert emu.session(session_id).dispatch_names()[-1] == "MESSAGE_CREATE"


async def test_stop_acking_leaves_heartbeats_unanswered(emu: Emulator) -> None:
    gateway, _, _ = await open_session(emu)
    try:
        await emu.stop_acking()
        await gateway.heartbeat()
        with pytest.raises(TimeoutError):
            await gateway.receive(within_s=0.3)
        await emu.resume_acking()
        await gateway.heartbeat()
        await gateway.expect(11)
    finally:
        await gateway.aclose()
    assert emu.counters.heartbeats == 2


async def test_request_heartbeat_sends_op_1(emu: Emulator) -> None:
    gateway, _, _ = await open_session(emu)
    try:
        await emu.request_heartbeat()
        assert (await gateway.expect(1))["d"] is None
    finally:
        await gateway.aclose()


async def test_reconnect_sends_op_7_then_closes_resumably(emu: Emulator) -> None:
    gateway, ready, _ = await open_session(emu)
    try:
        await emu.reconnect()
        await gateway.expect(7)
        assert await gateway.closed() == 4000
    finally:
        await gateway.aclose()
    assert emu.session(ready["session_id"]).state is SessionState.RESUMABLE


@pytest.mark.parametrize("resumable", [True, False])
async def test_invalidate_session(emu: Emulator, resumable: bool) -> None:
    gateway, ready, _ = await open_session(emu)
    try:
        await emu.invalidate_session(resumable=resumable)
        assert (await gateway.expect(9))["d"] is resumable
        await gateway.closed()
    finally:
        await gateway.aclose()
    state = emu.session(ready["session_id"]).state
    expected = SessionState.RESUMABLE if resumable else SessionState.INVALIDATED
    assert state is expected


async def test_identify_again_on_the_connection_after_invalid_session(
    emu: Emulator,
) -> None:
    gateway, _, _ = await open_session(emu)
    try:
        await emu.invalidate_session(resumable=False)
        await gateway.expect(9)
        await gateway.identify(emu.token)
        await gateway.dispatch("READY")
        # The delayed close was for the old session only.
        await asyncio.sleep(0.5)
        await gateway.ack()
    finally:
        await gateway.aclose()
    assert emu.counters.identifies == 2


@pytest.mark.parametrize(
    ("code", "state"),
    [
        (4000, SessionState.RESUMABLE),
        (4008, SessionState.RESUMABLE),
        (4007, SessionState.INVALIDATED),
        (4009, SessionState.INVALIDATED),
        (1000, SessionState.INVALIDATED),
        (4004, SessionState.INVALIDATED),
    ],
)
async def test_close_with_a_code(emu: Emulator, code: int, state: SessionState) -> None:
    gateway, ready, _ = await open_session(emu)
    try:
        assert await emu.close(code) == 1
        assert await gateway.closed() == code
    finally:
        await gateway.aclose()
    assert emu.session(ready["session_id"]).state is state


async def test_faults_pick_a_session_or_a_shard(emu: Emulator) -> None:
    first, ready_first, _ = await open_session(emu, shard=[0, 2])
    second, ready_second, _ = await open_session(emu, shard=[1, 2])
    try:
        assert await emu.close(4000, ready_first["session_id"]) == 1
        assert await first.closed() == 4000
        assert await emu.close(4000, shard=0) == 0
        assert await emu.drop(shard=1) == 1
        assert await second.closed() is None
        assert await emu.drop("no-such-session") == 0
    finally:
        await first.aclose()
        await second.aclose()
    assert ready_second["session_id"] != ready_first["session_id"]


async def test_refused_connections_fail_then_work_again(emu: Emulator) -> None:
    emu.refuse_connections(0.4)
    with pytest.raises(aiohttp.ClientConnectorError):
        await RawGateway.connect(emu.gateway_url)
    with pytest.raises(aiohttp.ClientConnectorError):
        await RawGateway.connect(emu.resume_url)
    await asyncio.sleep(0.5)
    gateway = await RawGateway.connect(emu.gateway_url)
    try:
        await gateway.hello()
    finally:
        await gateway.aclose()


async def test_refusing_keeps_open_connections(emu: Emulator) -> None:
    gateway, _, _ = await open_session(emu)
    try:
        emu.refuse_connections(0.3)
        await gateway.heartbeat()
        await gateway.expect(11)
    finally:
        await gateway.aclose()


async def test_stalled_upgrades_never_finish(emu: Emulator) -> None:
    emu.stall_upgrade(0.5)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await http.ws_connect(f"{emu.gateway_url}?v=10&encoding=json")
    await asyncio.sleep(0.3)
    gateway = await RawGateway.connect(emu.gateway_url)
    try:
        await gateway.hello()
    finally:
        await gateway.aclose()


@pytest.mark.parametrize("code", [4000, None])
async def test_close_before_hello(emu: Emulator, code: int | None) -> None:
    emu.close_before_hello(count=1, code=code)
    gateway = await RawGateway.connect(emu.gateway_url)
    try:
        assert await gateway.receive() == Closed(code)
    finally:
        await gateway.aclose()
    gateway = await RawGateway.connect(emu.gateway_url)
    try:
        await gateway.hello()
    finally:
        await gateway.aclose()


async def test_unavailable_guilds_arrive_late(emu: Emulator) -> None:
    late = list(emu.world.guilds)[0]
    emu.unavailable_at_ready([late], arrive_after_s=0.3)
    gateway = await RawGateway.connect(emu.gateway_url)
    try:
        await gateway.hello()
        await gateway.identify(emu.token)
        ready = (await gateway.dispatch("READY"))["d"]
        assert {"id": str(late), "unavailable": True} in ready["guilds"]
        early = [(await gateway.dispatch("GUILD_CREATE"))["d"]["id"] for _ in range(3)]
        assert str(late) not in early
        # Events of a guild the client has not received yet are held back.
        await emu.send_message(content="too early", guild_index=0)
        last = await gateway.dispatch("GUILD_CREATE", within_s=2.0)
        assert last["d"]["id"] == str(late)
    finally:
        await gateway.aclose()


async def test_unavailable_guilds_can_never_arrive(emu: Emulator) -> None:
    never = list(emu.world.guilds)[1]
    emu.unavailable_at_ready(guild_indexes=[1], arrive_after_s=None)
    gateway = await RawGateway.connect(emu.gateway_url)
    try:
        await gateway.hello()
        await gateway.identify(emu.token)
        await gateway.dispatch("READY")
        creates = [
            (await gateway.dispatch("GUILD_CREATE"))["d"]["id"] for _ in range(3)
        ]
        assert str(never) not in creates
        with pytest.raises(TimeoutError):
            await gateway.dispatch(within_s=0.3)
    finally:
        await gateway.aclose()


async def test_a_held_back_guild_is_delivered_on_command(emu: Emulator) -> None:
    held = list(emu.world.guilds)[1]
    emu.unavailable_at_ready(guild_indexes=[1], arrive_after_s=None)
    gateway = await RawGateway.connect(emu.gateway_url)
    try:
        await gateway.hello()
        await gateway.identify(emu.token)
        await gateway.dispatch("READY")
        for _ in range(len(emu.world.guilds) - 1):
            await gateway.dispatch("GUILD_CREATE")

        assert emu.deliver_late_guilds() == 1
        late = await gateway.dispatch("GUILD_CREATE", within_s=2.0)

        assert late["d"]["id"] == str(held)
        assert emu.deliver_late_guilds() == 0
    finally:
        await gateway.aclose()


async def test_stalled_guild_stream_resumes(emu: Emulator) -> None:
    emu.stall_guild_stream()
    gateway = await RawGateway.connect(emu.gateway_url)
    try:
        await gateway.hello()
        await gateway.identify(emu.token)
        await gateway.dispatch("READY")
        with pytest.raises(TimeoutError):
            await gateway.dispatch(within_s=0.2)
        emu.resume_guild_stream()
        await gateway.dispatch("GUILD_CREATE")
    finally:
        await gateway.aclose()


async def test_guild_outage_deletes_then_recreates(emu: Emulator) -> None:
    gateway, _, _ = await open_session(emu)
    guild_id = list(emu.world.guilds)[2]
    try:
        assert await emu.guild_outage(guild_id, duration_s=0.2) == 1
        delete = await gateway.dispatch("GUILD_DELETE")
        assert delete["d"] == {"id": str(guild_id), "unavailable": True}
        assert emu.world.guilds[guild_id].unavailable
        create = await gateway.dispatch("GUILD_CREATE")
        assert create["d"]["id"] == str(guild_id)
        assert create["d"]["unavailable"] is False
    finally:
        await gateway.aclose()
    assert not emu.world.guilds[guild_id].unavailable


async def test_guild_outage_during_streaming_sends_guild_delete(emu: Emulator) -> None:
    guild_id = list(emu.world.guilds)[3]
    await emu.guild_outage(guild_id)
    gateway = await RawGateway.connect(emu.gateway_url)
    try:
        await gateway.hello()
        await gateway.identify(emu.token)
        await gateway.dispatch("READY")
        streamed = [(await gateway.dispatch())["t"] for _ in emu.world.guilds]
        assert streamed == ["GUILD_CREATE"] * 3 + ["GUILD_DELETE"]
        await emu.end_guild_outage(guild_id)
        assert (await gateway.dispatch("GUILD_CREATE"))["d"]["id"] == str(guild_id)
    finally:
        await gateway.aclose()


async def test_corrupt_frame_does_not_decode(emu: Emulator) -> None:
    gateway, _, _ = await open_session(emu)
    try:
        await emu.send_corrupt_frame()
        message = await gateway.receive_message()
        with pytest.raises(json.JSONDecodeError):
            json.loads(message.data)
    finally:
        await gateway.aclose()
    kinds = [frame.kind for frame in emu.connections()[0].frames]
    assert kinds.count("corrupt") == 1


async def test_corrupt_frame_breaks_a_zlib_stream_exactly_there(emu: Emulator) -> None:
    gateway, _, _ = await open_session(emu, compress="zlib-stream")
    try:
        # Queued just before the fault: it still decodes.
        await emu.send_message(content="before")
        await emu.send_corrupt_frame()
        assert (await gateway.dispatch("MESSAGE_CREATE"))["d"]["content"] == "before"
        message = await gateway.receive_message()
        with pytest.raises(zlib.error):
            gateway.decode(message.data)
    finally:
        await gateway.aclose()


async def test_truncated_frame_is_half_a_payload(emu: Emulator) -> None:
    gateway, _, _ = await open_session(emu)
    try:
        await emu.send_truncated_frame()
        message = await gateway.receive_message()
        assert message.data.startswith('{"t":')
        with pytest.raises(json.JSONDecodeError):
            json.loads(message.data)
    finally:
        await gateway.aclose()


async def test_oversized_frame_is_big_on_the_wire_and_not_replayed(
    emu: Emulator,
) -> None:
    gateway, ready, _ = await open_session(emu, compress="zlib-stream")
    before = gateway.seq
    assert before is not None
    try:
        await emu.send_oversized_frame(size=300_000)
        message = await gateway.receive_message()
        assert len(message.data) >= 300_000
    finally:
        await gateway.aclose()
    await emu.send_message(content="after")
    gateway = await RawGateway.connect(emu.resume_url)
    try:
        await gateway.hello()
        await gateway.resume(emu.token, ready["session_id"], before)
        replayed = await gateway.dispatch_until("RESUMED")
    finally:
        await gateway.aclose()
    assert [p["t"] for p in replayed] == ["MESSAGE_CREATE", "RESUMED"]
    assert replayed[0]["s"] == before + 2
    padding = emu.session(ready["session_id"]).dispatches[before]
    assert (padding.name, padding.replayable) == ("EMULATOR_PADDING", False)


@pytest.mark.parametrize("compress", ["zlib-stream", "zstd-stream"])
async def test_decompression_bomb_is_small_compressed(
    emu: Emulator, compress: str
) -> None:
    gateway, _, _ = await open_session(emu, compress=compress)
    try:
        await emu.send_decompression_bomb(size=5_000_000)
        message = await gateway.receive_message()
        assert len(message.data) < 100_000
        payload = gateway.decode(message.data)
        assert payload is not None
        assert len(payload["d"]["padding"]) == 5_000_000
    finally:
        await gateway.aclose()


async def test_restart_forgets_every_session(emu: Emulator) -> None:
    gateway, ready, _ = await open_session(emu)
    await emu.restart()
    try:
        assert await gateway.closed() is None
    finally:
        await gateway.aclose()
    gateway = await RawGateway.connect(emu.resume_url)
    try:
        await gateway.hello()
        await gateway.resume(emu.token, ready["session_id"], 1)
        assert (await gateway.expect(9))["d"] is False
    finally:
        await gateway.aclose()
    info = emu.session(ready["session_id"])
    assert (info.state, info.end_reason) == (
        SessionState.INVALIDATED,
        "emulator restarted",
    )


async def test_restart_with_downtime_refuses_for_a_while(
    make_emulator: EmulatorFactory,
) -> None:
    emu = await make_emulator()
    await emu.restart(downtime_s=0.3)
    with pytest.raises(aiohttp.ClientConnectorError):
        await RawGateway.connect(emu.gateway_url)
    await asyncio.sleep(0.4)
    gateway = await RawGateway.connect(emu.gateway_url)
    await gateway.aclose()


async def test_refusing_only_the_resume_listener(emu: Emulator) -> None:
    emu.refuse_connections(0.3, listener="resume")
    assert emu.is_refusing("resume") and not emu.is_refusing("gateway")
    with pytest.raises(aiohttp.ClientConnectorError):
        await RawGateway.connect(emu.resume_url)
    gateway = await RawGateway.connect(emu.gateway_url)
    await gateway.aclose()
    await emu.wait_until(lambda: not emu.is_refusing("resume"), timeout_s=5)
    gateway = await RawGateway.connect(emu.resume_url)
    await gateway.aclose()


async def test_overlapping_refusals_last_until_the_later_one(emu: Emulator) -> None:
    emu.refuse_connections(0.2)
    emu.refuse_connections(0.6)
    await asyncio.sleep(0.35)
    assert emu.is_refusing("gateway")
    with pytest.raises(aiohttp.ClientConnectorError):
        await RawGateway.connect(emu.gateway_url)
    await emu.wait_until(lambda: not emu.is_refusing("gateway"), timeout_s=5)
