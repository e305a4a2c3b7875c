"""Rich presence: the activity a game or tool shows on the user's profile.

Every documented limit is checked when an :class:`Activity` (or one of its parts)
is built, so a wrong value fails at the line that made it, with a message naming
the field, and nothing is sent. Lengths are counted as Discord counts them, in
UTF-16 code units (an emoji outside the Basic Multilingual Plane counts as two).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from tether.rpc.errors import InvalidActivityError

__all__ = [
    "Activity",
    "ActivityType",
    "Assets",
    "Button",
    "Party",
    "Secrets",
    "Timestamps",
]

#: Shortest and longest ``state``, ``details`` and image texts.
TEXT_MIN: Final = 2
TEXT_MAX: Final = 128
#: Longest image key (an uploaded asset's name, or an external image URL).
IMAGE_KEY_MAX: Final = 256
#: Longest party id and secret.
ID_MAX: Final = 128
#: Most buttons, and the longest button label and URL.
BUTTONS_MAX: Final = 2
LABEL_MAX: Final = 32
URL_MAX: Final = 512


class ActivityType(enum.IntEnum):
    """The activity types SET_ACTIVITY accepts (Discord rejects the others)."""

    PLAYING = 0
    LISTENING = 2
    WATCHING = 3
    COMPETING = 5


def _length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _check_text(name: str, value: str | None, low: int, high: int) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidActivityError(
            f"{name} must be a string, not {type(value).__name__}"
        )
    length = _length(value)
    if not low <= length <= high:
        raise InvalidActivityError(
            f"{name} must be {low} to {high} characters long, not {length}"
        )


def _check_int(name: str, value: int | None, low: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidActivityError(f"{name} must be an int, not {type(value).__name__}")
    if value < low:
        raise InvalidActivityError(f"{name} must be at least {low}, not {value}")


def _drop_none(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


@dataclass(frozen=True, slots=True)
class Timestamps:
    """When the activity started and ends, in Unix milliseconds.

    With ``start`` the profile shows the time elapsed; with ``end``, the time left.
    """

    start: int | None = None
    end: int | None = None

    def __post_init__(self) -> None:
        _check_int("timestamps.start", self.start, 0)
        _check_int("timestamps.end", self.end, 0)
        if self.start is not None and self.end is not None and self.end < self.start:
            raise InvalidActivityError("timestamps.end must not be before start")

    def to_payload(self) -> dict[str, Any]:
        """The wire form."""
        return _drop_none(start=self.start, end=self.end)


@dataclass(frozen=True, slots=True)
class Assets:
    """Images and their hover texts.

    Image keys are asset names uploaded in the Developer Portal, or external image
    URLs.
    """

    large_image: str | None = None
    large_text: str | None = None
    small_image: str | None = None
    small_text: str | None = None

    def __post_init__(self) -> None:
        _check_text("assets.large_image", self.large_image, 1, IMAGE_KEY_MAX)
        _check_text("assets.small_image", self.small_image, 1, IMAGE_KEY_MAX)
        _check_text("assets.large_text", self.large_text, TEXT_MIN, TEXT_MAX)
        _check_text("assets.small_text", self.small_text, TEXT_MIN, TEXT_MAX)

    def to_payload(self) -> dict[str, Any]:
        """The wire form."""
        return _drop_none(
            large_image=self.large_image,
            large_text=self.large_text,
            small_image=self.small_image,
            small_text=self.small_text,
        )


@dataclass(frozen=True, slots=True)
class Party:
    """The player's party: its id and ``size`` as ``(current, max)``."""

    id: str | None = None
    size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        _check_text("party.id", self.id, 1, ID_MAX)
        if self.size is None:
            return
        if not isinstance(self.size, tuple) or len(self.size) != 2:
            raise InvalidActivityError("party.size must be a (current, max) pair")
        current, maximum = self.size
        _check_int("party.size current", current, 1)
        _check_int("party.size max", maximum, 1)
        if current > maximum:
            raise InvalidActivityError(
                f"party.size current ({current}) must not exceed max ({maximum})"
            )

    def to_payload(self) -> dict[str, Any]:
        """The wire form."""
        size = list(self.size) if self.size is not None else None
        return _drop_none(id=self.id, size=size)


