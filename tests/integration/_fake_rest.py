"""A small Discord-shaped REST server on 127.0.0.1 for the REST client's tests.

It answers like Discord (JSON bodies, ``{code, message}`` errors, ``X-RateLimit-*``
headers), enforces its own per-bucket limits, counts every 429 it had to send, and
can be told to fail the next requests in scripted ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from types import TracebackType
from typing import Any

import orjson
from aiohttp import web

from tether.rest import RESTClient

API = "/api/v10"
# Distinctive, so that a leak anywhere is found by a plain substring search.
TOKEN = "MTA0.fake-rest-token.c2VjcmV0LXRldGhlcg"
MAJOR = ("channel_id", "guild_id", "webhook_id", "webhook_token", "interaction_id")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class BucketRule:
    """A bucket: its hash, requests per window, and window length."""

    bucket: str
    limit: int
    window_s: float


@dataclass(slots=True)
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    template: str
    headers: dict[str, str]
    body: bytes
    at: float
    json: Any = None
    form: dict[str, tuple[str | None, str | None, bytes]] = field(default_factory=dict)


RECEIVED = web.RequestKey("received", Received)


@dataclass(frozen=True, slots=True)
class Fault:
    """A scripted answer for the next request (optionally only on one template)."""

    kind: str  # "status", "drop", "delay", "429"
    status: int = 500
    body: bytes | None = None
    retry_after: float = 0.0
    is_global: bool = False
    delay_s: float = 0.0
    template: str | None = None


@dataclass(slots=True)
class _Window:
    start: float
    count: int = 0


class FakeDiscord:
    """The server. Use as ``async with FakeDiscord() as server``."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.requests: list[Received] = []
        self.rate_limited = 0
        self.rules: dict[str, BucketRule] = {}
        self.faults: deque[Fault] = deque()
        self.forbidden_channels: set[str] = set()
        self.messages: dict[str, dict[str, Any]] = {}
        self._windows: dict[tuple[str, str], _Window] = {}
        self._next_id = 1000
        self._runner: web.AppRunner | None = None
        self.port = 0

    # Setup

    def limit(self, method: str, template: str, rule: BucketRule) -> None:
        """Apply ``rule`` to ``method template`` (template without the API prefix)."""
        self.rules[f"{method} {API}{template}"] = rule

    def script(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    def received(self, template: str) -> list[Received]:
        return [r for r in self.requests if r.template == API + template]

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application(middlewares=[self._middleware])
        add = app.router.add_route
        add("GET", API + "/gateway", self._gateway)
        add("GET", API + "/gateway/bot", self._gateway_bot)
        add("GET", API + "/users/@me", self._user)
        add("GET", API + "/applications/@me", self._application)
        add("GET", API + "/guilds/{guild_id}", self._guild)
        add("GET", API + "/guilds/{guild_id}/roles", self._roles)
        add("GET", API + "/channels/{channel_id}", self._channel)
        add("POST", API + "/channels/{channel_id}/messages", self._create_message)
        add("PATCH", API + "/channels/{channel_id}/messages/{message_id}", self._edit)
        add(
            "DELETE",
            API + "/channels/{channel_id}/messages/{message_id}",
            self._no_content,
        )
        add(
            "POST",
            API + "/channels/{channel_id}/messages/bulk-delete",
            self._bulk_delete,
        )
        reactions = "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}"
        add("PUT", API + reactions + "/@me", self._no_content)
        add("DELETE", API + reactions + "/@me", self._no_content)
        add("DELETE", API + reactions + "/{user_id}", self._no_content)
        add(
            "POST",
            API + "/interactions/{interaction_id}/{interaction_token}/callback",
            self._no_content,
        )
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # The pipeline: record, faults, auth, bucket, handler

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        resource = request.match_info.route.resource
        template = resource.canonical if resource is not None else request.path
        body = await request.read()
        received = Received(
            method=request.method,
            path=request.raw_path,
            template=template,
            headers=dict(request.headers),
            body=body,
            at=time.monotonic(),
        )
        self.requests.append(received)
        if request.content_type == "application/json" and body:
            received.json = orjson.loads(body)
        elif request.content_type == "multipart/form-data":
            received.form = _parse_form(request.headers["Content-Type"], body)
            if "payload_json" in received.form:
                received.json = orjson.loads(received.form["payload_json"][2])
        request[RECEIVED] = received

        fault = self._next_fault(template)
        if fault is not None:
            answer = await self._apply(fault, request)
            if answer is not None:
                return answer

        public = template in (API + "/gateway",) or "/interactions/" in template
        if not public and request.headers.get("Authorization") != f"Bot {self.token}":
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)

        key = f"{request.method} {template}"
        rule = self.rules.get(key) or BucketRule(key, 1000, 60.0)
        major = "/".join(request.match_info.get(n, "") for n in MAJOR)
        headers, retry_after = self._count(rule, major)
        if retry_after is not None:
            self.rate_limited += 1
            return _json(
                {
                    "message": "You are being rate limited.",
                    "retry_after": retry_after,
                    "global": False,
                },
                status=429,
                headers=headers | {"X-RateLimit-Scope": "user"},
            )
        response = await handler(request)
        response.headers.update(headers)
        return response

    def _next_fault(self, template: str) -> Fault | None:
        for fault in self.faults:
            if fault.template is None or API + fault.template == template:
                self.faults.remove(fault)
                return fault
        return None

    async def _apply(self, fault: Fault, request: web.Request) -> web.Response | None:
        if fault.kind == "status":
            body = fault.body if fault.body is not None else b"upstream failed"
            return web.Response(status=fault.status, body=body)
        if fault.kind == "429":
            headers = {"Retry-After": str(math.ceil(fault.retry_after))}
            if fault.is_global:
                headers |= {"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"}
            answer = {
                "message": "You are being rate limited.",
                "retry_after": fault.retry_after,
                "global": fault.is_global,
            }
            return _json(answer, status=429, headers=headers)
        if fault.kind == "drop":
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError
        if fault.kind == "delay":
            await asyncio.sleep(fault.delay_s)
            return None
        raise AssertionError(fault.kind)

    def _count(
        self, rule: BucketRule, major: str
    ) -> tuple[dict[str, str], float | None]:
        now = time.monotonic()
        window = self._windows.get((rule.bucket, major))
        if window is None or now >= window.start + rule.window_s:
            window = self._windows[(rule.bucket, major)] = _Window(start=now)
        reset_after = _ceil_ms(window.start + rule.window_s - now)
        # The epoch is a property of the window, so it is the same in every answer.
        epoch = round(time.time() - now + window.start + rule.window_s, 3)
        limited = window.count >= rule.limit
        if not limited:
            window.count += 1
        headers = {
            "X-RateLimit-Bucket": rule.bucket,
            "X-RateLimit-Limit": str(rule.limit),
            "X-RateLimit-Remaining": str(rule.limit - window.count),
            "X-RateLimit-Reset": f"{epoch:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        }
        return headers, reset_after if limited else None

    # Handlers

    async def _gateway(self, request: web.Request) -> web.Response:
        return _json({"url": f"ws://127.0.0.1:{self.port}/"})

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        return _json(
            {
                "url": f"ws://127.0.0.1:{self.port}/",
                "shards": 3,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 997,
                    "reset_after": 14_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    async def _user(self, request: web.Request) -> web.Response:
        return _json({"id": "42", "username": "tether-bot", "bot": True})

    async def _application(self, request: web.Request) -> web.Response:
        return _json({"id": "43", "name": "tether", "bot_public": True})

    async def _guild(self, request: web.Request) -> web.Response:
        guild_id = request.match_info["guild_id"]
        if guild_id == "404":
            return _json({"message": "Unknown Guild", "code": 10004}, status=404)
        guild: dict[str, Any] = {"id": guild_id, "name": f"guild {guild_id}"}
        if request.query.get("with_counts") == "true":
            guild["approximate_member_count"] = 7
        return _json(guild)

    async def _roles(self, request: web.Request) -> web.Response:
        guild_id = request.match_info["guild_id"]
        return _json([{"id": guild_id, "name": "@everyone"}])

    async def _channel(self, request: web.Request) -> web.Response:
        channel_id = request.match_info["channel_id"]
        if channel_id in self.forbidden_channels:
            return _json({"message": "Missing Access", "code": 50001}, status=403)
        return _json({"id": channel_id, "type": 0, "name": "general"})

    async def _create_message(self, request: web.Request) -> web.Response:
        payload = request[RECEIVED].json or {}
        content = payload.get("content", "")
        has_files = bool(request[RECEIVED].form)
        if not content and not payload.get("embeds") and not has_files:
            return _json(
                {"message": "Cannot send an empty message", "code": 50006}, status=400
            )
        if len(content) > 2000:
            return _json(
                {
                    "message": "Invalid Form Body",
                    "code": 50035,
                    "errors": {
                        "content": {
                            "_errors": [
                                {
                                    "code": "BASE_TYPE_MAX_LENGTH",
                                    "message": "Must be 2000 or fewer in length.",
                                }
                            ]
                        }
                    },
                },
                status=400,
            )
        self._next_id += 1
        message = {
            "id": str(self._next_id),
            "channel_id": request.match_info["channel_id"],
            "content": content,
            "embeds": payload.get("embeds", []),
            "attachments": payload.get("attachments", []),
        }
        if "message_reference" in payload:
            message["message_reference"] = payload["message_reference"]
        self.messages[message["id"]] = message
        return _json(message)

    async def _edit(self, request: web.Request) -> web.Response:
        message = self.messages.get(request.match_info["message_id"])
        if message is None:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        message.update(request[RECEIVED].json or {})
        return _json(message)

    async def _bulk_delete(self, request: web.Request) -> web.Response:
        ids = (request[RECEIVED].json or {}).get("messages", [])
        if not 2 <= len(ids) <= 100:
            return _json({"message": "Invalid Form Body", "code": 50035}, status=400)
        return web.Response(status=204)

    async def _no_content(self, request: web.Request) -> web.Response:
        return web.Response(status=204)


def _json(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        content_type="application/json",
        headers=headers,
    )


def _ceil_ms(seconds: float) -> float:
    return max(0.0, math.ceil(seconds * 1000) / 1000)


def _parse_form(
    content_type: str, body: bytes
) -> dict[str, tuple[str | None, str | None, bytes]]:
    """Split a multipart/form-data body: name -> (filename, content type, bytes)."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    parts: dict[str, tuple[str | None, str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(name, str) and isinstance(payload, bytes)
        parts[name] = (part.get_filename(), part.get_content_type(), payload)
    return parts


@contextlib.asynccontextmanager
async def serve(
    within_s: float = 10.0, **options: Any
) -> AsyncIterator[tuple[FakeDiscord, RESTClient]]:
    """A fresh server and a client aimed at it, the whole use bounded in time."""
    async with (
        asyncio.timeout(within_s),
        FakeDiscord() as server,
        rest_client(server, **options) as rest,
    ):
        yield server, rest


def rest_client(server: FakeDiscord, **options: Any) -> RESTClient:
    """A client aimed at ``server``, with short retry pauses."""
    options.setdefault("retry_backoff_s", 0.01)
    return RESTClient(server.token, api_url=server.api_url, **options)


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until true (callers bound it with asyncio.timeout)."""
    while not condition():
        await asyncio.sleep(0.005)
