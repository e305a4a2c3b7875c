"""Sessions: RESUME and replay, session lifetime, heartbeats and identify limits."""

from __future__ import annotations

import asyncio

from _emu_client import EmulatorFactory, RawGateway, open_session

from tether.emulator import Emulator, SessionState


async def _resume(emu: Emulator, session_id: str, seq: int | None) -> RawGateway:
    gateway = await RawGateway.connect(emu.resume_url)
    await gateway.hello()
    await gateway.resume(emu.token, session_id, seq)
    return gateway


async def test_resume_replays_missed_dispatches_then_resumed(emu: Emulator) -> None:
    gateway, ready, _ = await open_session(emu)
    last_seq = gateway.seq
    assert last_seq is not None
    await gateway.aclose()
    state = emu.session(ready["session_id"]).state
    assert state is SessionState.RESUMABLE

    sent = [await emu.send_message(content=f"missed {n}") for n in range(3)]
    gateway = await _resume(emu, ready["session_id"], last_seq)
    try:
        replayed = await gateway.dispatch_until("RESUMED")
    finally:
        await gateway.aclose()
    assert [p["t"] for p in replayed] == ["MESSAGE_CREATE"] * 3 + ["RESUMED"]
    assert [p["d"]["id"] for p in replayed[:3]] == [m["id"] for m in sent]
    assert [p["s"] for p in replayed] == [
        last_seq + 1,
        last_seq + 2,
        last_seq + 3,
        last_seq + 4,
    ]

    info = emu.session(ready["session_id"])
    assert info.resumes == 1
    assert emu.counters.identifies == 1
    assert emu.counters.resumes == 1
    assert len(info.connections) == 2
    assert emu.connections()[1].listener == "resume"


async def test_resume_replays_only_what_the_client_missed(emu: Emulator) -> None:
    gateway, ready, creates = await open_session(emu)
    await gateway.aclose()
    # The client says it only saw READY: every GUILD_CREATE comes again.
    gateway = await _resume(emu, ready["session_id"], 1)
    try:
        replayed = await gateway.dispatch_until("RESUMED")
    finally:
        await gateway.aclose()
    assert [p["s"] for p in replayed[:-1]] == [c["s"] for c in creates]
    assert [p["d"]["id"] for p in replayed[:-1]] == [c["d"]["id"] for c in creates]


async def test_every_dispatch_is_recorded_once_with_its_seq(emu: Emulator) -> None:
    gateway, ready, _ = await open_session(emu)
    await emu.send_message(content="one")
    await gateway.dispatch("MESSAGE_CREATE")
    await gateway.aclose()
    info = emu.session(ready["session_id"])
    seqs = [record.seq for record in info.dispatches]
    assert seqs == list(range(1, len(seqs) + 1))
    assert info.sent_seqs() == seqs
    assert info.dispatch_names()[-1] == "MESSAGE_CREATE"


async def test_resume_with_a_seq_ahead_of_the_session_closes_with_4007(
    emu: Emulator,
) -> None:
    gateway, ready, _ = await open_session(emu)
    await gateway.aclose()
    gateway = await _resume(emu, ready["session_id"], 9999)
    try:
        assert await gateway.closed() == 4007
    finally:
        await gateway.aclose()
    assert emu.session(ready["session_id"]).state is SessionState.INVALIDATED


async def test_resume_older_than_the_replay_buffer_closes_with_4007(
    make_emulator: EmulatorFactory,
) -> None:
    emu = await make_emulator(replay_buffer_size=4)
    gateway, ready, _ = await open_session(emu)
    await gateway.aclose()
    for n in range(6):
        await emu.send_message(content=f"flood {n}")
    gateway = await _resume(emu, ready["session_id"], 2)
    try:
        assert await gateway.closed() == 4007
    finally:
        await gateway.aclose()


async def test_resume_of_an_unknown_session_gets_invalid_session_false(
    emu: Emulator,
) -> None:
    gateway = await _resume(emu, "0" * 32, 1)
    try:
        assert (await gateway.expect(9))["d"] is False
    finally:
        await gateway.aclose()
    assert emu.counters.invalid_sessions == 1


async def test_a_client_close_with_1000_ends_the_session(emu: Emulator) -> None:
    gateway, ready, _ = await open_session(emu)
    async with asyncio.timeout(5):
        await gateway.ws.close(code=1000)
    await gateway.aclose()
    await emu.wait_until(
        lambda: emu.session(ready["session_id"]).state is SessionState.CLOSED
    )
    gateway = await _resume(emu, ready["session_id"], gateway.seq)
    try:
        assert (await gateway.expect(9))["d"] is False
    finally:
        await gateway.aclose()


async def test_a_client_close_with_1001_ends_the_session(emu: Emulator) -> None:
    gateway, ready, _ = await open_session(emu)
    async with asyncio.timeout(5):
        await gateway.ws.close(code=1001)
    await gateway.aclose()
    await emu.wait_until(
        lambda: emu.session(ready["session_id"]).state is SessionState.CLOSED
    )


