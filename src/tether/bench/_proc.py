"""The parent's handle on one child process: spawn, ask, stop, kill on timeout."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from pathlib import Path
from types import TracebackType
from typing import Any, Final

__all__ = ["Child", "ChildError"]

logger = logging.getLogger(__name__)

#: How long a child may take to import its library and answer.
IMPORT_TIMEOUT_S: Final[float] = 60.0
#: How long a child may take to close its client and exit.
STOP_TIMEOUT_S: Final[float] = 15.0


class ChildError(RuntimeError):
    """A child died, answered garbage or missed its deadline."""


class Child:
    """One library under test in its own process.

    Args:
        settings: the child's JSON settings (see :mod:`tether.bench._child`).
        log_path: where the child's stderr goes.
    """

    def __init__(self, settings: dict[str, Any], log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.imported: dict[str, Any] = {}
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Child:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tether.bench._child",
                json.dumps(self.settings),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        try:
            self.imported = await self._read(IMPORT_TIMEOUT_S)
        except BaseException:
            await self._kill()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            try:
                await self.ask({"cmd": "stop"}, STOP_TIMEOUT_S)
                assert self._proc is not None
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await self._proc.wait()
                return
            except (ChildError, TimeoutError):
                logger.warning("%s child did not stop in time; killed", self.name)
        await self._kill()

    @property
    def name(self) -> str:
        """The library's name."""
        return str(self.settings["lib"])

    async def ask(self, command: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send one command and return the child's answer.

        Raises:
            ChildError: the child died or did not answer within ``timeout_s``.
        """
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(command).encode() + b"\n")
        try:
            await self._proc.stdin.drain()
        except ConnectionError as exc:
            raise ChildError(
                f"{self.name} child is gone (see {self.log_path})"
            ) from exc
        return await self._read(timeout_s)

    async def _read(self, timeout_s: float) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            async with asyncio.timeout(timeout_s):
                line = await self._proc.stdout.readline()
        except TimeoutError as exc:
            raise ChildError(
                f"{self.name} child gave no answer in {timeout_s:.0f} s"
                f" (see {self.log_path})"
            ) from exc
        if not line:
            raise ChildError(f"{self.name} child exited (see {self.log_path})")
        answer = json.loads(line)
        if not isinstance(answer, dict):
            raise ChildError(f"{self.name} child answered {answer!r}")
        return answer

    async def _kill(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await proc.wait()
