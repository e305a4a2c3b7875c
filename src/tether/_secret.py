"""A wrapper that keeps the bot token out of logs, reprs and exception texts."""

from __future__ import annotations

__all__ = ["Token"]


class Token:
    """A bot token. ``repr`` and ``str`` never show it; :meth:`reveal` does.

    Args:
        value: the token, with or without a leading ``"Bot "``.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str | Token) -> None:
        if isinstance(value, Token):
            value = value.reveal()
        if not isinstance(value, str) or not value.strip():
            raise ValueError("a token must be a non-empty string")
        value = value.strip()
        if value.startswith("Bot "):
            value = value[4:].strip()
        if not value or not value.isprintable() or any(c.isspace() for c in value):
            # It could never authenticate, and a line break in it would corrupt
            # the HTTP header it travels in.
            raise ValueError(
                "a token must not contain spaces, line breaks or control characters"
            )
        self._value = value

    def reveal(self) -> str:
        """Return the token itself, for the wire only."""
        return self._value

    def redact(self, text: str) -> str:
        """Return ``text`` with every occurrence of the token replaced by ``***``."""
        return text.replace(self._value, "***")

    def __repr__(self) -> str:
        return "Token('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Token) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Token cannot be pickled")
