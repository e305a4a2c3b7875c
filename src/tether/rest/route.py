"""A REST route: a method, a path template and the values that fill it."""

from __future__ import annotations

from collections.abc import Mapping
from string import Formatter
from typing import Final
from urllib.parse import quote

from tether.errors import LocalProtocolError

__all__ = ["IDEMPOTENT_METHODS", "MAJOR_PARAMETERS", "Route"]

#: Path parameters that split one route's rate limit into separate buckets, as
#: Discord does (one bucket per channel, per guild, per webhook and its token).
#: Interactions are keyed the same way, so each interaction has its own bucket.
MAJOR_PARAMETERS: Final = (
    "channel_id",
    "guild_id",
    "webhook_id",
    "webhook_token",
    "interaction_id",
    "interaction_token",
)

#: Methods that may be sent twice with the same effect: only these are retried
#: after a 5xx or a connection error.
IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

_FORMATTER: Final = Formatter()


class Route:
    """One REST route, such as ``GET /channels/{channel_id}``, with its values.

    The values are never shown: ``repr`` gives the template only, because some
    paths carry secrets (webhook and interaction tokens).

    Args:
        method: the HTTP method, any case.
        template: the path template under the API base, with ``{name}`` fields.
        **params: a value for every field of the template (snowflakes as ``int``
            or ``str``).

    Raises:
        LocalProtocolError: a field of the template has no value, or a value is
            given for a field the template does not have.
    """

    __slots__ = ("_params", "method", "template")

    def __init__(self, method: str, template: str, **params: int | str) -> None:
        fields = {name for _, name, _, _ in _FORMATTER.parse(template) if name}
        missing = fields - params.keys()
        if missing:
            names = ", ".join(sorted(missing))
            raise LocalProtocolError(f"{template} needs a value for: {names}")
        extra = params.keys() - fields
        if extra:
            names = ", ".join(sorted(extra))
            raise LocalProtocolError(f"{template} has no field named: {names}")

        #: The HTTP method, upper case.
        self.method = method.upper()
        #: The path template, as written in Discord's docs.
        self.template = template
        # The values, as strings; never shown in a repr or a log line.
        self._params: Mapping[str, str] = {k: str(v) for k, v in params.items()}

    @property
    def key(self) -> str:
        """The method and the template: what rate-limit buckets are learnt by."""
        return f"{self.method} {self.template}"

    @property
    def major(self) -> str:
        """The major parameters' values, which keep buckets of one route apart."""
        return "/".join(
            self._params[name] for name in MAJOR_PARAMETERS if name in self._params
        )

    @property
    def path(self) -> str:
        """The path with every value percent-encoded (``/`` included)."""
        quoted = {k: quote(v, safe="") for k, v in self._params.items()}
        return self.template.format_map(quoted)

    @property
    def is_idempotent(self) -> bool:
        """Whether sending the request twice has the effect of sending it once."""
        return self.method in IDEMPOTENT_METHODS

    def __repr__(self) -> str:
        return f"Route({self.method!r}, {self.template!r})"
