"""A minimal raw gateway client for the emulator's own tests.

It decodes zlib-stream and zstd-stream itself, so these tests do not depend on
tether's client code (and a bug there is not mirrored here).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import zstandard

from tether.emulator import Emulator

#: Starts an emulator with test defaults (the ``make_emulator`` fixture).
EmulatorFactory = Callable[..., Awaitable[Emulator]]

STEP_TIMEOUT_S = 5.0
ZLIB_SUFFIX = b"\x00\x00\xff\xff"


@dataclass(frozen=True)
class Closed:
    """The connection ended: ``code`` is None when no close frame came."""

    code: int | None


class RawGateway:
    """One websocket to the emulator, with transport decompression."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        ws: aiohttp.ClientWebSocketResponse,
        compress: str | None,
    ) -> None:
        self.http = http
        self.ws = ws
        self.compress = compress
        self._zlib = zlib.decompressobj()
        self._zlib_buffer = bytearray()
        self._zstd = zstandard.ZstdDecompressor().decompressobj()
        self.raw_sizes: list[int] = []
        self.seq: int | None = None

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        compress: str | None = None,
        v: str | None = "10",
        extra_query: str = "",
    ) -> RawGateway:
        query = []
        if v is not None:
            query.append(f"v={v}")
        query.append("encoding=json")
        if compress:
            query.append(f"compress={compress}")
        if extra_query:
            query.append(extra_query)
        http = aiohttp.ClientSession()
        try:
            async with asyncio.timeout(STEP_TIMEOUT_S):
                ws = await http.ws_connect(
                    f"{url}?{'&'.join(query)}", max_msg_size=0, autoclose=True
                )
        except BaseException:
            await http.close()
            raise
        return cls(http, ws, compress)

    async def aclose(self) -> None:
        """Close with 4000 (the session stays resumable), or give up after 1 s."""
        if not self.ws.closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self.ws.close(code=4000)
        await self.http.close()

    async def ack(self, within_s: float = STEP_TIMEOUT_S) -> None:
        """Heartbeat, then read (skipping dispatches) until the ACK comes."""
        await self.heartbeat()
        async with asyncio.timeout(within_s):
            while True:
                payload = await self.receive(within_s)
                assert not isinstance(payload, Closed), f"closed with {payload.code}"
                if payload["op"] == 11:
                    return

    def decode(self, data: bytes) -> dict[str, Any] | None:
        if self.compress == "zlib-stream":
            self._zlib_buffer.extend(data)
            if not self._zlib_buffer.endswith(ZLIB_SUFFIX):
                return None
            text = self._zlib.decompress(bytes(self._zlib_buffer))
            self._zlib_buffer.clear()
        elif self.compress == "zstd-stream":
            text = self._zstd.decompress(data)
        else:
            text = zlib.decompress(data)
        decoded: dict[str, Any] = json.loads(text)
        return decoded

    async def receive_message(
        self, within_s: float = STEP_TIMEOUT_S
    ) -> aiohttp.WSMessage:
        async with asyncio.timeout(within_s):
            return await self.ws.receive()

    async def receive(
        self, within_s: float = STEP_TIMEOUT_S
    ) -> dict[str, Any] | Closed:
        """The next payload, or Closed."""
        async with asyncio.timeout(within_s):
            while True:
                message = await self.ws.receive()
                if message.type is aiohttp.WSMsgType.TEXT:
                    self.raw_sizes.append(len(message.data))
                    payload: dict[str, Any] = json.loads(message.data)
                elif message.type is aiohttp.WSMsgType.BINARY:
                    self.raw_sizes.append(len(message.data))
                    decoded = self.decode(message.data)
                    if decoded is None:
                        continue
                    payload = decoded
                elif message.type is aiohttp.WSMsgType.CLOSE:
                    return Closed(message.data)
                elif message.type in (
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    code = self.ws.close_code
                    return Closed(None if code in (None, 1006) else code)
                else:
                    continue
                if payload.get("op") == 0 and payload.get("s") is not None:
                    self.seq = payload["s"]
                return payload

    async def expect(self, op: int, within_s: float = STEP_TIMEOUT_S) -> dict[str, Any]:
        """The next payload, which must have opcode ``op``."""
        payload = await self.receive(within_s)
        assert not isinstance(payload, Closed), (
            f"closed with {payload.code}, wanted op {op}"
        )
        assert payload["op"] == op, payload
        return payload

    async def dispatch(
        self, name: str | None = None, within_s: float = STEP_TIMEOUT_S
    ) -> dict[str, Any]:
        """The next dispatch, skipping heartbeat ACKs; it must be ``name`` if given."""
        while True:
            payload = await self.receive(within_s)
            assert not isinstance(payload, Closed), f"closed with {payload.code}"
            if payload["op"] == 11:
                continue
            assert payload["op"] == 0, payload
            if name is not None:
                assert payload["t"] == name, (payload["t"], name)
            return payload

    async def dispatch_until(
        self, name: str, within_s: float = STEP_TIMEOUT_S
    ) -> list[dict[str, Any]]:
        """Dispatches up to and including the first named ``name``."""
        seen = []
        async with asyncio.timeout(within_s):
            while True:
                payload = await self.dispatch(within_s=within_s)
                seen.append(payload)
                if payload["t"] == name:
                    return seen

    async def closed(self, within_s: float = STEP_TIMEOUT_S) -> int | None:
        """Skip payloads until the connection ends; return the close code."""
        async with asyncio.timeout(within_s):
            while True:
                payload = await self.receive(within_s)
                if isinstance(payload, Closed):
                    return payload.code

    async def send(self, payload: Any) -> None:
        await self.ws.send_str(json.dumps(payload))

    async def hello(self) -> dict[str, Any]:
        hello: dict[str, Any] = (await self.expect(10))["d"]
        return hello

    async def identify(
        self,
        token: str,
        *,
        intents: int = 0x331FFFF,
        shard: list[int] | None = None,
        **extra: Any,
    ) -> None:
        d: dict[str, Any] = {
            "token": token,
            "intents": intents,
            "properties": {"os": "linux", "browser": "test", "device": "test"},
            **extra,
        }
        if shard is not None:
            d["shard"] = shard
        await self.send({"op": 2, "d": d})

    async def resume(self, token: str, session_id: str, seq: int | None) -> None:
        await self.send(
            {"op": 6, "d": {"token": token, "session_id": session_id, "seq": seq}}
        )

    async def heartbeat(self) -> None:
        await self.send({"op": 1, "d": self.seq})


async def open_session(
    emu: Emulator,
    *,
    compress: str | None = None,
    intents: int = 0x331FFFF,
    **extra: Any,
) -> tuple[RawGateway, dict[str, Any], list[dict[str, Any]]]:
    """Connect, IDENTIFY, and read READY plus every GUILD_CREATE of the session."""
    gateway = await RawGateway.connect(emu.gateway_url, compress=compress)
    await gateway.hello()
    await gateway.identify(emu.token, intents=intents, **extra)
    ready = (await gateway.dispatch("READY"))["d"]
    creates = []
    for _ in ready["guilds"]:
        creates.append(await gateway.dispatch())
    return gateway, ready, creates
