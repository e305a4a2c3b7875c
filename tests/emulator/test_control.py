"""The control endpoint: status and commands from another process."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from _emu_client import open_session

from tether.emulator import Emulator


async def _request(
    method: str, url: str, body: Any = None, **kwargs: Any
) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(5):
            response = await http.request(method, url, json=body, **kwargs)
            payload = await response.json(content_type=None)
            return response.status, payload


async def test_control_binds_loopback(emu: Emulator) -> None:
    assert emu.control_url.startswith("http://127.0.0.1:")


async def test_status_reports_urls_counters_and_sessions(emu: Emulator) -> None:
    gateway, ready, _ = await open_session(emu)
    try:
        status, body = await _request("GET", emu.control_url + "status")
    finally:
        await gateway.aclose()
    assert status == 200
    assert body["api_url"] == emu.api_url
    assert body["gateway_url"] == emu.gateway_url
    assert body["counters"]["identifies"] == 1
    assert body["world"]["guilds"] == len(emu.world.guilds)
    assert body["sessions"][0]["session_id"] == ready["session_id"]
    assert "reconnect" in body["actions"]
    assert emu.token not in str(body)


async def test_session_detail_lists_dispatches(emu: Emulator) -> None:
    gateway, ready, _ = await open_session(emu)
    await gateway.aclose()
    url = f"{emu.control_url}sessions/{ready['session_id']}?data=1"
    status, body = await _request("GET", url)
    assert status == 200
    assert body["dispatch_records"][0]["name"] == "READY"
    assert body["dispatch_records"][0]["data"]["session_id"] == ready["session_id"]
    assert body["frames"]
    status, _ = await _request("GET", emu.control_url + "sessions/nope")
    assert status == 404


async def test_a_step_runs_now(emu: Emulator) -> None:
    gateway, _, _ = await open_session(emu)
    try:
        status, body = await _request(
            "POST", emu.control_url + "step", {"action": "reconnect"}
        )
        assert (status, body) == (200, {"ok": True, "result": 1})
        await gateway.expect(7)
    finally:
        await gateway.aclose()


async def test_a_bad_step_is_a_400(emu: Emulator) -> None:
    status, body = await _request(
        "POST", emu.control_url + "step", {"action": "explode"}
    )
    assert status == 400
    assert body["ok"] is False
    assert "unknown action" in body["error"]


async def test_a_scenario_plays_in_the_background(emu: Emulator) -> None:
    gateway, _, _ = await open_session(emu)
    scenario = {
        "steps": [{"at_s": 0.05, "action": "send_message", "content": "remote"}]
    }
    try:
        status, body = await _request("POST", emu.control_url + "scenario", scenario)
        assert (status, body) == (200, {"ok": True, "steps": 1})
        assert (await gateway.dispatch("MESSAGE_CREATE"))["d"]["content"] == "remote"
    finally:
        await gateway.aclose()


async def test_posts_must_be_json(emu: Emulator) -> None:
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(5):
            response = await http.post(
                emu.control_url + "step",
                data="action=drop",
                headers={"Content-Type": "text/plain"},
            )
        assert response.status == 415
