"""tether: a reliable, fast and light asyncio library for Discord's real-time APIs.

Start with :class:`Client`; the events it raises are importable from here too::

    import tether

    client = tether.Client(token, intents=tether.Intents.default())

    @client.on(tether.MessageCreate)
    async def on_message(event: tether.MessageCreate) -> None:
        ...

    client.run()
"""

from __future__ import annotations

from tether._dispatch import EventStream, HandlerError, Subscription
from tether._event import Event
from tether._secret import Token
from tether.cache import Cache, CacheConfig, MemberCachePolicy
from tether.client import Client, ClientStats, DispatchInfo, current_dispatch
from tether.errors import (
    ClientStateError,
    ConnectionClosedError,
    ConnectionFault,
    DisallowedIntentsError,
    FatalCloseError,
    FatalError,
    ForbiddenError,
    HTTPError,
    InvalidApiVersionError,
    InvalidIntentsError,
    InvalidShardError,
    InvalidTokenError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    ShardingRequiredError,
    TetherError,
    UnauthorizedError,
)
from tether.events import (
    ChannelCreate,
    ChannelDelete,
    ChannelUpdate,
    GuildAvailable,
    GuildCreate,
    GuildEmojisUpdate,
    GuildJoin,
    GuildLeave,
    GuildUnavailable,
    GuildUpdate,
    InteractionCreate,
    MemberAdd,
    MemberRemove,
    MembersChunk,
    MemberUpdate,
    MessageBulkDelete,
    MessageCreate,
    MessageDelete,
    MessageUpdate,
    PresenceUpdate,
    RawDispatch,
    ReactionAdd,
    ReactionRemove,
    ReactionRemoveAll,
    ReactionRemoveEmoji,
    Ready,
    Resumed,
    RoleCreate,
    RoleDelete,
    RoleUpdate,
    ThreadCreate,
    ThreadDelete,
    ThreadListSync,
    ThreadUpdate,
    TypingStart,
    UserUpdate,
    VoiceServerUpdate,
    VoiceStateUpdate,
)
from tether.gateway.intents import Intents
from tether.identify import (
    IdentifyQueue,
    LimitedIdentifyQueue,
    LocalIdentifyQueue,
    SessionStartLimitError,
)
from tether.manager import (
    Backoff,
    Connected,
    ConnectionManager,
    Disconnected,
    ManagerState,
)
from tether.rest import File, GatewayBot, RESTClient, SessionStartLimit
from tether.rpc import RPCClient
from tether.sessions import (
    JSONFileSessionStore,
    MemorySessionStore,
    SessionStore,
    StoredSession,
)
from tether.sharding import ShardedClient, ShardInfo

__version__ = "0.1.0"

__all__ = [
    "Backoff",
    "Cache",
    "CacheConfig",
    "ChannelCreate",
    "ChannelDelete",
    "ChannelUpdate",
    "Client",
    "ClientStateError",
    "ClientStats",
    "Connected",
    "ConnectionClosedError",
    "ConnectionFault",
    "ConnectionManager",
    "DisallowedIntentsError",
    "Disconnected",
    "DispatchInfo",
    "Event",
    "EventStream",
    "FatalCloseError",
    "FatalError",
    "File",
    "ForbiddenError",
    "GatewayBot",
    "GuildAvailable",
    "GuildCreate",
    "GuildEmojisUpdate",
    "GuildJoin",
    "GuildLeave",
    "GuildUnavailable",
    "GuildUpdate",
    "HTTPError",
    "HandlerError",
    "IdentifyQueue",
    "Intents",
    "InteractionCreate",
    "InvalidApiVersionError",
    "InvalidIntentsError",
    "InvalidShardError",
    "InvalidTokenError",
    "JSONFileSessionStore",
    "LimitedIdentifyQueue",
    "LocalIdentifyQueue",
    "ManagerState",
    "MemberAdd",
    "MemberCachePolicy",
    "MemberRemove",
    "MemberUpdate",
    "MembersChunk",
    "MemorySessionStore",
    "MessageBulkDelete",
    "MessageCreate",
    "MessageDelete",
    "MessageUpdate",
    "NotFoundError",
    "PresenceUpdate",
    "RESTClient",
    "RPCClient",
    "RateLimitedError",
    "RawDispatch",
    "ReactionAdd",
    "ReactionRemove",
    "ReactionRemoveAll",
    "ReactionRemoveEmoji",
    "Ready",
    "Resumed",
    "RoleCreate",
    "RoleDelete",
    "RoleUpdate",
    "ServerError",
    "SessionStartLimit",
    "SessionStartLimitError",
    "SessionStore",
    "ShardInfo",
    "ShardedClient",
    "ShardingRequiredError",
    "StoredSession",
    "Subscription",
    "TetherError",
    "ThreadCreate",
    "ThreadDelete",
    "ThreadListSync",
    "ThreadUpdate",
    "Token",
    "TypingStart",
    "UnauthorizedError",
    "UserUpdate",
    "VoiceServerUpdate",
    "VoiceStateUpdate",
    "__version__",
    "current_dispatch",
]
