"""HELLO, IDENTIFY, READY, guild streaming, compression and IDENTIFY validation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _emu_client import Closed, EmulatorFactory, RawGateway, open_session

from tether.emulator import Emulator, WorldConfig
from tether.gateway.intents import ALL_INTENTS, Intents


async def test_hello_carries_the_heartbeat_interval_in_milliseconds(
    make_emulator: EmulatorFactory,
) -> None:
    emu = await make_emulator(heartbeat_interval_s=12.5)
    gateway = await RawGateway.connect(emu.gateway_url)
    try:
        assert (await gateway.hello())["heartbeat_interval"] == 12500
    finally:
        await gateway.aclose()


async def test_identify_gives_ready_then_every_guild(emu: Emulator) -> None:
    gateway, ready, creates = await open_session(emu)
    try:
        assert ready["v"] == 10
        assert ready["user"]["id"] == str(emu.world.bot.id)
        assert ready["user"]["bot"] is True
        assert ready["resume_gateway_url"] == emu.resume_url
        assert ready["application"]["id"] == str(emu.world.application_id)
        assert ready["guilds"] == [
            {"id": str(gid), "unavailable": True} for gid in emu.world.guilds
        ]
        assert "shard" not in ready
        assert [c["t"] for c in creates] == ["GUILD_CREATE"] * len(emu.world.guilds)
        assert [c["s"] for c in creates] == list(range(2, 2 + len(creates)))
        assert {c["d"]["id"] for c in creates} == {str(g) for g in emu.world.guilds}
        for create in creates:
            guild = emu.world.guilds[int(create["d"]["id"])]
            assert len(create["d"]["members"]) == guild.member_count
            assert len(create["d"]["channels"]) == len(guild.channels)
    finally:
        await gateway.aclose()
    (session,) = emu.sessions()
    assert session.session_id == ready["session_id"]
    assert session.dispatch_names()[:1] == ["READY"]
    assert emu.identify_log[0].session_id == ready["session_id"]


@pytest.mark.parametrize("compress", ["zlib-stream", "zstd-stream"])
async def test_transport_compression_streams_decode(
    emu: Emulator, compress: str
) -> None:
    gateway, ready, creates = await open_session(emu, compress=compress)
    try:
        assert len(creates) == len(emu.world.guilds)
        message = await emu.send_message(content="compressed")
        create = await gateway.dispatch("MESSAGE_CREATE")
        assert create["d"]["id"] == message["id"]
    finally:
        await gateway.aclose()
    (connection,) = emu.connections()
    assert connection.compress == compress


async def test_each_connection_gets_a_fresh_compression_context(emu: Emulator) -> None:
    # A second connection decodes from scratch: its stream starts a new context.
    for _ in range(2):
        gateway, _, creates = await open_session(emu, compress="zlib-stream")
        assert creates
        await gateway.aclose()


async def test_payload_compression_sends_big_payloads_as_zlib(emu: Emulator) -> None:
    gateway = await RawGateway.connect(emu.gateway_url)
    try:
        await gateway.hello()
        await gateway.identify(emu.token, compress=True)
        await gateway.dispatch("READY")
        binary = await gateway.receive_message()
        assert binary.type.name == "BINARY"
        assert gateway.decode(binary.data)["t"] == "GUILD_CREATE"  # type: ignore[index]
    finally:
        await gateway.aclose()


async def test_guild_stream_is_paced(make_emulator: EmulatorFactory) -> None:
    emu = await make_emulator(guild_stream_delay_s=0.05)
    gateway, ready, creates = await open_session(emu)
    await gateway.aclose()
    times = [d.time for d in emu.sessions()[0].dispatches]
    gaps = [
        later - earlier for earlier, later in zip(times[1:], times[2:], strict=False)
    ]
    assert len(creates) == len(ready["guilds"])
    assert all(gap >= 0.04 for gap in gaps)


async def test_shards_get_their_own_guilds(make_emulator: EmulatorFactory) -> None:
    emu = await make_emulator(WorldConfig(guilds=12, members_per_guild=3, seed=8))
    seen: list[int] = []
    for shard_id in range(3):
        gateway, ready, creates = await open_session(emu, shard=[shard_id, 3])
        await gateway.aclose()
        assert ready["shard"] == [shard_id, 3]
        ids = [int(c["d"]["id"]) for c in creates]
        assert all((gid >> 22) % 3 == shard_id for gid in ids)
        seen.extend(ids)
    assert sorted(seen) == sorted(emu.world.guilds)
    assert [(r.shard_id, r.shard_count) for r in emu.identify_log] == [
        (0, 3),
        (1, 3),
        (2, 3),
    ]


async def test_dms_reach_shard_zero_only(make_emulator: EmulatorFactory) -> None:
    emu = await make_emulator(
        WorldConfig(guilds=4, members_per_guild=3, dm_channels=1, seed=8)
    )
    shard0, _, _ = await open_session(emu, shard=[0, 2])
    shard1, _, _ = await open_session(emu, shard=[1, 2])
    try:
        dm_id = next(iter(emu.world.dm_channels))
        await emu.send_message(dm_id, "psst")
        assert (await shard0.dispatch("MESSAGE_CREATE"))["d"]["content"] == "psst"
        await shard1.heartbeat()
        assert (await shard1.expect(11))["op"] == 11
    finally:
        await shard0.aclose()
        await shard1.aclose()


async def _close_code_after(
    emu: Emulator, *payloads: Any, v: str | None = "10"
) -> int | None:
    gateway = await RawGateway.connect(emu.gateway_url, v=v)
    try:
        first = await gateway.receive()
        if isinstance(first, Closed):
            return first.code
        for payload in payloads:
            if isinstance(payload, bytes | str):
                await gateway.ws.send_str(
                    payload if isinstance(payload, str) else payload.decode()
                )
            else:
                await gateway.send(payload)
        return await gateway.closed()
    finally:
        await gateway.aclose()


def _identify(token: str, **changes: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "token": token,
        "intents": 513,
        "properties": {"os": "linux", "browser": "t", "device": "t"},
    }
    d.update(changes)
    return {"op": 2, "d": {k: v for k, v in d.items() if v is not None}}


async def test_bad_token_closes_with_4004(emu: Emulator) -> None:
    assert await _close_code_after(emu, _identify("wrong")) == 4004


async def test_payload_before_identify_closes_with_4003(emu: Emulator) -> None:
    request = {"op": 8, "d": {"guild_id": "1", "query": "", "limit": 0}}
    assert await _close_code_after(emu, request) == 4003


async def test_heartbeat_before_identify_is_fine(emu: Emulator) -> None:
    gateway = await RawGateway.connect(emu.gateway_url)
    try:
        await gateway.hello()
        await gateway.send({"op": 1, "d": None})
        await gateway.expect(11)
    finally:
        await gateway.aclose()


async def test_second_identify_closes_with_4005(emu: Emulator) -> None:
    gateway, _, _ = await open_session(emu)
    try:
        await gateway.identify(emu.token)
        assert await gateway.closed() == 4005
    finally:
        await gateway.aclose()


async def test_bad_json_closes_with_4002(emu: Emulator) -> None:
    assert await _close_code_after(emu, "{not json") == 4002


async def test_non_object_payload_closes_with_4002(emu: Emulator) -> None:
    assert await _close_code_after(emu, "[1, 2]") == 4002


async def test_payload_over_4096_bytes_closes_with_4002(emu: Emulator) -> None:
    big = {"op": 1, "d": None, "padding": "x" * 4100}
    assert await _close_code_after(emu, big) == 4002


async def test_unknown_opcode_closes_with_4001(emu: Emulator) -> None:
    assert await _close_code_after(emu, {"op": 5, "d": None}) == 4001
    assert await _close_code_after(emu, {"op": "2", "d": None}) == 4001


@pytest.mark.parametrize(
    "intents",
    [1 << 17, 1 << 23, -1, "513", None],
    ids=["bit17", "bit23", "neg", "str", "none"],
)
async def test_invalid_intents_close_with_4013(emu: Emulator, intents: Any) -> None:
    # intents=None leaves the field out.
    payload = _identify(emu.token, intents=intents)
    assert await _close_code_after(emu, payload) == 4013


async def test_privileged_intents_not_allowed_close_with_4014(
    make_emulator: EmulatorFactory,
) -> None:
    emu = await make_emulator(privileged_intents=Intents.GUILD_MEMBERS)
    allowed = _identify(emu.token, intents=Intents.GUILDS | Intents.GUILD_MEMBERS)
    gateway = await RawGateway.connect(emu.gateway_url)
    try:
        await gateway.hello()
        await gateway.send(allowed)
        await gateway.dispatch("READY")
    finally:
        await gateway.aclose()
    refused = _identify(emu.token, intents=Intents.GUILDS | Intents.MESSAGE_CONTENT)
    assert await _close_code_after(emu, refused) == 4014
    assert (
        await _close_code_after(emu, _identify(emu.token, intents=ALL_INTENTS)) == 4014
    )


@pytest.mark.parametrize("shard", [[2, 2], [-1, 2], [0, 0], [0], "0,1", [0.0, 1]])
async def test_invalid_shard_closes_with_4010(emu: Emulator, shard: Any) -> None:
    assert await _close_code_after(emu, _identify(emu.token, shard=shard)) == 4010


async def test_too_many_guilds_on_one_shard_closes_with_4011(
    make_emulator: EmulatorFactory,
) -> None:
    emu = await make_emulator(
        WorldConfig(guilds=6, members_per_guild=2), max_guilds_per_shard=5
    )
    assert await _close_code_after(emu, _identify(emu.token)) == 4011
    gateway, ready, _ = await open_session(emu, shard=[0, 2])
    await gateway.aclose()
    assert len(ready["guilds"]) <= 5


@pytest.mark.parametrize("version", ["8", "11", None])
async def test_unserved_api_version_closes_with_4012(
    emu: Emulator, version: str | None
) -> None:
    assert await _close_code_after(emu, v=version) == 4012


async def test_api_version_9_is_served(emu: Emulator) -> None:
    gateway = await RawGateway.connect(emu.gateway_url, v="9")
    try:
        await gateway.hello()
    finally:
        await gateway.aclose()


async def test_large_threshold_out_of_range_closes_with_4001(emu: Emulator) -> None:
    assert (
        await _close_code_after(emu, _identify(emu.token, large_threshold=10)) == 4001
    )


async def test_send_limit_closes_with_4008(make_emulator: EmulatorFactory) -> None:
    emu = await make_emulator(send_limit=5, send_window_s=60.0)
    beats = [{"op": 1, "d": None}] * 6
    assert await _close_code_after(emu, *beats) == 4008


async def test_send_window_is_sliding(make_emulator: EmulatorFactory) -> None:
    emu = await make_emulator(send_limit=3, send_window_s=0.3)
    gateway = await RawGateway.connect(emu.gateway_url)
    try:
        await gateway.hello()
        for _ in range(3):
            await gateway.send({"op": 1, "d": None})
            await gateway.expect(11)
        await asyncio.sleep(0.35)
        for _ in range(3):
            await gateway.send({"op": 1, "d": None})
            await gateway.expect(11)
        await gateway.send({"op": 1, "d": None})
        assert await gateway.closed() == 4008
    finally:
        await gateway.aclose()


async def test_large_threshold_decides_which_members_come(
    make_emulator: EmulatorFactory,
) -> None:
    emu = await make_emulator(WorldConfig(guilds=1, members_per_guild=80, seed=6))
    gateway, _, (create,) = await open_session(emu, large_threshold=50)
    await gateway.aclose()
    guild = next(iter(emu.world.guilds.values()))
    assert create["d"]["large"] is True
    assert len(create["d"]["members"]) < guild.member_count
    gateway, _, (create,) = await open_session(emu, large_threshold=250)
    await gateway.aclose()
    assert create["d"]["large"] is False
    assert len(create["d"]["members"]) == guild.member_count
