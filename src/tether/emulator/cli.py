"""``tether emulate``: run the emulator until interrupted.

Prints the REST base URL, the gateway URL, the control URL and the token, then
serves until SIGINT or SIGTERM. Point any bot's API base URL at the REST base URL
and give it the token.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence
from typing import TextIO

from tether.emulator.desktop import DEFAULT_CLIENT_ID, DesktopApp
from tether.emulator.emulator import Emulator
from tether.emulator.scenario import Scenario
from tether.emulator.world import WorldConfig

__all__ = ["build_parser", "main"]

logger = logging.getLogger(__name__)

_DESCRIPTION = """\
Run a local Discord on this machine: the REST API, the gateway (with zlib-stream
and zstd-stream), a synthetic world of guilds, channels, members and presences,
and faults on command. Any Discord library can connect: set its API base URL to
the printed REST base URL and use the printed token. Nothing leaves this machine.
"""

_EPILOG = """\
examples:
  tether emulate --guilds 100 --members 200 --seed 7
  tether emulate --heartbeat 5 --activity 50 --scenario faults.json
  tether emulate --json      (one JSON line with the URLs and token, for scripts)

The control URL takes JSON commands from other processes, e.g.
  curl -X POST -H 'Content-Type: application/json' \\
       -d '{"action": "reconnect"}' <control URL>step
See docs/emulator.md for every action and the scenario format.
"""


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0 to 65535)")
    return port


def _count(text: str) -> int:
    count = int(text)
    if count < 1:
        raise argparse.ArgumentTypeError(f"{count}: give 1 or more")
    return count


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tether emulate``."""
    parser = argparse.ArgumentParser(
        prog="tether emulate",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    world = parser.add_argument_group("world")
    world.add_argument(
        "--guilds", type=int, metavar="N", default=10, help="guilds the bot is in (10)"
    )
    world.add_argument(
        "--members",
        type=int,
        metavar="N",
        default=50,
        help="members per guild, the bot included (50)",
    )
    world.add_argument(
        "--large-guilds",
        type=int,
        metavar="N",
        default=0,
        help="guilds with --large-guild-members (0)",
    )
    world.add_argument(
        "--large-guild-members",
        type=int,
        metavar="N",
        default=1000,
        help="size of large guilds (1000)",
    )
    world.add_argument(
        "--seed", type=int, metavar="N", default=0, help="world seed (0)"
    )
    world.add_argument(
        "--activity",
        type=float,
        default=0.0,
        metavar="RATE",
        help="synthetic events per second: messages, reactions, typing, members, "
        "presences (0: none)",
    )

    gateway = parser.add_argument_group("gateway")
    gateway.add_argument(
        "--heartbeat",
        type=float,
        default=41.25,
        metavar="SECONDS",
        help="HELLO interval (41.25)",
    )
    gateway.add_argument(
        "--shards",
        type=int,
        metavar="N",
        default=1,
        help="shard count GET /gateway/bot recommends (1)",
    )
    gateway.add_argument(
        "--max-concurrency",
        type=int,
        metavar="N",
        default=1,
        help="IDENTIFYs per 5 s window (1)",
    )
    gateway.add_argument(
        "--session-start-limit",
        type=int,
        metavar="N",
        default=1000,
        help="IDENTIFYs per 24 h (1000)",
    )
    gateway.add_argument(
        "--guild-stream-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="pause between GUILD_CREATEs after READY (0)",
    )
    gateway.add_argument(
        "--scenario", metavar="FILE", help="JSON scenario to play once started"
    )

    network = parser.add_argument_group("network")
    network.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind REST and the gateway (127.0.0.1)",
    )
    network.add_argument(
        "--port",
        type=_port,
        metavar="PORT",
        default=0,
        help="REST port (0: any free port)",
    )
    network.add_argument(
        "--gateway-port", type=_port, metavar="PORT", default=0, help="gateway port (0)"
    )
    network.add_argument(
        "--resume-port",
        type=_port,
        metavar="PORT",
        default=0,
        help="resume gateway port (0)",
    )
    network.add_argument(
        "--control-port",
        type=_port,
        metavar="PORT",
        default=0,
        help="control port, on 127.0.0.1 (0)",
    )

    rpc = parser.add_argument_group("desktop app (RPC)")
    rpc.add_argument(
        "--rpc-dir",
        metavar="DIR",
        help="also serve an emulated desktop app's RPC socket (discord-ipc-0) in "
        "DIR; point XDG_RUNTIME_DIR at DIR for RPC clients",
    )
    rpc.add_argument(
        "--rpc-client-id",
        default=str(DEFAULT_CLIENT_ID),
        help="the application id the emulated app accepts (%(default)s)",
    )

    output = parser.add_argument_group("output")
    output.add_argument("--token", help="use this token instead of a generated one")
    output.add_argument(
        "--max-records",
        type=_count,
        metavar="N",
        default=100_000,
        help="dispatch and frame records kept per session for the control "
        "endpoint (100000)",
    )
    output.add_argument(
        "--json", action="store_true", help="print the addresses as one JSON line"
    )
    output.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log more (-v: INFO, -vv: DEBUG)",
    )
    return parser


