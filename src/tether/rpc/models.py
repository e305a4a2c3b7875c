"""Small value types the RPC client builds from the app's payloads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Pan", "RPCConfig", "RPCUser", "snowflake", "snowflake_or_none"]


def snowflake(value: Any) -> int:
    """Return a snowflake as ``int`` (the wire carries strings).

    Raises:
        ValueError: ``value`` is not a snowflake.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a snowflake")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise ValueError(f"{value!r} is not a snowflake")


def snowflake_or_none(value: Any) -> int | None:
    """Return a snowflake as ``int``, or ``None`` for a missing or malformed one."""
    try:
        return snowflake(value)
    except ValueError:
        return None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class RPCUser:
    """The user logged in to the app, or another user named in an event.

    Attributes:
        id: the user's id.
        username: the unique username.
        discriminator: ``"0"`` for users migrated to unique usernames.
        global_name: the display name, if set.
        avatar: the avatar hash, if set.
        bot: whether the user is a bot.
    """

    id: int
    username: str
    discriminator: str = "0"
    global_name: str | None = None
    avatar: str | None = None
    bot: bool = False

    @classmethod
    def from_payload(cls, data: Any) -> RPCUser | None:
        """Build from a user object; ``None`` when it has no usable id."""
        if not isinstance(data, Mapping):
            return None
        user_id = snowflake_or_none(data.get("id"))
        if user_id is None:
            return None
        username = data.get("username")
        discriminator = data.get("discriminator")
        return cls(
            id=user_id,
            username=username if isinstance(username, str) else "",
            discriminator=discriminator if isinstance(discriminator, str) else "0",
            global_name=_str_or_none(data.get("global_name")),
            avatar=_str_or_none(data.get("avatar")),
            bot=data.get("bot") is True,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RPCConfig:
    """The app's configuration, from READY.

    Attributes:
        cdn_host: the CDN host the app uses.
        api_endpoint: the API base the app uses.
        environment: ``"production"`` for a release build.
    """

    cdn_host: str = ""
    api_endpoint: str = ""
    environment: str = ""

    @classmethod
    def from_payload(cls, data: Any) -> RPCConfig:
        """Build from READY's ``config`` (missing fields are empty)."""
        if not isinstance(data, Mapping):
            return cls()
        return cls(
            cdn_host=_str_or_none(data.get("cdn_host")) or "",
            api_endpoint=_str_or_none(data.get("api_endpoint")) or "",
            environment=_str_or_none(data.get("environment")) or "",
        )


@dataclass(frozen=True, slots=True)
class Pan:
    """Left and right volume of a user's voice, each from 0.0 to 1.0."""

    left: float
    right: float

    @classmethod
    def from_payload(cls, data: Any) -> Pan | None:
        """Build from ``{left, right}``; ``None`` when absent or malformed."""
        if not isinstance(data, Mapping):
            return None
        left, right = data.get("left"), data.get("right")
        if not isinstance(left, int | float) or not isinstance(right, int | float):
            return None
        return cls(float(left), float(right))
