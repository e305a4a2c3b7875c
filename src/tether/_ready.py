"""When a new session is ready: the pure logic behind the :class:`Ready` event.

READY lists the session's guilds, all unavailable; each then arrives by its own
GUILD_CREATE, or by a GUILD_DELETE ``unavailable`` when it is in an outage. Discord
sends no "all guilds delivered" marker, so :class:`ReadyTracker` decides. Ready is due:

- at once, when READY lists no guild or the session lacks the GUILDS intent (no
  GUILD_CREATE will come);
- when every listed guild is accounted for: arrived (GUILD_CREATE), announced as
  unavailable (outage; reported missing), or left (GUILD_DELETE without
  ``unavailable``; no longer waited for). With ``fetch_members``, each guild that
  arrived must also have its member list complete;
- otherwise when the quiet period has passed since the last sign of progress: READY,
  a GUILD_CREATE or GUILD_DELETE, and with ``fetch_members`` a member chunk. The
  guilds still missing are reported.

No clock is read here: every input takes ``now`` (monotonic seconds), the driver calls
:meth:`ReadyTracker.tick` at :meth:`ReadyTracker.next_deadline`, and takes the outcome
with :meth:`ReadyTracker.pop_ready`. States::

    IDLE --ready()--> STREAMING --(accounted for / quiet period)--> DUE
    DUE --pop_ready()--> READY;   any state --ready()--> STREAMING (a new session)
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = ["DEFAULT_QUIET_PERIOD_S", "ReadyOutcome", "ReadyState", "ReadyTracker"]

logger = logging.getLogger(__name__)

#: Seconds without progress after which Ready is raised with guilds missing.
DEFAULT_QUIET_PERIOD_S: Final[float] = 10.0


class ReadyState(enum.Enum):
    """Where the tracker is in the current session."""

    #: No session yet.
    IDLE = "idle"
    #: Waiting for guilds (and members).
    STREAMING = "streaming"
    #: Ready is due: :meth:`ReadyTracker.pop_ready` returns it.
    DUE = "due"
    #: Ready was taken for this session.
    READY = "ready"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadyOutcome:
    """What Ready reports.

    Attributes:
        guild_ids: listed guilds that arrived, in READY's order.
        missing_guild_ids: listed guilds that did not arrive (outage or quiet
            period), in READY's order.
        members_incomplete_guild_ids: with ``fetch_members``, arrived guilds whose
            member list was not complete.
        timed_out: whether the quiet period ended the wait.
    """

    guild_ids: tuple[int, ...]
    missing_guild_ids: tuple[int, ...]
    members_incomplete_guild_ids: tuple[int, ...] = ()
    timed_out: bool = False


class ReadyTracker:
    """Decides when a new session's Ready is due. Pure: time is passed in.

    Args:
        quiet_period_s: seconds without progress after which Ready is due anyway.
        fetch_members: whether Ready also waits for each guild's member list
            (:meth:`members_complete`).
    """

    def __init__(
        self,
        *,
        quiet_period_s: float = DEFAULT_QUIET_PERIOD_S,
        fetch_members: bool = False,
    ) -> None:
        if quiet_period_s < 0:
            raise ValueError(f"quiet_period_s must be 0 or more, got {quiet_period_s}")
        self.quiet_period_s = quiet_period_s
        self.fetch_members = fetch_members
        self._state = ReadyState.IDLE
        # READY's guilds, in order, minus those the bot left meanwhile.
        self._listed: dict[int, None] = {}
        # Listed guilds that arrived by GUILD_CREATE.
        self._arrived: set[int] = set()
        # Listed guilds neither arrived nor announced unavailable yet.
        self._unaccounted: set[int] = set()
        # Arrived guilds whose member list is complete / still awaited.
        self._members_done: set[int] = set()
        self._members_waiting: set[int] = set()
        # When progress was last seen.
        self._last_progress = 0.0
        self._outcome: ReadyOutcome | None = None

    # Inputs

    def ready(
        self, guild_ids: Iterable[int], now: float, *, guilds_intent: bool = True
    ) -> None:
        """A READY arrived: start tracking a new session (forgets the previous one).

        Args:
            guild_ids: the guilds READY lists.
            now: the current time.
            guilds_intent: whether the session has the GUILDS intent.
        """
        self._listed = dict.fromkeys(guild_ids)
        self._arrived = set()
        self._unaccounted = set(self._listed) if guilds_intent else set()
        self._members_done = set()
        self._members_waiting = set()
        self._last_progress = now
        self._outcome = None
        self._set_state(ReadyState.STREAMING)
        self._check(now)

    def guild_arrived(self, guild_id: int, now: float) -> None:
        """A GUILD_CREATE arrived (also after Ready: it keeps :meth:`progress` true).

        Args:
            guild_id: the guild.
            now: the current time.
        """
        if self._state is ReadyState.IDLE:
            return
        if self._state is ReadyState.STREAMING:
            self._last_progress = now
        if guild_id not in self._listed:
            return
        self._arrived.add(guild_id)
        self._unaccounted.discard(guild_id)
        if self.fetch_members and guild_id not in self._members_done:
            self._members_waiting.add(guild_id)
        self._check(now)

    def guild_deleted(self, guild_id: int, now: float, *, unavailable: bool) -> None:
        """A GUILD_DELETE arrived (or a GUILD_CREATE with ``unavailable: true``).

        Args:
            guild_id: the guild.
            now: the current time.
            unavailable: ``True`` for an outage (the guild is reported missing),
                ``False`` when the bot left (the guild is no longer waited for).
        """
        if self._state is ReadyState.IDLE:
            return
        if self._state is ReadyState.STREAMING:
            self._last_progress = now
        if guild_id not in self._listed:
            return
        self._arrived.discard(guild_id)
        self._unaccounted.discard(guild_id)
        self._members_waiting.discard(guild_id)
        if not unavailable:
            del self._listed[guild_id]
        self._check(now)

    def members_chunk(self, guild_id: int, now: float) -> None:
        """A member chunk arrived for a guild: progress, which restarts the quiet
        period when ``fetch_members`` is on.

        Args:
            guild_id: the guild.
            now: the current time.
        """
        if self.fetch_members and self._state is ReadyState.STREAMING:
            self._last_progress = now

    def members_complete(self, guild_id: int, now: float) -> None:
        """A guild's member list is complete (its last chunk arrived, or it needed
        no request).

        Args:
            guild_id: the guild.
            now: the current time.
        """
        if self._state is ReadyState.IDLE:
            return
        self.members_chunk(guild_id, now)
        self._members_done.add(guild_id)
        self._members_waiting.discard(guild_id)
        self._check(now)

    def tick(self, now: float) -> None:
        """Let time pass: Ready becomes due once the quiet period is over.

        Args:
            now: the current time.
        """
        self._check(now)

    # Outputs

    @property
    def state(self) -> ReadyState:
        """The tracker's state."""
        return self._state

    @property
    def is_due(self) -> bool:
        """Whether Ready is due and not yet taken."""
        return self._state is ReadyState.DUE

    @property
    def is_ready(self) -> bool:
        """Whether this session's Ready was taken."""
        return self._state is ReadyState.READY

    def pop_ready(self) -> ReadyOutcome | None:
        """Return the outcome once, when Ready is due; ``None`` otherwise."""
        if self._state is not ReadyState.DUE:
            return None
        outcome = self._outcome
        self._set_state(ReadyState.READY)
        return outcome

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must be called next; ``None`` when nothing is timed."""
        if self._state is not ReadyState.STREAMING:
            return None
        return self._last_progress + self.quiet_period_s

    def missing_guild_ids(self) -> tuple[int, ...]:
        """Listed guilds that have not arrived (so far), in READY's order."""
        return tuple(gid for gid in self._listed if gid not in self._arrived)

    def progress(self) -> tuple[int, int]:
        """Return ``(arrived, total)`` over the guilds READY listed."""
        return len(self._arrived), len(self._listed)

    # Internals

    def _check(self, now: float) -> None:
        if self._state is not ReadyState.STREAMING:
            return
        if not self._unaccounted and not self._members_waiting:
            self._make_due(timed_out=False)
        elif now >= self._last_progress + self.quiet_period_s:
            self._make_due(timed_out=True)

    def _make_due(self, *, timed_out: bool) -> None:
        listed = self._listed
        self._outcome = ReadyOutcome(
            guild_ids=tuple(gid for gid in listed if gid in self._arrived),
            missing_guild_ids=self.missing_guild_ids(),
            members_incomplete_guild_ids=tuple(
                gid for gid in listed if gid in self._members_waiting
            ),
            timed_out=timed_out,
        )
        self._set_state(ReadyState.DUE)
        logger.info(
            "ready: %d of %d guilds arrived, %d missing%s",
            len(self._outcome.guild_ids),
            len(listed),
            len(self._outcome.missing_guild_ids),
            " (quiet period over)" if timed_out else "",
        )

    def _set_state(self, state: ReadyState) -> None:
        if state is not self._state:
            logger.debug("ready tracker: %s -> %s", self._state.name, state.name)
            self._state = state
