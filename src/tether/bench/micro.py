"""The choices the benchmarks decide: websocket library, JSON decoder, cache model.

Each function measures one choice on the flood's own frames (see
:func:`tether.bench.workloads.flood_payloads`) and returns CPU microseconds per
frame (or bytes per member) by option. Options whose package is not installed are
left out and named under ``"missing"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import logging
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import orjson
from aiohttp import WSMsgType, web

from tether.emulator.world import World, WorldConfig
from tether.events import parse_dispatch

__all__ = [
    "WEBSOCKET_LIBRARIES",
    "run_cache_models",
    "run_cache_script",
    "run_json_decoders",
    "run_websocket_libraries",
]

logger = logging.getLogger(__name__)

#: The websocket client libraries compared.
WEBSOCKET_LIBRARIES: Final[tuple[str, ...]] = ("aiohttp", "websockets", "picows")

_CLIENT_TIMEOUT_S: Final[float] = 120.0


def _has(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


# Websocket libraries


async def _serve_frames(frames: list[bytes]) -> tuple[web.AppRunner, str]:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        for frame in frames:
            await ws.send_frame(frame, WSMsgType.TEXT)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CLIENT_TIMEOUT_S):
                await ws.receive()
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"ws://127.0.0.1:{port}/"


async def _run_client(library: str, url: str, n: int) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tether.bench._wsclient",
        library,
        url,
        str(n),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(_CLIENT_TIMEOUT_S):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"{library} client failed: {err.decode()[-500:]}")
    result: dict[str, Any] = json.loads(out)
    return result


async def run_websocket_libraries(
    payloads: list[bytes], rounds: int = 5
) -> dict[str, Any]:
    """CPU per frame for each websocket client reading the same frames.

    Args:
        payloads: the uncompressed frames, sent back to back by a local server.
        rounds: runs per library, interleaved; the medians are reported.

    Returns:
        ``{library: {"cpu_us": ..., "frames_per_s": ...}}`` and ``"missing"``.
    """
    result: dict[str, Any] = {"missing": []}
    n = len(payloads)
    present = []
    for library in WEBSOCKET_LIBRARIES:
        module = "websockets.asyncio.client" if library == "websockets" else library
        if _has(module):
            present.append(library)
        else:
            result["missing"].append(library)
    cpu: dict[str, list[float]] = {library: [] for library in present}
    rate: dict[str, list[float]] = {library: [] for library in present}
    for _ in range(rounds):
        for library in present:
            runner, url = await _serve_frames(payloads)
            try:
                measured = await _run_client(library, url, n)
            finally:
                await runner.cleanup()
            cpu[library].append(measured["cpu_s"] / n * 1e6)
            if measured["wall_s"]:
                rate[library].append(n / measured["wall_s"])
    for library in present:
        result[library] = {
            "cpu_us": statistics.median(cpu[library]),
            "frames_per_s": statistics.median(rate[library]) if rate[library] else None,
        }
    return result


# JSON decoders


def _time_per_item(
    decode: Callable[[bytes], object], payloads: list[bytes], rounds: int = 3
) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for payload in payloads:
            decode(payload)
        best = min(best, time.process_time() - started)
    return best / len(payloads) * 1e6


def _typed_decoder() -> Callable[[bytes], object]:
    import msgspec

    from tether.bench._structs import Envelope

    return msgspec.json.Decoder(Envelope).decode


def run_json_decoders(payloads: list[bytes]) -> dict[str, Any]:
    """CPU per MESSAGE_CREATE for each way to decode it.

    The options: ``json`` (stdlib), ``orjson`` and ``msgspec`` to dicts,
    ``msgspec_typed`` straight into typed structs, and ``orjson_tether_models``:
    orjson then tether's typed :class:`~tether.events.MessageCreate` (what
    tether does today).
    """
    result: dict[str, Any] = {"missing": []}
    result["json"] = _time_per_item(json.loads, payloads)
    result["orjson"] = _time_per_item(orjson.loads, payloads)

    def orjson_and_models(payload: bytes) -> object:
        frame = orjson.loads(payload)
        return parse_dispatch(frame["t"], frame["d"])

    result["orjson_tether_models"] = _time_per_item(orjson_and_models, payloads)
    if _has("msgspec"):
        import msgspec

        result["msgspec"] = _time_per_item(msgspec.json.Decoder().decode, payloads)
        result["msgspec_typed"] = _time_per_item(_typed_decoder(), payloads)
    else:
        result["missing"].append("msgspec")
    return result


# Cache model


def _traced_bytes(build: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build()
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del kept
    return used


def run_cache_models(guilds: int = 50, members_per_guild: int = 200) -> dict[str, Any]:
    """Bytes per member for three ways to hold the same member payloads.

    ``dict``: the decoded JSON kept as is; ``msgspec_struct``: typed structs
    (when msgspec is installed); ``tether_model``: tether's
    :class:`~tether.models.Member` built by :func:`parse_dispatch`.
    """
    world = World(WorldConfig(guilds=guilds, members_per_guild=members_per_guild))
    frames = [
        orjson.dumps({**world.member_payload(guild, member), "guild_id": str(guild.id)})
        for guild in world.guilds.values()
        for member in guild.members.values()
    ]
    n = len(frames)
    result: dict[str, Any] = {"members": n, "missing": []}
    result["dict"] = _traced_bytes(lambda: [orjson.loads(f) for f in frames]) / n

    def tether_models() -> object:
        return [parse_dispatch("GUILD_MEMBER_UPDATE", orjson.loads(f)) for f in frames]

    result["tether_model"] = _traced_bytes(tether_models) / n
    if _has("msgspec"):
        import msgspec

        from tether.bench._structs import MemberRecord

        decoder = msgspec.json.Decoder(MemberRecord)
        result["msgspec_struct"] = (
            _traced_bytes(lambda: [decoder.decode(f) for f in frames]) / n
        )
    else:
        result["missing"].append("msgspec")
    return result


def _is_file(path: Path) -> bool:
    return path.is_file()


async def run_cache_script(script: Path, guilds: int, members: int) -> str:
    """Run ``bench/cache_memory.py`` (tether's own cache, measured) and return
    what it printed, or why it could not run."""
    if not _is_file(script):
        return f"{script} not found"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        "--guilds",
        str(guilds),
        "--members",
        str(members),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(300):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return "timed out"
    return out.decode(errors="replace").strip()
