"""The emulated REST API: a small router, Discord's error shapes and rate limits.

Every request under ``/api``, ``/api/v9`` or ``/api/v10`` is matched against
:data:`ROUTES`. Each answer carries ``X-RateLimit-*`` headers for its bucket (one
bucket per route and major parameter, as on Discord); an exhausted bucket, the
global limit or a scripted fault answers 429 with Discord's body. Unknown routes
get a JSON 404 and a log line.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from aiohttp import web

from tether._secret import Token
from tether.emulator._events import WorldEvents
from tether.emulator.gateway import Gateway
from tether.emulator.records import RestRecord
from tether.emulator.world import MESSAGE_CHANNEL_TYPES, World

__all__ = ["DEFAULT_ROUTE_LIMITS", "ROUTES", "Rest", "RestSettings", "Route"]

logger = logging.getLogger(__name__)

_PREFIXES: Final[tuple[str, ...]] = ("/api/v10", "/api/v9", "/api")
_FAULT_MODES: Final[frozenset[str]] = frozenset({"hang", "500", "502", "503", "504"})


@dataclass(frozen=True, slots=True)
class Route:
    """One REST route.

    Attributes:
        name: a stable name used by faults and logs (``create_message``).
        method: the HTTP method.
        template: the path template (``/channels/{channel_id}/messages``).
        auth: whether a bot token is required.
    """

    name: str
    method: str
    template: str
    auth: bool = True
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))


ROUTES: Final[tuple[Route, ...]] = (
    Route("get_gateway", "GET", "/gateway", auth=False),
    Route("get_gateway_bot", "GET", "/gateway/bot"),
    Route("get_current_user", "GET", "/users/@me"),
    Route("get_current_user_guilds", "GET", "/users/@me/guilds"),
    Route("create_dm", "POST", "/users/@me/channels"),
    Route("get_user", "GET", "/users/{user_id}"),
    Route("get_current_application", "GET", "/applications/@me"),
    Route("get_oauth2_application", "GET", "/oauth2/applications/@me"),
    Route("get_global_commands", "GET", "/applications/{application_id}/commands"),
    Route("get_guild", "GET", "/guilds/{guild_id}"),
    Route("get_guild_channels", "GET", "/guilds/{guild_id}/channels"),
    Route("get_guild_roles", "GET", "/guilds/{guild_id}/roles"),
    Route("list_guild_members", "GET", "/guilds/{guild_id}/members"),
    Route("get_guild_member", "GET", "/guilds/{guild_id}/members/{user_id}"),
    Route("get_channel", "GET", "/channels/{channel_id}"),
    Route("get_channel_messages", "GET", "/channels/{channel_id}/messages"),
    Route("get_channel_message", "GET", "/channels/{channel_id}/messages/{message_id}"),
    Route("create_message", "POST", "/channels/{channel_id}/messages"),
    Route("edit_message", "PATCH", "/channels/{channel_id}/messages/{message_id}"),
    Route("delete_message", "DELETE", "/channels/{channel_id}/messages/{message_id}"),
    Route(
        "create_reaction",
        "PUT",
        "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
    ),
    Route("trigger_typing", "POST", "/channels/{channel_id}/typing"),
)

_ROUTES_BY_NAME: Final[dict[str, Route]] = {route.name: route for route in ROUTES}

#: Requests allowed per window, by route name; other routes use ``"default"``.
DEFAULT_ROUTE_LIMITS: Final[Mapping[str, tuple[int, float]]] = {
    "create_message": (5, 5.0),
    "edit_message": (5, 5.0),
    "delete_message": (5, 1.0),
    "create_reaction": (1, 0.25),
    "trigger_typing": (5, 5.0),
    "get_gateway_bot": (10, 5.0),
    "default": (50, 1.0),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RestSettings:
    """REST behaviour knobs.

    Attributes:
        rate_limits: enforce per-route buckets (headers are sent either way).
        route_limits: (requests, window seconds) per route name.
        global_limit: requests per second over all authenticated routes, or None.
    """

    rate_limits: bool = True
    route_limits: Mapping[str, tuple[int, float]] = field(
        default_factory=lambda: dict(DEFAULT_ROUTE_LIMITS)
    )
    global_limit: int | None = 50


class _Bucket:
    """A fixed window: ``limit`` requests, refilled ``window_s`` after first use."""

    __slots__ = ("limit", "remaining", "reset_at", "window_s")

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self.remaining = limit
        self.reset_at = 0.0

    def refresh(self, now: float) -> None:
        if now >= self.reset_at:
            self.remaining = self.limit
            self.reset_at = now + self.window_s

    def take(self, now: float) -> bool:
        self.refresh(now)
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


def _json(body: Any, status: int = 200) -> web.Response:
    # Exactly "application/json", no charset: Discord's header, which some
    # libraries compare verbatim.
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json"
    )


def _error(status: int, message: str, code: int = 0, **extra: Any) -> web.Response:
    return _json({"message": message, "code": code, **extra}, status=status)


def _snowflake(value: str) -> int | None:
    return int(value) if value.isdigit() else None


class Rest:
    """Serves the REST API.

    Args:
        world: the world.
        gateway: the gateway (for /gateway/bot and dispatches).
        events: world changes that dispatch.
        token: the valid bot token.
        settings: rate-limit settings.
    """

    def __init__(
        self,
        world: World,
        gateway: Gateway,
        events: WorldEvents,
        token: Token,
        settings: RestSettings,
    ) -> None:
        self.world = world
        self.gateway = gateway
        self.events = events
        self._token = token
        self.settings = settings
        #: The URL GET /gateway and /gateway/bot return (set once bound).
        self.gateway_url = ""
        self.log: list[RestRecord] = []
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._global = _Bucket(settings.global_limit or 1, 1.0)
        self._faults: dict[str, list[str]] = {}
        self._forced: dict[str, list[tuple[float, bool]]] = {}
        self._stopping = asyncio.Event()
        self._handlers: dict[
            str, Callable[[web.Request, dict[str, str]], Awaitable[web.Response]]
        ] = {
            "get_gateway": self._get_gateway,
            "get_gateway_bot": self._get_gateway_bot,
            "get_current_user": self._get_current_user,
            "get_current_user_guilds": self._get_current_user_guilds,
            "create_dm": self._create_dm,
            "get_user": self._get_user,
            "get_current_application": self._get_application,
            "get_oauth2_application": self._get_application,
            "get_global_commands": self._get_global_commands,
            "get_guild": self._get_guild,
            "get_guild_channels": self._get_guild_channels,
            "get_guild_roles": self._get_guild_roles,
            "list_guild_members": self._list_guild_members,
            "get_guild_member": self._get_guild_member,
            "get_channel": self._get_channel,
            "get_channel_messages": self._get_channel_messages,
            "get_channel_message": self._get_channel_message,
            "create_message": self._create_message,
            "edit_message": self._edit_message,
            "delete_message": self._delete_message,
            "create_reaction": self._create_reaction,
            "trigger_typing": self._trigger_typing,
        }

    def app(self) -> web.Application:
        """The aiohttp application serving every path."""
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    # Faults

    @staticmethod
    def resolve_route(route: str) -> str:
        """Return a route's name from its name or ``"METHOD /template"``.

        Raises:
            ValueError: no such route.
        """
        if route in _ROUTES_BY_NAME:
            return route
        method, _, template = route.partition(" ")
        for known in ROUTES:
            if known.method == method.upper() and known.template == template:
                return known.name
        names = ", ".join(sorted(_ROUTES_BY_NAME))
        raise ValueError(f"unknown route {route!r}; known routes: {names}")

    def add_fault(self, route: str, mode: str, count: int) -> None:
        """Make the next ``count`` requests on ``route`` hang or fail with 5xx."""
        if mode not in _FAULT_MODES:
            raise ValueError(
                f"mode must be one of {sorted(_FAULT_MODES)}, got {mode!r}"
            )
        self._faults.setdefault(self.resolve_route(route), []).extend([mode] * count)

    def force_rate_limit(
        self,
        route: str,
        retry_after_s: float,
        *,
        is_global: bool = False,
        count: int = 1,
    ) -> None:
        """Answer the next ``count`` requests on ``route`` with 429."""
        entries = self._forced.setdefault(self.resolve_route(route), [])
        entries.extend([(retry_after_s, is_global)] * count)

    def clear_faults(self) -> None:
        """Forget pending faults and forced 429s."""
        self._faults.clear()
        self._forced.clear()

    def stop(self) -> None:
        """Release hung requests."""
        self._stopping.set()

    # Dispatching requests

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in ROUTES:
            if route.method != method:
                continue
            found = route.pattern.match(path)
            if found:
                return route, found.groupdict()
        return None, {}

    def _is_authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        expected = f"Bot {self._token.reveal()}"
        return hmac.compare_digest(header.encode(), expected.encode())

    def _bucket(self, route_name: str, params: dict[str, str]) -> tuple[str, _Bucket]:
        major = params.get("channel_id") or params.get("guild_id") or ""
        limit, window = self.settings.route_limits.get(
            route_name, self.settings.route_limits.get("default", (50, 1.0))
        )
        key = (route_name, major)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(limit, window)
        return hashlib.sha1(route_name.encode()).hexdigest()[:32], bucket

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        prefix = next(
            (p for p in _PREFIXES if path == p or path.startswith(p + "/")), None
        )
        api_path = path[len(prefix) :] if prefix is not None else path
        route, params = self._match(request.method, api_path) if prefix else (None, {})
        name = route.name if route else "unknown"
        now = time.monotonic()
        bucket_hash, bucket = self._bucket(name, params)
        bucket.refresh(now)

        response = await self._answer(request, route, params, bucket, now)
        reset_after = max(0.0, bucket.reset_at - now)
        response.headers["X-RateLimit-Limit"] = str(bucket.limit)
        response.headers["X-RateLimit-Remaining"] = str(max(0, bucket.remaining))
        response.headers["X-RateLimit-Reset"] = f"{time.time() + reset_after:.3f}"
        response.headers["X-RateLimit-Reset-After"] = f"{reset_after:.3f}"
        response.headers["X-RateLimit-Bucket"] = bucket_hash
        self.log.append(
            RestRecord(
                time.monotonic(), request.method, name, api_path, response.status
            )
        )
        if route is None:
            logger.warning("unknown REST route %s %s", request.method, path)
        return response

    async def _answer(
        self,
        request: web.Request,
        route: Route | None,
        params: dict[str, str],
        bucket: _Bucket,
        now: float,
    ) -> web.Response:
        if route is None:
            return _error(404, "404: Not Found")

        faults = self._faults.get(route.name)
        if faults:
            mode = faults.pop(0)
            logger.info("REST fault on %s: %s", route.name, mode)
            if mode == "hang":
                await self._stopping.wait()
                return _error(503, "emulator stopped")
            if mode == "502":
                return web.Response(
                    status=502,
                    text="<html><body><h1>502 Bad Gateway</h1></body></html>",
                    content_type="text/html",
                )
            return _error(int(mode), f"{mode}: Server Error")

        if route.auth and not self._is_authorized(request):
            return _error(401, "401: Unauthorized")

        forced = self._forced.get(route.name)
        if forced:
            retry_after, is_global = forced.pop(0)
            bucket.remaining = 0
            bucket.reset_at = now + retry_after
            return self._too_many(retry_after, is_global=is_global)

        if route.auth and self.settings.rate_limits:
            if self.settings.global_limit is not None and not self._global.take(now):
                return self._too_many(self._global.reset_at - now, is_global=True)
            if not bucket.take(now):
                return self._too_many(bucket.reset_at - now, is_global=False)

        return await self._handlers[route.name](request, params)

    @staticmethod
    def _too_many(retry_after: float, *, is_global: bool) -> web.Response:
        retry_after = round(max(retry_after, 0.001), 3)
        body = {
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": is_global,
            "code": 0,
        }
        response = _json(body, status=429)
        response.headers["Retry-After"] = str(math.ceil(retry_after))
        response.headers["X-RateLimit-Scope"] = "global" if is_global else "user"
        if is_global:
            response.headers["X-RateLimit-Global"] = "true"
        return response

    # Route handlers

    async def _get_gateway(
        self, request: web.Request, params: dict[str, str]
    ) -> web.Response:
        return _json({"url": self.gateway_url})

    async def _get_gateway_bot(
        self, request: web.Request, params: dict[str, str]
    ) -> web.Response:
        body = {
            "url": self.gateway_url,
            "shards": self.gateway.settings.recommended_shards,
            "session_start_limit": self.gateway.session_start_limit(),
        }
        return _json(body)

    def _me(self) -> dict[str, Any]:
        return {
            **self.world.bot.payload,
            "verified": True,
            "mfa_enabled": False,
            "locale": "en-US",
            "premium_type": 0,
            "email": None,
            "bio": "",
        }

    async def _get_current_user(
        self, request: web.Request, params: dict[str, str]
    ) -> web.Response:
        return _json(self._me())

    async def _get_current_user_guilds(
        self, request: web.Request, params: dict[str, str]
    ) -> web.Response:
        guilds: list[dict[str, Any]] = [
            {
                "id": str(guild.id),
                "name": guild.name,
                "icon": guild.info.get("icon"),
                "banner": None,
                "owner": False,
                "permissions": "1071698660929",
                "features": [],
            }
            for guild in self.world.guilds.values()
        ]
        limit = int(request.query.get("limit", "200"))
        return _json(guilds[: max(1, min(limit, 200))])

    async def _create_dm(
        self, request: web.Request, params: dict[str, str]
    ) -> web.Response:
        body = await self._body(request)
        user_id = _snowflake(str(body.get("recipient_id", "")))
        if user_id is None or user_id not in self.world.users:
            return _error(400, "Invalid Recipient(s)", 50033)
        return _json(self.world.open_dm(user_id))

    async def _get_user(
        self, request: web.Request, params: dict[str, str]
    ) -> web.Response:
        user_id = _snowflake(params["user_id"])
        user = self.world.users.get(user_id or 0)
        if user is None:
            return _error(404, "Unknown User", 10013)
        return _json(user.payload)

    async def _get_application(
        self, request: web.Request, params: dict[str, str]
    ) -> web.Response:
        app_id = str(self.world.application_id)
        owner = next(iter(self.world.users.values()))
        for user in self.world.users.values():
            if not user.bot:
                owner = user
                break
        body: dict[str, Any] = {
            "id": app_id,
            "name": self.world.bot.username,
            "icon": None,
            "description": "An application served by the tether emulator.",
            "summary": "",
            "type": None,
            "rpc_origins": [],
            "bot_public": True,
            "bot_require_code_grant": False,
            "bot": self.world.bot.payload,
            "terms_of_service_url": None,
            "privacy_policy_url": None,
            "owner": owner.payload,
            "verify_key": "0" * 64,
            "team": None,
            "guild_id": None,
            "flags": self.gateway.application_flags(),
            "tags": [],
            "install_params": None,
            "custom_install_url": None,
            "approximate_guild_count": len(self.world.guilds),
            "approximate_user_install_count": 0,
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "hook": True,
            "is_monetized": False,
            "integration_types_config": {"0": {}},
        }
        return _json(body)

    async def _get_global_commands(
        self, request: web.Request, params: dict[str, str]
    ) -> web.Response:
        if params["application_id"] != str(self.world.application_id):
            return _error(403, "Missing Access", 50001)
        return _json([])

    def _guild(self, params: dict[str, str]) -> Any:
        guild = self.world.guilds.get(_snowflake(params["guild_id"]) or 0)
        if guild is None:
            return _error(404, "Unknown Guild", 10004)
        if guild.unavailable:
            return _error(503, "Guild unavailable", 0)
        return guild

    async def _get_guild(
        self, request: web.Request, params: dict[str, str]
    ) -> web.Response:
        guild = self._guild(params)
        if isinstance(guild, web.Response):
            return guild
        counts = request.query.get("with_counts", "false").lower() == "true"
        return _json(self.world.guild_payload(guild, counts=counts))

    async def _get_guild_channels(
        self, request: web.Request, params: dict[str, str]
    ) -> web.Response:
        guild = self._guild(params)
        if isinstance(guild, web.Response):
            return guild
        return _json(list(guild.channels.values()))

    async def _get_guild_roles(
        self, request: web.Request, params: dict[str, str]
    ) -> web.Response:
        guild = self._guild(params)
        if isinstance(guild, web.Response):
            return guild
        return _json(list(guild.roles.values()))

    async def _list_guild_members(
        self, request: web.Request, params: dict[str, str]
    ) -> web.Response:
        guild = self._guild(params)
        if isinstance(guild, web.Response):
            return guild
        try:
            limit = int(request.query.get("limit", "1"))
            after = int(request.query.get("after", "0"))
        except ValueError:
            return _error(400, "Invalid Form Body", 50035)
        if not 1 <= limit <= 1000:
            return _error(400, "Invalid Form Body", 50035)
        ids = sorted(uid for uid in guild.members if uid > after)[:limit]
        return _json(
            [self.world.member_payload(guild, guild.members[uid]) for uid in ids]
        )

    async def _get_guild_member(
        self, request: web.Request, params: dict[str, str]
    ) -> web.Response:
        guild = self._guild(params)
        if isinstance(guild, web.Response):
            return guild
        member = guild.members.get(_snowflake(params["user_id"]) or 0)
        if member is None:
            return _error(404, "Unknown Member", 10007)
        return _json(self.world.member_payload(guild, member))

    def _channel(
        self, params: dict[str, str]
    ) -> tuple[int, dict[str, Any]] | web.Response:
        channel_id = _snowflake(params["channel_id"]) or 0
        channel = self.world.channel(channel_id)
        if channel is None:
            return _error(404, "Unknown Channel", 10003)
        guild_id = self.world.guild_id_of_channel(channel_id)
        if guild_id is not None and self.world.guilds[guild_id].unavailable:
            return _error(503, "Guild unavailable", 0)
        return channel_id, channel

    async def _get_channel(
        self, request: web.Request, params: dict[str, str]
    ) -> web.Response:
        found = self._channel(params)
        if isinstance(found, web.Response):
            return found
        return _json(found[1])

    async def _get_channel_messages(
        self, request: web.Request, params: dict[str, str]
    ) -> web.Response:
        found = self._channel(params)
        if isinstance(found, web.Response):
            return found
        try:
            limit = int(request.query.get("limit", "50"))
        except ValueError:
            return _error(400, "Invalid Form Body", 50035)
        messages = self.world.messages(found[0])
        before = request.query.get("before")
        after = request.query.get("after")
        if before is not None and before.isdigit():
            messages = [m for m in messages if int(m["id"]) < int(before)]
        if after is not None and after.isdigit():
            messages = [m for m in messages if int(m["id"]) > int(after)]
        # Newest first, as Discord answers.
        return _json(list(reversed(messages))[: max(1, min(limit, 100))])

    async def _get_channel_message(
        self, request: web.Request, params: dict[str, str]
    ) -> web.Response:
        found = self._channel(params)
        if isinstance(found, web.Response):
            return found
        message = self.world.message(found[0], _snowflake(params["message_id"]) or 0)
        if message is None:
            return _error(404, "Unknown Message", 10008)
        return _json(message)

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        """The JSON body, or the payload_json part of a multipart body."""
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            raw = form.get("payload_json")
            if isinstance(raw, str | bytes | bytearray):
                decoded = orjson.loads(raw)
                return decoded if isinstance(decoded, dict) else {}
            return {}
        if not request.can_read_body:
            return {}
        decoded = orjson.loads(await request.read())
        return decoded if isinstance(decoded, dict) else {}

    async def _create_message(
        self, request: web.Request, params: dict[str, str]
    ) -> web.Response:
        found = self._channel(params)
        if isinstance(found, web.Response):
            return found
        channel_id, channel = found
        try:
            body = await self._body(request)
        except orjson.JSONDecodeError:
            return _error(400, "400: Bad Request", 50109)
        content = body.get("content") or ""
        embeds = body.get("embeds") or []
        if not isinstance(content, str) or not isinstance(embeds, list):
            return _error(400, "Invalid Form Body", 50035)
        if len(content) > 2000:
            errors = {
                "content": {
                    "_errors": [
                        {
                            "code": "BASE_TYPE_MAX_LENGTH",
                            "message": "Must be 2000 or fewer in length.",
                        }
                    ]
                }
            }
            return _error(400, "Invalid Form Body", 50035, errors=errors)
        if (
            not content
            and not embeds
            and not body.get("sticker_ids")
            and not body.get("components")
        ):
            return _error(400, "Cannot send an empty message", 50006)
        if channel["type"] not in MESSAGE_CHANNEL_TYPES:
            return _error(400, "Cannot send messages in a non-text channel", 50008)
        nonce = body.get("nonce")
        reference = body.get("message_reference")
        message = self.events.message_create(
            channel_id,
            self.world.bot.id,
            content,
            nonce=nonce if isinstance(nonce, int | str) else None,
            tts=body.get("tts") is True,
            embeds=embeds,
            message_reference=reference if isinstance(reference, dict) else None,
            flags=body.get("flags") if isinstance(body.get("flags"), int) else 0,
        )
        return _json(message)

    async def _edit_message(
        self, request: web.Request, params: dict[str, str]
    ) -> web.Response:
        found = self._channel(params)
        if isinstance(found, web.Response):
            return found
        channel_id = found[0]
        message_id = _snowflake(params["message_id"]) or 0
        message = self.world.message(channel_id, message_id)
        if message is None:
            return _error(404, "Unknown Message", 10008)
        if message["author"]["id"] != str(self.world.bot.id):
            return _error(403, "Cannot edit a message authored by another user", 50005)
        edited = self.events.message_update(
            channel_id, message_id, await self._body(request)
        )
        return _json(edited)

    async def _delete_message(
        self, request: web.Request, params: dict[str, str]
    ) -> web.Response:
        found = self._channel(params)
        if isinstance(found, web.Response):
            return found
        if not self.events.message_delete(
            found[0], _snowflake(params["message_id"]) or 0
        ):
            return _error(404, "Unknown Message", 10008)
        return web.Response(status=204)

    async def _create_reaction(
        self, request: web.Request, params: dict[str, str]
    ) -> web.Response:
        found = self._channel(params)
        if isinstance(found, web.Response):
            return found
        message_id = _snowflake(params["message_id"]) or 0
        if not self.events.reaction_add(
            found[0], message_id, self.world.bot.id, params["emoji"]
        ):
            return _error(404, "Unknown Message", 10008)
        return web.Response(status=204)

    async def _trigger_typing(
        self, request: web.Request, params: dict[str, str]
    ) -> web.Response:
        found = self._channel(params)
        if isinstance(found, web.Response):
            return found
        self.events.typing_start(found[0], self.world.bot.id)
        return web.Response(status=204)
