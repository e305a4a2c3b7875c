"""Synthetic activity: events of each kind, each also changing the world."""

from __future__ import annotations

import pytest
from _emu_client import EmulatorFactory, open_session

from tether.emulator import ACTIVITY_KINDS, Emulator, WorldConfig

KIND_EVENTS = {
    "message": {"MESSAGE_CREATE"},
    "reaction": {"MESSAGE_REACTION_ADD", "MESSAGE_CREATE"},
    "typing": {"TYPING_START"},
    "member": {"GUILD_MEMBER_ADD", "GUILD_MEMBER_REMOVE", "GUILD_MEMBER_UPDATE"},
    "presence": {"PRESENCE_UPDATE"},
}


@pytest.mark.parametrize("kind", ACTIVITY_KINDS)
async def test_each_kind_emits_its_events(emu: Emulator, kind: str) -> None:
    gateway, ready, _ = await open_session(emu)
    try:
        assert await emu.simulate(kind, count=20, seed=1) == 20
        names = {(await gateway.dispatch())["t"] for _ in range(20)}
    finally:
        await gateway.aclose()
    assert names <= KIND_EVENTS[kind]
    assert names


async def test_member_activity_keeps_the_world_in_step(emu: Emulator) -> None:
    gateway, _, creates = await open_session(emu)
    members = {
        c["d"]["id"]: {m["user"]["id"] for m in c["d"]["members"]} for c in creates
    }
    try:
        await emu.simulate("member", count=60, seed=3)
        for _ in range(60):
            payload = (await gateway.dispatch())["d"]
            known = members[payload["guild_id"]]
            user_id = payload["user"]["id"]
            if "joined_at" in payload and user_id not in known:
                known.add(user_id)
            elif "joined_at" not in payload:
                known.discard(user_id)
    finally:
        await gateway.aclose()
    for guild_id, guild in emu.world.guilds.items():
        assert members[str(guild_id)] == {str(uid) for uid in guild.members}


async def test_presence_activity_updates_the_world(emu: Emulator) -> None:
    gateway, _, _ = await open_session(emu)
    try:
        await emu.simulate("presence", count=10, seed=5)
        updates = [(await gateway.dispatch("PRESENCE_UPDATE"))["d"] for _ in range(10)]
    finally:
        await gateway.aclose()
    last = updates[-1]
    guild = emu.world.guilds[int(last["guild_id"])]
    presence = guild.presences.get(int(last["user"]["id"]))
    status = presence.status if presence else "offline"
    assert status == last["status"]


async def test_activity_runs_at_a_rate_until_stopped(emu: Emulator) -> None:
    gateway, _, _ = await open_session(emu)
    try:
        emu.start_activity(200.0, kinds=("message", "typing"), seed=2)
        for _ in range(50):
            assert (await gateway.dispatch())["t"] in {"MESSAGE_CREATE", "TYPING_START"}
        await emu.stop_activity()
        emitted = emu.activity_emitted
        assert emitted >= 50
        await gateway.ack()
    finally:
        await gateway.aclose()
    assert emu.activity_emitted == emitted


async def test_activity_skips_unavailable_guilds(
    make_emulator: EmulatorFactory,
) -> None:
    emu = await make_emulator(WorldConfig(guilds=2, members_per_guild=5, seed=1))
    down, up = list(emu.world.guilds)
    await emu.guild_outage(down)
    gateway, _, _ = await open_session(emu)
    try:
        await emu.simulate("message", count=10)
        guilds = {
            (await gateway.dispatch("MESSAGE_CREATE"))["d"]["guild_id"]
            for _ in range(10)
        }
    finally:
        await gateway.aclose()
    assert guilds == {str(up)}


def test_unknown_kinds_are_refused(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="kinds"):
        emu.start_activity(1.0, kinds=("dance",))


async def test_world_events_change_the_world_and_dispatch(emu: Emulator) -> None:
    guild = next(iter(emu.world.guilds.values()))
    user_id = next(uid for uid in guild.members if uid != emu.world.bot.id)
    gateway, _, _ = await open_session(emu)
    try:
        assert emu.events.member_update(guild.id, user_id, nick="renamed")
        update = (await gateway.dispatch("GUILD_MEMBER_UPDATE"))["d"]
        emu.events.presence_update(guild.id, user_id, "dnd", [])
        presence = (await gateway.dispatch("PRESENCE_UPDATE"))["d"]
        embed = {"title": "an embed", "type": "rich"}
        await emu.send_message(content="with embed", embeds=[embed])
        message = (await gateway.dispatch("MESSAGE_CREATE"))["d"]
    finally:
        await gateway.aclose()
    assert (update["user"]["id"], update["nick"]) == (str(user_id), "renamed")
    assert guild.members[user_id].nick == "renamed"
    assert (presence["status"], guild.presences[user_id].status) == ("dnd", "dnd")
    assert message["embeds"] == [embed]