async def test_an_expired_session_cannot_be_resumed(
    make_emulator: EmulatorFactory,
) -> None:
    emu = await make_emulator(session_resume_timeout_s=0.2)
    gateway, ready, _ = await open_session(emu)
    await gateway.aclose()
    await asyncio.sleep(0.3)
    gateway = await _resume(emu, ready["session_id"], gateway.seq)
    try:
        assert (await gateway.expect(9))["d"] is False
    finally:
        await gateway.aclose()
    info = emu.session(ready["session_id"])
    assert (info.state, info.end_reason) == (SessionState.INVALIDATED, "expired")


async def test_dispatches_buffer_while_the_session_is_resumable(emu: Emulator) -> None:
    gateway, ready, _ = await open_session(emu)
    await emu.drop()
    await emu.send_message(content="while dropped")
    info = emu.session(ready["session_id"])
    assert info.state is SessionState.RESUMABLE
    assert info.dispatch_names()[-1] == "MESSAGE_CREATE"
    await gateway.aclose()


async def test_resume_takes_over_a_connection_still_open(emu: Emulator) -> None:
    old, ready, _ = await open_session(emu)
    new = await _resume(emu, ready["session_id"], old.seq)
    try:
        await new.dispatch("RESUMED")
        assert await old.closed() is None
    finally:
        await old.aclose()
        await new.aclose()


async def test_heartbeats_are_acked_and_counted(emu: Emulator) -> None:
    gateway, ready, _ = await open_session(emu)
    try:
        for _ in range(3):
            await gateway.heartbeat()
            await gateway.expect(11)
    finally:
        await gateway.aclose()
    assert emu.session(ready["session_id"]).heartbeats == 3
    assert emu.counters.heartbeats == 3


async def test_a_missed_heartbeat_closes_with_4000_and_keeps_the_session(
    make_emulator: EmulatorFactory,
) -> None:
    emu = await make_emulator(heartbeat_interval_s=0.2, heartbeat_timeout_factor=1.5)
    gateway, ready, _ = await open_session(emu)
    try:
        assert await gateway.closed() == 4000
    finally:
        await gateway.aclose()
    assert emu.session(ready["session_id"]).state is SessionState.RESUMABLE


async def test_regular_heartbeats_keep_the_connection(
    make_emulator: EmulatorFactory,
) -> None:
    emu = await make_emulator(heartbeat_interval_s=0.2)
    gateway, ready, _ = await open_session(emu)
    try:
        for _ in range(6):
            await asyncio.sleep(0.1)
            await gateway.heartbeat()
            await gateway.expect(11)
    finally:
        await gateway.aclose()
    # The connection lasted until the client closed it.
    assert emu.connections()[0].end == "client closed"


async def test_identify_concurrency_is_enforced_per_bucket(
    make_emulator: EmulatorFactory,
) -> None:
    emu = await make_emulator(identify_window_s=30.0, max_concurrency=2)
    # Shards 0 and 1 are in different buckets: both may identify at once.
    first, _, _ = await open_session(emu, shard=[0, 4])
    second, _, _ = await open_session(emu, shard=[1, 4])
    # Shard 2 shares bucket 0 with shard 0, within the window: op 9 false.
    third = await RawGateway.connect(emu.gateway_url)
    try:
        await third.hello()
        await third.identify(emu.token, shard=[2, 4])
        assert (await third.expect(9))["d"] is False
    finally:
        for gateway in (first, second, third):
            await gateway.aclose()
    assert [record.shard_id for record in emu.identify_log] == [0, 1]
    assert emu.counters.rejected_identifies == 1


async def test_identify_after_the_window_is_accepted(
    make_emulator: EmulatorFactory,
) -> None:
    emu = await make_emulator(identify_window_s=0.2)
    first, _, _ = await open_session(emu)
    await first.aclose()
    await asyncio.sleep(0.25)
    second, _, _ = await open_session(emu)
    await second.aclose()
    assert len(emu.identify_log) == 2


async def test_session_start_limit_runs_out(make_emulator: EmulatorFactory) -> None:
    emu = await make_emulator(session_start_limit=2)
    for _ in range(2):
        gateway, _, _ = await open_session(emu)
        await gateway.aclose()
    gateway = await RawGateway.connect(emu.gateway_url)
    try:
        await gateway.hello()
        await gateway.identify(emu.token)
        assert (await gateway.expect(9))["d"] is False
    finally:
        await gateway.aclose()
    assert emu.counters.identifies == 2


async def test_resumes_do_not_count_against_the_session_start_limit(
    make_emulator: EmulatorFactory,
) -> None:
    emu = await make_emulator(session_start_limit=1)
    gateway, ready, _ = await open_session(emu)
    await gateway.aclose()
    for _ in range(3):
        gateway = await _resume(emu, ready["session_id"], gateway.seq)
        await gateway.dispatch_until("RESUMED")
        await gateway.aclose()
    assert emu.counters.resumes == 3


async def test_max_records_keeps_the_latest_records(
    make_emulator: EmulatorFactory,
) -> None:
    emu = await make_emulator(max_records=5)
    gateway, ready, _ = await open_session(emu)
    try:
        for n in range(8):
            await emu.send_message(content=f"m{n}")
        await gateway.dispatch_until("MESSAGE_CREATE")
    finally:
        await gateway.aclose()
    info = emu.session(ready["session_id"])
    assert [record.seq for record in info.dispatches] == list(
        range(info.seq - 4, info.seq + 1)
    )
    assert len(emu.connections()[0].frames) == 5
