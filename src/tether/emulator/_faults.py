"""Faults played on gateway connections: drops, silence, op 1/7/9, closes, bad frames.

Each method takes the connections to hit (picked by
:meth:`~tether.emulator.gateway.Gateway.targets`) and returns how many it hit.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import orjson

from tether.emulator._session import Connection
from tether.emulator.records import SessionState
from tether.gateway.opcodes import CloseCode, Opcode

if TYPE_CHECKING:
    from tether.emulator.gateway import Gateway

__all__ = ["ConnectionFaults"]

logger = logging.getLogger(__name__)


class ConnectionFaults:
    """The faults of one gateway.

    Args:
        gateway: the gateway whose connections they hit.
    """

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._stall_until = 0.0
        self._close_before_hello: list[int | None] = []

    def drop(self, connections: list[Connection]) -> int:
        """Drop TCP with no close frame."""
        for connection in connections:
            logger.info("dropping connection %d", connection.connection_id)
            self._gateway.detach(connection)
            connection.abort("dropped")
        return len(connections)

    def go_silent(self, connections: list[Connection]) -> int:
        """Send nothing more and ignore input; TCP stays open."""
        for connection in connections:
            logger.info("connection %d goes silent", connection.connection_id)
            connection.go_silent()
        return len(connections)

    def set_acking(self, connections: list[Connection], acking: bool) -> int:
        """Stop or restart answering heartbeats."""
        for connection in connections:
            connection.acking = acking
        return len(connections)

    def request_heartbeat(self, connections: list[Connection]) -> int:
        """Send op 1."""
        live = [c for c in connections if c.is_open and not c.silent]
        for connection in live:
            connection.queue_payload(Opcode.HEARTBEAT)
        return len(live)

    def _close_later(self, connection: Connection, code: int, reason: str) -> None:
        generation = connection.generation

        def close() -> None:
            # Only if the client neither left nor started a new session here.
            if connection.is_open and connection.generation == generation:
                self._gateway.server_close(connection, code, reason)

        connection.timers.append(
            self._gateway.later(self._gateway.settings.fault_close_delay_s, close)
        )

    def reconnect(self, connections: list[Connection]) -> int:
        """Send op 7, then close with 4000 if the client has not closed."""
        live = [c for c in connections if c.is_open and not c.silent]
        for connection in live:
            logger.info("sending RECONNECT on connection %d", connection.connection_id)
            connection.queue_payload(Opcode.RECONNECT)
            self._close_later(
                connection, CloseCode.UNKNOWN_ERROR, "reconnect requested"
            )
        return len(live)

    def invalidate(self, connections: list[Connection], resumable: bool) -> int:
        """Send op 9; with ``resumable`` false the session ends at once."""
        live = [c for c in connections if c.is_open and not c.silent]
        for connection in live:
            session = connection.session
            logger.info(
                "sending INVALID_SESSION %s on connection %d",
                resumable,
                connection.connection_id,
            )
            if session is not None and not resumable:
                self._gateway.end_session(
                    session, SessionState.INVALIDATED, "invalidated"
                )
            self._gateway.send_invalid_session(connection, resumable=resumable)
            code = CloseCode.UNKNOWN_ERROR if resumable else CloseCode.SESSION_TIMED_OUT
            self._close_later(connection, code, "session invalidated")
        return len(live)

    def close(self, connections: list[Connection], code: int, reason: str) -> int:
        """Close with any code."""
        live = [c for c in connections if c.is_open]
        for connection in live:
            self._gateway.server_close(connection, code, reason)
        return len(live)

    def send_raw(self, connections: list[Connection], kind: str) -> int:
        """Send a corrupt or truncated frame."""
        live = [c for c in connections if c.is_open and not c.silent]
        for connection in live:
            seq = connection.session.seq + 1 if connection.session else None
            data = {
                "user": {"id": str(self._gateway.world.bot.id)},
                "status": "online",
                "activities": [],
            }
            payload = orjson.dumps(
                {"t": "PRESENCE_UPDATE", "s": seq, "op": 0, "d": data}
            )
            logger.info(
                "sending a %s frame on connection %d", kind, connection.connection_id
            )
            connection.queue_bad_frame(kind, payload)
        return len(live)

    def send_padding(
        self, connections: list[Connection], padding: str, kind: str
    ) -> int:
        """Send a dispatch carrying ``padding`` (not replayed on RESUME)."""
        live = [
            c
            for c in connections
            if c.is_open and not c.silent and c.session is not None
        ]
        for connection in live:
            assert connection.session is not None
            logger.info(
                "sending a %s payload on connection %d", kind, connection.connection_id
            )
            self._gateway.dispatch_to(
                connection.session,
                "EMULATOR_PADDING",
                {"kind": kind, "padding": padding},
                replayable=False,
            )
        return len(live)

    # Faults of connections to come

    def stall_upgrades(self, duration_s: float) -> None:
        """Leave websocket upgrades unanswered for a while."""
        self._stall_until = max(self._stall_until, time.monotonic() + duration_s)

    def is_stalling(self, now: float) -> bool:
        """Whether an upgrade arriving now is left unanswered."""
        return now < self._stall_until

    def close_before_hello(self, count: int, code: int | None) -> None:
        """Close the next ``count`` connections before HELLO (``None``: drop them)."""
        self._close_before_hello.extend([code] * count)

    def closes_before_hello(self) -> bool:
        """Whether the next connection is to be closed before HELLO."""
        return bool(self._close_before_hello)

    def take_close_before_hello(self) -> int | None:
        """The close code for the next connection (``None``: drop it)."""
        return self._close_before_hello.pop(0)

    def clear(self) -> None:
        """Forget faults waiting for future connections."""
        self._close_before_hello.clear()
        self._stall_until = 0.0
