"""Client commands: member requests, presence, voice, soundboard, channel info."""

from __future__ import annotations

import asyncio
from typing import Any

from _emu_client import EmulatorFactory, RawGateway, open_session

from tether.emulator import Emulator, WorldConfig
from tether.gateway.intents import Intents


async def _chunks(
    gateway: RawGateway, count: int | None = None
) -> list[dict[str, Any]]:
    chunks = [(await gateway.dispatch("GUILD_MEMBERS_CHUNK"))["d"]]
    total = chunks[0]["chunk_count"] if count is None else count
    while len(chunks) < total:
        chunks.append((await gateway.dispatch("GUILD_MEMBERS_CHUNK"))["d"])
    return chunks


async def test_all_members_come_in_numbered_chunks_of_1000(
    make_emulator: EmulatorFactory,
) -> None:
    world = WorldConfig(guilds=1, members_per_guild=2500, seed=2)
    emu = await make_emulator(world)
    guild = next(iter(emu.world.guilds.values()))
    gateway, _, _ = await open_session(emu)
    try:
        request = {"guild_id": str(guild.id), "query": "", "limit": 0, "nonce": "n1"}
        await gateway.send({"op": 8, "d": {**request, "presences": True}})
        chunks = await _chunks(gateway)
    finally:
        await gateway.aclose()
    assert [c["chunk_index"] for c in chunks] == [0, 1, 2]
    assert {c["chunk_count"] for c in chunks} == {3}
    assert [len(c["members"]) for c in chunks] == [1000, 1000, 500]
    assert {c["nonce"] for c in chunks} == {"n1"}
    received = [int(m["user"]["id"]) for c in chunks for m in c["members"]]
    assert sorted(received) == sorted(guild.members)
    presences = {int(p["user"]["id"]) for c in chunks for p in c["presences"]}
    assert presences == set(guild.presences)


async def test_user_ids_request_reports_not_found(emu: Emulator) -> None:
    guild = next(iter(emu.world.guilds.values()))
    members = list(guild.members)[:2]
    unknown = 1234567890123456789
    gateway, _, _ = await open_session(emu)
    try:
        user_ids = [str(uid) for uid in members] + [str(unknown), "77"]
        await gateway.send(
            {"op": 8, "d": {"guild_id": str(guild.id), "user_ids": user_ids}}
        )
        (chunk,) = await _chunks(gateway)
    finally:
        await gateway.aclose()
    assert sorted(int(m["user"]["id"]) for m in chunk["members"]) == sorted(members)
    assert chunk["not_found"] == [str(unknown), 77]
    assert "presences" not in chunk
    assert "nonce" not in chunk


async def test_query_matches_username_prefixes(emu: Emulator) -> None:
    guild = next(iter(emu.world.guilds.values()))
    some_user = next(uid for uid in guild.members if uid != emu.world.bot.id)
    prefix = emu.world.users[some_user].username[:3]
    gateway, _, _ = await open_session(emu)
    try:
        request = {"guild_id": str(guild.id), "query": prefix.upper(), "limit": 5}
        await gateway.send({"op": 8, "d": request})
        (chunk,) = await _chunks(gateway)
    finally:
        await gateway.aclose()
    names = [m["user"]["username"] for m in chunk["members"]]
    assert 1 <= len(names) <= 5
    assert all(name.casefold().startswith(prefix.casefold()) for name in names)


async def test_no_match_still_answers_one_empty_chunk(emu: Emulator) -> None:
    guild = next(iter(emu.world.guilds.values()))
    gateway, _, _ = await open_session(emu)
    try:
        request = {"guild_id": str(guild.id), "query": "zzzz-none", "limit": 10}
        await gateway.send({"op": 8, "d": request})
        (chunk,) = await _chunks(gateway)
    finally:
        await gateway.aclose()
    assert (chunk["members"], chunk["chunk_index"], chunk["chunk_count"]) == ([], 0, 1)