@dataclass(frozen=True, slots=True)
class Secrets:
    """Secrets for joining and spectating (used by Ask to Join).

    The secrets are hidden from ``repr``.
    """

    join: str | None = None
    spectate: str | None = None
    match: str | None = None

    def __post_init__(self) -> None:
        _check_text("secrets.join", self.join, 1, ID_MAX)
        _check_text("secrets.spectate", self.spectate, 1, ID_MAX)
        _check_text("secrets.match", self.match, 1, ID_MAX)

    def __repr__(self) -> str:
        shown = [
            f"{name}='***'"
            for name in ("join", "spectate", "match")
            if getattr(self, name) is not None
        ]
        return f"Secrets({', '.join(shown)})"

    def to_payload(self) -> dict[str, Any]:
        """The wire form."""
        return _drop_none(join=self.join, spectate=self.spectate, match=self.match)


@dataclass(frozen=True, slots=True)
class Button:
    """A button under the activity: a label and an http(s) URL it opens."""

    label: str
    url: str

    def __post_init__(self) -> None:
        _check_text("button label", self.label, 1, LABEL_MAX)
        _check_text("button url", self.url, 1, URL_MAX)
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidActivityError(
                f"button url must be an http or https URL, not {self.url!r}"
            )

    def to_payload(self) -> dict[str, Any]:
        """The wire form."""
        return {"label": self.label, "url": self.url}


@dataclass(frozen=True, slots=True, kw_only=True)
class Activity:
    """What SET_ACTIVITY shows; the name shown is the application's.

    Attributes:
        type: what the user is doing (playing by default).
        state: the second line, e.g. ``"In a group"`` (2 to 128 characters).
        details: the first line, e.g. ``"Ranked match"`` (2 to 128 characters).
        timestamps: elapsed or remaining time.
        assets: images and their texts.
        party: the party and its size.
        secrets: join and spectate secrets.
        buttons: up to two buttons.
        instance: whether this is an instanced game session.

    Raises:
        InvalidActivityError: a field breaks a documented limit.
    """

    type: ActivityType = ActivityType.PLAYING
    state: str | None = None
    details: str | None = None
    timestamps: Timestamps | None = None
    assets: Assets | None = None
    party: Party | None = None
    secrets: Secrets | None = None
    buttons: tuple[Button, ...] = ()
    instance: bool | None = None

    def __post_init__(self) -> None:
        try:
            kind = ActivityType(self.type)
        except ValueError:
            allowed = ", ".join(f"{t.value} ({t.name})" for t in ActivityType)
            raise InvalidActivityError(
                f"activity type {self.type!r} is not accepted; use {allowed}"
            ) from None
        object.__setattr__(self, "type", kind)
        _check_text("state", self.state, TEXT_MIN, TEXT_MAX)
        _check_text("details", self.details, TEXT_MIN, TEXT_MAX)
        buttons = tuple(self.buttons)
        if len(buttons) > BUTTONS_MAX:
            raise InvalidActivityError(
                f"an activity has at most {BUTTONS_MAX} buttons, not {len(buttons)}"
            )
        for button in buttons:
            if not isinstance(button, Button):
                raise InvalidActivityError("buttons must be tether.rpc.Button values")
        object.__setattr__(self, "buttons", buttons)

    def to_payload(self) -> dict[str, Any]:
        """The wire form of the activity."""
        payload: dict[str, Any] = {"type": int(self.type)}
        if self.state is not None:
            payload["state"] = self.state
        if self.details is not None:
            payload["details"] = self.details
        for name, part in (
            ("timestamps", self.timestamps),
            ("assets", self.assets),
            ("party", self.party),
            ("secrets", self.secrets),
        ):
            if part is not None and (wire := part.to_payload()):
                payload[name] = wire
        if self.buttons:
            payload["buttons"] = [button.to_payload() for button in self.buttons]
        if self.instance is not None:
            payload["instance"] = self.instance
        return payload
