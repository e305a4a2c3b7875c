"""The REST side: routes, auth, error shapes, rate limits and faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from _emu_client import EmulatorFactory, open_session
from multidict import CIMultiDictProxy

from tether.emulator import Emulator, RestSettings, WorldConfig

RATE_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-Reset-After",
    "X-RateLimit-Bucket",
)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


def _auth(emu: Emulator) -> dict[str, str]:
    return {"Authorization": f"Bot {emu.token}"}


async def _call(
    http: aiohttp.ClientSession,
    emu: Emulator,
    method: str,
    path: str,
    *,
    json: Any = None,
    auth: bool = True,
    base: str | None = None,
) -> tuple[int, Any, CIMultiDictProxy[str]]:
    url = (base or emu.api_url) + path
    headers = _auth(emu) if auth else {}
    async with http.request(method, url, json=json, headers=headers) as response:
        body: Any = None
        if response.content_type == "application/json":
            body = await response.json()
        return response.status, body, response.headers


def _text_channel(emu: Emulator, index: int = 0) -> int:
    guild = list(emu.world.guilds.values())[index]
    return guild.channel_ids_of_type(0)[0]


async def test_gateway_routes(http: aiohttp.ClientSession, emu: Emulator) -> None:
    status, body, _ = await _call(http, emu, "GET", "/gateway", auth=False)
    assert (status, body) == (200, {"url": emu.gateway_url})
    status, body, _ = await _call(http, emu, "GET", "/gateway/bot")
    assert status == 200
    assert body["url"] == emu.gateway_url
    assert body["shards"] == 1
    limit = body["session_start_limit"]
    assert limit == {
        "total": 1000,
        "remaining": 1000,
        "reset_after": 86_400_000,
        "max_concurrency": 1,
    }


async def test_session_start_limit_counts_identifies(
    http: aiohttp.ClientSession, make_emulator: EmulatorFactory
) -> None:
    emu = await make_emulator(shards=3, max_concurrency=16, session_start_limit=50)
    gateway, _, _ = await open_session(emu)
    await gateway.aclose()
    _, body, _ = await _call(http, emu, "GET", "/gateway/bot")
    assert body["shards"] == 3
    limit = body["session_start_limit"]
    assert (limit["total"], limit["remaining"], limit["max_concurrency"]) == (
        50,
        49,
        16,
    )
    assert 0 < limit["reset_after"] <= 86_400_000


async def test_json_content_type_has_no_charset(
    http: aiohttp.ClientSession, emu: Emulator
) -> None:
    _, _, headers = await _call(http, emu, "GET", "/users/@me")
    assert headers["Content-Type"] == "application/json"


async def test_identity_routes(http: aiohttp.ClientSession, emu: Emulator) -> None:
    bot_id = str(emu.world.bot.id)
    _, me, _ = await _call(http, emu, "GET", "/users/@me")
    assert (me["id"], me["bot"]) == (bot_id, True)
    for path in ("/applications/@me", "/oauth2/applications/@me"):
        status, app, _ = await _call(http, emu, "GET", path)
        assert status == 200
        assert app["id"] == str(emu.world.application_id)
        assert app["bot"]["id"] == bot_id
        assert "owner" in app and "verify_key" in app


async def test_other_api_prefixes_are_served(
    http: aiohttp.ClientSession, emu: Emulator
) -> None:
    root = emu.api_url.removesuffix("/api/v10")
    for prefix in ("/api", "/api/v9"):
        status, body, _ = await _call(
            http, emu, "GET", "/users/@me", base=root + prefix
        )
        assert (status, body["id"]) == (200, str(emu.world.bot.id))


async def test_a_wrong_token_gets_401_in_discords_shape(
    http: aiohttp.ClientSession, emu: Emulator
) -> None:
    async with http.get(
        emu.api_url + "/users/@me", headers={"Authorization": "Bot wrong"}
    ) as response:
        assert response.status == 401
        assert await response.json() == {"message": "401: Unauthorized", "code": 0}
    status, _, _ = await _call(http, emu, "GET", "/gateway/bot", auth=False)
    assert status == 401
    # The token without "Bot " is not accepted either.
    async with http.get(
        emu.api_url + "/users/@me", headers={"Authorization": emu.token}
    ) as response:
        assert response.status == 401


async def test_unknown_routes_get_a_json_404(
    http: aiohttp.ClientSession, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    status, body, headers = await _call(http, emu, "GET", "/nothing/here")
    assert (status, body) == (404, {"message": "404: Not Found", "code": 0})
    assert all(name in headers for name in RATE_HEADERS)
    assert "unknown REST route GET /api/v10/nothing/here" in caplog.text
    assert emu.token not in caplog.text


async def test_unknown_objects_get_discord_error_codes(
    http: aiohttp.ClientSession, emu: Emulator
) -> None:
    cases = [
        ("/channels/1", 10003),
        ("/guilds/1", 10004),
        ("/users/1", 10013),
        (f"/channels/{_text_channel(emu)}/messages/1", 10008),
    ]
    for path, code in cases:
        status, body, _ = await _call(http, emu, "GET", path)
        assert (status, body["code"]) == (404, code), path


async def test_guild_and_channel_routes_read_the_world(
    http: aiohttp.ClientSession, emu: Emulator
) -> None:
    guild = next(iter(emu.world.guilds.values()))
    _, body, _ = await _call(http, emu, "GET", f"/guilds/{guild.id}?with_counts=true")
    assert body["name"] == guild.name
    assert body["approximate_member_count"] == guild.member_count
    _, channels, _ = await _call(http, emu, "GET", f"/guilds/{guild.id}/channels")
    assert {c["id"] for c in channels} == {str(c) for c in guild.channels}
    _, roles, _ = await _call(http, emu, "GET", f"/guilds/{guild.id}/roles")
    assert len(roles) == len(guild.roles)
    _, members, _ = await _call(
        http, emu, "GET", f"/guilds/{guild.id}/members?limit=1000"
    )
    assert len(members) == guild.member_count
    channel_id = _text_channel(emu)
    _, channel, _ = await _call(http, emu, "GET", f"/channels/{channel_id}")
    assert channel["id"] == str(channel_id)


async def test_posted_messages_are_stored_and_dispatched(
    http: aiohttp.ClientSession, emu: Emulator
) -> None:
    gateway, _, _ = await open_session(emu)
    channel_id = _text_channel(emu)
    try:
        body = {"content": "from the bot", "nonce": "abc"}
        status, message, _ = await _call(
            http, emu, "POST", f"/channels/{channel_id}/messages", json=body
        )
        assert status == 200
        create = (await gateway.dispatch("MESSAGE_CREATE"))["d"]
    finally:
        await gateway.aclose()
    assert message["author"]["id"] == str(emu.world.bot.id)
    assert (message["content"], message["nonce"]) == ("from the bot", "abc")
    assert create["id"] == message["id"]
    assert create["guild_id"] == str(emu.world.guild_id_of_channel(channel_id))
    assert "member" in create and "user" not in create["member"]
    assert emu.world.messages(channel_id)[-1]["id"] == message["id"]
    _, history, _ = await _call(http, emu, "GET", f"/channels/{channel_id}/messages")
    assert history[0]["id"] == message["id"]


async def test_multipart_messages_are_read_from_payload_json(
    http: aiohttp.ClientSession, emu: Emulator
) -> None:
    channel_id = _text_channel(emu)
    form = aiohttp.FormData()
    form.add_field(
        "payload_json", '{"content": "multipart"}', content_type="application/json"
    )
    async with http.post(
        f"{emu.api_url}/channels/{channel_id}/messages", data=form, headers=_auth(emu)
    ) as response:
        assert response.status == 200
        assert (await response.json())["content"] == "multipart"


async def test_invalid_messages_are_refused(
    http: aiohttp.ClientSession, emu: Emulator
) -> None:
    channel_id = _text_channel(emu)
    path = f"/channels/{channel_id}/messages"
    status, body, _ = await _call(http, emu, "POST", path, json={"content": ""})
    assert (status, body["code"]) == (400, 50006)
    status, body, _ = await _call(http, emu, "POST", path, json={"content": "x" * 2001})
    assert (status, body["code"]) == (400, 50035)
    assert "content" in body["errors"]


async def test_edit_and_delete_dispatch_update_and_delete(
    http: aiohttp.ClientSession, emu: Emulator
) -> None:
    gateway, _, _ = await open_session(emu)
    channel_id = _text_channel(emu)
    path = f"/channels/{channel_id}/messages"
    try:
        _, message, _ = await _call(http, emu, "POST", path, json={"content": "v1"})
        await gateway.dispatch("MESSAGE_CREATE")
        status, edited, _ = await _call(
            http, emu, "PATCH", f"{path}/{message['id']}", json={"content": "v2"}
        )
        assert (status, edited["content"]) == (200, "v2")
        assert edited["edited_timestamp"] is not None
        update = (await gateway.dispatch("MESSAGE_UPDATE"))["d"]
        assert update["content"] == "v2"
        status, _, _ = await _call(http, emu, "DELETE", f"{path}/{message['id']}")
        assert status == 204
        delete = (await gateway.dispatch("MESSAGE_DELETE"))["d"]
        assert delete["id"] == message["id"]
    finally:
        await gateway.aclose()
    assert emu.world.message(channel_id, int(message["id"])) is None


async def test_editing_someone_elses_message_is_forbidden(
    http: aiohttp.ClientSession, emu: Emulator
) -> None:
    message = await emu.send_message(content="theirs")
    path = f"/channels/{message['channel_id']}/messages/{message['id']}"
    status, body, _ = await _call(http, emu, "PATCH", path, json={"content": "mine"})
    assert (status, body["code"]) == (403, 50005)


async def test_reactions_and_typing_dispatch(
    http: aiohttp.ClientSession, emu: Emulator
) -> None:
    gateway, _, _ = await open_session(emu)
    message = await emu.send_message(content="react to me")
    channel_id = message["channel_id"]
    try:
        await gateway.dispatch("MESSAGE_CREATE")
        thumbs_up = "%F0%9F%91%8D"
        path = (
            f"/channels/{channel_id}/messages/{message['id']}/reactions/{thumbs_up}/@me"
        )
        status, _, _ = await _call(http, emu, "PUT", path)
        assert status == 204
        reaction = (await gateway.dispatch("MESSAGE_REACTION_ADD"))["d"]
        assert reaction["emoji"] == {"id": None, "name": "\N{THUMBS UP SIGN}"}
        assert reaction["user_id"] == str(emu.world.bot.id)
        status, _, _ = await _call(http, emu, "POST", f"/channels/{channel_id}/typing")
        assert status == 204
        await gateway.dispatch("TYPING_START")
    finally:
        await gateway.aclose()


async def test_every_answer_has_rate_limit_headers(
    http: aiohttp.ClientSession, emu: Emulator
) -> None:
    for method, path in (
        ("GET", "/users/@me"),
        ("GET", "/channels/1"),
        ("GET", "/gateway"),
    ):
        _, _, headers = await _call(http, emu, method, path)
        assert all(name in headers for name in RATE_HEADERS), path


async def test_an_exhausted_bucket_answers_429(
    http: aiohttp.ClientSession, emu: Emulator
) -> None:
    path = f"/channels/{_text_channel(emu)}/messages"
    remaining = []
    for n in range(5):
        status, _, headers = await _call(
            http, emu, "POST", path, json={"content": f"{n}"}
        )
        assert status == 200
        remaining.append(int(headers["X-RateLimit-Remaining"]))
        assert headers["X-RateLimit-Limit"] == "5"
    assert remaining == [4, 3, 2, 1, 0]
    status, body, headers = await _call(
        http, emu, "POST", path, json={"content": "six"}
    )
    assert status == 429
    assert body["message"] == "You are being rate limited."
    assert body["global"] is False
    assert 0 < body["retry_after"] <= 5
    assert headers["X-RateLimit-Scope"] == "user"
    assert int(headers["Retry-After"]) >= 1
    # Another channel is another bucket.
    other = f"/channels/{_text_channel(emu, 1)}/messages"
    status, _, _ = await _call(http, emu, "POST", other, json={"content": "fine"})
    assert status == 200


async def test_the_bucket_refills_after_its_window(
    http: aiohttp.ClientSession, make_emulator: EmulatorFactory
) -> None:
    rest = RestSettings(route_limits={"get_current_user": (2, 0.2)})
    emu = await make_emulator(rest=rest)
    statuses = [(await _call(http, emu, "GET", "/users/@me"))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    await asyncio.sleep(0.25)
    assert (await _call(http, emu, "GET", "/users/@me"))[0] == 200


async def test_the_global_limit(
    http: aiohttp.ClientSession, make_emulator: EmulatorFactory
) -> None:
    emu = await make_emulator(rest=RestSettings(global_limit=3))
    statuses = [(await _call(http, emu, "GET", f"/users/{n}"))[0] for n in range(4)]
    assert statuses[:3] == [404, 404, 404]
    status, body, headers = await _call(http, emu, "GET", "/users/@me")
    assert (status, body["global"], headers["X-RateLimit-Global"]) == (
        429,
        True,
        "true",
    )


async def test_rate_limit_next_forces_a_429(
    http: aiohttp.ClientSession, emu: Emulator
) -> None:
    emu.rate_limit_next("GET /users/@me", 1.5)
    status, body, headers = await _call(http, emu, "GET", "/users/@me")
    assert (status, body["retry_after"], headers["Retry-After"]) == (429, 1.5, "2")
    assert headers["X-RateLimit-Remaining"] == "0"
    emu.rate_limit_next("get_current_user", 0.5, is_global=True)
    status, body, _ = await _call(http, emu, "GET", "/users/@me")
    assert (status, body["global"]) == (429, True)
    assert [r.status for r in emu.rest_log if r.route == "get_current_user"] == [
        429,
        429,
    ]


async def test_unknown_fault_routes_are_refused(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="unknown route"):
        emu.rate_limit_next("GET /nope", 1.0)
    with pytest.raises(ValueError, match="mode"):
        emu.rest_fault("gateway_bot", "418")


@pytest.mark.parametrize("mode", ["500", "503", "504"])
async def test_rest_faults_answer_5xx(
    http: aiohttp.ClientSession, emu: Emulator, mode: str
) -> None:
    emu.rest_fault("gateway_bot", mode=mode, count=2)
    for _ in range(2):
        status, body, _ = await _call(http, emu, "GET", "/gateway/bot")
        assert status == int(mode)
        assert isinstance(body["message"], str)
    assert (await _call(http, emu, "GET", "/gateway/bot"))[0] == 200


async def test_a_502_is_not_json(http: aiohttp.ClientSession, emu: Emulator) -> None:
    emu.rest_fault("gateway_bot", mode="502")
    async with http.get(emu.api_url + "/gateway/bot", headers=_auth(emu)) as response:
        assert response.status == 502
        assert response.content_type == "text/html"


async def test_a_hanging_route_never_answers(
    http: aiohttp.ClientSession, emu: Emulator
) -> None:
    emu.rest_fault("gateway_bot", mode="hang")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await _call(http, emu, "GET", "/gateway/bot")
    assert (await _call(http, emu, "GET", "/gateway/bot"))[0] == 200


async def test_rest_answers_for_an_unavailable_guild(
    http: aiohttp.ClientSession, make_emulator: EmulatorFactory
) -> None:
    emu = await make_emulator(WorldConfig(guilds=1, members_per_guild=3))
    guild_id = next(iter(emu.world.guilds))
    await emu.guild_outage(guild_id)
    assert (await _call(http, emu, "GET", f"/guilds/{guild_id}"))[0] == 503