async def test_a_repeat_all_members_request_is_rate_limited(emu: Emulator) -> None:
    guild = next(iter(emu.world.guilds.values()))
    gateway, _, _ = await open_session(emu)
    try:
        request = {"guild_id": str(guild.id), "query": "", "limit": 0}
        await gateway.send({"op": 8, "d": request})
        await _chunks(gateway)
        await gateway.send({"op": 8, "d": {**request, "nonce": "again"}})
        limited = (await gateway.dispatch("RATE_LIMITED"))["d"]
    finally:
        await gateway.aclose()
    assert limited["opcode"] == 8
    assert 0 < limited["retry_after"] <= 30
    assert limited["meta"] == {"guild_id": str(guild.id), "nonce": "again"}


async def test_presences_are_left_out_without_the_presences_intent(
    emu: Emulator,
) -> None:
    guild = next(iter(emu.world.guilds.values()))
    gateway, _, _ = await open_session(
        emu, intents=Intents.GUILDS | Intents.GUILD_MEMBERS
    )
    try:
        request = {
            "guild_id": str(guild.id),
            "query": "",
            "limit": 0,
            "presences": True,
        }
        await gateway.send({"op": 8, "d": request})
        (chunk,) = await _chunks(gateway)
    finally:
        await gateway.aclose()
    assert "presences" not in chunk


async def test_an_overlong_nonce_is_dropped(emu: Emulator) -> None:
    guild = next(iter(emu.world.guilds.values()))
    gateway, _, _ = await open_session(emu)
    try:
        request = {
            "guild_id": str(guild.id),
            "query": "a",
            "limit": 1,
            "nonce": "x" * 40,
        }
        await gateway.send({"op": 8, "d": request})
        (chunk,) = await _chunks(gateway)
    finally:
        await gateway.aclose()
    assert "nonce" not in chunk


async def test_a_malformed_member_request_closes_with_4001(emu: Emulator) -> None:
    gateway, _, _ = await open_session(emu)
    try:
        await gateway.send({"op": 8, "d": {"guild_id": "1"}})
        assert await gateway.closed() == 4001
    finally:
        await gateway.aclose()


async def test_presence_update_changes_the_bots_presence(emu: Emulator) -> None:
    gateway, _, _ = await open_session(emu)
    try:
        activity = {"name": "tests", "type": 0}
        await gateway.send(
            {
                "op": 3,
                "d": {
                    "since": None,
                    "activities": [activity],
                    "status": "dnd",
                    "afk": False,
                },
            }
        )
        await gateway.heartbeat()
        await gateway.expect(11)
    finally:
        await gateway.aclose()
    for guild in emu.world.guilds.values():
        presence = guild.presences[emu.world.bot.id]
        assert presence.status == "dnd"
        assert presence.activities == [activity]


async def test_identify_presence_is_applied(emu: Emulator) -> None:
    presence: dict[str, Any] = {
        "since": None,
        "activities": [],
        "status": "idle",
        "afk": False,
    }
    gateway, _, _ = await open_session(emu, presence=presence)
    await gateway.aclose()
    guild = next(iter(emu.world.guilds.values()))
    assert guild.presences[emu.world.bot.id].status == "idle"


async def test_an_invalid_status_closes_with_4001(emu: Emulator) -> None:
    gateway, _, _ = await open_session(emu)
    try:
        await gateway.send({"op": 3, "d": {"status": "sleepy", "activities": []}})
        assert await gateway.closed() == 4001
    finally:
        await gateway.aclose()


async def test_voice_state_update_answers_with_both_voice_events(emu: Emulator) -> None:
    guild = next(iter(emu.world.guilds.values()))
    voice_channel = guild.channel_ids_of_type(2)[0]
    gateway, ready, _ = await open_session(emu)
    try:
        join = {"guild_id": str(guild.id), "channel_id": str(voice_channel)}
        await gateway.send(
            {"op": 4, "d": {**join, "self_mute": True, "self_deaf": False}}
        )
        first = await gateway.dispatch()
        second = await gateway.dispatch()
        by_name = {first["t"]: first["d"], second["t"]: second["d"]}
        assert set(by_name) == {"VOICE_STATE_UPDATE", "VOICE_SERVER_UPDATE"}
        state = by_name["VOICE_STATE_UPDATE"]
        assert state["user_id"] == str(emu.world.bot.id)
        assert state["channel_id"] == str(voice_channel)
        assert state["session_id"] == ready["session_id"]
        assert state["self_mute"] is True
        server = by_name["VOICE_SERVER_UPDATE"]
        assert server["guild_id"] == str(guild.id)
        assert server["token"] and server["endpoint"]
        assert emu.world.bot.id in guild.voice_states

        leave = {"guild_id": str(guild.id), "channel_id": None}
        await gateway.send(
            {"op": 4, "d": {**leave, "self_mute": False, "self_deaf": False}}
        )
        left = await gateway.dispatch("VOICE_STATE_UPDATE")
        assert left["d"]["channel_id"] is None
    finally:
        await gateway.aclose()
    assert emu.world.bot.id not in guild.voice_states


