"""``python -m tether.bench``: every workload, every library, written to a report.

The plan (sizes, counts, repetitions) is picked by name: ``default`` fits in
about 15 minutes on two cores, ``full`` adds the large shard (2,500 guilds,
250,000 members), ``smoke`` is the tiny run the test suite uses.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import platform
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson

from tether.bench import micro, report, workloads
from tether.bench.workloads import DEFAULT_COMPRESS, LIBRARIES, Settings
from tether.emulator.world import World, WorldConfig

__all__ = ["PLANS", "Plan", "main", "run"]

logger = logging.getLogger(__name__)

#: The workloads, in the order they run.
WORKLOADS: Final[tuple[str, ...]] = (
    "floor",
    "micro",
    "startup",
    "flood",
    "churn",
    "storm",
    "profile",
)

# Another author's script that measures tether's own cache; present in a checkout.
_CACHE_SCRIPT: Final[Path] = (
    Path(__file__).resolve().parents[3] / "bench" / "cache_memory.py"
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """Sizes and counts of one run.

    Attributes:
        reps: repetitions of every cell.
        startup_sizes: ``(guilds, members_per_guild)`` worlds for startup; an
            empty world is always measured too, for bytes per member.
        flood_n: MESSAGE_CREATEs per flood run (and frames for the floor and
            the micro benchmarks).
        flood_modes: ``(compress, io_thread)`` modes tether is flooded with; the
            peers run their only mode.
        churn_world: ``(guilds, members_per_guild)`` of the churn world.
        churn_n: updates per churn round (two rounds).
        storm_drops: drops per storm.
        storm_rate_per_s: messages per second during the storm.
        storm_budget_s: a storm ends after this long even if drops remain.
        storm_heartbeat_s: the emulator's heartbeat interval during the storm.
        cache_script: ``(guilds, members)`` for ``bench/cache_memory.py``, or
            ``None`` to skip it.
        timeout_s: the bound on any one wait for a child.
    """

    reps: int = 3
    startup_sizes: tuple[tuple[int, int], ...] = ((10, 100), (500, 100), (2500, 40))
    flood_n: int = 20_000
    flood_modes: tuple[tuple[str | None, bool], ...] = (
        (None, True),
        ("zlib-stream", True),
        ("zstd-stream", True),
        ("zlib-stream", False),
    )
    churn_world: tuple[int, int] = (200, 100)
    churn_n: int = 10_000
    storm_drops: int = 100
    storm_rate_per_s: float = 200.0
    storm_budget_s: float = 90.0
    storm_heartbeat_s: float = 41.25
    cache_script: tuple[int, int] | None = (100, 20_000)
    timeout_s: float = 300.0


#: The plans by name.
PLANS: Final[dict[str, Plan]] = {
    "default": Plan(),
    "full": Plan(
        startup_sizes=((10, 100), (500, 100), (2500, 40), (2500, 100)),
        flood_n=50_000,
        churn_n=25_000,
        storm_budget_s=180.0,
        cache_script=(500, 100_000),
    ),
    "smoke": Plan(
        reps=1,
        startup_sizes=((3, 20),),
        flood_n=300,
        flood_modes=((None, True), ("zlib-stream", True)),
        churn_world=(4, 30),
        churn_n=200,
        storm_drops=2,
        storm_rate_per_s=100.0,
        storm_budget_s=10.0,
        storm_heartbeat_s=5.0,
        cache_script=None,
        timeout_s=30.0,
    ),
}


def _machine() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions: dict[str, str] = {}
    for name in ("aiohttp", "orjson", "discord.py", "hikari", "msgspec"):
        with_version = _version(name)
        if with_version is not None:
            versions[name] = with_version
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
    }


def _version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


async def _cells(
    records: list[dict[str, Any]],
    workload: str,
    keys: dict[str, Any],
    reps: int,
    measure: Callable[[int], Awaitable[dict[str, Any]]],
) -> None:
    for rep in range(reps):
        started = time.monotonic()
        try:
            values = await measure(rep)
        except Exception as exc:
            logger.error("%s %s rep %d failed: %s", workload, keys, rep, exc)
            values = {"error": f"{type(exc).__name__}: {exc}"}
        record = {"workload": workload, **keys, "rep": rep, **values}
        record["wall_s"] = time.monotonic() - started
        records.append(record)


async def run(
    plan: Plan,
    out: Path,
    *,
    libraries: Sequence[str] = LIBRARIES,
    only: Sequence[str] = WORKLOADS,
) -> Path:
    """Run the plan and write the report into a new folder under ``out``.

    Returns:
        the folder written (``results.json``, ``report.md``, plots).
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = out / stamp
    folder.mkdir(parents=True, exist_ok=True)
    settings = Settings(logs=folder / "logs", timeout_s=plan.timeout_s)
    records: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    started = time.monotonic()

    if "floor" in only:
        for compress in (None, "zlib-stream", "zstd-stream"):
            for rep in range(plan.reps):
                values = workloads.run_floor(plan.flood_n, compress, rep=rep)
                records.append(
                    {"workload": "floor", "compress": compress, "rep": rep, **values}
                )

    if "micro" in only:
        payloads = [orjson.dumps(p) for p in workloads.flood_payloads(plan.flood_n)]
        extra["websocket"] = await micro.run_websocket_libraries(payloads)
        extra["json"] = micro.run_json_decoders(payloads)
        extra["cache_models"] = micro.run_cache_models()
        if plan.cache_script is not None:
            extra["cache_script"] = await micro.run_cache_script(
                _CACHE_SCRIPT, *plan.cache_script
            )

    if "startup" in only:
        sizes = [(0, 1), *plan.startup_sizes]
        for guilds, members in sizes:
            world = World(WorldConfig(guilds=guilds, members_per_guild=members, seed=1))
            for lib in libraries:
                keys = {"lib": lib, "guilds": guilds, "members": guilds * members}

                async def startup(rep: int, lib: str = lib, w: World = world) -> Any:
                    return await workloads.run_startup(lib, w, settings, rep=rep)

                await _cells(records, "startup", keys, plan.reps, startup)

    if "flood" in only:
        modes = [(lib, DEFAULT_COMPRESS[lib], True) for lib in libraries]
        if "tether" in libraries:
            modes = [m for m in modes if m[0] != "tether"]
            modes += [("tether", c, io) for c, io in plan.flood_modes]
        for lib, compress, io_thread in modes:
            keys = {"lib": lib, "compress": compress, "io_thread": io_thread}

            async def flood(
                rep: int, lib: str = lib, c: str | None = compress, io: bool = io_thread
            ) -> Any:
                return await workloads.run_flood(
                    lib, settings, n=plan.flood_n, compress=c, io_thread=io, rep=rep
                )

            await _cells(records, "flood", keys, plan.reps, flood)

    if "churn" in only:
        guilds, members = plan.churn_world
        for lib in libraries:

            async def churn(rep: int, lib: str = lib) -> Any:
                world = World(
                    WorldConfig(guilds=guilds, members_per_guild=members, seed=rep)
                )
                return await workloads.run_churn(
                    lib, world, settings, n=plan.churn_n, rep=rep
                )

            await _cells(records, "churn", {"lib": lib}, plan.reps, churn)

    if "storm" in only:
        for lib in libraries:

            async def storm(rep: int, lib: str = lib) -> Any:
                return await workloads.run_storm(
                    lib,
                    settings,
                    drops=plan.storm_drops,
                    rate_per_s=plan.storm_rate_per_s,
                    budget_s=plan.storm_budget_s,
                    heartbeat_s=plan.storm_heartbeat_s,
                    rep=rep,
                )

            await _cells(records, "storm", {"lib": lib}, plan.reps, storm)

    if "profile" in only and "tether" in libraries:
        path = folder / "flood-tether.prof"
        await workloads.run_flood(
            "tether",
            settings,
            n=plan.flood_n,
            compress="zlib-stream",
            io_thread=False,
            profile=path,
            rep=0,
        )
        extra["profile"] = workloads.read_profile(path, plan.flood_n)

    results = {
        "started": stamp,
        "duration_s": time.monotonic() - started,
        "machine": _machine(),
        "plan": dataclasses.asdict(plan),
        "libraries": list(libraries),
        "records": records,
        **extra,
    }
    (folder / "results.json").write_bytes(
        orjson.dumps(results, option=orjson.OPT_INDENT_2)
    )
    report.write(results, folder)
    return folder


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run, and print where the report went."""
    parser = argparse.ArgumentParser(
        prog="python -m tether.bench",
        description="tether against discord.py and hikari on the local emulator",
    )
    parser.add_argument("--plan", choices=sorted(PLANS), default="default")
    parser.add_argument(
        "--full", action="store_true", help="the full plan (a 250,000-member shard)"
    )
    parser.add_argument("--reps", type=int, help="repetitions per cell")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench/results"),
        help="where run folders go (default bench/results)",
    )
    parser.add_argument("--libs", nargs="+", choices=LIBRARIES, default=LIBRARIES)
    parser.add_argument("--only", nargs="+", choices=WORKLOADS, default=WORKLOADS)
    parser.add_argument(
        "--rewrite",
        type=Path,
        metavar="FOLDER",
        help="only rewrite the report and plots of a run folder from its JSON",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.rewrite is not None:
        folder = args.rewrite
        report.write(orjson.loads((folder / "results.json").read_bytes()), folder)
        print(f"report: {folder / 'report.md'}")
        return 0

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("tether.bench").setLevel(logging.INFO)
    plan = PLANS["full" if args.full else args.plan]
    if args.reps is not None:
        plan = dataclasses.replace(plan, reps=args.reps)
    out: Path = args.out
    if not out.parent.exists():
        out = Path(tempfile.gettempdir()) / "tether-bench"
    folder = asyncio.run(run(plan, out, libraries=args.libs, only=args.only))
    print(f"report: {folder / 'report.md'}")
    return 0
