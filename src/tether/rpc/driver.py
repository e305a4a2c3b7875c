"""Runs :class:`~tether.rpc.protocol.RPCProtocol` over an IPC socket or named pipe.

The driver performs the :class:`~tether.manager.ConnectionManager`'s attempts: it
finds the app's endpoint, opens it, lets the protocol handshake, hands the new
connection to its host (the client) to restore its state, tells the manager the
attempt is established, and waits for the connection to end. It is the one place
where transport exceptions become tether's own.

Each :class:`RPCConnection` is the asyncio side of one protocol instance: a read
task feeding bytes in, a timer for the protocol's next deadline, and the futures
of the commands awaiting their answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Protocol

from tether.errors import ConnectionFault
from tether.manager import Attempt, Retry
from tether.rpc.errors import CommandTimeoutError, RPCError, fatal_close_error
from tether.rpc.protocol import (
    CloseReceived,
    CommandCompleted,
    CommandExpired,
    CommandFailed,
    CommandLost,
    ConnectionFailed,
    ConnectionState,
    DispatchReceived,
    ProtocolEvent,
    ReadyReceived,
    Recovery,
    RPCProtocol,
)

__all__ = ["ConnectionHost", "RPCConnection", "RPCDriver", "RequestLost"]

logger = logging.getLogger(__name__)

#: Bytes asked of the transport per read.
READ_SIZE: Final = 64 * 1024
#: The least wait before reconnecting after the app closed with RATE_LIMITED.
RATE_LIMITED_DELAY_S: Final = 10.0
#: Close code sent when the client closes: an RPC connection has no session to
#: keep, so every close the client makes is a normal one.
NORMAL_CLOSE_CODE: Final = 1000

StreamPair = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class RequestLost(Exception):
    """A command's connection became unusable; internal to the RPC client.

    Attributes:
        sent: whether the command reached the socket before that.
        reason: what ended the connection.
    """

    def __init__(self, *, sent: bool, reason: str) -> None:
        super().__init__(reason)
        self.sent = sent
        self.reason = reason


class _Expired(Exception):
    """A command's deadline passed; becomes a CommandTimeoutError."""


class ConnectionHost(Protocol):
    """What the driver needs from the client that owns it."""

    async def restore(self, connection: RPCConnection) -> None:
        """Bring a new connection to the client's state (authenticate, ...)."""
        ...

    def connection_ready(self, connection: RPCConnection) -> None:
        """The attempt is established: the connection takes commands."""
        ...

    def connection_unusable(self, connection: RPCConnection) -> None:
        """The connection takes no more commands (called once)."""
        ...

    def deliver(self, evt: str, data: Any) -> None:
        """An event arrived."""
        ...

    def forget_access_token(self) -> None:
        """The app revoked the access token."""
        ...