async def test_voice_states_reach_other_sessions_with_the_intent(emu: Emulator) -> None:
    guild = next(iter(emu.world.guilds.values()))
    voice_channel = guild.channel_ids_of_type(2)[0]
    watcher, _, _ = await open_session(emu)
    mover, _, _ = await open_session(emu)
    try:
        join = {"guild_id": str(guild.id), "channel_id": str(voice_channel)}
        await mover.send(
            {"op": 4, "d": {**join, "self_mute": False, "self_deaf": False}}
        )
        seen = await watcher.dispatch("VOICE_STATE_UPDATE")
        assert seen["d"]["channel_id"] == str(voice_channel)
    finally:
        await watcher.aclose()
        await mover.aclose()


async def test_soundboard_and_channel_info_requests(emu: Emulator) -> None:
    guild = next(iter(emu.world.guilds.values()))
    gateway, _, _ = await open_session(emu)
    try:
        await gateway.send({"op": 31, "d": {"guild_ids": [str(guild.id)]}})
        sounds = await gateway.dispatch("SOUNDBOARD_SOUNDS")
        assert sounds["d"] == {"guild_id": str(guild.id), "soundboard_sounds": []}
        await gateway.send(
            {"op": 43, "d": {"guild_id": str(guild.id), "fields": ["status"]}}
        )
        info = (await gateway.dispatch("CHANNEL_INFO"))["d"]
    finally:
        await gateway.aclose()
    voice = {str(cid) for cid in guild.channel_ids_of_type(2, 13)}
    assert {c["id"] for c in info["channels"]} == voice
    assert all(set(c) == {"id", "status"} for c in info["channels"])


async def test_message_content_is_blank_without_the_intent(emu: Emulator) -> None:
    intents = Intents.GUILDS | Intents.GUILD_MESSAGES
    gateway, _, _ = await open_session(emu, intents=intents)
    full, _, _ = await open_session(emu)
    try:
        await emu.send_message(content="secret")
        blank = (await gateway.dispatch("MESSAGE_CREATE"))["d"]
        shown = (await full.dispatch("MESSAGE_CREATE"))["d"]
        bot_id = emu.world.bot.id
        await emu.send_message(content=f"<@{bot_id}> hi")
        mention = (await gateway.dispatch("MESSAGE_CREATE"))["d"]
    finally:
        await gateway.aclose()
        await full.aclose()
    assert blank["content"] == ""
    assert shown["content"] == "secret"
    assert mention["content"] == f"<@{bot_id}> hi"
    assert mention["mentions"][0]["id"] == str(bot_id)


async def test_sessions_without_an_intent_miss_its_events(emu: Emulator) -> None:
    gateway, _, _ = await open_session(emu, intents=Intents.GUILDS)
    try:
        await emu.send_message(content="unheard")
        await emu.simulate("typing")
        await gateway.heartbeat()
        await gateway.expect(11)
    finally:
        await gateway.aclose()
    names = emu.sessions()[0].dispatch_names()
    assert "MESSAGE_CREATE" not in names
    assert "TYPING_START" not in names


async def test_commands_for_guilds_of_another_shard_are_ignored(
    make_emulator: EmulatorFactory,
) -> None:
    emu = await make_emulator(WorldConfig(guilds=8, members_per_guild=3, seed=4))
    other = next(gid for gid in emu.world.guilds if (gid >> 22) % 2 == 1)
    gateway, _, _ = await open_session(emu, shard=[0, 2])
    try:
        await gateway.send(
            {"op": 8, "d": {"guild_id": str(other), "query": "", "limit": 0}}
        )
        await asyncio.sleep(0.05)
        await gateway.heartbeat()
        assert (await gateway.receive())["op"] == 11  # type: ignore[index]
    finally:
        await gateway.aclose()
