"""RESTClient against a Discord-shaped server: rate limits, 429s and retries."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
from _fake_rest import API, BucketRule, Fault, serve, wait_until

from tether.errors import ConnectionFault, RateLimitedError, ServerError

MESSAGES = "/channels/{channel_id}/messages"
CHANNEL = "/channels/{channel_id}"
REACTION = "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"

# Buckets


async def test_exhausted_bucket_sends_nothing_until_it_resets() -> None:
    async with serve() as (server, rest):
        server.limit("POST", MESSAGES, BucketRule("msg", limit=2, window_s=0.2))
        sent = await asyncio.gather(
            *(rest.create_message(10, f"message {n}") for n in range(7))
        )

    assert server.rate_limited == 0
    assert [m["content"] for m in sent] == [f"message {n}" for n in range(7)]
    # Queued requests on one channel keep their order.
    assert [r.json["content"] for r in server.requests] == [
        f"message {n}" for n in range(7)
    ]
    assert rest.rate_limiter.statistics().waits > 0


async def test_routes_sharing_a_bucket_hash_share_its_limit() -> None:
    async with serve() as (server, rest):
        shared = BucketRule("reactions", limit=1, window_s=0.1)
        server.limit("PUT", REACTION, shared)
        server.limit("DELETE", REACTION, shared)
        # Each route learns the hash on a channel of its own.
        await rest.add_reaction(10, 20, "👍")
        await rest.remove_own_reaction(11, 20, "👍")

        await asyncio.gather(
            rest.add_reaction(12, 20, "🔥"),
            rest.remove_own_reaction(12, 20, "🔥"),
            rest.add_reaction(12, 21, "🔥"),
            rest.remove_own_reaction(12, 21, "🔥"),
        )

    assert len(server.requests) == 6
    assert server.rate_limited == 0


async def test_one_channels_exhausted_bucket_does_not_hold_another() -> None:
    async with serve() as (server, rest):
        server.limit("GET", CHANNEL, BucketRule("chan", limit=1, window_s=30.0))
        await rest.get_channel(1)
        blocked = asyncio.create_task(rest.get_channel(1))

        other = await rest.get_channel(2)

        assert other["id"] == "2"
        assert not blocked.done()
        blocked.cancel()
        with pytest.raises(asyncio.CancelledError):
            await blocked

    assert [r.path for r in server.requests] == [
        f"{API}/channels/1",
        f"{API}/channels/2",
    ]


async def test_wait_longer_than_allowed_raises_without_sending() -> None:
    async with serve(max_rate_limit_wait_s=1.0) as (server, rest):
        server.limit("GET", CHANNEL, BucketRule("chan", limit=1, window_s=30.0))
        await rest.get_channel(1)
        with pytest.raises(RateLimitedError) as caught:
            await rest.get_channel(1)

    assert 28.0 < caught.value.retry_after <= 30.1
    assert not caught.value.is_global
    assert caught.value.route == CHANNEL
    assert len(server.requests) == 1


async def test_global_limit_is_kept_across_routes() -> None:
    async with serve(global_limit=3) as (server, rest):
        await asyncio.gather(*(rest.get_channel(n) for n in range(7)))

    assert len(server.requests) == 7
    stats = rest.rate_limiter.statistics()
    assert stats.granted == 7
    # Seven requests at three per second: at least two waits for the global limit.
    assert stats.waits >= 2


# 429


async def test_429_is_sent_again_after_retry_after(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="tether.rest")
    async with serve() as (server, rest):
        server.script(Fault("429", retry_after=0.2, template=CHANNEL))
        channel = await rest.get_channel(1)

    assert channel["id"] == "1"
    first, second = server.requests
    assert second.at - first.at >= 0.2
    (warning,) = caplog.records
    assert warning.levelno == logging.WARNING
    assert warning.getMessage() == (
        "GET /channels/{channel_id} was rate limited (bucket, scope unknown); "
        "sending again in 0.20s"
    )


async def test_429_longer_than_allowed_raises_rate_limited() -> None:
    async with serve(max_rate_limit_wait_s=1.0) as (server, rest):
        server.script(Fault("429", retry_after=5.0, is_global=True))
        with pytest.raises(RateLimitedError) as caught:
            await rest.create_message(10, "hello")

    assert (caught.value.status, caught.value.retry_after) == (429, 5.0)
    assert caught.value.is_global
    assert (caught.value.method, caught.value.route) == ("POST", MESSAGES)
    assert len(server.requests) == 1


async def test_global_429_pauses_every_route() -> None:
    async with serve() as (server, rest):
        server.script(Fault("429", retry_after=0.3, is_global=True, template=CHANNEL))
        limited = asyncio.create_task(rest.get_channel(1))
        await wait_until(lambda: rest.rate_limiter.global_paused_until() is not None)

        guild = await rest.get_guild(5)
        await limited

    assert guild["id"] == "5"
    first = server.requests[0]
    later = server.requests[1:]
    assert {r.template for r in later} == {API + CHANNEL, API + "/guilds/{guild_id}"}
    assert all(r.at - first.at >= 0.3 for r in later)


async def test_repeated_429s_end_in_rate_limited_error() -> None:
    async with serve() as (server, rest):
        server.script(*[Fault("429", retry_after=0.01)] * 6)
        with pytest.raises(RateLimitedError):
            await rest.get_channel(1)

    assert len(server.requests) == 6


# Retries


async def test_server_errors_are_retried_for_idempotent_requests() -> None:
    async with serve() as (server, rest):
        server.script(
            Fault("status", status=502, template=CHANNEL),
            Fault("status", status=503, template=CHANNEL),
            Fault("status", status=504, template=REACTION),
        )
        channel = await rest.get_channel(1)
        await rest.add_reaction(1, 2, "👍")

    assert channel["id"] == "1"
    assert [r.method for r in server.requests] == ["GET"] * 3 + ["PUT"] * 2


async def test_server_errors_are_not_retried_for_post_or_patch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="tether.rest")
    async with serve() as (server, rest):
        sent = await rest.create_message(1, "first")
        server.script(
            Fault("status", status=503, template=MESSAGES),
            Fault("status", status=502),
        )
        with pytest.raises(ServerError) as post:
            await rest.create_message(1, "hello")
        with pytest.raises(ServerError) as patch:
            await rest.edit_message(1, sent["id"], content="edited")

    assert (post.value.status, post.value.route) == (503, MESSAGES)
    assert patch.value.status == 502
    assert [r.method for r in server.requests] == ["POST", "POST", "PATCH"]
    assert not caplog.records


async def test_retries_stop_after_max_retries() -> None:
    async with serve(max_retries=2) as (server, rest):
        server.script(*[Fault("status", status=502)] * 5)
        with pytest.raises(ServerError) as caught:
            await rest.get_channel(1)

    assert caught.value.status == 502
    assert caught.value.message == "upstream failed"
    assert len(server.requests) == 3


async def test_500_is_not_retried() -> None:
    async with serve() as (server, rest):
        server.script(Fault("status", status=500))
        with pytest.raises(ServerError):
            await rest.get_channel(1)

    assert len(server.requests) == 1


async def test_dropped_connection_is_retried_for_get_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="tether.rest")
    async with serve() as (server, rest):
        server.script(Fault("drop"), Fault("drop"))
        channel = await rest.get_channel(1)
        server.script(Fault("drop"))
        with pytest.raises(ConnectionFault) as caught:
            await rest.create_message(1, "hello")

    assert channel["id"] == "1"
    assert [r.method for r in server.requests] == ["GET"] * 3 + ["POST"]
    assert "POST /channels/{channel_id}/messages: the request failed" in str(
        caught.value
    )
    assert any("retry 1 of 3" in r.getMessage() for r in caplog.records)


async def test_timeout_ends_an_attempt_and_idempotent_requests_try_again() -> None:
    async with serve(timeout_s=0.2, max_retries=1) as (server, rest):
        server.script(Fault("delay", delay_s=3.0, template=CHANNEL))
        channel = await rest.get_channel(1)
        server.script(Fault("delay", delay_s=3.0, template=MESSAGES))
        with pytest.raises(ConnectionFault) as caught:
            await rest.create_message(1, "hello")

    assert channel["id"] == "1"
    assert len(server.received(CHANNEL)) == 2
    assert len(server.received(MESSAGES)) == 1
    assert "no answer within 0.2s" in str(caught.value)


async def test_connection_refused_raises_after_retries() -> None:
    # A port that was just free: nothing listens there.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with serve(max_retries=1) as (_, rest):
        rest.api_url = f"http://127.0.0.1:{port}/api/v10"
        with pytest.raises(ConnectionFault) as caught:
            await rest.get_current_user()

    assert "GET /users/@me: the request failed" in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)
