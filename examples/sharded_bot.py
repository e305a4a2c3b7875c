"""A sharded bot that answers ``!ping`` on every shard and survives restarts.

Against Discord (the token comes from the environment; the shard count from
``GET /gateway/bot`` unless ``--shards`` is given)::

    DISCORD_TOKEN=... python examples/sharded_bot.py --sessions sessions.json

Against tether's emulator, in this process (no network beyond 127.0.0.1)::

    python examples/sharded_bot.py --emulator

Stop it with Ctrl-C: every shard closes with a resumable code and its session is
saved in the ``--sessions`` file, so the next start within a few minutes resumes
every shard instead of identifying. With ``--emulator`` the script does this once
by itself: it runs the bot, stops it, and starts a new client from the same file.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from pathlib import Path

from tether import MessageCreate, Ready
from tether.client import DEFAULT_API_URL
from tether.emulator import Emulator, WorldConfig
from tether.gateway.intents import Intents
from tether.identify import LocalIdentifyQueue
from tether.manager import Connected, Disconnected
from tether.sessions import JSONFileSessionStore
from tether.sharding import ShardedClient

logger = logging.getLogger("sharded_bot")


def make_bot(
    token: str,
    store: Path,
    *,
    api_url: str = DEFAULT_API_URL,
    shards: int | None = None,
    identify_queue: LocalIdentifyQueue | None = None,
) -> ShardedClient:
    """A sharded client that answers ``!ping`` and reports each shard's life."""
    bot = ShardedClient(
        token,
        shard_count=shards,
        session_store=JSONFileSessionStore(store),
        identify_queue=identify_queue,
        intents=Intents.default() | Intents.MESSAGE_CONTENT,
        api_url=api_url,
    )

    @bot.on(Ready)
    async def on_ready(event: Ready) -> None:
        logger.info("shard %d ready with %d guilds", event.shard_id, len(event.guilds))

    @bot.on(Connected)
    async def on_connected(event: Connected) -> None:
        how = "resumed" if event.resumed else "new session"
        logger.info("shard %s connected (%s)", event.shard_id, how)

    @bot.on(Disconnected)
    async def on_disconnected(event: Disconnected) -> None:
        logger.info("shard %s disconnected: %s", event.shard_id, event.reason)

    @bot.on(MessageCreate)
    async def on_message(event: MessageCreate) -> None:
        message = event.message
        if message.content == "!ping":
            await bot.rest.create_message(
                message.channel_id, content=f"pong from shard {event.shard_id}"
            )

    return bot


async def run_on_emulator(store: Path) -> None:
    """Run the bot on a local emulator with 4 shards, stop it, start it again."""
    async with Emulator(
        WorldConfig(guilds=12, members_per_guild=10, seed=3),
        shards=4,
        max_concurrency=2,
        identify_window_s=1.0,
    ) as emu:
        for run in (1, 2):
            bot = make_bot(
                emu.token,
                store,
                api_url=emu.api_url,
                identify_queue=LocalIdentifyQueue(window_s=1.0),
            )
            bot.start()
            async with asyncio.timeout(60):
                await bot.wait_until_ready()
            logger.info(
                "run %d: %r; %d guilds cached", run, bot, len(bot.cache.guilds())
            )
            await emu.send_message(content="!ping", guild_index=run)
            await asyncio.sleep(0.5)
            await bot.close()
        logger.info(
            "identifies: %d, resumes: %d (the second run spent no identify)",
            emu.counters.identifies,
            emu.counters.resumes,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emulator", action="store_true", help="run on an emulator")
    parser.add_argument("--shards", type=int, help="the shard count (default: auto)")
    parser.add_argument(
        "--sessions", type=Path, help="the session file (default: a temporary one)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    if args.emulator:
        with tempfile.TemporaryDirectory() as directory:
            store = args.sessions or Path(directory) / "sessions.json"
            asyncio.run(run_on_emulator(store))
        return 0

    token = os.environ.get("DISCORD_TOKEN")
    if not token:
        print("set DISCORD_TOKEN, or pass --emulator", file=sys.stderr)
        return 2
    store = args.sessions or Path(tempfile.gettempdir()) / "tether-sessions.json"
    make_bot(token, store, shards=args.shards).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
