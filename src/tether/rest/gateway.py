"""What ``GET /gateway/bot`` answers, as typed values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tether.errors import RemoteProtocolError

__all__ = ["GatewayBot", "SessionStartLimit"]


@dataclass(frozen=True, slots=True)
class SessionStartLimit:
    """How many sessions the bot may still start (IDENTIFYs; RESUMEs are free).

    Attributes:
        total: sessions allowed per window (usually 1000 per 24 hours).
        remaining: sessions left in the current window.
        reset_after_s: seconds until ``remaining`` refills (Discord sends ms).
        max_concurrency: IDENTIFYs allowed per 5-second identify bucket window.
    """

    total: int
    remaining: int
    reset_after_s: float
    max_concurrency: int


@dataclass(frozen=True, slots=True)
class GatewayBot:
    """The gateway URL, the recommended shard count and the session start limit.

    Attributes:
        url: the gateway URL to connect to (``wss://...``), without a query.
        shards: the shard count Discord recommends.
        session_start_limit: how many sessions may still be started.
    """

    url: str
    shards: int
    session_start_limit: SessionStartLimit

    @classmethod
    def from_payload(cls, payload: object) -> GatewayBot:
        """Build it from the decoded JSON answer.

        Args:
            payload: the answer of ``GET /gateway/bot``.

        Raises:
            RemoteProtocolError: the answer does not have the documented shape.
        """
        try:
            body = _mapping(payload)
            limit = _mapping(body["session_start_limit"])
            return cls(
                url=_str(body["url"]),
                shards=_int(body["shards"]),
                session_start_limit=SessionStartLimit(
                    total=_int(limit["total"]),
                    remaining=_int(limit["remaining"]),
                    reset_after_s=_int(limit["reset_after"]) / 1000,
                    max_concurrency=_int(limit["max_concurrency"]),
                ),
            )
        except (KeyError, TypeError) as exc:
            raise RemoteProtocolError(
                f"GET /gateway/bot answered with an unexpected shape ({exc!r}); "
                "check api_url"
            ) from exc


def _mapping(value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return int(value)


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value
