"""Scenarios: validation, the JSON form, and playing them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from _emu_client import RawGateway, open_session

from tether.emulator import ACTIONS, Emulator, Scenario, SessionState, Step


def test_steps_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown action"):
        Step(at_s=0, action="explode")
    with pytest.raises(ValueError, match="takes no argument"):
        Step(at_s=0, action="drop", args={"code": 4000})
    with pytest.raises(ValueError, match="needs"):
        Step(at_s=0, action="close")
    with pytest.raises(ValueError, match=">= 0"):
        Step(at_s=-1, action="drop")


def test_json_round_trip_keeps_every_step() -> None:
    scenario = Scenario(
        [
            Step(at_s=2.0, action="close", args={"code": 4000, "shard": 1}),
            Step(at_s=0.5, action="drop"),
            Step(
                at_s=3.0,
                action="guild_outage",
                args={"guild_index": 0, "duration_s": 1},
            ),
        ],
        name="flaky",
    )
    assert [step.at_s for step in scenario.steps] == [0.5, 2.0, 3.0]
    text = scenario.to_json()
    assert json.loads(text)["steps"][1] == {
        "at_s": 2.0,
        "action": "close",
        "code": 4000,
        "shard": 1,
    }
    assert Scenario.from_json(text) == scenario
    assert scenario.duration_s == 3.0


def test_a_bare_list_of_steps_is_a_scenario(tmp_path: Path) -> None:
    path = tmp_path / "steps.json"
    path.write_text('[{"at_s": 1, "action": "reconnect"}]', encoding="utf-8")
    scenario = Scenario.from_file(path)
    assert scenario.steps == (Step(at_s=1, action="reconnect"),)


def test_bad_json_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        Scenario.from_json("{")
    with pytest.raises(ValueError, match="list of steps"):
        Scenario.from_json('{"steps": 3}')


def test_every_action_is_an_emulator_method() -> None:
    for action in ACTIONS:
        assert callable(getattr(Emulator, action)), action


async def test_play_runs_the_steps_in_order(emu: Emulator) -> None:
    gateway, ready, _ = await open_session(emu)
    scenario = Scenario.from_json(
        {
            "steps": [
                {"at_s": 0.0, "action": "send_message", "content": "first"},
                {"at_s": 0.1, "action": "request_heartbeat"},
                {"at_s": 0.2, "action": "close", "code": 4009},
            ]
        }
    )
    try:
        await emu.play(scenario)
        assert (await gateway.dispatch("MESSAGE_CREATE"))["d"]["content"] == "first"
        await gateway.expect(1)
        assert await gateway.closed() == 4009
    finally:
        await gateway.aclose()
    assert emu.session(ready["session_id"]).state is SessionState.INVALIDATED


async def test_play_in_background_covers_rest_and_connection_faults(
    emu: Emulator,
) -> None:
    scenario = Scenario(
        [
            Step(0.0, "rest_fault", {"route": "gateway_bot", "mode": "503"}),
            Step(0.0, "close_before_hello", {"count": 1, "code": 4000}),
        ]
    )
    await emu.play_in_background(scenario)
    headers = {"Authorization": f"Bot {emu.token}"}
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(5):
            response = await http.get(emu.api_url + "/gateway/bot", headers=headers)
        assert response.status == 503
    gateway = await RawGateway.connect(emu.gateway_url)
    try:
        assert await gateway.closed() == 4000
    finally:
        await gateway.aclose()
