"""RESTClient against tether's emulator: its buckets, 429s, faults and errors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tether.errors import NotFoundError, ServerError, UnauthorizedError
from tether.rest import RESTClient

emulator = pytest.importorskip("tether.emulator")


@contextlib.asynccontextmanager
async def running(
    route_limits: dict[str, tuple[int, float]] | None = None,
) -> AsyncIterator[tuple[Any, RESTClient, str]]:
    """An emulator, a client aimed at it, and one of its text channels."""
    limits = {"default": (50, 1.0)} | (route_limits or {})
    settings = emulator.RestSettings(route_limits=limits)
    world = emulator.WorldConfig(guilds=2, members_per_guild=5, seed=1)
    async with (
        asyncio.timeout(20),
        emulator.Emulator(world=world, rest=settings) as emu,
        RESTClient(emu.token, api_url=emu.api_url, retry_backoff_s=0.01) as rest,
    ):
        guilds = await rest.request("GET", "/users/@me/guilds")
        channels = await rest.request(
            "GET", "/guilds/{guild_id}/channels", guild_id=guilds[0]["id"]
        )
        text = next(c["id"] for c in channels if c["type"] == 0)
        yield emu, rest, text


async def test_emulator_buckets_are_kept_without_a_429() -> None:
    async with running({"create_message": (2, 0.3)}) as (emu, rest, channel):
        sent = await asyncio.gather(
            *(rest.create_message(channel, f"message {n}") for n in range(7))
        )
        log = emu.rest_log

    assert [m["content"] for m in sent] == [f"message {n}" for n in range(7)]
    created = [r for r in log if r.route == "create_message"]
    assert [r.status for r in created] == [200] * 7


async def test_emulator_429_is_waited_out_for_retry_after() -> None:
    async with running() as (emu, rest, channel):
        emu.rate_limit_next("get_channel", 0.2)
        fetched = await rest.get_channel(channel)
        log = [r for r in emu.rest_log if r.route == "get_channel"]

    assert fetched["id"] == channel
    assert [r.status for r in log] == [429, 200]
    assert log[1].time - log[0].time >= 0.2


async def test_emulator_global_429_pauses_other_routes() -> None:
    async with running() as (emu, rest, channel):
        emu.rate_limit_next("get_channel", 0.3, is_global=True)
        limited = asyncio.create_task(rest.get_channel(channel))
        while rest.rate_limiter.global_paused_until() is None:
            await asyncio.sleep(0.005)
        await rest.get_current_user()
        await limited
        log = emu.rest_log

    (limited_at,) = [r.time for r in log if r.status == 429]
    after = [r for r in log if r.time > limited_at]
    assert {r.route for r in after} == {"get_channel", "get_current_user"}
    assert all(r.time - limited_at >= 0.3 for r in after)


async def test_emulator_faults_are_retried_only_when_idempotent() -> None:
    async with running() as (emu, rest, channel):
        emu.rest_fault("get_channel", "503")
        emu.rest_fault("get_channel", "502")
        await rest.get_channel(channel)
        emu.rest_fault("create_message", "502")
        with pytest.raises(ServerError) as caught:
            await rest.create_message(channel, "hello")
        log = emu.rest_log

    assert [r.status for r in log if r.route == "get_channel"] == [503, 502, 200]
    assert [r.status for r in log if r.route == "create_message"] == [502]
    assert caught.value.status == 502


async def test_emulator_errors_are_typed() -> None:
    async with running() as (emu, rest, _):
        with pytest.raises(NotFoundError) as unknown:
            await rest.get_channel(1)
        async with RESTClient("not-the-token", api_url=emu.api_url) as wrong:
            with pytest.raises(UnauthorizedError):
                await wrong.get_current_user()

    assert unknown.value.route == "/channels/{channel_id}"
    assert unknown.value.code != 0
