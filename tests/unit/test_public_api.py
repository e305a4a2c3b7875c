"""The public surface changes only on purpose: this list is the contract."""

from __future__ import annotations

import pytest

import tether

EXPECTED = {
    "Backoff", "Cache", "CacheConfig", "ChannelCreate", "ChannelDelete",
    "ChannelUpdate", "Client", "ClientStateError", "ClientStats", "Connected",
    "ConnectionClosedError", "ConnectionFault", "ConnectionManager",
    "DisallowedIntentsError", "Disconnected", "DispatchInfo", "Event", "EventStream",
    "FatalCloseError", "FatalError", "File", "ForbiddenError", "GatewayBot",
    "GuildAvailable", "GuildCreate", "GuildEmojisUpdate", "GuildJoin", "GuildLeave",
    "GuildUnavailable", "GuildUpdate", "HTTPError", "HandlerError", "IdentifyQueue",
    "Intents", "InteractionCreate", "InvalidApiVersionError", "InvalidIntentsError",
    "InvalidShardError", "InvalidTokenError", "LocalIdentifyQueue", "ManagerState",
    "MemberAdd", "MemberCachePolicy", "MemberRemove", "MemberUpdate", "MembersChunk",
    "MessageBulkDelete", "MessageCreate", "MessageDelete", "MessageUpdate",
    "NotFoundError", "PresenceUpdate", "RESTClient", "RPCClient", "RateLimitedError",
    "RawDispatch", "ReactionAdd", "ReactionRemove", "ReactionRemoveAll",
    "ReactionRemoveEmoji", "Ready", "Resumed", "RoleCreate", "RoleDelete",
    "RoleUpdate", "ServerError", "SessionStartLimit", "ShardingRequiredError",
    "Subscription", "TetherError", "ThreadCreate", "ThreadDelete", "ThreadListSync",
    "ThreadUpdate", "Token", "TypingStart", "UnauthorizedError", "UserUpdate",
    "VoiceServerUpdate", "VoiceStateUpdate", "__version__", "current_dispatch",
    "JSONFileSessionStore", "LimitedIdentifyQueue", "MemorySessionStore",
    "SessionStartLimitError", "SessionStore", "ShardInfo", "ShardedClient",
    "StoredSession",
}  # fmt: skip


def test_public_api_is_exactly_the_documented_list() -> None:
    assert set(tether.__all__) == EXPECTED


def test_every_public_name_resolves() -> None:
    for name in tether.__all__:
        assert getattr(tether, name) is not None, name


def test_every_error_derives_from_tether_error() -> None:
    for name in tether.__all__:
        value = getattr(tether, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, tether.TetherError), name


@pytest.mark.parametrize(
    "bad", ["", "   ", "abc\r\ndef", "abc def", "Bot a b", "a\x00b"]
)
def test_a_token_that_could_never_work_is_refused_at_once(bad: str) -> None:
    with pytest.raises(ValueError) as refused:
        tether.Token(bad)
    assert bad.strip() == "" or bad not in str(refused.value)
