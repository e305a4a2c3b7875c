"""RPCClient: control of the local Discord app, kept alive across its restarts.

The client runs on the same :class:`~tether.manager.ConnectionManager` as the gateway
client: ``start()`` and ``stop()`` are signals, the manager connects in the
background, reconnects with its backoff after any fault that is not the user's
(the app quitting, restarting, crashing, sending garbage), and stops only on
``stop()`` or a fatal CLOSE such as a wrong client id.

What the user set survives a reconnect with no user code: on each new connection
the client re-authenticates with the last access token, subscribes again to every
event it was subscribed to, and sets the current activity again; then it raises
:class:`~tether.manager.Connected` and :class:`~tether.rpc.events.Ready`.

A command issued while disconnected waits for the next :class:`Ready` (within its
timeout); one cut off by a reconnect is sent again if it is safe to repeat, and
fails with :class:`~tether.rpc.errors.CommandInterruptedError` otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

from tether._dispatch import EventDispatcher, EventStream, Handler, Subscription
from tether._event import Event
from tether._secret import Token
from tether.errors import ClientStateError, FatalError, RemoteProtocolError
from tether.manager import (
    Backoff,
    ConnectionManager,
    Disconnected,
    ManagerState,
)
from tether.rpc.activity import Activity
from tether.rpc.discovery import candidate_paths
from tether.rpc.driver import RequestLost, RPCConnection, RPCDriver
from tether.rpc.errors import (
    CommandInterruptedError,
    CommandTimeoutError,
    RPCError,
)
from tether.rpc.events import (
    Ready,
    RestoreFailed,
    RPCEvent,
    parse_event,
)
from tether.rpc.framing import DEFAULT_MAX_FRAME_SIZE
from tether.rpc.models import Pan, RPCConfig, RPCUser, snowflake

__all__ = ["RPCClient"]

logger = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)

#: Commands sent again on the next connection when a reconnect cut them off:
#: repeating them has the same effect as sending them once.
SAFE_TO_REPEAT: Final = frozenset(
    {
        "AUTHENTICATE",
        "GET_GUILDS",
        "GET_GUILD",
        "GET_CHANNEL",
        "GET_CHANNELS",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "SET_ACTIVITY",
        "SELECT_VOICE_CHANNEL",
        "GET_SELECTED_VOICE_CHANNEL",
        "GET_VOICE_SETTINGS",
        "SET_VOICE_SETTINGS",
        "SET_USER_VOICE_SETTINGS",
    }
)
#: Default time for AUTHORIZE, which waits for the user to answer a dialog.
AUTHORIZE_TIMEOUT_S: Final = 300.0
#: Top-level keys SET_VOICE_SETTINGS accepts.
VOICE_SETTINGS_KEYS: Final = frozenset(
    {
        "input",
        "output",
        "mode",
        "automatic_gain_control",
        "echo_cancellation",
        "noise_suppression",
        "qos",
        "silence_warning",
        "deaf",
        "mute",
    }
)

Snowflake = int | str
_SubscriptionKey = tuple[str, tuple[tuple[str, str], ...]]


def _id(value: Snowflake, name: str) -> str:
    try:
        return str(snowflake(value))
    except ValueError:
        raise ValueError(f"{name} must be a snowflake (int or digit string)") from None


def _object(data: Any, cmd: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise RemoteProtocolError(f"the answer to {cmd} is not an object")
    return data


def _list_of_objects(data: Any, key: str, cmd: str) -> list[dict[str, Any]]:
    items = _object(data, cmd).get(key)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise RemoteProtocolError(f"the answer to {cmd} has no {key} list")
    return items


class RPCClient:
    """A client of the Discord app's local RPC interface.

    Args:
        client_id: the application id (from the Developer Portal).
        ipc_path: the endpoint to use instead of looking for one (a socket path,
            or a pipe name on Windows).
        connect_timeout_s: the time one connection has to open, handshake and
            restore the client's state.
        command_timeout_s: the default time a command has, from its call to its
            answer (waiting for a connection included).
        close_timeout_s: the time a graceful close may take on ``stop()``.
        max_frame_size: the largest frame body accepted or sent; a bigger one
            ends the connection.
        backoff: the reconnect policy (by default from 0.5 s up to 15 s).
        pid: the process id sent with SET_ACTIVITY (``os.getpid()`` by default);
            the app clears the activity when that process exits.
        slow_handler_warning_s: warn about an event handler running longer.
        name: names the client in logs.
    """

    def __init__(
        self,
        client_id: Snowflake,
        *,
        ipc_path: str | os.PathLike[str] | None = None,
        connect_timeout_s: float = 10.0,
        command_timeout_s: float = 10.0,
        close_timeout_s: float = 2.0,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        backoff: Backoff | None = None,
        pid: int | None = None,
        slow_handler_warning_s: float = 3.0,
        name: str = "rpc",
    ) -> None:
        #: The application id, as sent in the handshake.
        self.client_id = _id(client_id, "client_id")
        #: The default time a command has.
        self.command_timeout_s = command_timeout_s
        self._ipc_path = os.fspath(ipc_path) if ipc_path is not None else None
        self._pid = os.getpid() if pid is None else pid
        self._dispatcher = EventDispatcher(
            slow_handler_warning_s=slow_handler_warning_s, name=name
        )
        self._driver = RPCDriver(
            _DriverHost(self),
            client_id=self.client_id,
            endpoints=self.endpoints,
            max_frame_size=max_frame_size,
        )
        self._manager = ConnectionManager(
            self._driver,
            on_event=self._on_manager_event,
            attempt_timeout_s=connect_timeout_s,
            close_timeout_s=close_timeout_s,
            backoff=backoff if backoff is not None else Backoff(base_s=0.5, cap_s=15.0),
            name=name,
        )

        # What the user set; restored on every new connection.
        self._access_token: Token | None = None
        self._subscriptions: dict[_SubscriptionKey, tuple[str, dict[str, str]]] = {}
        self._activity: Activity | None = None

        # The connection that takes commands, between Ready and its end.
        self._connection: RPCConnection | None = None
        # Commands and wait_until_ready() calls waiting for the next Ready.
        self._ready_waiters: set[asyncio.Future[RPCConnection]] = set()
        # Why commands fail at once: the client was stopped, or a fatal error.
        self._halted: BaseException | None = ClientStateError(
            "the RPC client is not started; call start() first"
        )
        self._authenticated = False
        self._user: RPCUser | None = None
        self._config = RPCConfig()

    def __repr__(self) -> str:
        return f"<RPCClient client_id={self.client_id} state={self.state.value}>"

    # Lifecycle

    def start(self) -> None:
        """Ask for a connection; returns at once. The client connects in the
        background, whether or not the app is running yet."""
        self._halted = None
        self._manager.start()

    def stop(self) -> asyncio.Future[None]:
        """Ask for the connection to end; returns at once.

        Await the returned future to wait for the teardown. Commands waiting for a
        connection fail with :class:`~tether.errors.ClientStateError`.
        """
        self._halt(ClientStateError("the RPC client was stopped"))
        return self._manager.stop()

    async def close(self) -> None:
        """Stop, then end every handler and stream."""
        await self.stop()
        await self._dispatcher.close()

    async def wait_closed(self) -> None:
        """Wait until the client has stopped (by ``stop()`` or a fatal error)."""
        await self._manager.wait_closed()

    async def wait_until_ready(self, *, timeout_s: float | None = None) -> None:
        """Wait until the client is connected and restored (returns at once if so).

        Raises:
            TimeoutError: not ready within ``timeout_s``.
            FatalError: the client stopped on this fatal error.
            ClientStateError: the client is not started or was stopped.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        await self._wait_ready(deadline)

    async def __aenter__(self) -> RPCClient:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def state(self) -> ManagerState:
        """The connection manager's state."""
        return self._manager.state

    @property
    def manager(self) -> ConnectionManager:
        """The connection manager (for its ``stats`` and ``backoff``)."""
        return self._manager

    @property
    def is_ready(self) -> bool:
        """Whether a connection takes commands now."""
        return self._connection is not None

    @property
    def fatal_error(self) -> FatalError | None:
        """The fatal error that stopped the client, if any."""
        return self._manager.fatal_error

    @property
    def user(self) -> RPCUser | None:
        """The user logged in to the app, from the last READY."""
        return self._user

    @property
    def config(self) -> RPCConfig:
        """The app's configuration, from the last READY."""
        return self._config

    @property
    def is_authenticated(self) -> bool:
        """Whether the current connection is authenticated."""
        return self._authenticated and self._connection is not None

    @property
    def activity(self) -> Activity | None:
        """The activity set last (restored on every reconnect)."""
        return self._activity

    @property
    def subscriptions(self) -> list[tuple[str, dict[str, str]]]:
        """The events subscribed to, with their arguments (restored on reconnect)."""
        return [(evt, dict(args)) for evt, args in self._subscriptions.values()]

    def endpoints(self) -> list[str]:
        """The endpoints the next connection will try, in order."""
        if self._ipc_path is not None:
            return [self._ipc_path]
        return candidate_paths(os.environ, sys.platform)

    # Event handlers (the same styles as the gateway client)

    def subscribe(self, kind: type[E], handler: Handler[E]) -> Subscription:
        """Call ``handler`` with every ``kind`` event (this is local: to have the
        app send an event, use :meth:`subscribe_event`)."""
        return self._dispatcher.subscribe(kind, handler)

    def on(self, *kinds: type[Event]) -> Callable[[Handler[Any]], Handler[Any]]:
        """Decorator form of :meth:`subscribe`: ``@rpc.on(MessageCreate)``."""
        return self._dispatcher.on(*kinds)

    def unsubscribe(self, kind: type[Event], handler: Handler[Any]) -> None:
        """Remove every subscription of ``handler`` to ``kind``."""
        self._dispatcher.unsubscribe(kind, handler)

    async def wait_for(
        self,
        kind: type[E],
        *,
        check: Callable[[E], bool] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the dispatcher's API)
    ) -> E:
        """Wait for the next ``kind`` event for which ``check`` is true.

        Raises:
            TimeoutError: nothing matched within ``timeout`` seconds.
        """
        return await self._dispatcher.wait_for(kind, check=check, timeout=timeout)

    def stream(
        self, kind: type[E], *, check: Callable[[E], bool] | None = None
    ) -> EventStream[E]:
        """Return an async iterator of every ``kind`` event from now on."""
        return self._dispatcher.stream(kind, check=check)

    @property
    def dispatcher(self) -> EventDispatcher:
        """The event dispatcher (for its ``stats`` and ``wait_idle``)."""
        return self._dispatcher

    # Commands

    async def command(
        self,
        cmd: str,
        args: Mapping[str, Any] | None = None,
        *,
        evt: str | None = None,
        timeout_s: float | None = None,
    ) -> Any:
        """Send any command and return its answer's ``data``.

        The typed methods below are preferred; this is for commands they do not
        cover. The command waits for a connection if there is none.

        Raises:
            RPCError: the app answered with an ERROR.
            CommandTimeoutError: no connection or no answer within the timeout.
            CommandInterruptedError: a reconnect cut it off and it is not safe to
                repeat.
            ClientStateError: the client is not started or was stopped.
            FatalError: the client stopped on this fatal error.
        """
        loop = asyncio.get_running_loop()
        timeout = self.command_timeout_s if timeout_s is None else timeout_s
        deadline = loop.time() + timeout
        was_sent = False
        while True:
            try:
                connection = await self._wait_ready(deadline)
            except TimeoutError:
                raise CommandTimeoutError(cmd, timeout, was_sent=was_sent) from None
            try:
                return await connection.request(
                    cmd, args, evt=evt, deadline=deadline, timeout_s=timeout
                )
            except RequestLost as lost:
                if self._connection is connection:
                    self._connection = None
                if not lost.sent:
                    continue
                if cmd not in SAFE_TO_REPEAT:
                    raise CommandInterruptedError(cmd, lost.reason) from None
                was_sent = True
                logger.info("%s was cut off by a reconnect; sending it again", cmd)

    async def authorize(
        self,
        scopes: Sequence[str],
        *,
        rpc_token: str | None = None,
        username: str | None = None,
        timeout_s: float | None = None,
    ) -> str:
        """Ask the user to authorize the application; return the OAuth2 code.

        The app shows a dialog; the call waits for the user's answer (up to
        ``timeout_s``, 300 s by default). Exchange the code for an access token over
        HTTPS with the application's secret, then call :meth:`authenticate`.
        """
        args: dict[str, Any] = {"client_id": self.client_id, "scopes": list(scopes)}
        if rpc_token is not None:
            args["rpc_token"] = rpc_token
        if username is not None:
            args["username"] = username
        data = await self.command(
            "AUTHORIZE",
            args,
            timeout_s=AUTHORIZE_TIMEOUT_S if timeout_s is None else timeout_s,
        )
        code = _object(data, "AUTHORIZE").get("code")
        if not isinstance(code, str):
            raise RemoteProtocolError("the answer to AUTHORIZE has no code")
        return code

    async def authenticate(
        self, access_token: str | Token, *, timeout_s: float | None = None
    ) -> dict[str, Any]:
        """Authenticate with an OAuth2 access token; kept for every reconnect.

        Returns:
            The app's answer: ``user``, ``scopes``, ``expires``, ``application``.
        """
        token = Token(access_token)
        data = await self.command(
            "AUTHENTICATE", {"access_token": token.reveal()}, timeout_s=timeout_s
        )
        self._access_token = token
        self._authenticated = True
        return _object(data, "AUTHENTICATE")

    async def get_guilds(
        self, *, timeout_s: float | None = None
    ) -> list[dict[str, Any]]:
        """Return the guilds the user is in (``{id, name, ...}`` each)."""
        data = await self.command("GET_GUILDS", timeout_s=timeout_s)
        return _list_of_objects(data, "guilds", "GET_GUILDS")

    async def get_guild(
        self, guild_id: Snowflake, *, timeout_s: float | None = None
    ) -> dict[str, Any]:
        """Return a guild (``{id, name, icon_url, members}``)."""
        args = {"guild_id": _id(guild_id, "guild_id")}
        return _object(
            await self.command("GET_GUILD", args, timeout_s=timeout_s), "GET_GUILD"
        )

    async def get_channel(
        self, channel_id: Snowflake, *, timeout_s: float | None = None
    ) -> dict[str, Any]:
        """Return a channel, with its voice states and recent messages."""
        args = {"channel_id": _id(channel_id, "channel_id")}
        data = await self.command("GET_CHANNEL", args, timeout_s=timeout_s)
        return _object(data, "GET_CHANNEL")

    async def get_channels(
        self, guild_id: Snowflake, *, timeout_s: float | None = None
    ) -> list[dict[str, Any]]:
        """Return a guild's channels (``{id, name, type}`` each)."""
        args = {"guild_id": _id(guild_id, "guild_id")}
        data = await self.command("GET_CHANNELS", args, timeout_s=timeout_s)
        return _list_of_objects(data, "channels", "GET_CHANNELS")

    async def subscribe_event(
        self,
        evt: str | type[RPCEvent],
        *,
        guild_id: Snowflake | None = None,
        channel_id: Snowflake | None = None,
        timeout_s: float | None = None,
    ) -> None:
        """Have the app send an event; restored on every reconnect.

        Args:
            evt: the event's class (``MessageCreate``) or Discord name.
            guild_id: for GUILD_STATUS.
            channel_id: for the voice state, message and speaking events.
        """
        name, args = self._subscription(evt, guild_id, channel_id)
        await self.command("SUBSCRIBE", args, evt=name, timeout_s=timeout_s)
        self._subscriptions[_key(name, args)] = (name, args)

    async def unsubscribe_event(
        self,
        evt: str | type[RPCEvent],
        *,
        guild_id: Snowflake | None = None,
        channel_id: Snowflake | None = None,
        timeout_s: float | None = None,
    ) -> None:
        """Stop the app sending an event (and stop restoring the subscription)."""
        name, args = self._subscription(evt, guild_id, channel_id)
        self._subscriptions.pop(_key(name, args), None)
        await self.command("UNSUBSCRIBE", args, evt=name, timeout_s=timeout_s)

    async def set_activity(
        self, activity: Activity | None, *, timeout_s: float | None = None
    ) -> dict[str, Any] | None:
        """Show ``activity`` on the user's profile (``None`` clears it).

        The activity was checked against Discord's limits when it was built. Once
        the app accepts it, it is set again after every reconnect.

        Returns:
            The activity as the app stored it, or ``None`` when cleared.
        """
        if activity is not None and not isinstance(activity, Activity):
            raise TypeError("set_activity() takes a tether.rpc.Activity or None")
        args = {
            "pid": self._pid,
            "activity": activity.to_payload() if activity is not None else None,
        }
        data = await self.command("SET_ACTIVITY", args, timeout_s=timeout_s)
        self._activity = activity
        return data if isinstance(data, dict) else None

    async def clear_activity(self, *, timeout_s: float | None = None) -> None:
        """Remove the activity (the same as ``set_activity(None)``)."""
        await self.set_activity(None, timeout_s=timeout_s)

    async def select_voice_channel(
        self,
        channel_id: Snowflake | None,
        *,
        force: bool = False,
        navigate: bool = False,
        timeout_s: float | None = None,
    ) -> dict[str, Any] | None:
        """Join a voice channel (``None`` leaves); return the channel.

        Raises:
            RPCError: code 5003 when the user is in another voice channel and
                ``force`` is false.
        """
        args: dict[str, Any] = {
            "channel_id": None if channel_id is None else _id(channel_id, "channel_id"),
            "force": force,
            "navigate": navigate,
        }
        data = await self.command("SELECT_VOICE_CHANNEL", args, timeout_s=timeout_s)
        return data if isinstance(data, dict) else None

    async def get_selected_voice_channel(
        self, *, timeout_s: float | None = None
    ) -> dict[str, Any] | None:
        """Return the voice channel the user is in, or ``None``."""
        data = await self.command("GET_SELECTED_VOICE_CHANNEL", timeout_s=timeout_s)
        return data if isinstance(data, dict) else None

    async def get_voice_settings(
        self, *, timeout_s: float | None = None
    ) -> dict[str, Any]:
        """Return the user's voice settings."""
        data = await self.command("GET_VOICE_SETTINGS", timeout_s=timeout_s)
        return _object(data, "GET_VOICE_SETTINGS")

    async def set_voice_settings(
        self, settings: Mapping[str, Any], *, timeout_s: float | None = None
    ) -> dict[str, Any]:
        """Change some of the user's voice settings; return them all.

        ``settings`` holds Discord's keys: ``input`` and ``output`` (``device_id``,
        ``volume``), ``mode``, ``automatic_gain_control``, ``echo_cancellation``,
        ``noise_suppression``, ``qos``, ``silence_warning``, ``deaf``, ``mute``.

        Raises:
            ValueError: an unknown key, or a volume out of range (input 0-100,
                output 0-200); nothing was sent.
        """
        unknown = set(settings) - VOICE_SETTINGS_KEYS
        if unknown:
            raise ValueError(f"unknown voice settings: {', '.join(sorted(unknown))}")
        for key, high in (("input", 100), ("output", 200)):
            device = settings.get(key)
            volume = device.get("volume") if isinstance(device, Mapping) else None
            if volume is not None and not 0 <= volume <= high:
                raise ValueError(f"{key} volume must be from 0 to {high}, not {volume}")
        data = await self.command("SET_VOICE_SETTINGS", settings, timeout_s=timeout_s)
        return _object(data, "SET_VOICE_SETTINGS")

    async def set_user_voice_settings(
        self,
        user_id: Snowflake,
        *,
        pan: Pan | None = None,
        volume: int | None = None,
        mute: bool | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Change how another user sounds to the local user.

        Args:
            user_id: the user.
            pan: left and right, each from 0.0 to 1.0.
            volume: from 0 to 200 (100 is unchanged).
            mute: whether to mute them locally.

        Raises:
            ValueError: a value out of range; nothing was sent.
        """
        args: dict[str, Any] = {"user_id": _id(user_id, "user_id")}
        if pan is not None:
            if not (0.0 <= pan.left <= 1.0 and 0.0 <= pan.right <= 1.0):
                raise ValueError("pan values must be from 0.0 to 1.0")
            args["pan"] = {"left": pan.left, "right": pan.right}
        if volume is not None:
            if not 0 <= volume <= 200:
                raise ValueError(f"volume must be from 0 to 200, not {volume}")
            args["volume"] = volume
        if mute is not None:
            args["mute"] = mute
        data = await self.command("SET_USER_VOICE_SETTINGS", args, timeout_s=timeout_s)
        return _object(data, "SET_USER_VOICE_SETTINGS")

    async def send_activity_join_invite(
        self, user_id: Snowflake, *, timeout_s: float | None = None
    ) -> None:
        """Accept an Ask to Join request (from :class:`ActivityJoinRequest`)."""
        args = {"user_id": _id(user_id, "user_id")}
        await self.command("SEND_ACTIVITY_JOIN_INVITE", args, timeout_s=timeout_s)

    async def close_activity_request(
        self, user_id: Snowflake, *, timeout_s: float | None = None
    ) -> None:
        """Reject an Ask to Join request (from :class:`ActivityJoinRequest`)."""
        args = {"user_id": _id(user_id, "user_id")}
        await self.command("CLOSE_ACTIVITY_REQUEST", args, timeout_s=timeout_s)

    # Driver host (called by RPCDriver through _DriverHost)

    async def _restore(self, connection: RPCConnection) -> None:
        """Bring a new connection to the client's state. Refusals are forgotten and
        reported as :class:`RestoreFailed`; other faults end the attempt."""
        self._authenticated = False
        token = self._access_token
        if token is not None:
            try:
                await self._request(
                    connection, "AUTHENTICATE", {"access_token": token.reveal()}
                )
                self._authenticated = True
            except RPCError as exc:
                self._access_token = None
                self._refused("AUTHENTICATE", None, exc)

        for key, (evt, args) in list(self._subscriptions.items()):
            try:
                await self._request(connection, "SUBSCRIBE", args, evt=evt)
            except RPCError as exc:
                self._subscriptions.pop(key, None)
                self._refused("SUBSCRIBE", evt, exc)

        activity = self._activity
        if activity is not None:
            payload = {"pid": self._pid, "activity": activity.to_payload()}
            try:
                await self._request(connection, "SET_ACTIVITY", payload)
            except RPCError as exc:
                self._activity = None
                self._refused("SET_ACTIVITY", None, exc)
        logger.debug(
            "restored: authenticated=%s, %d subscriptions, activity=%s",
            self._authenticated,
            len(self._subscriptions),
            self._activity is not None,
        )

    def _connection_ready(self, connection: RPCConnection) -> None:
        """The attempt is established: release waiting commands, raise Ready."""
        data = connection.ready_data or {}
        self._user = RPCUser.from_payload(data.get("user"))
        self._config = RPCConfig.from_payload(data.get("config"))
        version = data.get("v")
        self._connection = connection
        waiters, self._ready_waiters = self._ready_waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(connection)
        self._dispatcher.dispatch(
            Ready(
                user=self._user,
                config=self._config,
                version=version if isinstance(version, int) else 1,
                authenticated=self._authenticated,
            )
        )

    def _connection_unusable(self, connection: RPCConnection) -> None:
        """The connection takes no more commands."""
        if self._connection is connection:
            self._connection = None
        self._authenticated = False

    def _deliver(self, evt: str, data: Any) -> None:
        """An event arrived from the app."""
        event = parse_event(evt, data)
        if evt == "CURRENT_USER_UPDATE":
            user = RPCUser.from_payload(data)
            if user is not None:
                self._user = user
        self._dispatcher.dispatch(event)

    def _forget_access_token(self) -> None:
        """The app revoked the access token: stop re-authenticating with it."""
        self._access_token = None
        self._authenticated = False

    # Internals

    async def _request(
        self,
        connection: RPCConnection,
        cmd: str,
        args: Mapping[str, Any],
        *,
        evt: str | None = None,
    ) -> Any:
        loop = asyncio.get_running_loop()
        timeout = self.command_timeout_s
        return await connection.request(
            cmd, args, evt=evt, deadline=loop.time() + timeout, timeout_s=timeout
        )

    def _refused(self, cmd: str, evt: str | None, error: RPCError) -> None:
        what = f"{cmd} {evt}" if evt else cmd
        logger.warning(
            "Discord refused to restore %s: %s; it is forgotten", what, error
        )
        self._dispatcher.dispatch(RestoreFailed(cmd=cmd, evt=evt, error=error))

    async def _wait_ready(self, deadline: float | None) -> RPCConnection:
        """Return the ready connection, waiting for one until ``deadline``."""
        if self._halted is not None:
            raise self._halted
        if self._connection is not None:
            return self._connection
        waiter: asyncio.Future[RPCConnection] = (
            asyncio.get_running_loop().create_future()
        )
        self._ready_waiters.add(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                return await waiter
        finally:
            self._ready_waiters.discard(waiter)

    def _halt(self, error: BaseException) -> None:
        self._halted = error
        waiters, self._ready_waiters = self._ready_waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(error)

    def _on_manager_event(self, event: Event) -> None:
        # stop() halts by itself; a fatal error halts here.
        if isinstance(event, Disconnected) and isinstance(event.error, FatalError):
            self._halt(event.error)
        self._dispatcher.dispatch(event)

    def _subscription(
        self,
        evt: str | type[RPCEvent],
        guild_id: Snowflake | None,
        channel_id: Snowflake | None,
    ) -> tuple[str, dict[str, str]]:
        if isinstance(evt, type):
            if not (issubclass(evt, RPCEvent) and evt.EVT):
                raise TypeError(f"{evt!r} is not an RPC event the app sends")
            name, needs = evt.EVT, evt.SUBSCRIBE_ARG
        else:
            name, needs = evt, None
        args: dict[str, str] = {}
        if guild_id is not None:
            args["guild_id"] = _id(guild_id, "guild_id")
        if channel_id is not None:
            args["channel_id"] = _id(channel_id, "channel_id")
        if needs is not None and needs not in args:
            raise ValueError(f"subscribing to {name} needs {needs}")
        return name, args


def _key(evt: str, args: Mapping[str, str]) -> _SubscriptionKey:
    return evt, tuple(sorted(args.items()))


class _DriverHost:
    """The client as the driver sees it (:class:`~tether.rpc.driver.ConnectionHost`),
    kept apart so that these calls are not part of the client's public API."""

    __slots__ = ("_client",)

    def __init__(self, client: RPCClient) -> None:
        self._client = client

    async def restore(self, connection: RPCConnection) -> None:
        await self._client._restore(connection)

    def connection_ready(self, connection: RPCConnection) -> None:
        self._client._connection_ready(connection)

    def connection_unusable(self, connection: RPCConnection) -> None:
        self._client._connection_unusable(connection)

    def deliver(self, evt: str, data: Any) -> None:
        self._client._deliver(evt, data)

    def forget_access_token(self) -> None:
        self._client._forget_access_token()
