"""Typed events of the RPC client, built from the app's DISPATCH frames.

Each class stands for one Discord event name (its ``EVT``); :func:`parse_event`
builds the right one, or a :class:`RawRPCEvent` for a name tether does not know.
Fields the app left out or sent with an unexpected type come out as ``None`` (or
empty): a surprising payload never stops delivery.

Events that need arguments to subscribe say which one in ``SUBSCRIBE_ARG``
(``"guild_id"`` or ``"channel_id"``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from tether._event import Event
from tether.rpc.errors import RPCError
from tether.rpc.models import Pan, RPCConfig, RPCUser, snowflake_or_none

__all__ = [
    "ActivityInvite",
    "ActivityJoin",
    "ActivityJoinRequest",
    "ActivitySpectate",
    "ChannelCreate",
    "CurrentUserUpdate",
    "EntitlementCreate",
    "EntitlementDelete",
    "ErrorReceived",
    "GuildCreate",
    "GuildStatus",
    "MessageCreate",
    "MessageDelete",
    "MessageEvent",
    "MessageUpdate",
    "NotificationCreate",
    "RPCEvent",
    "RawRPCEvent",
    "Ready",
    "RelationshipUpdate",
    "RestoreFailed",
    "SpeakingEvent",
    "SpeakingStart",
    "SpeakingStop",
    "VoiceChannelSelect",
    "VoiceConnectionStatus",
    "VoiceSettingsUpdate",
    "VoiceStateCreate",
    "VoiceStateDelete",
    "VoiceStateEvent",
    "VoiceStateUpdate",
    "event_class",
    "parse_event",
]

logger = logging.getLogger(__name__)

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return _EMPTY


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else _EMPTY


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class RPCEvent(Event):
    """Base class of the events built from the app's DISPATCH frames."""

    #: Discord's event name.
    EVT: ClassVar[str] = ""
    #: The argument SUBSCRIBE needs for this event, if any.
    SUBSCRIBE_ARG: ClassVar[Literal["guild_id", "channel_id"] | None] = None

    @classmethod
    def from_data(cls, data: Any) -> RPCEvent:
        """Build the event from the frame's ``data``."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True, kw_only=True)
class RawRPCEvent(RPCEvent):
    """An event tether has no class for, as received.

    Attributes:
        evt: the event name.
        data: the event's data.
    """

    evt: str
    data: Any = field(default=None, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready(RPCEvent):
    """The client is connected, (re-)authenticated and restored: commands work.

    Raised after :class:`tether.manager.Connected` on every connection, first or
    after a restart of the app.

    Attributes:
        user: the user logged in to the app.
        config: the app's configuration.
        version: the RPC version the app speaks.
        authenticated: whether the client is authenticated (AUTHENTICATE succeeded
            on this connection).
    """

    EVT = "READY"

    user: RPCUser | None
    config: RPCConfig
    version: int
    authenticated: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreFailed(RPCEvent):
    """After a reconnect, the app refused to restore part of the client's state.

    What was refused is forgotten: a refused subscription is dropped, a refused
    access token or activity is cleared. Set them again if that was wrong.

    Attributes:
        cmd: the command the app refused (``AUTHENTICATE``, ``SUBSCRIBE`` or
            ``SET_ACTIVITY``).
        evt: the event, for a refused subscription.
        error: the app's answer.
    """

    EVT = ""

    cmd: str
    evt: str | None
    error: RPCError


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorReceived(RPCEvent):
    """The app sent an ERROR event that answers no command.

    Attributes:
        code: Discord's RPC error code.
        message: the app's message.
    """

    EVT = "ERROR"

    code: int
    message: str

    @classmethod
    def from_data(cls, data: Any) -> ErrorReceived:
        d = _mapping(data)
        code = d.get("code")
        return cls(
            code=code if isinstance(code, int) and not isinstance(code, bool) else 1000,
            message=_str(d.get("message")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class GuildStatus(RPCEvent):
    """A guild's status (subscribe with ``guild_id``).

    Attributes:
        guild_id: the guild's id.
        name: its name.
        icon_url: its icon's URL, if any.
        online: the online member count (Discord now always sends 0).
    """

    EVT = "GUILD_STATUS"
    SUBSCRIBE_ARG = "guild_id"

    guild_id: int | None
    name: str
    icon_url: str | None
    online: int

    @classmethod
    def from_data(cls, data: Any) -> GuildStatus:
        d = _mapping(data)
        guild = _mapping(d.get("guild"))
        online = d.get("online")
        return cls(
            guild_id=snowflake_or_none(guild.get("id")),
            name=_str(guild.get("name")),
            icon_url=_str_or_none(guild.get("icon_url")),
            online=online if isinstance(online, int) else 0,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class GuildCreate(RPCEvent):
    """The user joined (or created) a guild.

    Attributes:
        guild_id: the guild's id.
        name: its name.
    """

    EVT = "GUILD_CREATE"

    guild_id: int | None
    name: str

    @classmethod
    def from_data(cls, data: Any) -> GuildCreate:
        d = _mapping(data)
        return cls(guild_id=snowflake_or_none(d.get("id")), name=_str(d.get("name")))


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelCreate(RPCEvent):
    """A channel was created that the user can see.

    Attributes:
        channel_id: the channel's id.
        name: its name.
        type: its channel type.
    """

    EVT = "CHANNEL_CREATE"

    channel_id: int | None
    name: str
    type: int | None

    @classmethod
    def from_data(cls, data: Any) -> ChannelCreate:
        d = _mapping(data)
        kind = d.get("type")
        return cls(
            channel_id=snowflake_or_none(d.get("id")),
            name=_str(d.get("name")),
            type=kind if isinstance(kind, int) else None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceChannelSelect(RPCEvent):
    """The user joined or left a voice channel (ids are ``None`` when left).

    Attributes:
        channel_id: the voice channel's id.
        guild_id: its guild's id.
    """

    EVT = "VOICE_CHANNEL_SELECT"

    channel_id: int | None
    guild_id: int | None

    @classmethod
    def from_data(cls, data: Any) -> VoiceChannelSelect:
        d = _mapping(data)
        return cls(
            channel_id=snowflake_or_none(d.get("channel_id")),
            guild_id=snowflake_or_none(d.get("guild_id")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceStateEvent(RPCEvent):
    """Base of the voice state events (subscribe with ``channel_id``).

    Attributes:
        user: the user.
        nick: their nickname, if any.
        volume: their volume as the local user hears it.
        mute: whether the local user muted them.
        pan: their pan, if any.
        voice_state: the voice state object as received.
    """

    SUBSCRIBE_ARG = "channel_id"

    user: RPCUser | None
    nick: str | None
    volume: float | None
    mute: bool
    pan: Pan | None
    voice_state: Mapping[str, Any] = field(default_factory=_empty, repr=False)

    @classmethod
    def from_data(cls, data: Any) -> VoiceStateEvent:
        d = _mapping(data)
        return cls(
            user=RPCUser.from_payload(d.get("user")),
            nick=_str_or_none(d.get("nick")),
            volume=_number_or_none(d.get("volume")),
            mute=d.get("mute") is True,
            pan=Pan.from_payload(d.get("pan")),
            voice_state=_mapping(d.get("voice_state")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceStateCreate(VoiceStateEvent):
    """A user joined the voice channel."""

    EVT = "VOICE_STATE_CREATE"


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceStateUpdate(VoiceStateEvent):
    """A user's voice state changed in the voice channel."""

    EVT = "VOICE_STATE_UPDATE"


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceStateDelete(VoiceStateEvent):
    """A user left the voice channel."""

    EVT = "VOICE_STATE_DELETE"


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceSettingsUpdate(RPCEvent):
    """The user's voice settings changed.

    Attributes:
        settings: the voice settings object, as received.
    """

    EVT = "VOICE_SETTINGS_UPDATE"

    settings: Mapping[str, Any]

    @classmethod
    def from_data(cls, data: Any) -> VoiceSettingsUpdate:
        return cls(settings=_mapping(data))


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceConnectionStatus(RPCEvent):
    """The state of the user's voice connection.

    Attributes:
        state: Discord's state name (``VOICE_CONNECTED``, ``NO_ROUTE``, ...).
        hostname: the voice server.
        pings: recent pings in milliseconds (either documented shape accepted).
        average_ping: their average.
        last_ping: the latest.
    """

    EVT = "VOICE_CONNECTION_STATUS"

    state: str
    hostname: str | None
    pings: tuple[float, ...]
    average_ping: float | None
    last_ping: float | None

    @classmethod
    def from_data(cls, data: Any) -> VoiceConnectionStatus:
        d = _mapping(data)
        pings: list[float] = []
        raw = d.get("pings")
        for item in raw if isinstance(raw, list) else ():
            # Documented as numbers; discord-api-types says {time, value} objects.
            value = _number_or_none(
                _mapping(item).get("value") if isinstance(item, Mapping) else item
            )
            if value is not None:
                pings.append(value)
        return cls(
            state=_str(d.get("state")),
            hostname=_str_or_none(d.get("hostname")),
            pings=tuple(pings),
            average_ping=_number_or_none(d.get("average_ping")),
            last_ping=_number_or_none(d.get("last_ping")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageEvent(RPCEvent):
    """Base of the message events (subscribe with ``channel_id``).

    Attributes:
        channel_id: the channel's id.
        message: the message object as received (only ``id`` on delete).
    """

    SUBSCRIBE_ARG = "channel_id"

    channel_id: int | None
    message: Mapping[str, Any] = field(repr=False)

    @property
    def message_id(self) -> int | None:
        """The message's id."""
        return snowflake_or_none(self.message.get("id"))

    @classmethod
    def from_data(cls, data: Any) -> MessageEvent:
        d = _mapping(data)
        return cls(
            channel_id=snowflake_or_none(d.get("channel_id")),
            message=_mapping(d.get("message")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageCreate(MessageEvent):
    """A message was sent in the channel."""

    EVT = "MESSAGE_CREATE"


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageUpdate(MessageEvent):
    """A message was edited in the channel."""

    EVT = "MESSAGE_UPDATE"


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDelete(MessageEvent):
    """A message was deleted in the channel."""

    EVT = "MESSAGE_DELETE"


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeakingEvent(RPCEvent):
    """Base of the speaking events (subscribe with ``channel_id``).

    Attributes:
        user_id: who started or stopped speaking.
        channel_id: the voice channel, when the app says.
    """

    SUBSCRIBE_ARG = "channel_id"

    user_id: int | None
    channel_id: int | None = None

    @classmethod
    def from_data(cls, data: Any) -> SpeakingEvent:
        d = _mapping(data)
        return cls(
            user_id=snowflake_or_none(d.get("user_id")),
            channel_id=snowflake_or_none(d.get("channel_id")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeakingStart(SpeakingEvent):
    """A user started speaking."""

    EVT = "SPEAKING_START"


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeakingStop(SpeakingEvent):
    """A user stopped speaking."""

    EVT = "SPEAKING_STOP"


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationCreate(RPCEvent):
    """The app showed a notification (needs the ``rpc.notifications.read`` scope).

    Attributes:
        channel_id: the channel it is about.
        title: its title.
        body: its text.
        icon_url: its icon.
        message: the message object as received.
    """

    EVT = "NOTIFICATION_CREATE"

    channel_id: int | None
    title: str
    body: str
    icon_url: str | None
    message: Mapping[str, Any] = field(default_factory=_empty, repr=False)

    @classmethod
    def from_data(cls, data: Any) -> NotificationCreate:
        d = _mapping(data)
        return cls(
            channel_id=snowflake_or_none(d.get("channel_id")),
            title=_str(d.get("title")),
            body=_str(d.get("body")),
            icon_url=_str_or_none(d.get("icon_url")),
            message=_mapping(d.get("message")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityJoin(RPCEvent):
    """The user joined a game through the client's activity.

    Attributes:
        secret: the activity's join secret.
    """

    EVT = "ACTIVITY_JOIN"

    secret: str = field(repr=False)

    @classmethod
    def from_data(cls, data: Any) -> ActivityJoin:
        return cls(secret=_str(_mapping(data).get("secret")))


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivitySpectate(RPCEvent):
    """The user started spectating through the client's activity.

    Attributes:
        secret: the activity's spectate secret.
    """

    EVT = "ACTIVITY_SPECTATE"

    secret: str = field(repr=False)

    @classmethod
    def from_data(cls, data: Any) -> ActivitySpectate:
        return cls(secret=_str(_mapping(data).get("secret")))


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityJoinRequest(RPCEvent):
    """Another user asked to join (Ask to Join); answer with
    :meth:`~tether.rpc.RPCClient.send_activity_join_invite` or
    :meth:`~tether.rpc.RPCClient.close_activity_request`.

    Attributes:
        user: who asked.
    """

    EVT = "ACTIVITY_JOIN_REQUEST"

    user: RPCUser | None

    @classmethod
    def from_data(cls, data: Any) -> ActivityJoinRequest:
        return cls(user=RPCUser.from_payload(_mapping(data).get("user")))


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityInvite(RPCEvent):
    """The user was invited to join an activity.

    Attributes:
        user: who invited.
        activity: the activity object, as received.
        channel_id: where the invite was sent.
        message_id: the invite's message.
    """

    EVT = "ACTIVITY_INVITE"

    user: RPCUser | None
    channel_id: int | None
    message_id: int | None
    activity: Mapping[str, Any] = field(default_factory=_empty, repr=False)

    @classmethod
    def from_data(cls, data: Any) -> ActivityInvite:
        d = _mapping(data)
        return cls(
            user=RPCUser.from_payload(d.get("user")),
            channel_id=snowflake_or_none(d.get("channel_id")),
            message_id=snowflake_or_none(d.get("message_id")),
            activity=_mapping(d.get("activity")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CurrentUserUpdate(RPCEvent):
    """The logged-in user changed (name, avatar, ...).

    Attributes:
        user: the user as it is now.
    """

    EVT = "CURRENT_USER_UPDATE"

    user: RPCUser | None

    @classmethod
    def from_data(cls, data: Any) -> CurrentUserUpdate:
        return cls(user=RPCUser.from_payload(data))


@dataclass(frozen=True, slots=True, kw_only=True)
class RelationshipUpdate(RPCEvent):
    """A relationship (friend, block, ...) changed.

    Attributes:
        data: the relationship object, as received.
    """

    EVT = "RELATIONSHIP_UPDATE"

    data: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_data(cls, data: Any) -> RelationshipUpdate:
        return cls(data=_mapping(data))


@dataclass(frozen=True, slots=True, kw_only=True)
class EntitlementCreate(RPCEvent):
    """The user got an entitlement for the application.

    Attributes:
        data: the entitlement object, as received.
    """

    EVT = "ENTITLEMENT_CREATE"

    data: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_data(cls, data: Any) -> EntitlementCreate:
        return cls(data=_mapping(data))


@dataclass(frozen=True, slots=True, kw_only=True)
class EntitlementDelete(RPCEvent):
    """An entitlement of the user was removed.

    Attributes:
        data: the entitlement object, as received.
    """

    EVT = "ENTITLEMENT_DELETE"

    data: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_data(cls, data: Any) -> EntitlementDelete:
        return cls(data=_mapping(data))


_BY_EVT: Mapping[str, type[RPCEvent]] = {
    cls.EVT: cls
    for cls in (
        ErrorReceived,
        GuildStatus,
        GuildCreate,
        ChannelCreate,
        VoiceChannelSelect,
        VoiceStateCreate,
        VoiceStateUpdate,
        VoiceStateDelete,
        VoiceSettingsUpdate,
        VoiceConnectionStatus,
        MessageCreate,
        MessageUpdate,
        MessageDelete,
        SpeakingStart,
        SpeakingStop,
        NotificationCreate,
        ActivityJoin,
        ActivitySpectate,
        ActivityJoinRequest,
        ActivityInvite,
        CurrentUserUpdate,
        RelationshipUpdate,
        EntitlementCreate,
        EntitlementDelete,
    )
}


def event_class(evt: str) -> type[RPCEvent] | None:
    """Return the class for a Discord event name, if tether has one."""
    return _BY_EVT.get(evt)


def parse_event(evt: str, data: Any) -> RPCEvent:
    """Build the typed event for a DISPATCH (a :class:`RawRPCEvent` if unknown)."""
    cls = _BY_EVT.get(evt)
    if cls is None:
        return RawRPCEvent(evt=evt, data=data)
    try:
        return cls.from_data(data)
    except Exception:
        # A shape no parser expected must not stop delivery.
        logger.warning(
            "could not build %s from its data; delivered raw", evt, exc_info=True
        )
        return RawRPCEvent(evt=evt, data=data)
