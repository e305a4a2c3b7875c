"""Keep a rich presence on the user's Discord profile, across Discord's restarts.

Against the Discord app on this machine (the application id comes from the
Developer Portal)::

    python examples/rich_presence.py --client-id 123456789012345678

Against tether's emulated desktop app, in a temporary directory (no Discord
needed, nothing outside that directory touched)::

    python examples/rich_presence.py --emulator

The script sets the activity once. When Discord quits, restarts or crashes, the
client reconnects by itself and shows the activity again: there is no code for that
here. With ``--emulator`` the script restarts the emulated app a few times (once at
another socket index, once after a pause with no app at all) to show it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import tempfile
import time

from tether.emulator.desktop import DEFAULT_CLIENT_ID, DesktopApp
from tether.manager import Connected, Disconnected
from tether.rpc import (
    Activity,
    ActivityType,
    Assets,
    Button,
    Party,
    Ready,
    RPCClient,
    Timestamps,
)

logger = logging.getLogger("rich_presence")


def presence() -> Activity:
    """The activity to show: elapsed time, an image, a party and a button."""
    return Activity(
        type=ActivityType.PLAYING,
        details="Exploring the emulator",
        state="In a party",
        timestamps=Timestamps(start=int(time.time() * 1000)),
        assets=Assets(large_image="logo", large_text="tether"),
        party=Party(id="party-1", size=(1, 4)),
        buttons=(Button("Read the docs", "https://example.invalid/tether/rpc"),),
    )


def watch(rpc: RPCClient) -> None:
    """Print the connection's life as it happens."""

    @rpc.on(Connected)
    def connected(event: Connected) -> None:
        logger.info("connected (attempt %d)", event.attempt)

    @rpc.on(Ready)
    def ready(event: Ready) -> None:
        name = event.user.username if event.user else "?"
        logger.info("ready as %s; the presence is shown", name)

    @rpc.on(Disconnected)
    def disconnected(event: Disconnected) -> None:
        logger.info("disconnected: %s", event.reason)


async def run_against_discord(client_id: str) -> None:
    """Show the presence until interrupted."""
    async with RPCClient(client_id) as rpc:
        watch(rpc)
        logger.info("waiting for the Discord app (start it if it is not running)")
        await rpc.set_activity(presence(), timeout_s=3600)
        await asyncio.Event().wait()


async def run_against_emulator(restarts: int) -> None:
    """Show the presence on the emulated app while it restarts ``restarts`` times."""
    with tempfile.TemporaryDirectory(prefix="tether-rpc-") as directory:
        # The client looks for the app where the app puts its socket.
        os.environ["XDG_RUNTIME_DIR"] = directory
        app = DesktopApp(directory, client_id=DEFAULT_CLIENT_ID)
        await app.start()
        try:
            async with RPCClient(DEFAULT_CLIENT_ID) as rpc:
                watch(rpc)
                await rpc.set_activity(presence())
                logger.info("the app shows: %s", app.activity_for())

                for n in range(1, restarts + 1):
                    readies = rpc.stream(Ready)
                    if n == 2:
                        logger.info("restart %d: the app quits for a second", n)
                        await app.stop()
                        await asyncio.sleep(1.0)
                        await app.start()
                    else:
                        index = n % 3
                        logger.info(
                            "restart %d: the app comes back at index %d", n, index
                        )
                        await app.restart(index=index)
                    async with asyncio.timeout(30):
                        await anext(readies)
                    await readies.aclose()
                    logger.info("the app shows: %s", app.activity_for())
        finally:
            await app.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--client-id", help="the application id")
    target.add_argument(
        "--emulator", action="store_true", help="use the emulated app in a temp dir"
    )
    parser.add_argument(
        "--restarts", type=int, default=3, help="app restarts with --emulator"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")

    if args.emulator:
        if sys.platform == "win32":
            parser.error("the emulated app needs Unix sockets")
        asyncio.run(run_against_emulator(args.restarts))
    else:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_against_discord(args.client_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
