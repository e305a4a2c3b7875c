"""A TCP listener for one aiohttp application that can stop and resume listening."""

from __future__ import annotations

import asyncio
import logging
import socket

from aiohttp import web

__all__ = ["Listener"]

logger = logging.getLogger(__name__)


class Listener:
    """Serves one aiohttp application on one host and port.

    :meth:`pause` closes the listening socket, so new TCP connections are refused
    while the connections already accepted carry on; :meth:`unpause` listens again
    on the same port.

    Args:
        app: the application to serve.
        name: a short name for logs.
        shutdown_timeout_s: how long :meth:`stop` lets requests in progress finish.
    """

    def __init__(
        self, app: web.Application, name: str, *, shutdown_timeout_s: float = 0.5
    ) -> None:
        self._name = name
        # handler_cancellation: a request whose client went away is cancelled, so
        # hung requests and stalled upgrades end when the client gives up.
        self._runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=shutdown_timeout_s,
        )
        self._server: asyncio.Server | None = None
        self._host = ""
        #: The bound port (0 before :meth:`start`).
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        """Bind and listen (``port`` 0 picks a free one)."""
        await self._runner.setup()
        self._host = host
        await self._listen(port)
        logger.debug("%s listening on %s:%d", self._name, host, self.port)

    async def _listen(self, port: int) -> None:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, port))
            sock.setblocking(False)
            factory = self._runner.server
            assert factory is not None
            self._server = await asyncio.get_running_loop().create_server(
                factory, sock=sock, backlog=128
            )
        except BaseException:
            sock.close()
            raise
        self.port = sock.getsockname()[1]

    @property
    def is_listening(self) -> bool:
        """Whether new connections are accepted."""
        return self._server is not None

    def pause(self) -> None:
        """Stop accepting connections: new ones are refused by the OS."""
        if self._server is not None:
            self._server.close()
            self._server = None
            logger.debug("%s stopped listening", self._name)

    async def unpause(self) -> None:
        """Listen again on the same port."""
        if self._server is None and self.port:
            await self._listen(self.port)
            logger.debug("%s listening again on port %d", self._name, self.port)

    async def stop(self) -> None:
        """Stop listening and end every request still running."""
        self.pause()
        self.port = 0
        await self._runner.cleanup()
