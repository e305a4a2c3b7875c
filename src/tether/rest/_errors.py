"""Discord's error answers turned into tether's typed exceptions."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

import orjson

from tether.errors import (
    ForbiddenError,
    HTTPError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    UnauthorizedError,
)
from tether.rest.ratelimit import RateLimitInfo
from tether.rest.route import Route

__all__ = ["RateLimitAnswer", "error_for", "parse_rate_limited"]

_BY_STATUS: Final[Mapping[int, type[HTTPError]]] = {
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
}

# How much of a body that is not Discord's JSON goes into an error message.
_MAX_TEXT: Final = 200

# How many field errors of an "Invalid Form Body" answer the message names.
_MAX_FIELD_ERRORS: Final = 3


def error_for(status: int, body: bytes, route: Route, reason: str) -> HTTPError:
    """The exception for an answer that is neither a success nor a 429.

    Args:
        status: the HTTP status.
        body: the answer's body.
        route: the route that was requested.
        reason: the HTTP reason phrase, used when the body says nothing.
    """
    message, code = _message_and_code(body, reason)
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else HTTPError
    return cls(status, message, code=code, method=route.method, route=route.template)


class RateLimitAnswer:
    """What a 429 answer said: how long to wait, and whether it was global."""

    __slots__ = ("code", "is_global", "message", "retry_after_s", "scope")

    def __init__(
        self,
        retry_after_s: float,
        is_global: bool,
        message: str,
        code: int,
        scope: str | None,
    ) -> None:
        self.retry_after_s = retry_after_s
        self.is_global = is_global
        self.message = message
        self.code = code
        self.scope = scope

    def error(self, route: Route) -> RateLimitedError:
        """The exception raised when this 429 is not waited out."""
        return RateLimitedError(
            429,
            f"{self.message}; retry after {self.retry_after_s:.2f}s",
            retry_after=self.retry_after_s,
            is_global=self.is_global,
            code=self.code,
            method=route.method,
            route=route.template,
        )


def parse_rate_limited(
    body: bytes, info: RateLimitInfo, retry_after_header: str | None
) -> RateLimitAnswer:
    """Read a 429 answer: body ``{message, retry_after, global, code?}`` and headers.

    Args:
        body: the answer's body.
        info: its rate-limit headers.
        retry_after_header: its ``Retry-After`` header, if any.
    """
    decoded = _decode_object(body)
    retry_after = _number(decoded.get("retry_after"))
    if retry_after is None:
        retry_after = _number(retry_after_header)
    if retry_after is None:
        retry_after = info.reset_after_s if info.reset_after_s is not None else 1.0
    message = decoded.get("message")
    code = decoded.get("code")
    return RateLimitAnswer(
        retry_after_s=max(0.0, retry_after),
        is_global=decoded.get("global") is True or info.is_global,
        message=message if isinstance(message, str) else "You are being rate limited.",
        code=code if isinstance(code, int) and not isinstance(code, bool) else 0,
        scope=info.scope,
    )


def _message_and_code(body: bytes, reason: str) -> tuple[str, int]:
    decoded = _decode_object(body)
    message = decoded.get("message")
    code = decoded.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        code = 0
    if isinstance(message, str) and message:
        details = list(_field_errors(decoded.get("errors"), ""))
        if details:
            message += " (" + "; ".join(details[:_MAX_FIELD_ERRORS]) + ")"
        return message, code

    text = body.decode("utf-8", "replace").strip()
    if text and not decoded:
        return text[:_MAX_TEXT], code
    return reason or "no message", code


def _field_errors(errors: object, path: str) -> Iterator[str]:
    """Flatten Discord's nested ``errors`` object into ``"field: message"`` lines."""
    if not isinstance(errors, Mapping):
        return
    for key, value in errors.items():
        if key == "_errors" and isinstance(value, list):
            for item in value:
                if isinstance(item, Mapping) and isinstance(item.get("message"), str):
                    yield f"{path or 'body'}: {item['message']}"
        else:
            yield from _field_errors(value, f"{path}.{key}" if path else str(key))


def _decode_object(body: bytes) -> Mapping[str, Any]:
    try:
        decoded = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return {}
    return decoded if isinstance(decoded, Mapping) else {}


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
