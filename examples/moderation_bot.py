"""A moderation-style bot that uses the member cache.

``!whois`` answers with the author's roles and join date from the cache (no REST
call); ``!members`` answers with the guild's cached member count; a message with a
banned word is deleted. Member changes are logged from the cache's view.

    DISCORD_TOKEN=... python examples/moderation_bot.py
    python examples/moderation_bot.py --emulator
"""

from __future__ import annotations

import asyncio

from _emulated import main

import tether
from tether.emulator import Emulator

BANNED = {"spam", "scam"}


def make_bot(token: str, api_url: str | None) -> tether.Client:
    intents = (
        tether.Intents.default()
        | tether.Intents.GUILD_MEMBERS
        | tether.Intents.MESSAGE_CONTENT
    )
    options = {"api_url": api_url} if api_url else {}
    client = tether.Client(token, intents=intents, fetch_members=True, **options)

    @client.on(tether.MessageCreate)
    async def on_message(event: tether.MessageCreate) -> None:
        message = event.message
        author = message.author
        if author is None or author.bot or message.guild_id is None:
            return
        words = set(message.content.lower().split())
        if words & BANNED:
            await client.rest.delete_message(message.channel_id, message.id)
            print(f"deleted a message from {author.username}")
        elif message.content == "!whois":
            member = client.cache.member(message.guild_id, author.id)
            roles = [client.cache.role(r) for r in member.roles] if member else []
            names = ", ".join(r.name for r in roles if r is not None) or "no roles"
            joined = member.joined_at.date() if member and member.joined_at else "?"
            await client.rest.create_message(
                message.channel_id,
                f"{author.username}: {names}; joined {joined}",
                reply_to=message.id,
            )
        elif message.content == "!members":
            count = len(client.cache.members(message.guild_id))
            await client.rest.create_message(
                message.channel_id, f"{count} members cached", reply_to=message.id
            )

    @client.on(tether.MemberAdd, tether.MemberRemove)
    def on_member_change(event: tether.MemberAdd | tether.MemberRemove) -> None:
        if isinstance(event, tether.MemberAdd):
            guild_id, what = event.member.guild_id, "joined"
        else:
            guild_id, what = event.guild_id, "left"
        count = len(client.cache.members(guild_id))
        print(f"a member {what} guild {guild_id}; {count} cached")

    return client


async def users_talk(emu: Emulator, client: tether.Client) -> None:
    for content in ("!whois", "!members", "this is spam", "hello"):
        await emu.send_message(content=content)
        await asyncio.sleep(0.5)
    await emu.simulate("member", count=5)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    raise SystemExit(
        main(__doc__ or "", make_bot, users_talk, guilds=3, members_per_guild=1500)
    )
