"""Server-side transport and payload compression, one compressor per connection.

Each method returns ``(message, binary)``: the bytes of one websocket message and
whether it goes out as a binary frame (text frames carry UTF-8 JSON).
"""

from __future__ import annotations

import zlib
from typing import Final

import zstandard

__all__ = ["COMPRESSIONS", "Compressor", "make_compressor"]

#: Transport compressions a client may ask for in the gateway URL.
COMPRESSIONS: Final[frozenset[str]] = frozenset({"zlib-stream", "zstd-stream"})

#: Payload compression (IDENTIFY ``compress: true``) applies to messages this big.
PAYLOAD_COMPRESSION_MIN: Final[int] = 1024

_SYNC_FLUSH_MARKER: Final[bytes] = b"\x00\x00\xff\xff"


def _text_prefix(data: bytes) -> bytes:
    """The first half of a UTF-8 text, cut on a character boundary."""
    half = data[: max(1, len(data) // 2)]
    return half.decode("utf-8", errors="ignore").encode()


class Compressor:
    """No compression: text frames as they are.

    Subclasses keep a stream context that lives exactly as long as the connection.
    """

    def encode(self, data: bytes) -> tuple[bytes, bool]:
        """Return the websocket message for one encoded payload."""
        return data, False

    def garbage(self) -> tuple[bytes, bool]:
        """Return a message the client cannot decode."""
        return b'{"op": 0, "t": "MESSAGE_CREATE", "d": {"id": "1", !!', False

    def truncated(self, data: bytes) -> tuple[bytes, bool]:
        """Return the first half of ``data``'s message."""
        return _text_prefix(data), False


class PayloadCompressor(Compressor):
    """IDENTIFY ``compress: true``: big messages become standalone zlib streams."""

    def encode(self, data: bytes) -> tuple[bytes, bool]:
        if len(data) < PAYLOAD_COMPRESSION_MIN:
            return data, False
        return zlib.compress(data), True

    def garbage(self) -> tuple[bytes, bool]:
        return b"\x78\x9c\xff\xfe\xfd\xfc\xfb\xfa", True

    def truncated(self, data: bytes) -> tuple[bytes, bool]:
        whole = zlib.compress(data)
        return whole[: len(whole) // 2], True


class ZlibStreamCompressor(Compressor):
    """zlib-stream: one deflate stream per connection, each message sync-flushed."""

    def __init__(self) -> None:
        self._context = zlib.compressobj()

    def encode(self, data: bytes) -> tuple[bytes, bool]:
        return self._context.compress(data) + self._context.flush(
            zlib.Z_SYNC_FLUSH
        ), True

    def garbage(self) -> tuple[bytes, bool]:
        # Invalid deflate data that still ends with the marker, so the client
        # tries to inflate it.
        return b"\xff\xfe\xfd\xfc\xfb\xfa" + _SYNC_FLUSH_MARKER, True

    def truncated(self, data: bytes) -> tuple[bytes, bool]:
        # Half of the message's deflate output, then the marker: the client gets
        # a cut payload and its inflate context no longer matches ours.
        whole, _ = self.encode(data)
        return whole[: len(whole) // 2] + _SYNC_FLUSH_MARKER, True


class ZstdStreamCompressor(Compressor):
    """zstd-stream: one zstd frame per connection, never ended, block-flushed."""

    def __init__(self) -> None:
        self._context = zstandard.ZstdCompressor(level=3).compressobj()

    def encode(self, data: bytes) -> tuple[bytes, bool]:
        out: bytes = self._context.compress(data)
        return out + self._context.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK), True

    def garbage(self) -> tuple[bytes, bool]:
        return b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", True

    def truncated(self, data: bytes) -> tuple[bytes, bool]:
        whole, _ = self.encode(data)
        return whole[: len(whole) // 2], True


def make_compressor(transport: str | None, *, payload: bool = False) -> Compressor:
    """Return a fresh compressor for a connection.

    Args:
        transport: ``"zlib-stream"``, ``"zstd-stream"`` or ``None``.
        payload: IDENTIFY asked for payload compression (ignored with transport
            compression, as on Discord).
    """
    if transport == "zlib-stream":
        return ZlibStreamCompressor()
    if transport == "zstd-stream":
        return ZstdStreamCompressor()
    if payload:
        return PayloadCompressor()
    return Compressor()
