"""A ping bot: replies to ``!ping`` with the gateway latency, then edits the reply
to add the REST round trip.

    DISCORD_TOKEN=... python examples/ping_bot.py    # against Discord
    python examples/ping_bot.py --emulator           # against tether's emulator
"""

from __future__ import annotations

import asyncio
import time

from _emulated import main

import tether
from tether.emulator import Emulator


def make_bot(token: str, api_url: str | None) -> tether.Client:
    intents = tether.Intents.default() | tether.Intents.MESSAGE_CONTENT
    options = {"api_url": api_url} if api_url else {}
    client = tether.Client(token, intents=intents, **options)

    @client.on(tether.Ready)
    def on_ready(event: tether.Ready) -> None:
        print(f"ready as {event.user.username} in {len(event.guilds)} guilds")

    @client.on(tether.MessageCreate)
    async def on_message(event: tether.MessageCreate) -> None:
        message = event.message
        if message.content != "!ping" or (message.author and message.author.bot):
            return
        latency = client.latency or 0.0
        text = f"pong: gateway {latency * 1000:.1f} ms"
        started = time.monotonic()
        reply = await client.rest.create_message(
            message.channel_id, text, reply_to=message.id
        )
        rest_ms = (time.monotonic() - started) * 1000
        await client.rest.edit_message(
            message.channel_id, reply["id"], content=f"{text}, REST {rest_ms:.1f} ms"
        )
        print(f"answered a ping in channel {message.channel_id}")

    return client


async def users_say_ping(emu: Emulator, client: tether.Client) -> None:
    while True:
        await emu.send_message(content="!ping")
        await asyncio.sleep(1.0)


if __name__ == "__main__":
    raise SystemExit(main(__doc__ or "", make_bot, users_say_ping, guilds=5))
