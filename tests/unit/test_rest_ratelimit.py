"""The pure rate-limit bookkeeping of tether.rest, driven by a fake clock."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from tether.rest.ratelimit import Permit, RateLimiter, RateLimitInfo, Wait

MESSAGES = "POST /channels/{channel_id}/messages"
CHANNEL = "GET /channels/{channel_id}"
REACTIONS = "PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"


def info(
    remaining: int,
    reset_after_s: float,
    *,
    bucket: str = "abc",
    limit: int = 5,
    reset_epoch: float | None = None,
) -> RateLimitInfo:
    return RateLimitInfo(
        bucket=bucket,
        limit=limit,
        remaining=remaining,
        reset_after_s=reset_after_s,
        reset_epoch=reset_epoch,
    )


def granted(decision: Permit | Wait) -> Permit:
    assert isinstance(decision, Permit), decision
    return decision


def waits(decision: Permit | Wait) -> Wait:
    assert isinstance(decision, Wait), decision
    return decision


def learn_bucket(
    limiter: RateLimiter, route: str, major: str, now: float, answer: RateLimitInfo
) -> None:
    """Send one request on ``route`` and feed back ``answer``."""
    limiter.complete(
        granted(limiter.acquire(route, major, now)), now, answer, status=200
    )


# Headers


def test_headers_are_parsed_in_any_case() -> None:
    parsed = RateLimitInfo.from_headers(
        {
            "x-ratelimit-bucket": "abcd1234",
            "X-RateLimit-Limit": "5",
            "X-RATELIMIT-REMAINING": "4",
            "X-RateLimit-Reset": "1470173023.123",
            "X-RateLimit-Reset-After": "1.5",
            "X-RateLimit-Global": "true",
            "X-RateLimit-Scope": "shared",
        }
    )
    assert parsed == RateLimitInfo(
        bucket="abcd1234",
        limit=5,
        remaining=4,
        reset_epoch=1470173023.123,
        reset_after_s=1.5,
        is_global=True,
        scope="shared",
    )


def test_missing_or_malformed_headers_read_as_unknown() -> None:
    parsed = RateLimitInfo.from_headers(
        {"X-RateLimit-Remaining": "lots", "X-RateLimit-Reset-After": "nan"}
    )
    assert parsed == RateLimitInfo()


# Buckets


def test_unknown_bucket_allows_one_request_in_flight() -> None:
    limiter = RateLimiter()
    first = granted(limiter.acquire(MESSAGES, "1", 0.0))

    second = waits(limiter.acquire(MESSAGES, "1", 0.0))
    assert second.delay_s is None
    assert second.reason == "bucket"

    limiter.complete(first, 0.1, info(4, 1.0), status=200)
    granted(limiter.acquire(MESSAGES, "1", 0.1))


def test_remaining_slots_are_granted_concurrently_then_nothing_until_reset() -> None:
    limiter = RateLimiter()
    learn_bucket(limiter, MESSAGES, "1", 0.0, info(4, 2.0))

    permits = [granted(limiter.acquire(MESSAGES, "1", 0.5)) for _ in range(4)]
    assert len(permits) == 4
    wait = waits(limiter.acquire(MESSAGES, "1", 0.5))
    assert wait.delay_s == pytest.approx(1.5)

    # Still exhausted just before the reset, even with every answer back.
    for permit in permits:
        limiter.complete(permit, 0.6, info(0, 1.4), status=200)
    waits(limiter.acquire(MESSAGES, "1", 1.99))
    granted(limiter.acquire(MESSAGES, "1", 2.0))


def test_exhausted_bucket_waits_reset_after() -> None:
    limiter = RateLimiter()
    learn_bucket(limiter, CHANNEL, "9", 10.0, info(0, 3.25, limit=1))

    wait = waits(limiter.acquire(CHANNEL, "9", 10.0))
    assert wait.delay_s == pytest.approx(3.25)
    assert wait.reason == "bucket"
    granted(limiter.acquire(CHANNEL, "9", 13.25))


def test_major_parameters_keep_buckets_apart() -> None:
    limiter = RateLimiter()
    learn_bucket(limiter, MESSAGES, "1", 0.0, info(0, 5.0, limit=1))

    waits(limiter.acquire(MESSAGES, "1", 0.0))
    granted(limiter.acquire(MESSAGES, "2", 0.0))


def test_webhook_id_and_token_together_name_the_bucket() -> None:
    limiter = RateLimiter()
    route = "POST /webhooks/{webhook_id}/{webhook_token}"
    learn_bucket(limiter, route, "7/token-a", 0.0, info(0, 5.0, limit=1))

    waits(limiter.acquire(route, "7/token-a", 0.0))
    granted(limiter.acquire(route, "7/token-b", 0.0))


def test_routes_answering_with_one_hash_share_a_bucket() -> None:
    limiter = RateLimiter()
    add = REACTIONS
    remove = "DELETE /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"
    learn_bucket(limiter, add, "1", 0.0, info(1, 1.0, bucket="react"))
    learn_bucket(limiter, remove, "1", 0.1, info(0, 0.9, bucket="react"))

    assert limiter.bucket_hash(add) == limiter.bucket_hash(remove) == "react"
    wait = waits(limiter.acquire(add, "1", 0.2))
    assert wait.delay_s == pytest.approx(0.8)


def test_answers_are_not_trusted_over_requests_still_in_flight() -> None:
    limiter = RateLimiter()
    learn_bucket(limiter, MESSAGES, "1", 0.0, info(4, 1.0, reset_epoch=100.0))
    permits = [granted(limiter.acquire(MESSAGES, "1", 0.1)) for _ in range(4)]

    # The first answer was counted before the three others reached the server:
    # it says 3 remain, but those three are already spent.
    limiter.complete(permits[0], 0.2, info(3, 0.8, reset_epoch=100.0), status=200)
    waits(limiter.acquire(MESSAGES, "1", 0.2))


def test_new_window_counts_requests_in_flight_as_spent() -> None:
    limiter = RateLimiter()
    learn_bucket(limiter, MESSAGES, "1", 0.0, info(0, 1.0, limit=3, reset_epoch=10.0))
    permits = [granted(limiter.acquire(MESSAGES, "1", 1.0)) for _ in range(3)]
    waits(limiter.acquire(MESSAGES, "1", 1.0))

    # The first answer of the new window says 2 left; the two others in flight
    # will take them.
    limiter.complete(permits[0], 1.1, info(2, 0.9, limit=3, reset_epoch=11.0))
    waits(limiter.acquire(MESSAGES, "1", 1.1))


def test_late_answer_from_an_old_window_changes_nothing() -> None:
    limiter = RateLimiter()
    learn_bucket(limiter, MESSAGES, "1", 0.0, info(1, 1.0, limit=2, reset_epoch=10.0))
    slow = granted(limiter.acquire(MESSAGES, "1", 0.5))
    # The window ends; a fresh request learns the new one, which ends at 2.0.
    fresh = granted(limiter.acquire(MESSAGES, "1", 1.0))
    limiter.complete(fresh, 1.1, info(0, 0.9, limit=2, reset_epoch=11.0))

    # The slow answer says its window ends now: believing it would refill the
    # bucket at 1.2, inside the new window.
    limiter.complete(slow, 1.2, info(0, 0.0, limit=2, reset_epoch=10.0))
    assert waits(limiter.acquire(MESSAGES, "1", 1.5)).delay_s == pytest.approx(0.5)
    granted(limiter.acquire(MESSAGES, "1", 2.0))


def test_success_without_bucket_header_leaves_only_the_global_limit() -> None:
    limiter = RateLimiter()
    learn_bucket(limiter, "GET /gateway", "", 0.0, RateLimitInfo())

    permits = [limiter.acquire("GET /gateway", "", 0.0) for _ in range(10)]
    assert all(isinstance(p, Permit) for p in permits)


def test_server_error_without_headers_keeps_the_route_serialised() -> None:
    limiter = RateLimiter()
    first = granted(limiter.acquire(CHANNEL, "1", 0.0))
    limiter.complete(first, 0.1, RateLimitInfo(), status=502)

    granted(limiter.acquire(CHANNEL, "1", 0.1))
    waits(limiter.acquire(CHANNEL, "1", 0.1))


def test_no_answer_releases_the_slot_of_an_unknown_bucket() -> None:
    limiter = RateLimiter()
    first = granted(limiter.acquire(CHANNEL, "1", 0.0))
    limiter.complete(first, 0.5)

    granted(limiter.acquire(CHANNEL, "1", 0.5))


# 429


def test_bucket_429_holds_that_bucket_for_retry_after() -> None:
    limiter = RateLimiter()
    learn_bucket(limiter, MESSAGES, "1", 0.0, info(3, 1.0))
    permit = granted(limiter.acquire(MESSAGES, "1", 0.1))

    limiter.rate_limited(permit, 0.2, 2.0, is_global=False, info=info(0, 2.0))

    wait = waits(limiter.acquire(MESSAGES, "1", 0.2))
    assert wait.delay_s == pytest.approx(2.0)
    granted(limiter.acquire(MESSAGES, "2", 0.2))
    granted(limiter.acquire(MESSAGES, "1", 2.2))
    assert limiter.statistics().rate_limited == 1


def test_429_retry_after_overrules_the_known_window_end() -> None:
    limiter = RateLimiter()
    learn_bucket(limiter, CHANNEL, "1", 0.0, info(900, 60.0, limit=1000))
    permit = granted(limiter.acquire(CHANNEL, "1", 1.0))
    limiter.rate_limited(permit, 1.0, 0.25, is_global=False)

    assert waits(limiter.acquire(CHANNEL, "1", 1.0)).delay_s == pytest.approx(0.25)
    granted(limiter.acquire(CHANNEL, "1", 1.25))


def test_429_without_headers_still_holds_the_route() -> None:
    limiter = RateLimiter()
    permit = granted(limiter.acquire(CHANNEL, "1", 0.0))
    limiter.rate_limited(permit, 0.0, 1.0, is_global=False)

    assert waits(limiter.acquire(CHANNEL, "1", 0.5)).delay_s == pytest.approx(0.5)
    granted(limiter.acquire(CHANNEL, "1", 1.0))


def test_429_on_a_route_believed_unlimited_gives_it_a_bucket() -> None:
    limiter = RateLimiter()
    learn_bucket(limiter, "GET /gateway", "", 0.0, RateLimitInfo())
    permit = granted(limiter.acquire("GET /gateway", "", 1.0))
    limiter.rate_limited(permit, 1.0, 0.5, is_global=False)

    waits(limiter.acquire("GET /gateway", "", 1.2))
    granted(limiter.acquire("GET /gateway", "", 1.5))


def test_global_429_pauses_every_route() -> None:
    limiter = RateLimiter()
    permit = granted(limiter.acquire(MESSAGES, "1", 0.0))
    limiter.rate_limited(permit, 0.0, 1.5, is_global=True)

    for route, major in [(MESSAGES, "1"), (CHANNEL, "2"), ("GET /gateway", "")]:
        wait = waits(limiter.acquire(route, major, 1.0))
        assert wait.reason == "global"
        assert wait.delay_s == pytest.approx(0.5)
    assert limiter.global_paused_until() == pytest.approx(1.5)
    granted(limiter.acquire(CHANNEL, "2", 1.5))


# The global limit


def test_global_limit_allows_fifty_per_second_by_default() -> None:
    limiter = RateLimiter()
    for channel in range(50):
        granted(limiter.acquire(CHANNEL, str(channel), 0.0))

    wait = waits(limiter.acquire(CHANNEL, "50", 0.4))
    assert wait.reason == "global"
    assert wait.delay_s == pytest.approx(0.6)
    granted(limiter.acquire(CHANNEL, "50", 1.0))


def test_global_limit_is_a_sliding_window() -> None:
    limiter = RateLimiter(global_limit=4)
    for channel in range(2):
        granted(limiter.acquire(CHANNEL, str(channel), 0.0))
    for channel in range(2, 4):
        granted(limiter.acquire(CHANNEL, str(channel), 0.5))

    # The two grants of 0.0 leave the window at 1.0; those of 0.5 only at 1.5.
    granted(limiter.acquire(CHANNEL, "4", 1.0))
    granted(limiter.acquire(CHANNEL, "5", 1.0))
    assert waits(limiter.acquire(CHANNEL, "6", 1.0)).delay_s == pytest.approx(0.5)


def test_requests_outside_the_global_limit_are_not_counted() -> None:
    limiter = RateLimiter(global_limit=2)
    route = "POST /interactions/{interaction_id}/{interaction_token}/callback"
    for interaction in range(5):
        granted(limiter.acquire(route, str(interaction), 0.0, counts_global=False))
    granted(limiter.acquire(CHANNEL, "1", 0.0))
    granted(limiter.acquire(CHANNEL, "2", 0.0))
    waits(limiter.acquire(CHANNEL, "3", 0.0))


def test_a_wait_on_a_bucket_spends_no_global_slot() -> None:
    limiter = RateLimiter(global_limit=2)
    granted(limiter.acquire(CHANNEL, "1", 0.0))
    for _ in range(5):
        waits(limiter.acquire(CHANNEL, "1", 0.0))
    granted(limiter.acquire(CHANNEL, "2", 0.0))


def test_margin_is_added_to_every_wait_from_server_timing() -> None:
    limiter = RateLimiter(margin_s=0.02)
    learn_bucket(limiter, CHANNEL, "1", 0.0, info(0, 1.0, limit=1))
    bucket = waits(limiter.acquire(CHANNEL, "1", 1.0))
    assert bucket.reason == "bucket"
    assert bucket.delay_s == pytest.approx(0.02)
    permit = granted(limiter.acquire(CHANNEL, "1", 1.02))

    limiter.rate_limited(permit, 1.1, 0.5, is_global=True)
    paused = waits(limiter.acquire(CHANNEL, "2", 1.1))
    assert paused.reason == "global"
    assert paused.delay_s == pytest.approx(0.52)


def test_margin_lengthens_the_global_period() -> None:
    limiter = RateLimiter(global_limit=1, margin_s=0.02)
    granted(limiter.acquire(CHANNEL, "1", 0.0))
    wait = waits(limiter.acquire(CHANNEL, "2", 0.5))
    assert wait.reason == "global"
    assert wait.delay_s == pytest.approx(0.52)


def test_reset_epochs_rounded_differently_name_one_window() -> None:
    limiter = RateLimiter()
    learn_bucket(limiter, MESSAGES, "1", 0.0, info(4, 1.0, reset_epoch=100.000))
    permits = [granted(limiter.acquire(MESSAGES, "1", 0.1)) for _ in range(4)]
    limiter.complete(permits[0], 0.2, info(3, 0.8, reset_epoch=100.001))

    waits(limiter.acquire(MESSAGES, "1", 0.2))


# Housekeeping


def test_idle_buckets_are_dropped_and_relearnt() -> None:
    limiter = RateLimiter()
    for channel in range(20):
        learn_bucket(limiter, MESSAGES, str(channel), 0.0, info(4, 1.0))
    assert limiter.statistics().buckets == 20

    granted(limiter.acquire(MESSAGES, "0", 120.0))
    assert limiter.statistics().buckets == 1
    assert limiter.statistics().in_flight == 1


def test_invalid_global_limit_is_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(global_limit=0)


# A simulated Discord bucket, driven at random


class _Server:
    """One Discord bucket as the server keeps it: windows of `limit` requests."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self.start = -1.0
        self.count = 0
        self.rejected = 0

    def receive(self, now: float) -> RateLimitInfo | None:
        if self.start < 0 or now >= self.start + self.window_s:
            self.start, self.count = now, 0
        end = self.start + self.window_s
        if self.count >= self.limit:
            self.rejected += 1
            return None
        self.count += 1
        return RateLimitInfo(
            bucket="sim",
            limit=self.limit,
            remaining=self.limit - self.count,
            reset_epoch=1000.0 + end,
            reset_after_s=end - now,
        )


