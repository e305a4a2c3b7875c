"""Run an example bot against Discord, or against tether's emulator with --emulator.

Shared by the examples: it reads the token from ``DISCORD_TOKEN``, or starts
``tether.emulator`` in-process and points the bot at it (no network needed), with
emulated users who talk to the bot.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import tether
from tether.emulator import Emulator, WorldConfig

BotFactory = Callable[[str, str | None], tether.Client]
Scripted = Callable[[Emulator, tether.Client], Awaitable[None]]


def parse(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--emulator",
        action="store_true",
        help="run against tether's local Discord emulator instead of Discord",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=15.0,
        help="with --emulator: how long to run before stopping",
    )
    return parser.parse_args()


async def run_emulated(
    make_bot: BotFactory,
    script: Scripted,
    seconds: float,
    **world: Any,
) -> None:
    """Start an emulator, the bot against it, and a script of emulated users."""
    async with Emulator(WorldConfig(**world), heartbeat_interval_s=5.0) as emu:
        bot = make_bot(emu.token, emu.api_url)
        async with asyncio.timeout(seconds + 60):
            bot.start()
            await bot.wait_until_ready()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(script(emu, bot), seconds)
            await bot.close()


def main(description: str, make_bot: BotFactory, script: Scripted, **world: Any) -> int:
    args = parse(description)
    if args.emulator:
        asyncio.run(run_emulated(make_bot, script, args.seconds, **world))
        return 0
    token = os.environ.get("DISCORD_TOKEN")
    if not token:
        print("set DISCORD_TOKEN, or pass --emulator", file=sys.stderr)
        return 2
    make_bot(token, None).run()
    return 0
