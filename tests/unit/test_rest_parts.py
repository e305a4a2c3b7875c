"""tether.rest's pure parts: routes, error answers, typed answers, files."""

from __future__ import annotations

import orjson
import pytest

from tether.errors import (
    ForbiddenError,
    HTTPError,
    LocalProtocolError,
    NotFoundError,
    RemoteProtocolError,
    ServerError,
    UnauthorizedError,
)
from tether.rest import File, GatewayBot, RateLimitInfo, Route, SessionStartLimit
from tether.rest._errors import error_for, parse_rate_limited

# Routes


def test_route_fills_and_percent_encodes_its_fields() -> None:
    route = Route(
        "put",
        "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
        channel_id=1,
        message_id="2",
        emoji="name:3",
    )
    assert route.method == "PUT"
    assert route.path == "/channels/1/messages/2/reactions/name%3A3/@me"
    assert route.key == (
        "PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"
    )


def test_route_values_cannot_escape_their_path_segment() -> None:
    route = Route("GET", "/channels/{channel_id}", channel_id="1/../../users/@me")
    assert route.path == "/channels/1%2F..%2F..%2Fusers%2F%40me"


def test_major_parameters_are_channel_guild_and_webhook_with_token() -> None:
    assert Route("GET", "/guilds/{guild_id}/roles", guild_id=5).major == "5"
    message = Route(
        "DELETE",
        "/channels/{channel_id}/messages/{message_id}",
        channel_id=1,
        message_id=2,
    )
    assert message.major == "1"
    webhook = Route(
        "POST",
        "/webhooks/{webhook_id}/{webhook_token}",
        webhook_id=7,
        webhook_token="secret",
    )
    assert webhook.major == "7/secret"
    assert Route("GET", "/users/@me").major == ""


def test_route_repr_shows_the_template_not_the_values() -> None:
    route = Route(
        "POST",
        "/interactions/{interaction_id}/{interaction_token}/callback",
        interaction_id=1,
        interaction_token="interaction-secret",
    )
    assert "interaction-secret" not in repr(route)
    assert "{interaction_token}" in repr(route)


def test_route_with_a_missing_or_unknown_field_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="channel_id"):
        Route("GET", "/channels/{channel_id}")
    with pytest.raises(LocalProtocolError, match="guild_id"):
        Route("GET", "/channels/{channel_id}", channel_id=1, guild_id=2)


def test_only_idempotent_methods_are_marked_retryable() -> None:
    retryable = {
        method: Route(method, "/x").is_idempotent
        for method in ("GET", "HEAD", "PUT", "DELETE", "POST", "PATCH")
    }
    assert retryable == {
        "GET": True,
        "HEAD": True,
        "PUT": True,
        "DELETE": True,
        "POST": False,
        "PATCH": False,
    }


# Error answers

MESSAGES = Route("POST", "/channels/{channel_id}/messages", channel_id=1)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, HTTPError),
        (401, UnauthorizedError),
        (403, ForbiddenError),
        (404, NotFoundError),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_status_maps_to_its_error_type(status: int, cls: type[HTTPError]) -> None:
    body = orjson.dumps({"message": "Missing Access", "code": 50001})
    error = error_for(status, body, MESSAGES, "reason")

    assert type(error) is cls
    assert (error.status, error.code, error.message) == (
        status,
        50001,
        "Missing Access",
    )
    assert (error.method, error.route) == ("POST", "/channels/{channel_id}/messages")
    assert str(error) == (
        f"POST /channels/{{channel_id}}/messages: HTTP {status}: Missing Access "
        "(Discord code 50001)"
    )


def test_invalid_form_body_names_the_fields() -> None:
    body = orjson.dumps(
        {
            "message": "Invalid Form Body",
            "code": 50035,
            "errors": {
                "embeds": {
                    "0": {
                        "title": {
                            "_errors": [
                                {"code": "X", "message": "Must be 256 or fewer."}
                            ]
                        }
                    }
                }
            },
        }
    )
    error = error_for(400, body, MESSAGES, "Bad Request")
    assert error.message == "Invalid Form Body (embeds.0.title: Must be 256 or fewer.)"


def test_body_that_is_not_discord_json_gives_its_text_or_the_reason() -> None:
    html = error_for(502, b" <html>bad gateway</html>\n", MESSAGES, "Bad Gateway")
    assert html.message == "<html>bad gateway</html>"
    assert error_for(502, b"", MESSAGES, "Bad Gateway").message == "Bad Gateway"
    no_message = error_for(502, b'{"code": 0}', MESSAGES, "Bad Gateway")
    assert no_message.message == "Bad Gateway"
    long = error_for(500, b"x" * 5000, MESSAGES, "")
    assert len(long.message) == 200


def test_429_body_gives_retry_after_and_global() -> None:
    body = orjson.dumps(
        {"message": "You are being rate limited.", "retry_after": 0.25, "global": True}
    )
    answer = parse_rate_limited(body, RateLimitInfo(scope="global"), "1")
    assert answer.retry_after_s == 0.25
    assert answer.is_global
    error = answer.error(MESSAGES)
    assert error.retry_after == 0.25
    assert error.is_global
    assert error.status == 429


def test_429_without_a_body_falls_back_to_the_headers() -> None:
    assert parse_rate_limited(b"", RateLimitInfo(), "3").retry_after_s == 3.0
    info = RateLimitInfo(reset_after_s=1.5, is_global=True)
    answer = parse_rate_limited(b"not json", info, None)
    assert (answer.retry_after_s, answer.is_global) == (1.5, True)


# Typed answers


def test_gateway_bot_converts_reset_after_from_milliseconds() -> None:
    payload = {
        "url": "wss://gateway.example/",
        "shards": 9,
        "session_start_limit": {
            "total": 1000,
            "remaining": 999,
            "reset_after": 14_400_000,
            "max_concurrency": 1,
        },
    }
    assert GatewayBot.from_payload(payload) == GatewayBot(
        url="wss://gateway.example/",
        shards=9,
        session_start_limit=SessionStartLimit(
            total=1000, remaining=999, reset_after_s=14_400.0, max_concurrency=1
        ),
    )


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        {"url": "wss://x/", "shards": 1},
        {"url": 5, "shards": 1, "session_start_limit": {}},
        {
            "url": "wss://x/",
            "shards": "1",
            "session_start_limit": {
                "total": 1,
                "remaining": 1,
                "reset_after": 1,
                "max_concurrency": 1,
            },
        },
    ],
)
def test_gateway_bot_of_the_wrong_shape_is_a_remote_error(payload: object) -> None:
    with pytest.raises(RemoteProtocolError, match="/gateway/bot"):
        GatewayBot.from_payload(payload)


# Files


def test_file_mime_type_is_guessed_from_the_name() -> None:
    assert File("cat.png", b"").mime_type == "image/png"
    assert File("blob", b"").mime_type == "application/octet-stream"
    assert File("x.png", b"", content_type="image/webp").mime_type == "image/webp"


def test_file_name_must_not_be_a_path() -> None:
    with pytest.raises(ValueError):
        File("../etc/passwd", b"")
    with pytest.raises(ValueError):
        File("", b"")
