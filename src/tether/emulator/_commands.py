"""Client commands after IDENTIFY: presence, voice, member requests and friends.

Each handler checks its payload (a malformed one closes the connection with
4001, raised as :class:`CloseConnection`) and answers through the gateway's
dispatching, so answers take seqs like any other dispatch.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any, Final

from tether.emulator._session import Session
from tether.gateway.intents import Intents
from tether.gateway.opcodes import CloseCode, Opcode

if TYPE_CHECKING:
    from tether.emulator.gateway import Gateway

__all__ = ["CHUNK_SIZE", "CloseConnection", "Commands"]

logger = logging.getLogger(__name__)

#: Members per GUILD_MEMBERS_CHUNK.
CHUNK_SIZE: Final[int] = 1000

_STATUSES: Final[frozenset[str]] = frozenset(
    {"online", "dnd", "idle", "invisible", "offline"}
)


class CloseConnection(Exception):
    """Raised while handling a payload: close the connection with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Commands:
    """Handles op 3, 4, 8, 31 and 43 for one gateway.

    Args:
        gateway: the gateway whose sessions send the commands.
    """

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._world = gateway.world
        # guild id -> when its last all-members request was answered
        self._member_requests: dict[int, float] = {}

    def forget_member_requests(self) -> None:
        """Forget the all-members rate limit (the emulator restarted)."""
        self._member_requests.clear()

    def handle(self, session: Session, op: int, d: Any, now: float) -> None:
        """Handle one command of an authenticated connection."""
        if op == Opcode.PRESENCE_UPDATE:
            self.presence_update(session, d)
        elif op == Opcode.VOICE_STATE_UPDATE:
            self._voice_state_update(session, d)
        elif op == Opcode.REQUEST_GUILD_MEMBERS:
            self._request_guild_members(session, d, now)
        elif op == Opcode.REQUEST_SOUNDBOARD_SOUNDS:
            self._request_soundboard_sounds(session, d)
        elif op == Opcode.REQUEST_CHANNEL_INFO:
            self._request_channel_info(session, d)

    def _guild_on_session(self, session: Session, raw_id: Any) -> int | None:
        try:
            guild_id = int(raw_id)
        except (TypeError, ValueError):
            raise CloseConnection(
                CloseCode.UNKNOWN_OPCODE, "invalid guild_id"
            ) from None
        if guild_id not in session.guild_ids or guild_id not in self._world.guilds:
            logger.debug("request for guild %d, which is not on this session", guild_id)
            return None
        return guild_id

    def presence_update(self, session: Session, d: Any) -> None:
        """Apply op 3 (or IDENTIFY presence) to the bot in the session's guilds."""
        if not isinstance(d, dict) or d.get("status") not in _STATUSES:
            raise CloseConnection(CloseCode.UNKNOWN_OPCODE, "invalid presence update")
        activities = d.get("activities") or []
        if not isinstance(activities, list) or not all(
            isinstance(a, dict) for a in activities
        ):
            raise CloseConnection(
                CloseCode.UNKNOWN_OPCODE, "invalid presence activities"
            )
        kept = [
            {k: v for k, v in activity.items() if k in ("name", "type", "url", "state")}
            for activity in activities
        ]
        for guild_id in session.guild_ids:
            self._world.set_presence(
                guild_id, self._world.bot.id, d["status"], kept, {"web": d["status"]}
            )

    def _voice_state_update(self, session: Session, d: Any) -> None:
        if not isinstance(d, dict):
            raise CloseConnection(
                CloseCode.UNKNOWN_OPCODE, "invalid voice state update"
            )
        guild_id = self._guild_on_session(session, d.get("guild_id"))
        if guild_id is None:
            return
        guild = self._world.guilds[guild_id]
        channel_id: int | None = None
        if d.get("channel_id") is not None:
            try:
                channel_id = int(d["channel_id"])
            except (TypeError, ValueError):
                raise CloseConnection(
                    CloseCode.UNKNOWN_OPCODE, "invalid channel_id"
                ) from None
            channel = guild.channels.get(channel_id)
            if channel is None or channel["type"] not in (2, 13):
                logger.debug(
                    "voice state update for a channel that is not voice: ignored"
                )
                return
        state = self._world.set_voice_state(
            guild_id,
            self._world.bot.id,
            channel_id,
            session.session_id,
            self_mute=d.get("self_mute") is True,
            self_deaf=d.get("self_deaf") is True,
        )
        self._gateway.publish(
            "VOICE_STATE_UPDATE",
            state,
            guild_id=guild_id,
            intent=Intents.GUILD_VOICE_STATES,
        )
        if channel_id is not None:
            server = {
                "token": secrets.token_hex(8),
                "guild_id": str(guild_id),
                "endpoint": self._gateway.voice_endpoint,
            }
            self._gateway.dispatch_to(session, "VOICE_SERVER_UPDATE", server)

    def _request_guild_members(self, session: Session, d: Any, now: float) -> None:
        if not isinstance(d, dict):
            raise CloseConnection(
                CloseCode.UNKNOWN_OPCODE, "invalid request guild members"
            )
        if isinstance(d.get("guild_id"), list):
            raise CloseConnection(CloseCode.UNKNOWN_OPCODE, "one guild per request")
        guild_id = self._guild_on_session(session, d.get("guild_id"))
        query, user_ids, limit = d.get("query"), d.get("user_ids"), d.get("limit", 0)
        if (query is None) == (user_ids is None):
            raise CloseConnection(
                CloseCode.UNKNOWN_OPCODE, "give exactly one of query and user_ids"
            )
        if query is not None and (
            not isinstance(query, str) or type(limit) is not int or limit < 0
        ):
            raise CloseConnection(CloseCode.UNKNOWN_OPCODE, "invalid query or limit")
        nonce = d.get("nonce")
        if not isinstance(nonce, str) or len(nonce.encode()) > 32:
            nonce = None
        if guild_id is None:
            return
        guild = self._world.guilds[guild_id]
        presences = d.get("presences") is True and bool(
            session.intents & Intents.GUILD_PRESENCES
        )

        member_ids: list[int] = []
        not_found: list[int | str] = []
        if user_ids is not None:
            ids = user_ids if isinstance(user_ids, list) else [user_ids]
            if len(ids) > 100:
                raise CloseConnection(CloseCode.UNKNOWN_OPCODE, "at most 100 user_ids")
            for raw in ids:
                try:
                    user_id = int(raw)
                except (TypeError, ValueError):
                    raise CloseConnection(
                        CloseCode.UNKNOWN_OPCODE, "invalid user_ids"
                    ) from None
                if user_id in guild.members:
                    member_ids.append(user_id)
                else:
                    # Ids that are not snowflake-sized come back as numbers.
                    not_found.append(str(user_id) if user_id >= 1 << 32 else user_id)
        elif query == "" and limit == 0:
            if not session.intents & Intents.GUILD_MEMBERS:
                logger.warning("all-members request without GUILD_MEMBERS: ignored")
                return
            last = self._member_requests.get(guild_id)
            interval = self._gateway.settings.member_request_interval_s
            if last is not None and now - last < interval:
                meta: dict[str, Any] = {"guild_id": str(guild_id)}
                if nonce is not None:
                    meta["nonce"] = nonce
                retry_after = round(interval - (now - last), 3)
                data = {
                    "opcode": Opcode.REQUEST_GUILD_MEMBERS,
                    "retry_after": retry_after,
                    "meta": meta,
                }
                self._gateway.dispatch_to(session, "RATE_LIMITED", data)
                return
            self._member_requests[guild_id] = now
            member_ids = list(guild.members)
        else:
            prefix = str(query).casefold()
            cap = min(limit, 100) if query else limit
            for user_id, member in guild.members.items():
                names = (self._world.users[user_id].username, member.nick or "")
                if any(name.casefold().startswith(prefix) for name in names):
                    member_ids.append(user_id)
                    if len(member_ids) >= (cap or 100):
                        break

        parts = [
            member_ids[i : i + CHUNK_SIZE]
            for i in range(0, len(member_ids), CHUNK_SIZE)
        ] or [[]]
        for index, part in enumerate(parts):
            chunk: dict[str, Any] = {
                "guild_id": str(guild_id),
                "members": [
                    self._world.member_payload(guild, guild.members[uid])
                    for uid in part
                ],
                "chunk_index": index,
                "chunk_count": len(parts),
            }
            if index == 0 and user_ids is not None:
                chunk["not_found"] = not_found
            if presences:
                chunk["presences"] = [
                    self._world.presence_payload(guild, uid, guild_id=False)
                    for uid in part
                    if uid in guild.presences
                ]
            if nonce is not None:
                chunk["nonce"] = nonce
            self._gateway.dispatch_to(session, "GUILD_MEMBERS_CHUNK", chunk)

    def _request_soundboard_sounds(self, session: Session, d: Any) -> None:
        if not isinstance(d, dict) or not isinstance(d.get("guild_ids"), list):
            raise CloseConnection(
                CloseCode.UNKNOWN_OPCODE, "invalid request soundboard sounds"
            )
        for raw in d["guild_ids"]:
            guild_id = self._guild_on_session(session, raw)
            if guild_id is not None:
                data = {"guild_id": str(guild_id), "soundboard_sounds": []}
                self._gateway.dispatch_to(session, "SOUNDBOARD_SOUNDS", data)

    def _request_channel_info(self, session: Session, d: Any) -> None:
        if not isinstance(d, dict) or not isinstance(d.get("fields"), list):
            raise CloseConnection(
                CloseCode.UNKNOWN_OPCODE, "invalid request channel info"
            )
        guild_id = self._guild_on_session(session, d.get("guild_id"))
        if guild_id is None:
            return
        guild = self._world.guilds[guild_id]
        fields = [f for f in d["fields"] if f in ("status", "voice_start_time")]
        channels = [
            {"id": str(cid), **dict.fromkeys(fields)}
            for cid in guild.channel_ids_of_type(2, 13)
        ]
        self._gateway.dispatch_to(
            session, "CHANNEL_INFO", {"guild_id": str(guild_id), "channels": channels}
        )
