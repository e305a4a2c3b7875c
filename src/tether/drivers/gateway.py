"""The gateway driver: runs :class:`~tether.gateway.protocol.GatewayProtocol` over a
websocket, one connection per attempt of a :class:`~tether.manager.ConnectionManager`.

This is the only module that talks to the websocket library (aiohttp). It does no
protocol reasoning: it feeds what it reads to the protocol, sends what the protocol
drains, sleeps until the protocol's next deadline, and translates transport faults
into tether's exceptions at this one boundary.

Two tasks per connection: the reader (receive, decode, feed, hand dispatches on) and
the writer (timers and sends). The writer is the only task that writes to the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import aiohttp

from tether.errors import (
    ConnectionClosedError,
    ConnectionFault,
    DecodeError,
    FatalError,
    InvalidTokenError,
    PayloadTooLargeError,
    RemoteProtocolError,
    TetherError,
    UnauthorizedError,
)
from tether.gateway.codec import Compression, Decoder, encode
from tether.gateway.opcodes import Opcode, Recovery
from tether.gateway.protocol import (
    CloseRequested,
    ConnectionState,
    Dispatch,
    GatewayProtocol,
    HeartbeatAcked,
    IdentifyRequired,
    SessionReady,
)
from tether.identify import IdentifyQueue, LocalIdentifyQueue, TurnNotUsed
from tether.manager import RESUMABLE_CLOSE_CODE, Attempt, Retry

__all__ = ["GatewayDriver"]

logger = logging.getLogger(__name__)

#: Default cap on one decompressed gateway message.
DEFAULT_MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024
#: Connect failures to a cached gateway URL before it is fetched again.
REFETCH_AFTER_FAILURES: Final = 3
#: Close codes after which Discord ends the session, when the client sends them.
_SESSION_ENDING_CODES: Final = frozenset({1000, 1001})
#: Dispatches that end a handshake: queued commands may go out after them.
_HANDSHAKE_ENDS: Final = frozenset({"READY", "RESUMED"})
#: How long our own close handshake may take before the transport is dropped.
CLOSE_HANDSHAKE_S: Final = 1.0


class GatewayDriver:
    """Performs gateway connection attempts for one shard.

    Args:
        protocol: the shard's protocol state machine (it holds the session).
        fetch_gateway_url: returns the gateway URL (``GET /gateway/bot``); called
            inside an attempt, so a hang is covered by the attempt's timeout.
        on_dispatch: called with every dispatch, in order, from the reader task.
            It must not block.
        identify_queue: gives identify turns; a private one is made when omitted.
        shard_id: for the identify queue and logs.
        compress: transport compression: ``"zlib-stream"``, ``"zstd-stream"`` or
            ``None``.
        max_message_size: cap on one decompressed message.
        session: an aiohttp session to use; one is made (and closed) otherwise.
        clock: a monotonic clock, in seconds.
    """

    def __init__(
        self,
        protocol: GatewayProtocol,
        *,
        fetch_gateway_url: Callable[[], Awaitable[str]],
        on_dispatch: Callable[[Dispatch], None],
        identify_queue: IdentifyQueue | None = None,
        shard_id: int = 0,
        compress: Compression = "zlib-stream",
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.protocol = protocol
        self._fetch_gateway_url = fetch_gateway_url
        self._on_dispatch = on_dispatch
        self._identify_queue = identify_queue or LocalIdentifyQueue()
        self.shard_id = shard_id
        self.compress = compress
        self.max_message_size = max_message_size
        self._session = session
        self._owns_session = session is None
        self._clock = clock
        self._log = logging.LoggerAdapter(logger, {"shard_id": shard_id})

        #: Last heartbeat round trip, in seconds.
        self.latency: float | None = None
        self._gateway_url: str | None = None
        self._connect_failures = 0
        # Per-connection state, reset by each attempt.
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._wake_writer = asyncio.Event()
        self._close_request: CloseRequested | None = None
        self._identify_task: asyncio.Task[None] | None = None
        # What ended the identify turn, when it failed.
        self._identify_error: Exception | None = None

    def __repr__(self) -> str:
        return f"<GatewayDriver shard={self.shard_id}>"

    # Driver interface

    async def run(self, attempt: Attempt) -> Retry | None:
        """Open one connection and run it until it ends."""
        url = await self._connect_url()
        ws = await self._connect(url)
        self._ws = ws
        self._close_request = None
        # The last connection's round trip says nothing about this one.
        self.latency = None
        self._wake_writer = asyncio.Event()
        decoder = Decoder(self.compress, max_size=self.max_message_size)
        self.protocol.connection_opened(self._clock())
        writer = asyncio.create_task(self._write_loop(ws, attempt))
        ended: tuple[int | None, str] | None = None
        self._identify_error = None
        try:
            ended = await self._read_loop(ws, decoder, attempt)
            if self._identify_error is not None:
                ended = None
                raise self._identify_error
            if self._close_request is not None:
                await self._let_writer_close(writer)
        finally:
            writer.cancel()
            if self._identify_task is not None:
                self._identify_task.cancel()
                self._identify_task = None
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
            self._ws = None
            if not ws.closed:
                self._drop(ws)
            if ended is None:
                self._forget_connection()
        return self._conclude(*ended)

    async def close(self, code: int) -> None:
        """Close the open connection with ``code`` (the manager bounds the wait)."""
        ws = self._ws
        if ws is not None and not ws.closed:
            self._log.debug("closing with %d", code)
            if code in _SESSION_ENDING_CODES:
                # Discord ends the session on 1000/1001: the next start identifies.
                self.protocol.forget_session()
            await ws.close(code=code)

    def abort(self) -> None:
        """Drop the open connection's transport now."""
        ws = self._ws
        if ws is not None:
            self._drop(ws)

    async def aclose(self) -> None:
        """Release the HTTP session, if this driver made it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    # Commands from the client

    def send_command(self, op: Opcode, d: Any) -> None:
        """Queue a command (presence, voice state, member request) for sending.

        Raises:
            LocalProtocolError: there is no usable session to send it on.
        """
        self.protocol.send_command(op, d, self._clock())
        self._wake_writer.set()

    # Connecting

    async def _connect_url(self) -> str:
        if (
            self._gateway_url is None
            or self._connect_failures >= REFETCH_AFTER_FAILURES
        ):
            url = await self._fetch_gateway_url_once()
            if url is not None:
                self._gateway_url = url
            self._connect_failures = 0
        assert self._gateway_url is not None
        return self.protocol.connect_url(self._gateway_url, compress=self.compress)

    async def _fetch_gateway_url_once(self) -> str | None:
        """Fetch the gateway URL; None when it failed but one is cached.

        Raises:
            InvalidTokenError: the token was refused.
            ConnectionFault: the fetch failed and no URL is cached.
        """
        try:
            return await self._fetch_gateway_url()
        except UnauthorizedError as exc:
            # The token is wrong: no gateway would take it either (4004), and
            # retrying would spin forever on the same answer.
            raise InvalidTokenError.refused_by_rest() from exc
        except FatalError:
            raise
        except (TetherError, aiohttp.ClientError, OSError) as exc:
            if self._gateway_url is None:
                # A REST outage is an ordinary fault of this attempt.
                raise ConnectionFault(
                    f"could not get the gateway URL (GET /gateway/bot): {exc}"
                ) from exc
            self._log.warning(
                "GET /gateway/bot failed (%s); using the gateway URL fetched before",
                exc,
            )
            return None

    async def _connect(self, url: str) -> aiohttp.ClientWebSocketResponse:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        resuming = self.protocol.has_session() and self.protocol.resume_url is not None
        try:
            ws = await self._session.ws_connect(
                url,
                autoclose=False,
                autoping=True,
                max_msg_size=self.max_message_size,
                compress=0,
                timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_HANDSHAKE_S),
            )
        except (aiohttp.ClientError, OSError) as exc:
            if resuming:
                # A resume URL that does not answer is dropped for the main one;
                # the session is kept and resumed there.
                self._log.warning(
                    "resume URL failed (%s); using the main gateway URL", exc
                )
                self.protocol.drop_resume_url()
            else:
                self._connect_failures += 1
            raise ConnectionFault(f"could not connect to the gateway: {exc}") from exc
        self._connect_failures = 0
        self._log.info("connected to the gateway (%s)", url.split("?")[0])
        return ws

    # The two tasks of a connection

    async def _read_loop(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        decoder: Decoder,
        attempt: Attempt,
    ) -> tuple[int | None, str]:
        """Read until the connection ends; return the close code and reason.

        The code is None when the connection dropped with no close frame.
        """
        protocol = self.protocol
        while True:
            msg = await ws.receive()
            kind = msg.type
            if kind is aiohttp.WSMsgType.TEXT or kind is aiohttp.WSMsgType.BINARY:
                try:
                    payload = decoder.feed(msg.data)
                except (PayloadTooLargeError, DecodeError) as exc:
                    # Skipping the frame could lose a dispatch (its seq would be
                    # jumped over); a resume replays it. A compressed stream
                    # cannot go on past a bad frame anyway.
                    self._log.error(
                        "closing the connection to resume after a bad frame: %s", exc
                    )
                    await self._close_quietly(ws, RESUMABLE_CLOSE_CODE)
                    raise
                if payload is None:
                    continue
                protocol.receive_payload(payload, self._clock())
                self._handle_events(attempt)
                if payload.get("op") != 0 or payload.get("t") in _HANDSHAKE_ENDS:
                    # Only these can queue frames or move a timer: an ordinary
                    # dispatch needs nothing from the writer.
                    self._wake_writer.set()
                if self._close_request is not None:
                    await self._close_quietly(ws, self._close_request.code)
                    return self._close_request.code, ""
            elif kind is aiohttp.WSMsgType.CLOSE:
                code = int(msg.data) if msg.data is not None else None
                reason = msg.extra if isinstance(msg.extra, str) else ""
                self._log.debug("the gateway closed with %s (%s)", code, reason)
                if code is not None:
                    await self._close_quietly(ws, code)
                return code, reason
            elif kind is aiohttp.WSMsgType.ERROR:
                if isinstance(msg.data, aiohttp.WebSocketError):
                    # A frame over max_message_size, or a broken websocket frame.
                    self._log.error(
                        "closing the connection to resume after a bad frame: %s",
                        msg.data,
                    )
                    await self._close_quietly(ws, RESUMABLE_CLOSE_CODE)
                    raise RemoteProtocolError(f"websocket error: {msg.data}")
                return None, ""
            else:
                # CLOSED / CLOSING: the transport went away, or we closed it.
                if self._close_request is not None:
                    return self._close_request.code, ""
                return None, ""

    async def _write_loop(
        self, ws: aiohttp.ClientWebSocketResponse, attempt: Attempt
    ) -> None:
        try:
            await self._write_until_closed(ws, attempt)
        except (ConnectionError, aiohttp.ClientError) as exc:
            # The socket broke under a send: drop it, so that the reader and the
            # attempt end now rather than when the server notices.
            self._log.debug("sending failed (%s); dropping the connection", exc)
            self._drop(ws)
        except Exception:
            # Heartbeats stop with this task: never leave the connection up.
            self._log.exception("the writer failed; dropping the connection")
            self._drop(ws)

    async def _write_until_closed(
        self, ws: aiohttp.ClientWebSocketResponse, attempt: Attempt
    ) -> None:
        protocol = self.protocol
        wake = self._wake_writer
        while not ws.closed:
            # Cleared before draining, so that frames queued by the reader while
            # this task awaits a send wake it again instead of waiting for the
            # next timer.
            wake.clear()
            protocol.tick(self._clock())
            for frame in protocol.frames_to_send():
                if ws.closed:
                    return
                await ws.send_str(encode(frame))
            self._handle_events(attempt)
            if self._close_request is not None:
                await self._close_quietly(ws, self._close_request.code)
                return
            deadline = protocol.next_deadline()
            delay = None if deadline is None else deadline - self._clock()
            if delay is None or delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await wake.wait()

    async def _let_writer_close(self, writer: asyncio.Task[None]) -> None:
        # A close the protocol asked for from a timer (zombie, HELLO timeout) is
        # sent by the writer; the reader sees the connection closing first.
        # Cancelling the writer then would lose the close frame, and with it
        # the code that keeps the session resumable.
        self._wake_writer.set()
        await asyncio.wait({writer}, timeout=2 * CLOSE_HANDSHAKE_S)

    def _handle_events(self, attempt: Attempt) -> None:
        for event in self.protocol.events():
            if isinstance(event, Dispatch):
                self._on_dispatch(event)
            elif isinstance(event, SessionReady):
                attempt.established(resumed=event.resumed)
            elif isinstance(event, HeartbeatAcked):
                self.latency = event.latency_s
            elif isinstance(event, IdentifyRequired):
                self._identify_task = asyncio.create_task(self._identify(attempt))
            elif isinstance(event, CloseRequested) and self._close_request is None:
                self._log.debug("%s; closing with %d", event.reason, event.code)
                self._close_request = event

    async def _identify(self, attempt: Attempt) -> None:
        try:
            with contextlib.suppress(TurnNotUsed):
                async with attempt.waiting(), self._identify_queue.turn(self.shard_id):
                    await self._send_identify()
        except Exception as exc:
            # The queue refused (a spent daily limit) or failed: the attempt ends
            # with its error instead of waiting for its timeout.
            self._identify_error = exc
            if self._ws is not None:
                self._drop(self._ws)

    async def _send_identify(self) -> None:
        # While this waited, the connection may have ended or the protocol asked
        # to close it (zombie, op 7): then nothing is sent and the turn is given
        # back.
        closing = self.protocol.state is not ConnectionState.AWAITING_IDENTIFY
        if self._ws is None or self._ws.closed or closing:
            raise TurnNotUsed
        self.protocol.send_identify(self._clock())
        self._wake_writer.set()
        # The turn is used once the frame is out: wait for the writer to send it.
        await asyncio.sleep(0)

    # Ending

    def _forget_connection(self) -> None:
        """Tell the protocol a connection ended that is not concluded normally.

        The attempt was cancelled (stop, attempt timeout) or the reader failed
        (a bad frame): the protocol must still learn that the socket is gone, or
        it would refuse the next connection.
        """
        if self.protocol.state is not ConnectionState.DISCONNECTED:
            request = self._close_request
            code = request.code if request is not None else None
            self.protocol.connection_closed(code, self._clock())

    def _conclude(self, code: int | None, reason: str) -> Retry | None:
        request = self._close_request
        now = self._clock()
        if request is not None:
            self.protocol.connection_closed(request.code, now)
            return Retry(request.reason, delay_s=request.delay_s)
        recovery = self.protocol.connection_closed(code, now, reason=reason)
        if recovery is Recovery.FATAL:
            error = self.protocol.fatal_error()
            if error is not None:
                raise error
        what = "dropped" if code is None else f"closed by the gateway with {code}"
        raise ConnectionClosedError(code, f"{what}; will {recovery.value}")

    async def _close_quietly(
        self, ws: aiohttp.ClientWebSocketResponse, code: int
    ) -> None:
        if ws.closed:
            return
        try:
            async with asyncio.timeout(CLOSE_HANDSHAKE_S):
                await ws.close(code=code)
        except (TimeoutError, aiohttp.ClientError, OSError):
            self._drop(ws)

    def _drop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        # aiohttp has no public abort for a client websocket; closing the response
        # drops its connection without a close handshake.
        response = getattr(ws, "_response", None)
        if response is not None:
            response.close()
