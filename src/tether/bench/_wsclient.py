"""A bare websocket client that reads ``n`` messages and reports its CPU time.

``python -m tether.bench._wsclient <library> <url> <n>`` prints one JSON line:
``{"cpu_s": ..., "wall_s": ..., "bytes": ...}``, timed from the first message to
the last. The library is ``aiohttp``, ``websockets`` or ``picows``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import resource
import sys
import time
from typing import Any

__all__: list[str] = []


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Meter:
    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.size = 0
        self.started: tuple[float, float] | None = None
        self.done = asyncio.get_running_loop().create_future()

    def message(self, data: bytes | str) -> None:
        if self.started is None:
            self.started = (time.monotonic(), _cpu_s())
        self.count += 1
        self.size += len(data)
        if self.count == self.n and not self.done.done():
            self.done.set_result(None)

    def report(self) -> dict[str, Any]:
        assert self.started is not None
        return {
            "cpu_s": _cpu_s() - self.started[1],
            "wall_s": time.monotonic() - self.started[0],
            "bytes": self.size,
        }


async def _aiohttp(url: str, meter: _Meter) -> None:
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, max_msg_size=0, autoping=True) as ws,
    ):
        while meter.count < meter.n:
            msg = await ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"unexpected {msg.type}")
            meter.message(msg.data)


async def _websockets(url: str, meter: _Meter) -> None:
    client: Any = importlib.import_module("websockets.asyncio.client")
    async with client.connect(url, max_size=None, compression=None) as ws:
        while meter.count < meter.n:
            meter.message(await ws.recv())


async def _picows(url: str, meter: _Meter) -> None:
    picows: Any = importlib.import_module("picows")

    class Listener(picows.WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type == picows.WSMsgType.TEXT:
                meter.message(frame.get_payload_as_bytes())

    transport, _ = await picows.ws_connect(Listener, url, max_frame_size=1 << 24)
    await meter.done
    transport.disconnect()


async def _main(library: str, url: str, n: int) -> None:
    meter = _Meter(n)
    clients = {"aiohttp": _aiohttp, "websockets": _websockets, "picows": _picows}
    async with asyncio.timeout(120):
        await clients[library](url, meter)
    sys.stdout.write(json.dumps(meter.report()) + "\n")


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
