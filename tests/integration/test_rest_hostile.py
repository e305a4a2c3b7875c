"""A broken or hostile REST server gets clear errors, never unbounded memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from tether.errors import RemoteProtocolError
from tether.rest import RESTClient

TOKEN = "MTIz.hostile.token"


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        chunk = b" " * 65536
        for _ in range(64):  # 4 MiB, streamed without a length
            await response.write(chunk)
        await response.write_eof()
        return response

    async def not_json(request: web.Request) -> web.Response:
        return web.Response(body=b"<html>not json", content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v10/users/@me", huge)
    app.router.add_get("/api/v10/channels/{id}", not_json)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/api/v10"
    finally:
        await runner.cleanup()


async def test_an_answer_over_the_size_cap_is_refused_unread(server: str) -> None:
    async with RESTClient(TOKEN, api_url=server, max_response_size=1024 * 1024) as rest:
        with pytest.raises(RemoteProtocolError, match="max_response_size"):
            async with asyncio.timeout(10):
                await rest.get_current_user()


async def test_a_success_that_is_not_json_is_an_error(server: str) -> None:
    async with RESTClient(TOKEN, api_url=server) as rest:
        with pytest.raises(RemoteProtocolError, match="not JSON"):
            async with asyncio.timeout(10):
                await rest.get_channel(1)
