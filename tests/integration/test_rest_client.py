"""RESTClient against a Discord-shaped server: requests, answers and errors."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from pathlib import Path

import orjson
import pytest
from _fake_rest import API, FakeDiscord, rest_client, serve

from tether._secret import Token
from tether.errors import (
    ClientStateError,
    ForbiddenError,
    HTTPError,
    LocalProtocolError,
    NotFoundError,
    UnauthorizedError,
)
from tether.rest import File, GatewayBot, RESTClient, SessionStartLimit

# Authorization, user agent, logging


async def test_requests_carry_bot_authorization_and_discord_user_agent() -> None:
    async with serve() as (server, rest):
        user = await rest.get_current_user()

    assert user == {"id": "42", "username": "tether-bot", "bot": True}
    (request,) = server.requests
    assert request.headers["Authorization"] == f"Bot {server.token}"
    assert re.fullmatch(
        r"DiscordBot \(https://\S+, [\w.]+\)", request.headers["User-Agent"]
    )


@pytest.mark.parametrize("form", ["token", "Bot token", "Token"])
async def test_token_is_accepted_plain_prefixed_or_wrapped(form: str) -> None:
    async with asyncio.timeout(10), FakeDiscord() as server:
        forms: dict[str, Token | str] = {
            "token": server.token,
            "Bot token": f"Bot {server.token}",
            "Token": Token(server.token),
        }
        token = forms[form]
        async with RESTClient(token, api_url=server.api_url) as rest:
            await rest.get_current_user()
    assert server.requests[0].headers["Authorization"] == f"Bot {server.token}"


async def test_each_request_is_logged_once_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="tether.rest")
    async with serve() as (server, rest):
        await rest.get_channel(7)
        with pytest.raises(NotFoundError):
            await rest.get_guild(404)

    lines = [r.getMessage() for r in caplog.records if r.name == "tether.rest.client"]
    assert len(lines) == 2
    assert re.fullmatch(
        r"GET /channels/\{channel_id\} -> 200 \(bucket GET /api/v10/channels/"
        r"\{channel_id\}\) in \d+\.\d{3}s",
        lines[0],
    )
    assert lines[1].startswith("GET /guilds/{guild_id} -> 404 (bucket ")


# Endpoints


async def test_get_gateway_bot_returns_typed_limits_in_seconds() -> None:
    async with serve() as (server, rest):
        gateway = await rest.get_gateway_bot()
        plain = await rest.get_gateway()

    assert gateway == GatewayBot(
        url=f"ws://127.0.0.1:{server.port}/",
        shards=3,
        session_start_limit=SessionStartLimit(
            total=1000, remaining=997, reset_after_s=14_400.0, max_concurrency=1
        ),
    )
    assert plain == {"url": f"ws://127.0.0.1:{server.port}/"}


async def test_fetch_endpoints_return_decoded_json() -> None:
    async with serve() as (server, rest):
        application = await rest.get_current_application()
        guild = await rest.get_guild("81384788765712384", with_counts=True)
        channel = await rest.get_channel(81384788765712385)
        roles = await rest.request(
            "GET", "/guilds/{guild_id}/roles", guild_id=81384788765712384
        )

    assert application["id"] == "43"
    assert guild == {
        "id": "81384788765712384",
        "name": "guild 81384788765712384",
        "approximate_member_count": 7,
    }
    assert channel["id"] == "81384788765712385"
    assert roles == [{"id": "81384788765712384", "name": "@everyone"}]
    assert [r.path for r in server.requests] == [
        f"{API}/applications/@me",
        f"{API}/guilds/81384788765712384?with_counts=true",
        f"{API}/channels/81384788765712385",
        f"{API}/guilds/81384788765712384/roles",
    ]


async def test_create_message_sends_a_json_body() -> None:
    async with serve() as (server, rest):
        message = await rest.create_message(
            10,
            "pong",
            embeds=[{"title": "latency", "description": "41 ms"}],
            reply_to=99,
            allowed_mentions={"parse": []},
        )

    (request,) = server.requests
    assert request.headers["Content-Type"] == "application/json"
    assert orjson.loads(request.body) == {
        "content": "pong",
        "embeds": [{"title": "latency", "description": "41 ms"}],
        "message_reference": {"message_id": "99"},
        "allowed_mentions": {"parse": []},
    }
    assert message["content"] == "pong"
    assert message["message_reference"] == {"message_id": "99"}


async def test_create_message_uploads_files_as_multipart(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_bytes(b"from disk\n")
    stream = io.BytesIO(b"\x89PNG fake image")

    async with serve() as (server, rest):
        message = await rest.create_message(
            10,
            "files",
            files=[
                File("raw.bin", b"\x00\x01\x02"),
                File("log.txt", path, description="the log"),
                File("cat.png", stream),
            ],
        )

    (request,) = server.requests
    assert request.headers["Content-Type"].startswith("multipart/form-data")
    assert request.json == {
        "content": "files",
        "attachments": [
            {"id": 0, "filename": "raw.bin"},
            {"id": 1, "filename": "log.txt", "description": "the log"},
            {"id": 2, "filename": "cat.png"},
        ],
    }
    assert request.form["files[0]"] == (
        "raw.bin",
        "application/octet-stream",
        b"\x00\x01\x02",
    )
    assert request.form["files[1]"] == ("log.txt", "text/plain", b"from disk\n")
    assert request.form["files[2]"] == ("cat.png", "image/png", b"\x89PNG fake image")
    assert len(message["attachments"]) == 3


async def test_edit_message_sends_only_the_fields_given() -> None:
    async with serve() as (server, rest):
        sent = await rest.create_message(10, "before", embeds=[{"title": "t"}])
        edited = await rest.edit_message(10, sent["id"], content="after")

    assert server.requests[1].json == {"content": "after"}
    assert server.requests[1].method == "PATCH"
    assert (edited["content"], edited["embeds"]) == ("after", [{"title": "t"}])


async def test_delete_and_bulk_delete_send_the_audit_log_reason() -> None:
    async with serve() as (server, rest):
        await rest.delete_message(10, 20, reason="spam: ünïcode")
        await rest.bulk_delete_messages(10, [21, "22", 23], reason="cleanup")
        await rest.bulk_delete_messages(10, [24])
        with pytest.raises(LocalProtocolError):
            await rest.bulk_delete_messages(10, [])
        with pytest.raises(LocalProtocolError):
            await rest.bulk_delete_messages(10, list(range(101)))

    delete, bulk, single = server.requests
    assert (delete.method, delete.path) == ("DELETE", f"{API}/channels/10/messages/20")
    assert delete.headers["X-Audit-Log-Reason"] == "spam%3A %C3%BCn%C3%AFcode"
    assert bulk.path == f"{API}/channels/10/messages/bulk-delete"
    assert bulk.json == {"messages": ["21", "22", "23"]}
    assert bulk.headers["X-Audit-Log-Reason"] == "cleanup"
    assert (single.method, single.path) == ("DELETE", f"{API}/channels/10/messages/24")


async def test_reactions_url_encode_the_emoji() -> None:
    async with serve() as (server, rest):
        await rest.add_reaction(10, 20, "👍")
        await rest.add_reaction(10, 20, "<:tether:123456>")
        await rest.add_reaction(10, 20, "<a:spin:654321>")
        await rest.remove_own_reaction(10, 20, "👍")
        await rest.remove_reaction(10, 20, "blob:1", 30)

    base = f"{API}/channels/10/messages/20/reactions"
    assert [(r.method, r.path) for r in server.requests] == [
        ("PUT", f"{base}/%F0%9F%91%8D/@me"),
        ("PUT", f"{base}/tether%3A123456/@me"),
        ("PUT", f"{base}/spin%3A654321/@me"),
        ("DELETE", f"{base}/%F0%9F%91%8D/@me"),
        ("DELETE", f"{base}/blob%3A1/30"),
    ]


async def test_interaction_response_is_sent_without_bot_authorization() -> None:
    async with serve() as (server, rest):
        answer = await rest.create_interaction_response(
            555, "interaction-token-xyz", 4, {"content": "hi"}
        )

    assert answer is None
    (request,) = server.requests
    assert "Authorization" not in request.headers
    assert request.path == f"{API}/interactions/555/interaction-token-xyz/callback"
    assert request.json == {"type": 4, "data": {"content": "hi"}}


# Errors


async def test_not_found_carries_discord_code_method_and_route() -> None:
    async with serve() as (server, rest):
        with pytest.raises(NotFoundError) as caught:
            await rest.get_guild(404)

    error = caught.value
    assert (error.status, error.code, error.message) == (404, 10004, "Unknown Guild")
    assert (error.method, error.route) == ("GET", "/guilds/{guild_id}")


async def test_forbidden_and_unauthorized_are_typed() -> None:
    async with asyncio.timeout(10), FakeDiscord() as server:
        server.forbidden_channels.add("13")
        async with rest_client(server) as rest:
            with pytest.raises(ForbiddenError) as forbidden:
                await rest.get_channel(13)
        async with RESTClient("wrong-token", api_url=server.api_url) as rest:
            with pytest.raises(UnauthorizedError) as unauthorized:
                await rest.get_current_user()

    assert (forbidden.value.status, forbidden.value.code) == (403, 50001)
    assert unauthorized.value.status == 401
    assert unauthorized.value.route == "/users/@me"


async def test_bad_request_names_the_invalid_field() -> None:
    async with serve() as (server, rest):
        with pytest.raises(HTTPError) as too_long:
            await rest.create_message(10, "x" * 2001)
        with pytest.raises(HTTPError) as empty:
            await rest.create_message(10)

    assert type(too_long.value) is HTTPError
    assert too_long.value.code == 50035
    assert "content: Must be 2000 or fewer in length." in str(too_long.value)
    assert (empty.value.status, empty.value.code) == (400, 50006)


# Lifecycle


async def test_closed_client_refuses_requests() -> None:
    async with asyncio.timeout(10), FakeDiscord() as server:
        rest = rest_client(server)
        await rest.get_current_user()
        await rest.close()
        await rest.close()
        with pytest.raises(ClientStateError):
            await rest.get_current_user()
        assert rest.is_closed
        assert "closed" in repr(rest)
    assert len(server.requests) == 1


def test_client_is_created_outside_an_event_loop() -> None:
    rest = RESTClient("token", api_url="http://127.0.0.1:9/api/v10")
    assert repr(rest) == "RESTClient(api_url='http://127.0.0.1:9/api/v10', open)"
