"""RESTClient: Discord's HTTP API over aiohttp, with rate limits and retries.

Each request goes through the same steps:

1. Wait for its turn: requests on one route and major parameters queue in order,
   and the head of the queue waits until :class:`~tether.rest.ratelimit.RateLimiter`
   grants a slot (bucket and global limits).
2. Send it and read the whole answer (``timeout_s`` per attempt).
3. Feed the rate-limit headers back to the limiter, then decide: return the
   decoded JSON, wait out a 429 and send again, retry an idempotent request after
   502/503/504 or a connection error, or raise the typed error.

aiohttp's exceptions are translated here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import random
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote

import aiohttp
import orjson
from multidict import CIMultiDictProxy
from yarl import URL

from tether._secret import Token
from tether.errors import (
    ClientStateError,
    ConnectionFault,
    LocalProtocolError,
    RateLimitedError,
    RemoteProtocolError,
)
from tether.rest._errors import error_for, parse_rate_limited
from tether.rest.files import File
from tether.rest.gateway import GatewayBot
from tether.rest.ratelimit import GLOBAL_LIMIT, Permit, RateLimiter, RateLimitInfo
from tether.rest.route import Route

__all__ = ["DEFAULT_API_URL", "USER_AGENT", "RESTClient", "Snowflake"]

logger = logging.getLogger(__name__)

#: Discord's REST base URL, API version 10. Defined here; tests never use it.
DEFAULT_API_URL: Final = "https://discord.com/api/v10"


def _version() -> str:
    try:
        return importlib.metadata.version("tether")
    except importlib.metadata.PackageNotFoundError:
        return "0"


#: The user agent in the form Discord asks for: ``DiscordBot ($url, $version)``.
USER_AGENT: Final = f"DiscordBot (https://github.com/tether-py/tether, {_version()})"

#: An ID as tether accepts it: an ``int`` or its decimal string.
Snowflake = int | str

# Answers after which an idempotent request is sent again.
_RETRY_STATUSES: Final = frozenset({502, 503, 504})

# Faults of the transport that a second attempt may not meet.
_TRANSIENT_ERRORS: Final = (
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
    TimeoutError,
)

# Bounds on one call: 429 answers waited out, and waits for a rate-limit slot.
_MAX_RATE_LIMITED: Final = 5
_MAX_WAITS: Final = 1000

# Added to every rate-limit wait: servers round their times to the millisecond.
_RATE_LIMIT_MARGIN_S: Final = 0.02

# The longest pause between two retries, in seconds.
_MAX_BACKOFF_S: Final = 10.0


class _Turn:
    """The queue of requests on one route and major parameters (FIFO lock)."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class RESTClient:
    """An asyncio client for Discord's REST API.

    The aiohttp session is created on the first request, inside the running event
    loop. Close the client with :meth:`close` or use it as ``async with``.

    Args:
        token: the bot token (a :class:`~tether._secret.Token` or a string, with or
            without ``"Bot "``). Never logged or shown.
        api_url: the REST base URL, with the API version (``.../api/v10``).
        timeout_s: the longest one attempt may take, answer read included.
        max_retries: how many times an idempotent request (GET, HEAD, OPTIONS, PUT,
            DELETE) is sent again after 502/503/504, a connection error or a timeout.
        max_rate_limit_wait_s: the longest single rate-limit wait accepted; a longer
            one raises :class:`~tether.errors.RateLimitedError` instead.
        user_agent: the ``User-Agent`` header.
        retry_backoff_s: the first pause between retries; it doubles each time,
            with jitter, up to 10 s.
        global_limit: requests per second allowed across all routes.
        max_response_size: the largest answer body read, in bytes; a larger one
            raises :class:`~tether.errors.RemoteProtocolError` (Discord's answers
            are far smaller; this bounds memory against a broken or hostile
            server).

    Attributes:
        rate_limiter: the :class:`~tether.rest.ratelimit.RateLimiter` deciding when
            each request may go; its ``statistics()`` count grants, waits and 429s.

    Raises:
        ValueError: a number is out of range.
    """

    def __init__(
        self,
        token: Token | str,
        *,
        api_url: str = DEFAULT_API_URL,
        timeout_s: float = 30.0,
        max_retries: int = 3,
        max_rate_limit_wait_s: float = 60.0,
        user_agent: str = USER_AGENT,
        retry_backoff_s: float = 0.5,
        global_limit: int = GLOBAL_LIMIT,
        max_response_size: int = 32 * 1024 * 1024,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        if max_rate_limit_wait_s < 0:
            raise ValueError("max_rate_limit_wait_s must be 0 or more")
        if retry_backoff_s < 0:
            raise ValueError("retry_backoff_s must be 0 or more")

        # The token, kept wrapped; revealed only into the Authorization header.
        self._token = token if isinstance(token, Token) else Token(token)
        # The REST base, without a trailing slash.
        self.api_url = api_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.max_rate_limit_wait_s = max_rate_limit_wait_s
        self.user_agent = user_agent
        self.retry_backoff_s = retry_backoff_s
        self.max_response_size = max_response_size
        # The pure rate-limit bookkeeping.
        self.rate_limiter = RateLimiter(
            global_limit=global_limit, margin_s=_RATE_LIMIT_MARGIN_S
        )

        # Created by the first request, in the running loop.
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        # Set (and replaced) each time a permit is handed back, to wake waiters.
        self._released: asyncio.Event | None = None
        # One FIFO queue per (route key, major parameters).
        self._turns: dict[tuple[str, str], _Turn] = {}
        # Jitter for retry backoff.
        self._rng = random.Random()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"RESTClient(api_url={self.api_url!r}, {state})"

    # Lifecycle

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`close` was called; a closed client sends nothing."""
        return self._closed

    async def close(self) -> None:
        """Close the HTTP session. Requests made afterwards raise ClientStateError."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> RESTClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientStateError("the REST client is closed; create a new one")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": self.user_agent},
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            )
        return self._session

    # The generic request

    async def request(
        self,
        method: str,
        route: str,
        /,
        *,
        json: Any = None,
        query: Mapping[str, str | int | bool] | None = None,
        files: Sequence[File] | None = None,
        reason: str | None = None,
        auth: bool = True,
        **params: Snowflake,
    ) -> Any:
        """Send any request and return the decoded JSON answer.

        Example: ``await rest.request("GET", "/guilds/{guild_id}/roles",
        guild_id=guild_id)``.

        Args:
            method: the HTTP method.
            route: the path template under ``api_url``, with ``{name}`` fields as in
                Discord's docs.
            json: the JSON body (sent as ``payload_json`` when there are files).
            query: query-string parameters.
            files: files to upload as ``files[n]`` in a multipart body.
            reason: the audit-log reason (``X-Audit-Log-Reason``).
            auth: send the bot's ``Authorization`` header. Requests without it do
                not count against the bot's global limit.
            **params: a value for each field of ``route``.

        Returns:
            The decoded JSON answer, or None for an empty answer (204).

        Raises:
            HTTPError: the answer was not a success; the subclass says which
                (UnauthorizedError, ForbiddenError, NotFoundError,
                RateLimitedError, ServerError).
            ConnectionFault: no answer came (connection error or timeout), after
                the retries an idempotent request is allowed.
            ClientStateError: the client is closed.
            LocalProtocolError: ``route`` and ``params`` do not match.
        """
        return await self._send(
            Route(method, route, **params),
            json=json,
            query=query,
            files=files,
            reason=reason,
            auth=auth,
        )

    async def _send(
        self,
        route: Route,
        *,
        json: Any = None,
        query: Mapping[str, str | int | bool] | None = None,
        files: Sequence[File] | None = None,
        reason: str | None = None,
        auth: bool = True,
    ) -> Any:
        session = self._ensure_session()
        url = URL(self.api_url + route.path, encoded=True)
        params = _query(query)
        headers = self._headers(auth=auth, reason=reason)

        body = orjson.dumps(json) if json is not None or files else None
        contents: list[bytes] = []
        if files:
            contents = [await file.read() for file in files]
        elif body is not None:
            headers["Content-Type"] = "application/json"

        retries = 0
        rate_limited = 0
        while True:
            data: Any = body
            if files:
                data = _form(body or b"{}", files, contents)

            permit = await self._acquire(route, counts_global=auth)
            started = time.monotonic()
            try:
                status, answer_headers, answer, phrase = await self._exchange(
                    session, route.method, url, params, data, headers
                )
            except BaseException as exc:
                self._hand_back(permit)
                if not isinstance(exc, aiohttp.ClientError | TimeoutError):
                    raise
                transient = isinstance(exc, _TRANSIENT_ERRORS)
                if transient and route.is_idempotent and retries < self.max_retries:
                    retries += 1
                    await self._pause_before_retry(route, _describe(exc), retries)
                    continue
                raise self._no_answer(route, exc) from exc

            answer = answer.replace(self._token.reveal().encode(), b"***")
            info = RateLimitInfo.from_headers(answer_headers)
            logger.debug(
                "%s %s -> %d (bucket %s) in %.3fs",
                route.method,
                route.template,
                status,
                info.bucket or "-",
                time.monotonic() - started,
            )

            if status == 429:
                limited = parse_rate_limited(
                    answer, info, answer_headers.get("Retry-After")
                )
                self._hand_back(
                    permit,
                    retry_after_s=limited.retry_after_s,
                    is_global=limited.is_global,
                    info=info,
                )
                rate_limited += 1
                too_long = limited.retry_after_s > self.max_rate_limit_wait_s
                if too_long or rate_limited > _MAX_RATE_LIMITED:
                    raise limited.error(route)
                logger.warning(
                    "%s %s was rate limited (%s, scope %s); sending again in %.2fs",
                    route.method,
                    route.template,
                    "global" if limited.is_global else "bucket",
                    limited.scope or "unknown",
                    limited.retry_after_s,
                )
                # The limiter now holds the bucket (or everything) until then.
                continue

            self._hand_back(permit, info=info, status=status)
            if 200 <= status < 300:
                return _decode_success(route, answer)
            retryable = status in _RETRY_STATUSES and route.is_idempotent
            if retryable and retries < self.max_retries:
                retries += 1
                await self._pause_before_retry(route, f"HTTP {status}", retries)
                continue
            raise error_for(status, answer, route, phrase)

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: URL,
        params: list[tuple[str, str]],
        data: Any,
        headers: dict[str, str],
    ) -> tuple[int, CIMultiDictProxy[str], bytes, str]:
        """One attempt: send, and read the whole answer."""
        async with session.request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            allow_redirects=False,
        ) as response:
            cap = self.max_response_size
            if (response.content_length or 0) > cap:
                raise _too_large(method, url, cap)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > cap:
                    raise _too_large(method, url, cap)
                chunks.append(chunk)
            answer = b"".join(chunks)
            return response.status, response.headers, answer, response.reason or ""

    def _headers(self, *, auth: bool, reason: str | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if auth:
            headers["Authorization"] = f"Bot {self._token.reveal()}"
        if reason:
            headers["X-Audit-Log-Reason"] = _quote_reason(reason)
        return headers

    async def _pause_before_retry(self, route: Route, cause: str, retry: int) -> None:
        delay = min(_MAX_BACKOFF_S, self.retry_backoff_s * 2 ** (retry - 1))
        delay *= 0.5 + self._rng.random() / 2
        logger.warning(
            "%s %s failed (%s); retry %d of %d in %.2fs",
            route.method,
            route.template,
            cause,
            retry,
            self.max_retries,
            delay,
        )
        await asyncio.sleep(delay)

    def _no_answer(self, route: Route, exc: BaseException) -> ConnectionFault:
        where = f"{route.method} {route.template}"
        if isinstance(exc, TimeoutError):
            return ConnectionFault(
                f"{where}: no answer within {self.timeout_s}s; the request may or "
                "may not have taken effect"
            )
        return ConnectionFault(
            f"{where}: the request failed ({_describe(exc)}); check api_url and "
            "the network"
        )

    # Rate limits

    async def _acquire(self, route: Route, *, counts_global: bool) -> Permit:
        """Wait for the request's turn, then for a rate-limit slot."""
        async with self._turn(route):
            for _ in range(_MAX_WAITS):
                decision = self.rate_limiter.acquire(
                    route.key,
                    route.major,
                    time.monotonic(),
                    counts_global=counts_global,
                )
                if isinstance(decision, Permit):
                    return decision
                delay = decision.delay_s
                if delay is not None and delay > self.max_rate_limit_wait_s:
                    raise RateLimitedError(
                        429,
                        f"the {decision.reason} rate limit frees a slot in "
                        f"{delay:.1f}s, more than max_rate_limit_wait_s; not sent",
                        retry_after=delay,
                        is_global=decision.reason == "global",
                        method=route.method,
                        route=route.template,
                    )
                logger.debug(
                    "%s %s waits for the %s rate limit (%s)",
                    route.method,
                    route.template,
                    decision.reason,
                    "an answer in flight" if delay is None else f"{delay:.3f}s",
                )
                await self._wait(delay)
        raise RateLimitedError(
            429,
            "gave up waiting for a rate-limit slot; not sent",
            retry_after=0.0,
            method=route.method,
            route=route.template,
        )

    @contextlib.asynccontextmanager
    async def _turn(self, route: Route) -> AsyncIterator[None]:
        key = (route.key, route.major)
        turn = self._turns.get(key)
        if turn is None:
            turn = self._turns[key] = _Turn()
        turn.users += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.users -= 1
            if turn.users == 0:
                del self._turns[key]

    async def _wait(self, delay_s: float | None) -> None:
        if delay_s is not None:
            await asyncio.sleep(delay_s)
            return
        if self._released is None:
            self._released = asyncio.Event()
        released = self._released
        # An answer in flight is bounded by timeout_s; look again after that anyway.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.timeout_s):
                await released.wait()

    def _hand_back(
        self,
        permit: Permit,
        *,
        info: RateLimitInfo | None = None,
        status: int | None = None,
        retry_after_s: float | None = None,
        is_global: bool = False,
    ) -> None:
        now = time.monotonic()
        if retry_after_s is not None:
            self.rate_limiter.rate_limited(
                permit, now, retry_after_s, is_global=is_global, info=info
            )
        else:
            self.rate_limiter.complete(permit, now, info, status=status)
        if self._released is not None:
            self._released.set()
            self._released = None

    # Gateway

    async def get_gateway(self) -> dict[str, Any]:
        """``GET /gateway``: the gateway URL (``{"url": ...}``); no auth needed."""
        result: dict[str, Any] = await self._send(Route("GET", "/gateway"))
        return result

    async def get_gateway_bot(self) -> GatewayBot:
        """``GET /gateway/bot``: gateway URL, recommended shards, session limits.

        Raises:
            RemoteProtocolError: the answer does not have the documented shape.
        """
        return GatewayBot.from_payload(await self._send(Route("GET", "/gateway/bot")))

    # Users and applications

    async def get_current_user(self) -> dict[str, Any]:
        """``GET /users/@me``: the bot's user object."""
        result: dict[str, Any] = await self._send(Route("GET", "/users/@me"))
        return result

    async def get_current_application(self) -> dict[str, Any]:
        """``GET /applications/@me``: the bot's application object."""
        result: dict[str, Any] = await self._send(Route("GET", "/applications/@me"))
        return result

    # Guilds and channels

    async def get_guild(
        self, guild_id: Snowflake, *, with_counts: bool = False
    ) -> dict[str, Any]:
        """``GET /guilds/{guild_id}``: a guild object.

        Args:
            guild_id: the guild.
            with_counts: include approximate member and presence counts.
        """
        route = Route("GET", "/guilds/{guild_id}", guild_id=guild_id)
        query = {"with_counts": True} if with_counts else None
        result: dict[str, Any] = await self._send(route, query=query)
        return result

    async def get_channel(self, channel_id: Snowflake) -> dict[str, Any]:
        """``GET /channels/{channel_id}``: a channel (or thread) object."""
        route = Route("GET", "/channels/{channel_id}", channel_id=channel_id)
        result: dict[str, Any] = await self._send(route)
        return result

    # Messages

    async def create_message(
        self,
        channel_id: Snowflake,
        content: str | None = None,
        *,
        embeds: Sequence[Mapping[str, Any]] | None = None,
        reply_to: Snowflake | Mapping[str, Any] | None = None,
        files: Sequence[File] | None = None,
        allowed_mentions: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``POST /channels/{channel_id}/messages``: send a message.

        Args:
            channel_id: the channel to send to.
            content: the text (up to 2000 characters).
            embeds: up to 10 embed objects.
            reply_to: the message to reply to: its ID, or a whole
                ``message_reference`` object.
            files: files to attach (sent as multipart ``files[n]``).
            allowed_mentions: who may be pinged (Discord's object).

        Returns:
            The message object created.
        """
        payload: dict[str, Any] = {}
        if content is not None:
            payload["content"] = content
        if embeds is not None:
            payload["embeds"] = list(embeds)
        if reply_to is not None:
            payload["message_reference"] = (
                dict(reply_to)
                if isinstance(reply_to, Mapping)
                else {"message_id": str(reply_to)}
            )
        if allowed_mentions is not None:
            payload["allowed_mentions"] = dict(allowed_mentions)
        if files:
            payload["attachments"] = _attachments(files)
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=channel_id)
        result: dict[str, Any] = await self._send(route, json=payload, files=files)
        return result

    async def edit_message(
        self,
        channel_id: Snowflake,
        message_id: Snowflake,
        *,
        content: str | None = None,
        embeds: Sequence[Mapping[str, Any]] | None = None,
        allowed_mentions: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``PATCH /channels/{channel_id}/messages/{message_id}``: edit a message.

        Only the fields given change: pass ``content=""`` or ``embeds=[]`` to clear.

        Returns:
            The message object as edited.
        """
        payload: dict[str, Any] = {}
        if content is not None:
            payload["content"] = content
        if embeds is not None:
            payload["embeds"] = list(embeds)
        if allowed_mentions is not None:
            payload["allowed_mentions"] = dict(allowed_mentions)
        route = Route(
            "PATCH",
            "/channels/{channel_id}/messages/{message_id}",
            channel_id=channel_id,
            message_id=message_id,
        )
        result: dict[str, Any] = await self._send(route, json=payload)
        return result

    async def delete_message(
        self,
        channel_id: Snowflake,
        message_id: Snowflake,
        *,
        reason: str | None = None,
    ) -> None:
        """``DELETE /channels/{channel_id}/messages/{message_id}``.

        Args:
            channel_id: the channel.
            message_id: the message.
            reason: the audit-log reason.
        """
        route = Route(
            "DELETE",
            "/channels/{channel_id}/messages/{message_id}",
            channel_id=channel_id,
            message_id=message_id,
        )
        await self._send(route, reason=reason)

    async def bulk_delete_messages(
        self,
        channel_id: Snowflake,
        message_ids: Sequence[Snowflake],
        *,
        reason: str | None = None,
    ) -> None:
        """``POST /channels/{channel_id}/messages/bulk-delete``: delete 2 to 100.

        One ID is deleted with :meth:`delete_message`, since Discord's bulk route
        needs at least two. Messages older than two weeks are refused by Discord.

        Raises:
            LocalProtocolError: no IDs, or more than 100.
        """
        if not message_ids or len(message_ids) > 100:
            raise LocalProtocolError(
                f"bulk delete takes 1 to 100 message IDs, got {len(message_ids)}"
            )
        if len(message_ids) == 1:
            await self.delete_message(channel_id, message_ids[0], reason=reason)
            return
        route = Route(
            "POST",
            "/channels/{channel_id}/messages/bulk-delete",
            channel_id=channel_id,
        )
        payload = {"messages": [str(i) for i in message_ids]}
        await self._send(route, json=payload, reason=reason)

    # Reactions

    async def add_reaction(
        self, channel_id: Snowflake, message_id: Snowflake, emoji: str
    ) -> None:
        """``PUT .../reactions/{emoji}/@me``: react to a message.

        Args:
            channel_id: the channel.
            message_id: the message.
            emoji: a Unicode emoji (``"👍"``), or a custom one as ``name:id`` or
                ``<:name:id>``. It is URL-encoded here.
        """
        await self._send(self._reaction_route("PUT", channel_id, message_id, emoji))

    async def remove_own_reaction(
        self, channel_id: Snowflake, message_id: Snowflake, emoji: str
    ) -> None:
        """``DELETE .../reactions/{emoji}/@me``: remove the bot's reaction."""
        route = self._reaction_route("DELETE", channel_id, message_id, emoji)
        await self._send(route)

    async def remove_reaction(
        self,
        channel_id: Snowflake,
        message_id: Snowflake,
        emoji: str,
        user_id: Snowflake,
    ) -> None:
        """``DELETE .../reactions/{emoji}/{user_id}``: remove a user's reaction."""
        route = Route(
            "DELETE",
            "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user_id}",
            channel_id=channel_id,
            message_id=message_id,
            emoji=_emoji(emoji),
            user_id=user_id,
        )
        await self._send(route)

    @staticmethod
    def _reaction_route(
        method: str, channel_id: Snowflake, message_id: Snowflake, emoji: str
    ) -> Route:
        return Route(
            method,
            "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
            channel_id=channel_id,
            message_id=message_id,
            emoji=_emoji(emoji),
        )

    # Interactions

    async def create_interaction_response(
        self,
        interaction_id: Snowflake,
        interaction_token: str,
        type: int,
        data: Mapping[str, Any] | None = None,
    ) -> Any:
        """``POST /interactions/{interaction_id}/{interaction_token}/callback``.

        Sent without the bot's authorization (the interaction token is the
        credential) and outside the bot's global limit.

        Args:
            interaction_id: the interaction.
            interaction_token: its token (valid 15 minutes; never logged).
            type: the interaction callback type (4: reply with a message, 5:
                deferred reply, 6: deferred update, 7: update the message, ...).
            data: the callback data (for type 4, a message payload).

        Returns:
            None (Discord answers 204).
        """
        route = Route(
            "POST",
            "/interactions/{interaction_id}/{interaction_token}/callback",
            interaction_id=interaction_id,
            interaction_token=interaction_token,
        )
        payload: dict[str, Any] = {"type": type}
        if data is not None:
            payload["data"] = dict(data)
        return await self._send(route, json=payload, auth=False)


def _too_large(method: str, url: URL, cap: int) -> RemoteProtocolError:
    return RemoteProtocolError(
        f"{method} {url.path}: the answer is larger than max_response_size "
        f"({cap} bytes); it was not read"
    )


def _decode_success(route: Route, answer: bytes) -> Any:
    if not answer:
        return None
    try:
        return orjson.loads(answer)
    except orjson.JSONDecodeError as exc:
        raise RemoteProtocolError(
            f"{route.method} {route.template}: the answer is not JSON"
        ) from exc


def _decode(answer: bytes) -> Any:
    if not answer:
        return None
    try:
        return orjson.loads(answer)
    except orjson.JSONDecodeError:
        return answer.decode("utf-8", "replace")


def _query(query: Mapping[str, str | int | bool] | None) -> list[tuple[str, str]]:
    if not query:
        return []
    pairs = []
    for key, value in query.items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        pairs.append((key, text))
    return pairs


def _form(payload: bytes, files: Sequence[File], contents: list[bytes]) -> Any:
    """A multipart body: ``payload_json`` then ``files[n]``; new for each attempt."""
    form = aiohttp.FormData()
    form.add_field("payload_json", payload.decode(), content_type="application/json")
    for index, (file, content) in enumerate(zip(files, contents, strict=True)):
        form.add_field(
            f"files[{index}]",
            content,
            filename=file.name,
            content_type=file.mime_type,
        )
    return form


def _attachments(files: Sequence[File]) -> list[dict[str, Any]]:
    attachments: list[dict[str, Any]] = []
    for index, file in enumerate(files):
        attachment: dict[str, Any] = {"id": index, "filename": file.name}
        if file.description is not None:
            attachment["description"] = file.description
        attachments.append(attachment)
    return attachments


def _emoji(emoji: str) -> str:
    """``name:id`` for ``<:name:id>`` / ``<a:name:id>``; other forms unchanged."""
    if emoji.startswith("<") and emoji.endswith(">"):
        emoji = emoji[1:-1]
        if emoji.startswith("a:"):
            emoji = emoji[2:]
        emoji = emoji.lstrip(":")
    return emoji


def _quote_reason(reason: str) -> str:
    return quote(reason, safe=" ")


def _describe(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