def _banner(emu: Emulator, config: WorldConfig, out: TextIO) -> None:
    summary = emu.world.summary()
    lines = [
        "tether emulator running",
        f"  REST base URL  {emu.api_url}",
        f"  gateway URL    {emu.gateway_url}",
        f"  resume URL     {emu.resume_url}",
        f"  control URL    {emu.control_url}",
        f"  token          {emu.token}",
        f"  world          {summary['guilds']} guilds, {summary['members']} members, "
        f"{summary['channels']} channels (seed {config.seed})",
        "Press Ctrl+C to stop.",
    ]
    print("\n".join(lines), file=out, flush=True)


async def _serve(args: argparse.Namespace, out: TextIO) -> int:
    config = WorldConfig(
        guilds=args.guilds,
        members_per_guild=args.members,
        large_guilds=args.large_guilds,
        large_guild_members=args.large_guild_members,
        seed=args.seed,
    )
    scenario = Scenario.from_file(args.scenario) if args.scenario else None
    emu = Emulator(
        world=config,
        token=args.token,
        heartbeat_interval_s=args.heartbeat,
        shards=args.shards,
        max_concurrency=args.max_concurrency,
        session_start_limit=args.session_start_limit,
        guild_stream_delay_s=args.guild_stream_delay,
        host=args.host,
        port=args.port,
        gateway_port=args.gateway_port,
        resume_port=args.resume_port,
        control_port=args.control_port,
        max_records=args.max_records,
    )
    app = (
        DesktopApp(args.rpc_dir, client_id=args.rpc_client_id) if args.rpc_dir else None
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await emu.start()
        if app is not None:
            await app.start()
        if args.json:
            urls = {
                "api_url": emu.api_url,
                "gateway_url": emu.gateway_url,
                "resume_url": emu.resume_url,
                "control_url": emu.control_url,
                "token": emu.token,
            }
            if app is not None:
                urls["rpc_socket"] = app.path
            print(json.dumps(urls), file=out, flush=True)
        else:
            _banner(emu, config, out)
            if app is not None:
                print(
                    f"  RPC socket     {app.path} (XDG_RUNTIME_DIR={app.directory}, "
                    f"client id {app.client_id})",
                    file=out,
                    flush=True,
                )
        if args.activity > 0:
            emu.start_activity(args.activity, seed=args.seed)
        if scenario is not None:
            emu.play_in_background(scenario).add_done_callback(_report_scenario)
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if app is not None:
            await app.stop()
        await emu.stop()
    return 0


def _report_scenario(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        logger.error("the scenario stopped: %s", error)
    else:
        logger.info("the scenario is over; still serving")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tether emulate``.

    Args:
        argv: the arguments after ``emulate`` (``None``: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 after an interrupt, 1 when the emulator could not
        start, 2 for bad arguments.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return asyncio.run(_serve(args, sys.stdout))
    except ValueError as exc:
        print(f"tether emulate: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"tether emulate: cannot start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        return 0
