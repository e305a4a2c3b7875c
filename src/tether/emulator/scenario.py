"""Scenarios: timelines of faults and activity, written as data.

A :class:`Scenario` is a list of :class:`Step` objects; each names an action of
:class:`~tether.emulator.Emulator` (:data:`ACTIONS`) and the time, in seconds from
the start of :meth:`Emulator.play`, at which it runs. The JSON form is::

    {"name": "flaky network",
     "steps": [{"at_s": 0.5, "action": "drop"},
               {"at_s": 2.0, "action": "close", "code": 4000, "shard": 1},
               {"at_s": 3.0, "action": "guild_outage", "guild_index": 0,
                "duration_s": 5}]}

Every key of a step other than ``at_s`` and ``action`` is an argument of the
action.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = ["ACTIONS", "Scenario", "Step"]

_TARGET: Final[frozenset[str]] = frozenset({"session", "shard"})

#: Every action a step may name, with the arguments it accepts.
ACTIONS: Final[Mapping[str, frozenset[str]]] = {
    "drop": _TARGET,
    "go_silent": _TARGET,
    "stop_acking": _TARGET,
    "resume_acking": _TARGET,
    "request_heartbeat": _TARGET,
    "reconnect": _TARGET,
    "invalidate_session": _TARGET | {"resumable"},
    "close": _TARGET | {"code", "reason"},
    "send_corrupt_frame": _TARGET,
    "send_truncated_frame": _TARGET,
    "send_oversized_frame": _TARGET | {"size"},
    "send_decompression_bomb": _TARGET | {"size"},
    "refuse_connections": frozenset({"duration_s", "listener"}),
    "stall_upgrade": frozenset({"duration_s"}),
    "close_before_hello": frozenset({"count", "code"}),
    "unavailable_at_ready": frozenset({"guild_ids", "guild_indexes", "arrive_after_s"}),
    "deliver_late_guilds": frozenset({"guild_ids", "guild_indexes"}),
    "guild_outage": frozenset({"guild_id", "guild_index", "duration_s"}),
    "end_guild_outage": frozenset({"guild_id", "guild_index"}),
    "stall_guild_stream": frozenset({"duration_s"}),
    "resume_guild_stream": frozenset(),
    "set_guild_stream_delay": frozenset({"delay_s"}),
    "rest_fault": frozenset({"route", "mode", "count"}),
    "rate_limit_next": frozenset({"route", "retry_after_s", "global", "count"}),
    "restart": frozenset({"downtime_s"}),
    "send_message": frozenset({"channel_id", "guild_index", "content", "author_id"}),
    "start_activity": frozenset({"rate_per_s", "kinds", "seed"}),
    "stop_activity": frozenset(),
    "simulate": frozenset({"kind", "count"}),
}

#: Arguments an action cannot go without.
REQUIRED: Final[Mapping[str, frozenset[str]]] = {
    "close": frozenset({"code"}),
    "refuse_connections": frozenset({"duration_s", "listener"}),
    "stall_upgrade": frozenset({"duration_s"}),
    "rest_fault": frozenset({"route"}),
    "rate_limit_next": frozenset({"route", "retry_after_s"}),
    "start_activity": frozenset({"rate_per_s"}),
    "simulate": frozenset({"kind"}),
    "send_message": frozenset({"content"}),
}


@dataclass(frozen=True, slots=True)
class Step:
    """One timed action.

    Args:
        at_s: seconds from the start of the scenario.
        action: a name from :data:`ACTIONS`.
        args: the action's arguments (JSON-compatible values).

    Raises:
        ValueError: unknown action, unknown or missing argument, negative time.
    """

    at_s: float
    action: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.at_s, int | float) or not math.isfinite(self.at_s):
            raise ValueError(f"at_s must be a finite number, got {self.at_s!r}")
        if self.at_s < 0:
            raise ValueError(f"at_s must be >= 0, got {self.at_s}")
        allowed = ACTIONS.get(self.action)
        if allowed is None:
            known = ", ".join(sorted(ACTIONS))
            raise ValueError(f"unknown action {self.action!r}; known actions: {known}")
        unknown = set(self.args) - allowed
        if unknown:
            raise ValueError(
                f"action {self.action!r} takes no argument {sorted(unknown)}; "
                f"it takes {sorted(allowed)}"
            )
        missing = REQUIRED.get(self.action, frozenset()) - set(self.args)
        if missing:
            raise ValueError(f"action {self.action!r} needs {sorted(missing)}")
        object.__setattr__(self, "args", dict(self.args))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``at_s``, ``action`` and the arguments side by side."""
        return {"at_s": self.at_s, "action": self.action, **self.args}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        """Build a step from its JSON form.

        Raises:
            ValueError: the form is not a valid step.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a step is a JSON object, got {type(data).__name__}")
        if "action" not in data:
            raise ValueError(f"a step needs an action: {dict(data)!r}")
        args = {k: v for k, v in data.items() if k not in ("at_s", "action")}
        return cls(at_s=data.get("at_s", 0.0), action=data["action"], args=args)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A timeline of steps, run by :meth:`Emulator.play`.

    Args:
        steps: the steps, in any order (they run by ``at_s``).
        name: a label for logs.
    """

    steps: Sequence[Step]
    name: str = ""

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.steps, key=lambda step: step.at_s))
        if not all(isinstance(step, Step) for step in ordered):
            raise ValueError("a scenario holds Step objects")
        object.__setattr__(self, "steps", ordered)

    @property
    def duration_s(self) -> float:
        """When the last step runs."""
        return self.steps[-1].at_s if self.steps else 0.0

    def to_json(self) -> str:
        """The JSON form."""
        steps = [step.to_dict() for step in self.steps]
        return json.dumps({"name": self.name, "steps": steps}, indent=2)

    @classmethod
    def from_json(
        cls, source: str | bytes | Mapping[str, Any] | Sequence[Any]
    ) -> Scenario:
        """Build a scenario from JSON text, a decoded object, or a list of steps.

        Raises:
            ValueError: the JSON is not a valid scenario.
        """
        data: Any = source
        if isinstance(source, str | bytes):
            try:
                data = json.loads(source)
            except json.JSONDecodeError as exc:
                raise ValueError(f"scenario is not valid JSON: {exc}") from exc
        if isinstance(data, Mapping):
            name = data.get("name", "")
            raw_steps = data.get("steps")
        else:
            name, raw_steps = "", data
        if not isinstance(raw_steps, list):
            raise ValueError("a scenario has a list of steps")
        return cls([Step.from_dict(step) for step in raw_steps], name=str(name))

    @classmethod
    def from_file(cls, path: str | Path) -> Scenario:
        """Read a scenario from a JSON file.

        Raises:
            OSError: the file cannot be read.
            ValueError: it is not a valid scenario.
        """
        return cls.from_json(Path(path).read_text(encoding="utf-8"))
