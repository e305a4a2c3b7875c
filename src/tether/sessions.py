"""Session stores: where a sharded client keeps its gateway sessions between runs.

A session (``session_id``, ``seq``, ``resume_gateway_url``) can be resumed for a
while after its connection closed, as long as the close code was not 1000/1001. A
:class:`~tether.sharding.ShardedClient` saves every shard's session in its store
when it stops, and the next start (in the same process or a new one) resumes them
instead of identifying: no event is lost and no daily session start is spent.

Two stores come with tether: :class:`MemorySessionStore` (the default; sessions
outlive a stop and start of one process) and :class:`JSONFileSessionStore` (a
file written atomically; sessions outlive the process on one machine). Any object
with the three methods of :class:`SessionStore` will do, a store shared over the
network included. A store never holds the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Protocol, TypeGuard

__all__ = [
    "JSONFileSessionStore",
    "MemorySessionStore",
    "SessionStore",
    "StoredSession",
]

logger = logging.getLogger(__name__)

#: The layout version written in session files.
FILE_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class StoredSession:
    """One shard's session, as saved.

    Attributes:
        shard_id: the shard.
        shard_count: the shard count the session was identified with; a session
            only resumes under the same count.
        session_id: the session's id.
        seq: the last dispatch seq the client handled.
        resume_url: READY's ``resume_gateway_url``, if there was one.
        saved_at: when it was saved (Unix time, seconds).
    """

    shard_id: int
    shard_count: int
    session_id: str
    seq: int | None
    resume_url: str | None
    saved_at: float

    @classmethod
    def from_json(cls, data: object) -> StoredSession:
        """Build one from its JSON form.

        Raises:
            ValueError: ``data`` is not a session in the documented shape.
        """
        if not isinstance(data, dict):
            raise ValueError("a stored session must be an object")
        shard_id = data.get("shard_id")
        shard_count = data.get("shard_count")
        session_id = data.get("session_id")
        seq = data.get("seq")
        resume_url = data.get("resume_url")
        saved_at = data.get("saved_at")
        if not (
            _is_int(shard_id)
            and _is_int(shard_count)
            and 0 <= shard_id < shard_count
            and isinstance(session_id, str)
            and session_id
            and (seq is None or (_is_int(seq) and seq >= 0))
            and (resume_url is None or isinstance(resume_url, str))
            and isinstance(saved_at, int | float)
            and not isinstance(saved_at, bool)
        ):
            raise ValueError(f"malformed stored session for shard {shard_id!r}")
        return cls(shard_id, shard_count, session_id, seq, resume_url, float(saved_at))

    def to_json(self) -> dict[str, Any]:
        """Return its JSON form."""
        return asdict(self)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _pick(
    sessions: dict[int, StoredSession], shard_ids: Collection[int] | None
) -> dict[int, StoredSession]:
    if shard_ids is None:
        return dict(sessions)
    return {i: s for i, s in sessions.items() if i in shard_ids}


class SessionStore(Protocol):
    """Keeps sessions per shard id. Implement these three methods for a new store."""

    async def load(
        self, shard_ids: Collection[int] | None = None
    ) -> dict[int, StoredSession]:
        """Return the stored sessions of ``shard_ids`` (all with None), by shard."""
        ...

    async def save(self, sessions: Iterable[StoredSession]) -> None:
        """Store ``sessions``, each replacing the one stored for its shard."""
        ...

    async def discard(self, shard_ids: Collection[int]) -> None:
        """Forget the sessions of ``shard_ids``."""
        ...


class MemorySessionStore:
    """Sessions kept in memory: they outlive a stop and start, not the process."""

    def __init__(self) -> None:
        self._sessions: dict[int, StoredSession] = {}

    def __repr__(self) -> str:
        return f"<MemorySessionStore shards={sorted(self._sessions)}>"

    async def load(
        self, shard_ids: Collection[int] | None = None
    ) -> dict[int, StoredSession]:
        """Return the stored sessions of ``shard_ids`` (all with None)."""
        return _pick(self._sessions, shard_ids)

    async def save(self, sessions: Iterable[StoredSession]) -> None:
        """Store ``sessions``."""
        for session in sessions:
            self._sessions[session.shard_id] = session

    async def discard(self, shard_ids: Collection[int]) -> None:
        """Forget the sessions of ``shard_ids``."""
        for shard_id in shard_ids:
            self._sessions.pop(shard_id, None)


class JSONFileSessionStore:
    """Sessions kept in a JSON file, for bots restarted on the same machine.

    Every change rewrites the whole file atomically (a temporary file in the same
    directory, flushed to disk, then renamed over the old one), so a crash
    leaves either the old file or the new one, never a torn one. The file is
    created readable by its owner only. An unreadable or malformed file is
    logged and treated as empty: the shards then identify.

    One file serves one process: processes that run different shards of a bot
    need a file each.

    Args:
        path: the file; its directory must exist.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        #: The file.
        self.path = Path(path)
        # Serialises read-modify-write cycles within the process.
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<JSONFileSessionStore {str(self.path)!r}>"

    async def load(
        self, shard_ids: Collection[int] | None = None
    ) -> dict[int, StoredSession]:
        """Return the stored sessions of ``shard_ids`` (all with None)."""
        async with self._lock:
            sessions = await asyncio.to_thread(self._read)
        return _pick(sessions, shard_ids)

    async def save(self, sessions: Iterable[StoredSession]) -> None:
        """Store ``sessions``.

        Raises:
            OSError: the file could not be written.
        """
        new = list(sessions)
        async with self._lock:
            await asyncio.to_thread(self._update, new, ())

    async def discard(self, shard_ids: Collection[int]) -> None:
        """Forget the sessions of ``shard_ids``.

        Raises:
            OSError: the file could not be written.
        """
        gone = list(shard_ids)
        async with self._lock:
            await asyncio.to_thread(self._update, [], gone)

    # Blocking file work, run in a worker thread.

    def _read(self) -> dict[int, StoredSession]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            logger.warning("cannot read the session file %s: %s", self.path, exc)
            return {}
        try:
            document = json.loads(text)
            if not isinstance(document, dict) or document.get("version") != 1:
                raise ValueError("not a tether session file (version 1)")
            raw = document.get("sessions")
            if not isinstance(raw, list):
                raise ValueError("'sessions' must be a list")
            loaded = [StoredSession.from_json(item) for item in raw]
        except ValueError as exc:
            logger.warning(
                "ignoring the session file %s: %s; shards will identify",
                self.path,
                exc,
            )
            return {}
        return {session.shard_id: session for session in loaded}

    def _update(self, new: list[StoredSession], gone: Iterable[int]) -> None:
        sessions = self._read()
        for shard_id in gone:
            sessions.pop(shard_id, None)
        for session in new:
            sessions[session.shard_id] = session
        document = {
            "version": FILE_VERSION,
            "sessions": [sessions[i].to_json() for i in sorted(sessions)],
        }
        self._write_atomically(json.dumps(document, indent=1))

    def _write_atomically(self, text: str) -> None:
        directory = self.path.parent
        fd, temp_name = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=directory
        )
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp_name, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)
            raise
        # The rename itself must reach the disk too.
        with contextlib.suppress(OSError):
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        logger.debug("saved %s", self.path)