@dataclass
class _Sent:
    arrival: float  # at the server
    back: float  # the answer, here
    permit: Permit
    answer: RateLimitInfo | None = None


@pytest.mark.parametrize("seed", range(20))
def test_random_concurrent_traffic_never_meets_a_429(seed: int) -> None:
    """Requests granted at random times, answered after random delays, in any
    order: the server never has to reject one, and every request gets through."""
    rng = random.Random(seed)
    server = _Server(limit=rng.randint(1, 5), window_s=rng.choice([0.5, 1.0, 2.0]))
    limiter = RateLimiter()
    now = 0.0
    pending = 40
    sent: list[_Sent] = []
    answered = 0

    for _ in range(100_000):
        if not pending and not sent:
            break
        now += rng.expovariate(20.0)

        for request in sorted(sent, key=lambda r: r.arrival):
            if request.arrival <= now and request.answer is None:
                request.answer = server.receive(request.arrival)
                assert request.answer is not None, "the server rejected a request"
        for request in [r for r in sent if r.back <= now]:
            sent.remove(request)
            limiter.complete(request.permit, request.back, request.answer, status=200)
            answered += 1

        while pending:
            decision = limiter.acquire("POST /sim", "1", now)
            if isinstance(decision, Wait):
                break
            pending -= 1
            arrival = now + rng.uniform(0.0, 0.05)
            back = arrival + rng.uniform(0.0, 0.05)
            sent.append(_Sent(arrival, back, decision))

    assert server.rejected == 0
    assert answered == 40
