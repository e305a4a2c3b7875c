"""The workloads: each runs one library in a child against a fresh emulator.

Each function returns one measurement (a flat dict of numbers) for one library,
one size or mode and one repetition. The emulator runs in this process; the
library runs in its child, so the child's CPU time is the library's alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import pstats
import random
import re
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import orjson
import zstandard

from tether.bench._proc import Child
from tether.emulator import Emulator
from tether.emulator._events import WorldEvents
from tether.emulator.world import World, WorldConfig
from tether.gateway.intents import Intents

__all__ = [
    "BENCH_INTENTS",
    "LIBRARIES",
    "Settings",
    "flood_payloads",
    "run_churn",
    "run_floor",
    "run_flood",
    "run_startup",
    "run_storm",
]

logger = logging.getLogger(__name__)

#: The libraries compared, by the name the child knows them by.
LIBRARIES: Final[tuple[str, ...]] = ("tether", "discord.py", "hikari")

#: The intents every library identifies with.
BENCH_INTENTS: Final[int] = int(
    Intents.GUILDS
    | Intents.GUILD_MEMBERS
    | Intents.GUILD_PRESENCES
    | Intents.GUILD_MESSAGES
    | Intents.MESSAGE_CONTENT
)

#: The transport compression each library uses when it has no choice.
DEFAULT_COMPRESS: Final[dict[str, str | None]] = {
    "tether": "zlib-stream",
    # zstandard is installed, so discord.py always asks for zstd-stream.
    "discord.py": "zstd-stream",
    # hikari on Python 3.11 without backports.zstd always asks for zlib-stream.
    "hikari": "zlib-stream",
}

_FLOOD_WORLD: Final[WorldConfig] = WorldConfig(guilds=2, members_per_guild=200, seed=7)
_CHURN_CHUNK: Final[int] = 2000
_CHURN_WAIT_S: Final[float] = 60.0
_EMBED_WORDS: Final[tuple[str, ...]] = (
    "release",
    "deploy",
    "latency",
    "shard",
    "gateway",
    "resume",
    "cache",
    "member",
)


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """What the whole run shares.

    Attributes:
        logs: the folder for the children's stderr.
        timeout_s: the bound on any single wait for a child.
    """

    logs: Path
    timeout_s: float = 300.0


def _child_settings(
    lib: str,
    emu: Emulator,
    *,
    guilds: int,
    compress: str | None = None,
    io_thread: bool = True,
    storm_size: int = 0,
    profile: Path | None = None,
    timeout_s: float,
) -> dict[str, Any]:
    return {
        "profile": None if profile is None else str(profile),
        "lib": lib,
        "api_url": emu.api_url,
        "gateway_url": emu.gateway_url,
        "token": emu.token,
        "intents": BENCH_INTENTS,
        "compress": compress if lib == "tether" else DEFAULT_COMPRESS[lib],
        "io_thread": io_thread,
        "guilds": guilds,
        "storm_size": storm_size,
        "ready_timeout_s": timeout_s,
        "log_level": os.environ.get("TETHER_BENCH_CHILD_LOG", "WARNING"),
    }


def _world_events(emu: Emulator) -> WorldEvents:
    return emu.events


def _log_path(settings: Settings, lib: str, workload: str) -> Path:
    return settings.logs / f"{workload}-{lib}.log"


async def _wait(child: Child, kind: str, n: int, timeout_s: float) -> dict[str, Any]:
    return await child.ask(
        {"cmd": "wait", "kind": kind, "n": n, "timeout_s": timeout_s}, timeout_s + 10
    )


def _delta(after: dict[str, Any], before: dict[str, Any], key: str) -> float:
    return float(after[key]) - float(before[key])


# Startup


async def run_startup(
    lib: str, world: World, settings: Settings, *, rep: int
) -> dict[str, Any]:
    """Time, CPU and memory from start to every guild available.

    Args:
        lib: the library.
        world: the world to serve (the same object for every run of a size).
        settings: the run's settings.
        rep: the repetition number (for the log only).

    Returns:
        ``ready_s``, ``cpu_s``, ``rss``, ``peak_rss``, ``signal_s`` (the library's
        own ready signal) and the counts seen.
    """
    guilds = len(world.guilds)
    async with Emulator(world) as emu:
        child_settings = _child_settings(
            lib,
            emu,
            guilds=guilds,
            compress=DEFAULT_COMPRESS[lib],
            timeout_s=settings.timeout_s,
        )
        async with Child(child_settings, _log_path(settings, lib, "startup")) as child:
            ready = await child.ask({"cmd": "start"}, settings.timeout_s)
    started = ready["started"]
    signal = ready["ready_signal_at"]
    logger.info("startup %s %d guilds rep %d: %s", lib, guilds, rep, ready["counts"])
    return {
        "ready_s": _delta(ready, started, "t"),
        "cpu_s": _delta(ready, started, "cpu_s"),
        "rss": ready["rss"],
        "peak_rss": ready["peak_rss"],
        "signal_s": None if signal is None else signal - started["t"],
        "guilds_seen": ready["counts"]["guild"],
        "imported_rss": child.imported["rss"],
    }


# Message flood


def _flood_message(rng: random.Random, world: World, index: int) -> dict[str, Any]:
    guild = next(iter(world.guilds.values()))
    humans = [u for u in guild.members if u != world.bot.id]
    author = humans[index % len(humans)]
    mentioned = rng.choice(humans)
    words = " ".join(rng.choices(_EMBED_WORDS, k=12))
    embed = {
        "type": "rich",
        "title": f"Build {index} finished",
        "description": words[:72],
        "color": 0x5865F2,
        "fields": [
            {"name": "took", "value": f"{rng.randrange(10, 900)} s", "inline": True},
        ],
        "footer": {"text": "ci"},
    }
    return {
        "author": author,
        "content": f"<@{mentioned}> {words}",
        "embeds": [embed],
    }


def flood_payloads(n: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """The MESSAGE_CREATE payloads of the flood, as the emulator sends them.

    A world of the flood's config posts ``n`` messages; the dispatches are
    framed with the seq they would get. Used by the floor and the micro
    benchmarks so that they decode the same frames as the flood.
    """
    world = World(dataclasses.replace(_FLOOD_WORLD, seed=seed))
    rng = random.Random(seed)
    channel = next(iter(world.guilds.values())).channel_ids_of_type(0)[0]
    for index in range(n):
        spec = _flood_message(rng, world, index)
        message = world.create_message(
            channel, spec["author"], spec["content"], embeds=spec["embeds"]
        )
        data = world.message_create_payload(message)
        yield {"t": "MESSAGE_CREATE", "s": index + 2, "op": 0, "d": data}


async def run_flood(
    lib: str,
    settings: Settings,
    *,
    n: int,
    compress: str | None,
    io_thread: bool = True,
    profile: Path | None = None,
    rep: int,
) -> dict[str, Any]:
    """``n`` MESSAGE_CREATEs queued at once and sent as fast as the client reads.

    With ``profile``, the child runs under cProfile from ready to stop and
    writes its stats there.

    Returns:
        ``cpu_us`` (child CPU per event), ``events_per_s`` (first to last event
        handled), ``received``.
    """
    world = World(dataclasses.replace(_FLOOD_WORLD, seed=7 + rep))
    async with Emulator(world, replay_buffer_size=n + 100) as emu:
        child_settings = _child_settings(
            lib,
            emu,
            guilds=len(world.guilds),
            compress=compress,
            io_thread=io_thread,
            profile=profile,
            timeout_s=settings.timeout_s,
        )
        async with Child(child_settings, _log_path(settings, lib, "flood")) as child:
            await child.ask({"cmd": "start"}, settings.timeout_s)
            before = await child.ask({"cmd": "stats"}, settings.timeout_s)
            events = _world_events(emu)
            rng = random.Random(7 + rep)
            channel = next(iter(world.guilds.values())).channel_ids_of_type(0)[0]
            # Every message is queued before the writer runs, so the emulator
            # then writes them back to back.
            for index in range(n):
                spec = _flood_message(rng, world, index)
                events.message_create(
                    channel, spec["author"], spec["content"], embeds=spec["embeds"]
                )
            after = await child.ask(
                {
                    "cmd": "wait",
                    "kind": "message",
                    "n": n,
                    "timeout_s": settings.timeout_s,
                },
                settings.timeout_s + 10,
            )
    received = after["counts"]["message"]
    span = (after["last_message_at"] or 0.0) - (after["first_message_at"] or 0.0)
    logger.info("flood %s %s rep %d: %d/%d", lib, compress, rep, received, n)
    return {
        "cpu_us": _delta(after, before, "cpu_s") / max(received, 1) * 1e6,
        "events_per_s": (received - 1) / span if span > 0 else None,
        "received": received,
        "sent": n,
        "rss": after["rss"],
    }


def read_profile(path: Path, n: int, top: int = 20) -> list[dict[str, Any]]:
    """The ``top`` functions by own time in a flood profile, per event.

    Returns:
        rows of ``function`` (file:line name), ``calls_per_event``,
        ``own_us`` and ``cumulative_us`` (microseconds per event).
    """
    stats = pstats.Stats(str(path))
    rows = []
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (file, line, name), (_, calls, own, cumulative, _) in table.items():
        # The harness's own snapshots, not the library's work.
        if name == "<built-in method gc.collect>" or file.endswith("_child.py"):
            continue
        short = re.split(r"site-packages/|/src/|/lib/python3\.\d+/", file)[-1]
        rows.append(
            {
                "function": f"{short}:{line} {name}",
                "calls_per_event": calls / n,
                "own_us": own / n * 1e6,
                "cumulative_us": cumulative / n * 1e6,
            }
        )
    rows.sort(key=lambda row: row["own_us"], reverse=True)
    return rows[:top]


# Member churn


async def run_churn(
    lib: str, world: World, settings: Settings, *, n: int, rep: int
) -> dict[str, Any]:
    """Presence and member updates against a cached world, in two equal rounds.

    Returns:
        ``cpu_us`` per event over both rounds, the RSS after the world was
        cached and after each round (flat memory: round two adds about nothing).
    """
    guild_ids = list(world.guilds)
    rng = random.Random(rep)
    async with Emulator(world) as emu:
        child_settings = _child_settings(
            lib,
            emu,
            guilds=len(guild_ids),
            compress=DEFAULT_COMPRESS[lib],
            timeout_s=settings.timeout_s,
        )
        async with Child(child_settings, _log_path(settings, lib, "churn")) as child:
            await child.ask({"cmd": "start"}, settings.timeout_s)
            before = await child.ask({"cmd": "stats"}, settings.timeout_s)
            events = _world_events(emu)
            rounds: list[dict[str, Any]] = []
            want = dict(before["counts"])
            for _ in range(2):
                presences = members = 0
                for start in range(0, n, _CHURN_CHUNK):
                    for _ in range(start, min(n, start + _CHURN_CHUNK)):
                        guild = world.guilds[rng.choice(guild_ids)]
                        user_id = rng.choice(list(guild.members))
                        if user_id == world.bot.id:
                            continue
                        if rng.random() < 0.5:
                            status = rng.choice(("online", "idle", "dnd"))
                            events.presence_update(guild.id, user_id, status, [])
                            presences += 1
                        elif events.member_update(
                            guild.id, user_id, nick=f"n{rng.randrange(1000)}"
                        ):
                            members += 1
                    # Let the client catch up so the server's outbox stays small.
                    want["presence"] = before["counts"]["presence"] + presences
                    want["presence"] += sum(r["presences"] for r in rounds)
                    await _wait(child, "presence", want["presence"], _CHURN_WAIT_S)
                want["member"] = before["counts"]["member"] + members
                want["member"] += sum(r["members"] for r in rounds)
                after = await _wait(child, "member", want["member"], _CHURN_WAIT_S)
                rounds.append(
                    {"presences": presences, "members": members, "stats": after}
                )
    sent = sum(r["presences"] + r["members"] for r in rounds)
    last = rounds[-1]["stats"]
    received = (
        last["counts"]["presence"]
        - before["counts"]["presence"]
        + last["counts"]["member"]
        - before["counts"]["member"]
    )
    logger.info("churn %s rep %d: %d/%d", lib, rep, received, sent)
    return {
        "cpu_us": _delta(last, before, "cpu_s") / max(sent, 1) * 1e6,
        "sent": sent,
        "received": received,
        "rss_cached": before["rss"],
        "rss_round1": rounds[0]["stats"]["rss"],
        "rss_round2": rounds[1]["stats"]["rss"],
    }


# Reconnect storm


async def run_storm(
    lib: str,
    settings: Settings,
    *,
    drops: int,
    rate_per_s: float,
    budget_s: float,
    heartbeat_s: float = 41.25,
    rep: int,
) -> dict[str, Any]:
    """Drop the connection ``drops`` times during a steady stream of messages.

    After each drop the next one waits until the session is back (a RESUME or
    an IDENTIFY accepted) and a short while of traffic went by. The storm stops
    early once ``budget_s`` is spent (a library that backs off for long).

    Returns:
        the drops done, the median and worst time away per drop, how many of
        the stream's messages were missing and duplicated at the end, and how
        many sessions were resumed and re-identified.
    """
    world = World(dataclasses.replace(_FLOOD_WORLD, seed=11 + rep))
    channel = next(iter(world.guilds.values())).channel_ids_of_type(0)[0]
    author = [u for u in next(iter(world.guilds.values())).members][1]
    capacity = int(rate_per_s * (budget_s + 60)) + 1000
    async with Emulator(
        world, replay_buffer_size=capacity, heartbeat_interval_s=heartbeat_s
    ) as emu:
        child_settings = _child_settings(
            lib,
            emu,
            guilds=len(world.guilds),
            compress=DEFAULT_COMPRESS[lib],
            storm_size=capacity,
            timeout_s=settings.timeout_s,
        )
        async with Child(child_settings, _log_path(settings, lib, "storm")) as child:
            await child.ask({"cmd": "start"}, settings.timeout_s)
            sent = 0
            streaming = True

            async def stream() -> None:
                nonlocal sent
                events = _world_events(emu)
                tick_s = 0.01
                per_tick = max(1, round(rate_per_s * tick_s))
                while streaming and sent + per_tick < capacity:
                    for _ in range(per_tick):
                        events.message_create(channel, author, f"s:{sent}")
                        sent += 1
                    await asyncio.sleep(tick_s)

            task = asyncio.create_task(stream())
            away: list[float] = []
            started = time.monotonic()
            try:
                for _ in range(drops):
                    if time.monotonic() - started > budget_s:
                        break
                    before = emu.counters
                    back_before = before.resumes + before.identifies
                    dropped_at = time.monotonic()
                    if await emu.drop() == 0:
                        await asyncio.sleep(0.01)
                        continue
                    deadline = dropped_at + budget_s
                    while time.monotonic() < deadline:
                        now = emu.counters
                        if now.resumes + now.identifies > back_before:
                            break
                        await asyncio.sleep(0.001)
                    else:
                        break
                    away.append(time.monotonic() - dropped_at)
                    await asyncio.sleep(0.05)
            finally:
                streaming = False
                await task
            counters = emu.counters
            after = await child.ask(
                {
                    "cmd": "wait",
                    "kind": "message",
                    "n": sent,
                    "timeout_s": 20.0,
                },
                40.0,
            )
    away.sort()
    missing = int(after["storm_missing"]) - (capacity - sent)
    logger.info("storm %s rep %d: %d drops, %d missing", lib, rep, len(away), missing)
    return {
        "drops": len(away),
        "away_ms_median": away[len(away) // 2] * 1e3 if away else None,
        "away_ms_max": away[-1] * 1e3 if away else None,
        "sent": sent,
        "missing": missing,
        "duplicated": after["storm_duplicates"],
        "resumes": counters.resumes,
        "identifies": counters.identifies,
    }


# The floor


def _compressed_frames(payloads: list[bytes], compress: str | None) -> list[bytes]:
    if compress is None:
        return payloads
    if compress == "zlib-stream":
        deflate = zlib.compressobj()
        return [
            deflate.compress(p) + deflate.flush(zlib.Z_SYNC_FLUSH) for p in payloads
        ]
    zstd = zstandard.ZstdCompressor(level=3).compressobj()
    return [
        zstd.compress(p) + zstd.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        for p in payloads
    ]


def run_floor(n: int, compress: str | None, *, rep: int) -> dict[str, Any]:
    """Inflate and parse the flood's frames in a tight loop: the physical limit.

    Returns:
        ``cpu_us`` per frame for each available parser (orjson, msgspec), and
        the best of them as ``cpu_us``.
    """
    payloads = [orjson.dumps(p) for p in flood_payloads(n, seed=7 + rep)]
    frames = _compressed_frames(payloads, compress)
    parsers: dict[str, Any] = {"orjson": orjson.loads}
    try:
        import msgspec

        parsers["msgspec"] = msgspec.json.Decoder().decode
    except ImportError:
        logger.info("msgspec is not installed; the floor uses orjson only")
    result: dict[str, Any] = {
        "frame_bytes": sum(len(f) for f in frames) / n,
        "payload_bytes": sum(len(p) for p in payloads) / n,
    }
    for name, parse in parsers.items():
        started = time.process_time()
        if compress == "zlib-stream":
            inflate = zlib.decompressobj()
            for frame in frames:
                if frame.endswith(b"\x00\x00\xff\xff"):
                    parse(inflate.decompress(frame))
        elif compress == "zstd-stream":
            unzstd = zstandard.ZstdDecompressor().decompressobj()
            for frame in frames:
                parse(unzstd.decompress(frame))
        else:
            for frame in frames:
                parse(frame)
        result[f"cpu_us_{name}"] = (time.process_time() - started) / n * 1e6
    result["cpu_us"] = min(result[f"cpu_us_{name}"] for name in parsers)
    return result
