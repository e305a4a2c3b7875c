"""An emulated Discord desktop app: the local RPC server on a Unix socket.

:class:`DesktopApp` listens at ``<directory>/discord-ipc-<index>`` and speaks the
IPC protocol (PROTOCOL.md section 8): the handshake and READY, the commands with
their nonces and ERROR answers, subscriptions and their events, PING/PONG and CLOSE.
Tests point ``XDG_RUNTIME_DIR`` at a temporary directory and start one there, so no
real Discord socket is ever touched.

Faults, each one a method or attribute: :meth:`restart` (at the same or another
index), :meth:`remove_socket_file`, :meth:`close_connections` with any code,
:meth:`ping`, :meth:`send_truncated_frame`, :meth:`send_oversized_frame`,
:meth:`send_garbage`, ``response_delay_s`` (slow answers), ``unanswered`` (commands
never answered), :meth:`fail_next` (a scripted ERROR answer).

Records for tests: :attr:`frames`, :attr:`commands`, :attr:`handshakes`,
:meth:`connections`, :meth:`activity_for`, :meth:`subscriptions`,
:attr:`join_replies`, :attr:`pongs`, and :meth:`wait_until` to wait for any of them.

The framing here is written apart from the client's on purpose: a bug in the
client's encoder must not be mirrored by the server that tests it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import json
import logging
import os
import stat
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "AUTHORIZE_CODE",
    "DEFAULT_ACCESS_TOKEN",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_USER",
    "AppConnectionInfo",
    "CommandRecord",
    "DesktopApp",
    "IPCFrameRecord",
]

logger = logging.getLogger(__name__)

#: The application id the app accepts by default.
DEFAULT_CLIENT_ID: Final = "500000000000000001"
#: The access token AUTHENTICATE accepts by default.
DEFAULT_ACCESS_TOKEN: Final = "emulated-access-token"
#: The code AUTHORIZE answers with.
AUTHORIZE_CODE: Final = "emulated-oauth2-code"
#: The user logged in to the emulated app.
DEFAULT_USER: Final[Mapping[str, Any]] = {
    "id": "600000000000000001",
    "username": "tester",
    "discriminator": "0",
    "global_name": "Tester",
    "avatar": None,
    "bot": False,
}

_HEADER: Final = struct.Struct("<II")
_HANDSHAKE, _FRAME, _CLOSE, _PING, _PONG = 0, 1, 2, 3, 4
_OP_NAMES: Final = {0: "HANDSHAKE", 1: "FRAME", 2: "CLOSE", 3: "PING", 4: "PONG"}
_RECORD_LIMIT: Final = 10_000

# Events a connection may subscribe to, with the argument each needs.
_EVENT_ARGS: Final[Mapping[str, str | None]] = {
    "GUILD_STATUS": "guild_id",
    "GUILD_CREATE": None,
    "CHANNEL_CREATE": None,
    "VOICE_CHANNEL_SELECT": None,
    "VOICE_STATE_CREATE": "channel_id",
    "VOICE_STATE_UPDATE": "channel_id",
    "VOICE_STATE_DELETE": "channel_id",
    "VOICE_SETTINGS_UPDATE": None,
    "VOICE_CONNECTION_STATUS": None,
    "SPEAKING_START": "channel_id",
    "SPEAKING_STOP": "channel_id",
    "MESSAGE_CREATE": "channel_id",
    "MESSAGE_UPDATE": "channel_id",
    "MESSAGE_DELETE": "channel_id",
    "NOTIFICATION_CREATE": None,
    "ACTIVITY_JOIN": None,
    "ACTIVITY_SPECTATE": None,
    "ACTIVITY_JOIN_REQUEST": None,
    "ACTIVITY_INVITE": None,
    "CURRENT_USER_UPDATE": None,
    "RELATIONSHIP_UPDATE": None,
    "ENTITLEMENT_CREATE": None,
    "ENTITLEMENT_DELETE": None,
}
# What works without AUTHENTICATE: rich presence and Ask to Join.
_OPEN_COMMANDS: Final = frozenset(
    {
        "AUTHORIZE",
        "AUTHENTICATE",
        "SET_ACTIVITY",
        "SEND_ACTIVITY_JOIN_INVITE",
        "CLOSE_ACTIVITY_REQUEST",
        "CLOSE_ACTIVITY_JOIN_REQUEST",
    }
)
_OPEN_EVENTS: Final = frozenset(
    {"ACTIVITY_JOIN", "ACTIVITY_SPECTATE", "ACTIVITY_JOIN_REQUEST", "ACTIVITY_INVITE"}
)
_ACTIVITY_TYPES: Final = frozenset({0, 2, 3, 5})

SubscriptionKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True, slots=True)
class IPCFrameRecord:
    """One frame (or fault bytes) the app sent or received.

    Attributes:
        time: when (``time.monotonic()``).
        direction: ``"sent"`` (app to client) or ``"received"``.
        connection: the connection's number.
        op: the opcode (``None`` for raw fault bytes).
        payload: the decoded body, access tokens masked.
        kind: ``"frame"``, or the fault: ``"garbage"``, ``"truncated"``,
            ``"oversized"``.
    """

    time: float
    direction: Literal["sent", "received"]
    connection: int
    op: int | None
    payload: Any
    kind: str = "frame"


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """A command the app received (access tokens masked).

    Attributes:
        connection: the connection's number.
        client_id: the connection's application id.
        cmd: the command.
        args: its arguments.
        evt: its event, for SUBSCRIBE and UNSUBSCRIBE.
    """

    connection: int
    client_id: str
    cmd: str
    args: Mapping[str, Any]
    evt: str | None


@dataclass(frozen=True, slots=True)
class AppConnectionInfo:
    """A snapshot of one handshaken connection.

    Attributes:
        id: the connection's number.
        client_id: the application id it handshook with.
        authenticated: whether AUTHENTICATE succeeded on it.
        subscriptions: its subscriptions as ``(evt, ((arg, value), ...))``.
        activity: the activity it set, if any.
        pid: the pid it sent with SET_ACTIVITY.
    """

    id: int
    client_id: str
    authenticated: bool
    subscriptions: frozenset[SubscriptionKey]
    activity: Mapping[str, Any] | None
    pid: int | None


class _AppError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class _Connection:
    id: int
    writer: asyncio.StreamWriter
    task: asyncio.Task[Any] | None
    client_id: str | None = None
    authenticated: bool = False
    subscriptions: set[SubscriptionKey] = field(default_factory=set)
    activity: dict[str, Any] | None = None
    pid: int | None = None


def _key(evt: str, args: Mapping[str, Any]) -> SubscriptionKey:
    return evt, tuple(sorted((k, str(v)) for k, v in args.items()))


def _mask(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: "***" if k == "access_token" and isinstance(v, str) else _mask(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def _js_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class DesktopApp:
    """The emulated Discord desktop app's RPC server.

    Args:
        directory: where to put the socket (what ``XDG_RUNTIME_DIR`` points at).
        client_id: the application id the app accepts; others get CLOSE 4000.
        index: the ``n`` of ``discord-ipc-<n>``.
        user: the logged-in user (:data:`DEFAULT_USER` by default).
        access_token: the token AUTHENTICATE accepts.
        max_frame_size: the largest frame body the app accepts.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        client_id: int | str = DEFAULT_CLIENT_ID,
        index: int = 0,
        user: Mapping[str, Any] | None = None,
        access_token: str = DEFAULT_ACCESS_TOKEN,
        max_frame_size: int = 64 * 1024,
    ) -> None:
        self.directory = os.fspath(directory)
        #: The application id accepted in the handshake.
        self.client_id = str(client_id)
        #: The ``n`` of ``discord-ipc-<n>``; :meth:`restart` may change it.
        self.index = index
        #: The logged-in user, as sent in READY.
        self.user: dict[str, Any] = dict(user if user is not None else DEFAULT_USER)
        #: The token AUTHENTICATE accepts; change it to make re-authentication fail.
        self.access_token = access_token
        self.max_frame_size = max_frame_size

        # Faults.
        #: Seconds to wait before each answer.
        self.response_delay_s = 0.0
        #: Commands that are never answered.
        self.unanswered: set[str] = set()
        #: Whether AUTHORIZE fails as if the user denied it.
        self.authorize_denied = False
        self._scripted_errors: dict[str, collections.deque[tuple[int, str]]] = {}

        # The world the commands look at.
        self.guilds: dict[str, dict[str, Any]] = {
            "100000000000000001": {"id": "100000000000000001", "name": "Tether Lab"},
            "100000000000000002": {"id": "100000000000000002", "name": "Second Guild"},
        }
        self.channels: dict[str, dict[str, Any]] = {}
        for n, (guild_id, name, kind) in enumerate(
            [
                ("100000000000000001", "general", 0),
                ("100000000000000001", "Lounge", 2),
                ("100000000000000002", "chat", 0),
                ("100000000000000002", "Voice", 2),
            ],
            start=1,
        ):
            channel_id = f"20000000000000000{n}"
            self.channels[channel_id] = {
                "id": channel_id,
                "guild_id": guild_id,
                "name": name,
                "type": kind,
                "topic": "",
                "bitrate": 64000 if kind == 2 else None,
                "user_limit": 0,
                "position": n,
            }
        self.voice_settings: dict[str, Any] = {
            "input": {"device_id": "default", "volume": 100.0, "available_devices": []},
            "output": {
                "device_id": "default",
                "volume": 100.0,
                "available_devices": [],
            },
            "mode": {
                "type": "VOICE_ACTIVITY",
                "auto_threshold": True,
                "threshold": -60,
                "shortcut": [],
                "delay": 20,
            },
            "automatic_gain_control": True,
            "echo_cancellation": True,
            "noise_suppression": True,
            "qos": False,
            "silence_warning": True,
            "deaf": False,
            "mute": False,
        }
        #: The voice channel the user is in.
        self.selected_voice_channel: str | None = None
        #: Per-user voice settings set by SET_USER_VOICE_SETTINGS.
        self.user_voice_settings: dict[str, dict[str, Any]] = {}
        #: Users waiting for an answer to their Ask to Join request.
        self.pending_join_requests: set[str] = set()

        # Records.
        #: Frames sent and received (the last 10 000).
        self.frames: collections.deque[IPCFrameRecord] = collections.deque(
            maxlen=_RECORD_LIMIT
        )
        #: Commands received (the last 10 000).
        self.commands: collections.deque[CommandRecord] = collections.deque(
            maxlen=_RECORD_LIMIT
        )
        #: Handshakes accepted.
        self.handshakes = 0
        #: Handshakes refused (wrong client id or version).
        self.refused_handshakes = 0
        #: Connections accepted (handshaken or not).
        self.accepted = 0
        #: Answers to Ask to Join: (command, user id).
        self.join_replies: list[tuple[str, str]] = []
        #: PONG bodies received.
        self.pongs: list[Any] = []

        self._server: asyncio.Server | None = None
        self._connections: dict[int, _Connection] = {}
        self._next_id = 0
        self._changed = asyncio.Event()

    def __repr__(self) -> str:
        running = "running" if self.is_running else "stopped"
        return f"<DesktopApp {self.path} {running}>"

    # Lifecycle

    @property
    def path(self) -> str:
        """The socket's path."""
        return os.path.join(self.directory, f"discord-ipc-{self.index}")

    @property
    def is_running(self) -> bool:
        """Whether the server accepts connections."""
        return self._server is not None

    async def start(self) -> None:
        """Listen at :attr:`path` (a stale socket file there is replaced)."""
        if self._server is not None:
            return
        os.makedirs(self.directory, exist_ok=True)
        self._server = await asyncio.start_unix_server(self._serve, path=self.path)
        logger.info("desktop app listening at %s", self.path)

    async def stop(self) -> None:
        """Quit: drop every connection and remove the socket file."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        connections = list(self._connections.values())
        for connection in connections:
            connection.writer.transport.abort()
            # A handler may be sleeping in a slow answer: wake it.
            if connection.task is not None:
                connection.task.cancel()
        tasks = {c.task for c in connections if c.task is not None}
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        await server.wait_closed()
        self._unlink()
        self._touch()

    async def restart(self, *, index: int | None = None) -> None:
        """Quit and start again, at ``index`` if given (else the same one)."""
        await self.stop()
        if index is not None:
            self.index = index
        await self.start()

    async def __aenter__(self) -> DesktopApp:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # Records

    def connections(self) -> list[AppConnectionInfo]:
        """Snapshots of the handshaken connections, oldest first."""
        return [
            AppConnectionInfo(
                id=c.id,
                client_id=c.client_id,
                authenticated=c.authenticated,
                subscriptions=frozenset(c.subscriptions),
                activity=copy.deepcopy(c.activity),
                pid=c.pid,
            )
            for c in self._connections.values()
            if c.client_id is not None
        ]

    def activity_for(
        self, client_id: int | str | None = None
    ) -> Mapping[str, Any] | None:
        """The activity shown for an application (the newest connection's)."""
        wanted = self.client_id if client_id is None else str(client_id)
        for info in reversed(self.connections()):
            if info.client_id == wanted and info.activity is not None:
                return info.activity
        return None

    def subscriptions(self, client_id: int | str | None = None) -> set[SubscriptionKey]:
        """Every subscription of an application's live connections."""
        wanted = self.client_id if client_id is None else str(client_id)
        found: set[SubscriptionKey] = set()
        for info in self.connections():
            if info.client_id == wanted:
                found |= info.subscriptions
        return found

    def commands_named(self, cmd: str) -> list[CommandRecord]:
        """The recorded commands named ``cmd``."""
        return [record for record in self.commands if record.cmd == cmd]

    async def wait_until(
        self, predicate: Callable[[], bool], *, timeout_s: float = 5.0
    ) -> None:
        """Wait until ``predicate()`` is true, checking after every change.

        Raises:
            TimeoutError: it did not become true within ``timeout_s``.
        """
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    # Events and faults

    async def dispatch(self, evt: str, data: Any, **args: int | str) -> int:
        """Send an event to the connections subscribed to it with ``args``.

        Returns:
            How many connections it was sent to.
        """
        key = _key(evt, args)
        sent = 0
        for connection in list(self._connections.values()):
            if key in connection.subscriptions:
                self._send(connection, _FRAME, _event(evt, data))
                sent += 1
        return sent

    async def broadcast(self, evt: str, data: Any) -> int:
        """Send an event to every handshaken connection, subscribed or not."""
        sent = 0
        for connection in list(self._connections.values()):
            if connection.client_id is not None:
                self._send(connection, _FRAME, _event(evt, data))
                sent += 1
        return sent

    async def request_to_join(self, user: Mapping[str, Any]) -> int:
        """Another user asks to join: send ACTIVITY_JOIN_REQUEST."""
        self.pending_join_requests.add(str(user["id"]))
        return await self.dispatch("ACTIVITY_JOIN_REQUEST", {"user": dict(user)})

    def fail_next(self, cmd: str, code: int, message: str) -> None:
        """Answer the next ``cmd`` with an ERROR of ``code``."""
        self._scripted_errors.setdefault(cmd, collections.deque()).append(
            (code, message)
        )

    async def close_connections(self, code: int, message: str = "") -> None:
        """Send CLOSE with ``code`` on every connection, then close them."""
        for connection in list(self._connections.values()):
            self._send(connection, _CLOSE, {"code": code, "message": message})
            connection.writer.close()

    async def ping(self, payload: Any = None) -> None:
        """Send PING on every handshaken connection (PONGs land in :attr:`pongs`)."""
        body = payload if payload is not None else {"ping": self._next_id}
        for connection in list(self._connections.values()):
            if connection.client_id is not None:
                self._send(connection, _PING, body)

    async def send_garbage(self, data: bytes = b"\xde\xad\xbe\xef" * 8) -> None:
        """Write bytes that are no IPC frame on every connection."""
        for connection in list(self._connections.values()):
            self._write_raw(connection, data, "garbage")

    async def send_truncated_frame(self) -> None:
        """Send the first part of a frame, then close every connection."""
        body = json.dumps(_event("GUILD_CREATE", {"id": "1", "name": "cut"})).encode()
        data = _HEADER.pack(_FRAME, len(body)) + body[: len(body) // 2]
        for connection in list(self._connections.values()):
            self._write_raw(connection, data, "truncated")
            connection.writer.close()

    async def send_oversized_frame(self, size: int | None = None) -> None:
        """Send a frame header announcing ``size`` bytes (4x the cap by default)
        and the start of its body; the connection stays open."""
        announced = size if size is not None else 4 * self.max_frame_size
        data = _HEADER.pack(_FRAME, announced) + b"{" + b" " * 1024
        for connection in list(self._connections.values()):
            self._write_raw(connection, data, "oversized")

    def remove_socket_file(self) -> None:
        """Delete the socket file; live connections go on, new ones fail."""
        self._unlink()

    # Serving

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._next_id += 1
        connection = _Connection(self._next_id, writer, asyncio.current_task())
        self._connections[connection.id] = connection
        self.accepted += 1
        self._touch()
        try:
            if await self._handshake(connection, reader):
                while True:
                    op, payload = await self._read_frame(connection, reader)
                    if not await self._receive(connection, op, payload):
                        break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            # stop() cancels handlers; asyncio's stream callback would report a
            # cancelled handler task as an unhandled error, so end it quietly.
            pass
        except _AppError as exc:
            logger.debug("desktop app: connection %d: %s", connection.id, exc.message)
        finally:
            self._connections.pop(connection.id, None)
            writer.transport.abort()
            self._touch()

    async def _handshake(
        self, connection: _Connection, reader: asyncio.StreamReader
    ) -> bool:
        op, payload = await self._read_frame(connection, reader)
        if op != _HANDSHAKE or not isinstance(payload, Mapping):
            self._refuse(connection, 1003, "the first frame must be a HANDSHAKE")
            return False
        if payload.get("v") != 1:
            self._refuse(connection, 4004, "Invalid Version")
            return False
        if str(payload.get("client_id")) != self.client_id:
            self._refuse(connection, 4000, "Invalid Client ID")
            return False
        connection.client_id = self.client_id
        self.handshakes += 1
        ready = {
            "v": 1,
            "config": {
                "cdn_host": "cdn.discordapp.com",
                "api_endpoint": "//discord.com/api",
                "environment": "production",
            },
            "user": dict(self.user),
        }
        self._send(connection, _FRAME, _event("READY", ready))
        self._touch()
        return True

    def _refuse(self, connection: _Connection, code: int, message: str) -> None:
        self.refused_handshakes += 1
        self._send(connection, _CLOSE, {"code": code, "message": message})
        connection.writer.close()

    async def _read_frame(
        self, connection: _Connection, reader: asyncio.StreamReader
    ) -> tuple[int, Any]:
        header = await reader.readexactly(_HEADER.size)
        op, size = _HEADER.unpack(header)
        if op not in _OP_NAMES:
            raise _AppError(1003, f"unknown opcode {op}")
        if size > self.max_frame_size:
            raise _AppError(1009, f"a {size}-byte frame is over the cap")
        body = await reader.readexactly(size)
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            raise _AppError(1003, "a frame body that is not JSON") from None
        self._record("received", connection, op, payload)
        return op, payload

    async def _receive(self, connection: _Connection, op: int, payload: Any) -> bool:
        """Handle one frame; return False to end the connection."""
        if op == _PING:
            self._send(connection, _PONG, payload)
        elif op == _PONG:
            self.pongs.append(payload)
            self._touch()
        elif op == _CLOSE:
            return False
        elif op == _HANDSHAKE:
            self._refuse(connection, 1003, "a second HANDSHAKE")
            return False
        elif isinstance(payload, Mapping):
            await self._command(connection, payload)
        return True

    async def _command(
        self, connection: _Connection, message: Mapping[str, Any]
    ) -> None:
        cmd = str(message.get("cmd"))
        nonce = message.get("nonce")
        raw_args = message.get("args")
        args: Mapping[str, Any] = raw_args if isinstance(raw_args, Mapping) else {}
        evt = message.get("evt") if isinstance(message.get("evt"), str) else None
        assert connection.client_id is not None
        self.commands.append(
            CommandRecord(connection.id, connection.client_id, cmd, _mask(args), evt)
        )
        self._touch()
        if cmd in self.unanswered:
            return
        if self.response_delay_s > 0:
            await asyncio.sleep(self.response_delay_s)

        answer: dict[str, Any] = {"cmd": cmd, "nonce": nonce, "evt": evt}
        try:
            scripted = self._scripted_errors.get(cmd)
            if scripted:
                raise _AppError(*scripted.popleft())
            answer["data"] = self._execute(connection, cmd, args, evt)
        except _AppError as exc:
            answer["evt"] = "ERROR"
            answer["data"] = {"code": exc.code, "message": exc.message}
        self._send(connection, _FRAME, answer)
        self._touch()

    # Commands

    def _execute(
        self,
        connection: _Connection,
        cmd: str,
        args: Mapping[str, Any],
        evt: str | None,
    ) -> Any:
        handler = self._HANDLERS.get(cmd)
        if handler is None:
            raise _AppError(4002, f"Invalid command: {cmd}")
        needs_auth = cmd not in _OPEN_COMMANDS and not (
            cmd in ("SUBSCRIBE", "UNSUBSCRIBE") and evt in _OPEN_EVENTS
        )
        if needs_auth and not connection.authenticated:
            raise _AppError(4006, "Not authenticated or invalid scope")
        return handler(self, connection, args, evt)

    def _authorize(
        self, c: _Connection, args: Mapping[str, Any], evt: str | None
    ) -> Any:
        if str(args.get("client_id")) != self.client_id:
            raise _AppError(4007, "Invalid client id")
        scopes = args.get("scopes")
        if not isinstance(scopes, list) or not scopes:
            raise _AppError(4000, "scopes must be a non-empty list")
        if self.authorize_denied:
            raise _AppError(5000, "OAuth2 Error: access_denied")
        return {"code": AUTHORIZE_CODE}

    def _authenticate(
        self, c: _Connection, args: Mapping[str, Any], evt: str | None
    ) -> Any:
        if args.get("access_token") != self.access_token:
            raise _AppError(4009, "Invalid token")
        c.authenticated = True
        return {
            "user": dict(self.user),
            "scopes": ["rpc", "identify"],
            "expires": "2099-01-01T00:00:00.000000+00:00",
            "application": {
                "id": self.client_id,
                "name": "Emulated Application",
                "icon": None,
                "description": "",
                "rpc_origins": [],
            },
        }

    def _get_guilds(
        self, c: _Connection, args: Mapping[str, Any], evt: str | None
    ) -> Any:
        return {"guilds": [{**g, "icon_url": None} for g in self.guilds.values()]}

    def _get_guild(
        self, c: _Connection, args: Mapping[str, Any], evt: str | None
    ) -> Any:
        guild = self._guild(args.get("guild_id"))
        return {**guild, "icon_url": None, "members": []}

    def _get_channel(
        self, c: _Connection, args: Mapping[str, Any], evt: str | None
    ) -> Any:
        return self._channel_object(self._channel(args.get("channel_id")))

    def _get_channels(
        self, c: _Connection, args: Mapping[str, Any], evt: str | None
    ) -> Any:
        guild = self._guild(args.get("guild_id"))
        return {
            "channels": [
                {"id": ch["id"], "name": ch["name"], "type": ch["type"]}
                for ch in self.channels.values()
                if ch["guild_id"] == guild["id"]
            ]
        }

    def _subscribe(
        self, c: _Connection, args: Mapping[str, Any], evt: str | None
    ) -> Any:
        key = self._check_subscription(args, evt)
        c.subscriptions.add(key)
        return {"evt": key[0]}

    def _unsubscribe(
        self, c: _Connection, args: Mapping[str, Any], evt: str | None
    ) -> Any:
        key = self._check_subscription(args, evt)
        c.subscriptions.discard(key)
        return {"evt": key[0]}

    def _set_activity(
        self, c: _Connection, args: Mapping[str, Any], evt: str | None
    ) -> Any:
        pid = args.get("pid")
        if not isinstance(pid, int) or isinstance(pid, bool):
            raise _AppError(4000, 'child "pid" fails because ["pid" is required]')
        activity = args.get("activity")
        if activity is None:
            c.activity, c.pid = None, pid
            return None
        if not isinstance(activity, Mapping):
            raise _AppError(4000, 'child "activity" fails because it is not an object')
        if activity.get("type", 0) not in _ACTIVITY_TYPES:
            raise _AppError(4000, 'child "activity" fails because of its "type"')
        for name in ("state", "details"):
            text = activity.get(name)
            if text is not None and not (
                isinstance(text, str) and 2 <= _js_length(text) <= 128
            ):
                raise _AppError(
                    4000, f'child "{name}" fails because its length must be 2 to 128'
                )
        c.activity, c.pid = dict(activity), pid
        return {
            **activity,
            "name": "Emulated Application",
            "application_id": self.client_id,
        }

    def _select_voice_channel(
        self, c: _Connection, args: Mapping[str, Any], evt: str | None
    ) -> Any:
        channel_id = args.get("channel_id")
        if channel_id is None:
            self.selected_voice_channel = None
            self._notify("VOICE_CHANNEL_SELECT", {"channel_id": None, "guild_id": None})
            return None
        channel = self._channel(channel_id)
        if channel["type"] != 2:
            raise _AppError(4005, f"Invalid channel id: {channel_id}")
        current = self.selected_voice_channel
        if current is not None and current != channel["id"] and not args.get("force"):
            raise _AppError(5003, "Already in a voice channel; force is required")
        self.selected_voice_channel = channel["id"]
        self._notify(
            "VOICE_CHANNEL_SELECT",
            {"channel_id": channel["id"], "guild_id": channel["guild_id"]},
        )
        return self._channel_object(channel)

    def _get_selected_voice_channel(
        self, c: _Connection, args: Mapping[str, Any], evt: str | None
    ) -> Any:
        if self.selected_voice_channel is None:
            return None
        return self._channel_object(self.channels[self.selected_voice_channel])

    def _get_voice_settings(
        self, c: _Connection, args: Mapping[str, Any], evt: str | None
    ) -> Any:
        return copy.deepcopy(self.voice_settings)

    def _set_voice_settings(
        self, c: _Connection, args: Mapping[str, Any], evt: str | None
    ) -> Any:
        for key, high in (("input", 100), ("output", 200)):
            device = args.get(key)
            volume = device.get("volume") if isinstance(device, Mapping) else None
            if volume is not None and not 0 <= volume <= high:
                raise _AppError(4000, f"{key}.volume must be 0 to {high}")
        for key, value in args.items():
            if key not in self.voice_settings:
                raise _AppError(4000, f"unknown voice setting {key}")
            current = self.voice_settings[key]
            if isinstance(current, dict) and isinstance(value, Mapping):
                current.update(value)
            else:
                self.voice_settings[key] = value
        settings = copy.deepcopy(self.voice_settings)
        self._notify("VOICE_SETTINGS_UPDATE", settings)
        return settings

    def _set_user_voice_settings(
        self, c: _Connection, args: Mapping[str, Any], evt: str | None
    ) -> Any:
        user_id = args.get("user_id")
        if not isinstance(user_id, str):
            raise _AppError(4010, "Invalid user id")
        volume = args.get("volume")
        if volume is not None and not 0 <= volume <= 200:
            raise _AppError(4000, "volume must be 0 to 200")
        stored = self.user_voice_settings.setdefault(
            user_id, {"pan": {"left": 1.0, "right": 1.0}, "volume": 100, "mute": False}
        )
        stored.update({k: args[k] for k in ("pan", "volume", "mute") if k in args})
        return {"user_id": user_id, **copy.deepcopy(stored)}

    def _send_join_invite(
        self, c: _Connection, args: Mapping[str, Any], evt: str | None
    ) -> Any:
        return self._answer_join_request("SEND_ACTIVITY_JOIN_INVITE", args)

    def _close_join_request(
        self, c: _Connection, args: Mapping[str, Any], evt: str | None
    ) -> Any:
        return self._answer_join_request("CLOSE_ACTIVITY_REQUEST", args)

    def _answer_join_request(self, cmd: str, args: Mapping[str, Any]) -> None:
        user_id = str(args.get("user_id"))
        if user_id not in self.pending_join_requests:
            raise _AppError(4010, f"Invalid user id: {user_id}")
        self.pending_join_requests.discard(user_id)
        self.join_replies.append((cmd, user_id))

    _HANDLERS: Final[
        Mapping[
            str,
            Callable[[DesktopApp, _Connection, Mapping[str, Any], str | None], Any],
        ]
    ] = {
        "AUTHORIZE": _authorize,
        "AUTHENTICATE": _authenticate,
        "GET_GUILDS": _get_guilds,
        "GET_GUILD": _get_guild,
        "GET_CHANNEL": _get_channel,
        "GET_CHANNELS": _get_channels,
        "SUBSCRIBE": _subscribe,
        "UNSUBSCRIBE": _unsubscribe,
        "SET_ACTIVITY": _set_activity,
        "SELECT_VOICE_CHANNEL": _select_voice_channel,
        "GET_SELECTED_VOICE_CHANNEL": _get_selected_voice_channel,
        "GET_VOICE_SETTINGS": _get_voice_settings,
        "SET_VOICE_SETTINGS": _set_voice_settings,
        "SET_USER_VOICE_SETTINGS": _set_user_voice_settings,
        "SEND_ACTIVITY_JOIN_INVITE": _send_join_invite,
        "CLOSE_ACTIVITY_REQUEST": _close_join_request,
        # The official library's name for it.
        "CLOSE_ACTIVITY_JOIN_REQUEST": _close_join_request,
    }

    # Helpers

    def _guild(self, guild_id: Any) -> dict[str, Any]:
        guild = self.guilds.get(str(guild_id))
        if guild is None:
            raise _AppError(4003, f"Invalid guild id: {guild_id}")
        return guild

    def _channel(self, channel_id: Any) -> dict[str, Any]:
        channel = self.channels.get(str(channel_id))
        if channel is None:
            raise _AppError(4005, f"Invalid channel id: {channel_id}")
        return channel

    def _channel_object(self, channel: Mapping[str, Any]) -> dict[str, Any]:
        return {**channel, "voice_states": [], "messages": []}

    def _check_subscription(
        self, args: Mapping[str, Any], evt: str | None
    ) -> SubscriptionKey:
        if evt is None or evt not in _EVENT_ARGS:
            raise _AppError(4004, f"Invalid event: {evt}")
        needs = _EVENT_ARGS[evt]
        if needs == "guild_id":
            self._guild(args.get("guild_id"))
        elif needs == "channel_id":
            self._channel(args.get("channel_id"))
        return _key(evt, {k: v for k, v in args.items() if k == needs})

    def _notify(self, evt: str, data: Any) -> None:
        key = _key(evt, {})
        for connection in list(self._connections.values()):
            if key in connection.subscriptions:
                self._send(connection, _FRAME, _event(evt, data))

    def _send(self, connection: _Connection, op: int, payload: Any) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        if connection.writer.is_closing():
            return
        connection.writer.write(_HEADER.pack(op, len(body)) + body)
        self._record("sent", connection, op, payload)

    def _write_raw(self, connection: _Connection, data: bytes, kind: str) -> None:
        if connection.writer.is_closing():
            return
        connection.writer.write(data)
        self.frames.append(
            IPCFrameRecord(time.monotonic(), "sent", connection.id, None, None, kind)
        )

    def _record(
        self,
        direction: Literal["sent", "received"],
        connection: _Connection,
        op: int,
        payload: Any,
    ) -> None:
        self.frames.append(
            IPCFrameRecord(
                time.monotonic(), direction, connection.id, op, _mask(payload)
            )
        )

    def _touch(self) -> None:
        self._changed.set()

    def _unlink(self) -> None:
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(os.stat(self.path).st_mode):
                os.unlink(self.path)


def _event(evt: str, data: Any) -> dict[str, Any]:
    return {"cmd": "DISPATCH", "evt": evt, "data": data, "nonce": None}