class RPCConnection:
    """One open IPC connection: the protocol, its transport and pending commands."""

    def __init__(
        self,
        protocol: RPCProtocol,
        streams: StreamPair,
        *,
        endpoint: str,
        host: ConnectionHost,
    ) -> None:
        self.protocol = protocol
        #: The socket path or pipe name.
        self.endpoint = endpoint
        self._reader, self._writer = streams
        self._host = host
        self._loop = asyncio.get_running_loop()
        # Futures of the commands awaiting their answer, by nonce.
        self._futures: dict[str, asyncio.Future[Any]] = {}
        # Set at each step toward the end: READY received, unusable, ended.
        self._progress = asyncio.Event()
        # How the connection ended: a Retry, or the exception to raise.
        self._outcome: Retry | BaseException | None = None
        self._reason = "the connection ended"
        self._timer: asyncio.TimerHandle | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._usable = True
        #: The READY dispatch's data, once received.
        self.ready_data: Mapping[str, Any] | None = None
        #: Whether the socket has ended.
        self.has_ended = False

    def __repr__(self) -> str:
        return f"<RPCConnection {self.endpoint} {self.protocol.state.value}>"

    # Lifecycle

    def open(self) -> None:
        """Send the handshake and start reading."""
        self.protocol.connection_opened(self._loop.time())
        self._after_input()
        self._read_task = self._loop.create_task(
            self._read_loop(), name=f"tether:rpc:read {self.endpoint}"
        )

    async def wait_ready(self) -> bool:
        """Wait for READY; return False if the connection ended (or broke) first."""
        while self.ready_data is None and self._usable:
            self._progress.clear()
            await self._progress.wait()
        return self.ready_data is not None and self._usable

    async def wait_ended(self) -> None:
        """Wait until the socket has ended."""
        while not self.has_ended:
            self._progress.clear()
            await self._progress.wait()

    def result(self) -> Retry:
        """How the connection ended, as the manager takes it.

        Raises:
            BaseException: the fault that ended it (fatal or a peer fault).
        """
        outcome = self._outcome
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome if outcome is not None else Retry(self._reason)

    async def close(self) -> None:
        """Send CLOSE and close the socket gracefully."""
        self.protocol.send_close(
            NORMAL_CLOSE_CODE, "closed by the client", self._loop.time()
        )
        self._after_input()
        self._set_outcome(Retry("closed by the client"))
        self._make_unusable()
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    def abort(self) -> None:
        """Drop the transport at once."""
        self._writer.transport.abort()

    async def dispose(self) -> None:
        """Release everything: the transport, the read task, the timer."""
        self.abort()
        task = self._read_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})
        self._finish()

    # Commands

    async def request(
        self,
        cmd: str,
        args: Mapping[str, Any] | None,
        *,
        deadline: float,
        timeout_s: float,
        evt: str | None = None,
    ) -> Any:
        """Send a command and return its answer's ``data``.

        Raises:
            RPCError: the app answered with an ERROR.
            CommandTimeoutError: no answer by ``deadline``.
            RequestLost: the connection became unusable before the answer.
            LocalProtocolError: the command is over the frame size cap.
        """
        if not self._usable or self.protocol.state is not ConnectionState.READY:
            raise RequestLost(sent=False, reason=self._reason)
        nonce = self.protocol.send_command(
            cmd, args, evt=evt, deadline=deadline, now=self._loop.time()
        )
        future: asyncio.Future[Any] = self._loop.create_future()
        self._futures[nonce] = future
        try:
            self._after_input()
            # Backpressure, for an app that stopped reading; the future still
            # reports the outcome if the wait ends early.
            with contextlib.suppress(OSError):
                async with asyncio.timeout_at(deadline):
                    await self._writer.drain()
            return await future
        except _Expired:
            raise CommandTimeoutError(cmd, timeout_s, was_sent=True) from None
        finally:
            self._futures.pop(nonce, None)

    # Input handling

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self._reader.read(READ_SIZE)
                if not data:
                    self._reason = "Discord closed the connection"
                    break
                self.protocol.receive_data(data, self._loop.time())
                self._after_input()
        except OSError as exc:
            self._reason = f"the connection failed ({exc.__class__.__name__}: {exc})"
        finally:
            self._finish()

    def _after_input(self) -> None:
        data = self.protocol.data_to_send()
        if data and not self._writer.is_closing():
            self._writer.write(data)
        for event in self.protocol.events():
            self._handle(event)
        self._schedule_tick()

    def _handle(self, event: ProtocolEvent) -> None:
        match event:
            case CommandCompleted(nonce=nonce, data=data):
                self._settle(nonce, result=data)
            case CommandFailed(nonce=nonce, cmd=cmd, code=code, message=message):
                self._settle(nonce, error=RPCError(code, message, cmd=cmd))
            case CommandExpired(nonce=nonce):
                self._settle(nonce, error=_Expired())
            case CommandLost(nonce=nonce):
                self._settle(nonce, error=RequestLost(sent=True, reason=self._reason))
            case DispatchReceived(evt=evt, data=data):
                self._host.deliver(evt, data)
            case ReadyReceived(data=data):
                self.ready_data = data
                self._progress.set()
            case CloseReceived():
                self._receive_close(event)
            case ConnectionFailed(error=error):
                self._reason = str(error)
                self._set_outcome(error)
                self._make_unusable()
                self.abort()

    def _receive_close(self, event: CloseReceived) -> None:
        code, message = event.code, event.message
        detail = f" ({message})" if message else ""
        self._reason = f"Discord closed the connection with {code}{detail}"
        logger.debug(
            "%s: %s; recovery: %s", self.endpoint, self._reason, event.recovery.value
        )
        match event.recovery:
            case Recovery.FATAL:
                self._set_outcome(fatal_close_error(code or 0, message))
            case Recovery.RECONNECT_LATER:
                self._set_outcome(Retry(self._reason, delay_s=RATE_LIMITED_DELAY_S))
            case Recovery.FORGET_TOKEN:
                self._host.forget_access_token()
                self._set_outcome(Retry(self._reason))
            case Recovery.RECONNECT:
                self._set_outcome(Retry(self._reason))
        self._make_unusable()
        self._writer.close()

    def _settle(
        self, nonce: str, *, result: Any = None, error: BaseException | None = None
    ) -> None:
        future = self._futures.pop(nonce, None)
        if future is None or future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def _set_outcome(self, outcome: Retry | BaseException) -> None:
        # The first cause wins: a CLOSE explains the end of stream that follows it.
        if self._outcome is None:
            self._outcome = outcome

    def _make_unusable(self) -> None:
        if self._usable:
            self._usable = False
            self._progress.set()
            self._host.connection_unusable(self)

    def _finish(self) -> None:
        if self.has_ended:
            return
        self._make_unusable()
        self.has_ended = True
        self.protocol.connection_closed(self._loop.time())
        self._after_input()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._progress.set()

    # Timers

    def _schedule_tick(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.protocol.next_deadline()
        if deadline is not None and not self.has_ended:
            self._timer = self._loop.call_at(deadline, self._tick, deadline)

    def _tick(self, deadline: float) -> None:
        self._timer = None
        # The loop may run a timer a clock tick early; the deadline has come.
        self.protocol.tick(max(self._loop.time(), deadline))
        self._after_input()


class RPCDriver:
    """Performs the attempts of the RPC client's connection manager.

    Args:
        host: the client that owns the driver.
        client_id: the application id, for the handshake.
        endpoints: returns the endpoints to try, in order (called per attempt, so
            the app is found again if it comes back at another index).
        max_frame_size: the largest frame body accepted or sent.
        nonce_factory: makes command nonces (the protocol's default if ``None``).
    """

    def __init__(
        self,
        host: ConnectionHost,
        *,
        client_id: str,
        endpoints: Callable[[], Sequence[str]],
        max_frame_size: int,
        nonce_factory: Callable[[], str] | None = None,
    ) -> None:
        self._host = host
        self._client_id = client_id
        self._endpoints = endpoints
        self._max_frame_size = max_frame_size
        self._nonce_factory = nonce_factory
        self._connection: RPCConnection | None = None

    @property
    def connection(self) -> RPCConnection | None:
        """The open connection, if any."""
        return self._connection

    async def run(self, attempt: Attempt) -> Retry | None:
        """Connect, handshake, restore, then hold the connection until it ends."""
        streams, endpoint = await self._open()
        if self._nonce_factory is None:
            protocol = RPCProtocol(self._client_id, max_frame_size=self._max_frame_size)
        else:
            protocol = RPCProtocol(
                self._client_id,
                max_frame_size=self._max_frame_size,
                nonce_factory=self._nonce_factory,
            )
        connection = RPCConnection(
            protocol, streams, endpoint=endpoint, host=self._host
        )
        self._connection = connection
        try:
            connection.open()
            if not await connection.wait_ready():
                return connection.result()
            logger.info("connected to Discord at %s", endpoint)

            try:
                await self._host.restore(connection)
            except (CommandTimeoutError, RequestLost) as exc:
                if not connection.has_ended and connection.protocol.state is (
                    ConnectionState.READY
                ):
                    raise ConnectionFault(
                        f"restoring the connection failed: {exc}"
                    ) from exc
            if connection.protocol.state is not ConnectionState.READY:
                await connection.wait_ended()
                return connection.result()

            attempt.established()
            self._host.connection_ready(connection)
            await connection.wait_ended()
            return connection.result()
        finally:
            self._connection = None
            await connection.dispose()

    async def close(self, code: int) -> None:
        """Close the open connection gracefully (always as a normal close)."""
        connection = self._connection
        if connection is not None and not connection.has_ended:
            await connection.close()

    def abort(self) -> None:
        """Drop the open connection's transport at once."""
        if self._connection is not None:
            self._connection.abort()

    # Opening

    async def _open(self) -> tuple[StreamPair, str]:
        endpoints = list(self._endpoints())
        failures: list[str] = []
        for endpoint in endpoints:
            if sys.platform != "win32" and not _is_socket(endpoint):
                continue
            try:
                streams = await _open_endpoint(endpoint)
            except OSError as exc:
                # A stale socket file left by a crashed app refuses connections.
                failures.append(f"{endpoint}: {exc.strerror or exc}")
                continue
            logger.debug("opened %s", endpoint)
            return streams, endpoint
        where = os.path.dirname(endpoints[0]) if endpoints else "nowhere"
        detail = f" ({'; '.join(failures)})" if failures else ""
        raise ConnectionFault(
            f"the Discord app is not running: no IPC endpoint in {where} accepts "
            f"connections{detail}"
        )


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


async def _open_endpoint(endpoint: str) -> StreamPair:
    if sys.platform == "win32":
        return await _open_pipe(endpoint)
    return await asyncio.open_unix_connection(endpoint)


async def _open_pipe(name: str) -> StreamPair:
    """Open a Windows named pipe with the proactor loop's pipe support."""
    loop = asyncio.get_running_loop()
    create_pipe_connection = getattr(loop, "create_pipe_connection", None)
    if create_pipe_connection is None:
        raise ConnectionFault(
            "named pipes need asyncio's proactor event loop (Windows' default); "
            "the running loop has no create_pipe_connection"
        )
    reader = asyncio.StreamReader()
    protocol = asyncio.StreamReaderProtocol(reader)
    transport, _ = await create_pipe_connection(lambda: protocol, name)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return reader, writer
