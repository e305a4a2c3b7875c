"""Gateway payload decoding and encoding: JSON, zlib-stream and zstd-stream.

A :class:`Decoder` turns the websocket messages of one connection into payloads.
With transport compression the whole connection is one compressed stream, so a
decoder is stateful and belongs to exactly one connection: make a new one for
every connection, resumes included.

Every message is capped at ``max_size`` bytes once decompressed, and the cap is
enforced while inflating: a decompression bomb is stopped after at most a few
megabytes past the cap, never inflated in full. The compressed bytes of one
message are capped too.

After a :class:`~tether.errors.PayloadTooLargeError`, or a
:class:`~tether.errors.DecodeError` raised on corrupt compressed data, the
stream cannot be trusted and :attr:`Decoder.is_broken` is true: close the
connection and resume on a new one. A :class:`~tether.errors.DecodeError` for
malformed JSON in an intact stream leaves the decoder usable, so the message can
be logged and skipped.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any, Final, Literal, TypeAlias

import orjson
import zstandard

from tether.errors import DecodeError, PayloadTooLargeError

__all__ = [
    "DEFAULT_MAX_SIZE",
    "ZLIB_SUFFIX",
    "Compression",
    "Decoder",
    "encode",
]

#: The transport compressions the gateway offers (``None``: none).
Compression: TypeAlias = Literal["zlib-stream", "zstd-stream"] | None

#: Default cap on one decompressed message: 16 MiB.
DEFAULT_MAX_SIZE: Final[int] = 16 * 1024 * 1024

#: The Z_SYNC_FLUSH marker that ends every message of a zlib-stream.
ZLIB_SUFFIX: Final[bytes] = b"\x00\x00\xff\xff"

# zstd blocks hold at most 128 KiB of output and take at least 4 bytes of input
# (an RLE block), so feeding n bytes yields at most (n // 4 + 2) blocks. Input
# is fed in slices sized from the remaining budget to keep each step bounded.
_ZSTD_BLOCK: Final[int] = 128 * 1024
_ZSTD_MIN_SLICE: Final[int] = 64
_ZSTD_MAX_SLICE: Final[int] = 64 * 1024


class Decoder:
    """Decode the websocket messages of one gateway connection into payloads.

    Args:
        compress: the ``compress`` query parameter the connection was opened
            with, or None for plain JSON.
        max_size: the cap on one message once decompressed, in bytes.
        max_compressed_size: the cap on the compressed bytes of one message
            (zlib-stream messages may span several websocket messages);
            defaults to ``max_size``.

    Raises:
        ValueError: an unknown ``compress`` value or a cap below 1.
    """

    __slots__ = (
        "_compressed",
        "_inflater",
        "_is_broken",
        "_parts",
        "_size",
        "_tail",
        "_zstd",
        "compress",
        "max_compressed_size",
        "max_size",
    )

    def __init__(
        self,
        compress: Compression,
        max_size: int = DEFAULT_MAX_SIZE,
        *,
        max_compressed_size: int | None = None,
    ) -> None:
        if compress not in (None, "zlib-stream", "zstd-stream"):
            raise ValueError(f"unknown transport compression {compress!r}")
        if max_compressed_size is None:
            max_compressed_size = max_size
        if max_size < 1 or max_compressed_size < 1:
            raise ValueError("size caps must be at least 1 byte")

        #: The transport compression of the stream.
        self.compress: Compression = compress
        #: Cap on one decompressed message, in bytes.
        self.max_size = max_size
        #: Cap on the compressed bytes of one message.
        self.max_compressed_size = max_compressed_size
        # The one inflate context of a zlib-stream connection.
        self._inflater = zlib.decompressobj() if compress == "zlib-stream" else None
        # The one decompression context of a zstd-stream connection.
        self._zstd = (
            zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
            if compress == "zstd-stream"
            else None
        )
        # zlib-stream: decompressed pieces of the message in progress, their
        # total size, its compressed size and its last compressed bytes (the
        # end marker may be split across websocket messages).
        self._parts: list[bytes] = []
        self._size = 0
        self._compressed = 0
        self._tail = b""
        # Set once the stream is past repair.
        self._is_broken = False

    @property
    def is_broken(self) -> bool:
        """Whether the stream is corrupt or was cut: the connection must end."""
        return self._is_broken

    def feed(self, data: bytes | str) -> dict[str, Any] | None:
        """Decode one websocket message.

        Text messages are always plain JSON. Binary messages are decompressed
        according to :attr:`compress`.

        Args:
            data: the message, as received.

        Returns:
            The payload, or None when a zlib-stream message continues in the
            next websocket message.

        Raises:
            DecodeError: the data is not a JSON object, or the compressed
                stream is corrupt (then :attr:`is_broken` is true).
            PayloadTooLargeError: the message is over a size cap
                (:attr:`is_broken` is then true).
        """
        if self._is_broken:
            raise DecodeError(
                "the compressed stream of this connection is broken; reconnect"
            )
        if isinstance(data, str):
            return self._parse(self._check_text(data))
        if self._inflater is not None:
            return self._feed_zlib(data)
        if self._zstd is not None:
            return self._parse(self._inflate_zstd(data))
        self._check_size(len(data))
        return self._parse(data)

    # zlib-stream

    def _feed_zlib(self, data: bytes) -> dict[str, Any] | None:
        assert self._inflater is not None

        self._compressed += len(data)
        if self._compressed > self.max_compressed_size:
            self._break()
            raise PayloadTooLargeError(self._compressed, self.max_compressed_size)

        # Inflate as data arrives, never past the cap (+1 byte to detect it).
        budget = self.max_size - self._size
        try:
            chunk = self._inflater.decompress(data, budget + 1)
        except zlib.error as exc:
            self._break()
            raise DecodeError(f"corrupt zlib-stream data: {exc}") from exc
        self._size += len(chunk)
        if self._size > self.max_size or self._inflater.unconsumed_tail:
            self._break()
            # Input left over means the message inflates past the cap.
            raise PayloadTooLargeError(
                max(self._size, self.max_size + 1), self.max_size
            )
        if chunk:
            self._parts.append(chunk)

        if self._inflater.unused_data:
            self._break()
            raise DecodeError("data after the end of the zlib-stream")

        self._tail = (self._tail + data[-len(ZLIB_SUFFIX) :])[-len(ZLIB_SUFFIX) :]
        if self._tail != ZLIB_SUFFIX:
            return None

        message = b"".join(self._parts)
        self._parts.clear()
        self._size = 0
        self._compressed = 0
        self._tail = b""
        return self._parse(message)

    # zstd-stream

    def _inflate_zstd(self, data: bytes) -> bytes:
        assert self._zstd is not None

        if len(data) > self.max_compressed_size:
            self._break()
            raise PayloadTooLargeError(len(data), self.max_compressed_size)

        parts: list[bytes] = []
        size = 0
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            blocks = (self.max_size - size) // _ZSTD_BLOCK
            step = min(max(4 * blocks, _ZSTD_MIN_SLICE), _ZSTD_MAX_SLICE)
            try:
                chunk = self._zstd.decompress(view[pos : pos + step])
            except zstandard.ZstdError as exc:
                self._break()
                raise DecodeError(f"corrupt zstd-stream data: {exc}") from exc
            pos += step
            size += len(chunk)
            if size > self.max_size:
                self._break()
                raise PayloadTooLargeError(size, self.max_size)
            if chunk:
                parts.append(chunk)
        return b"".join(parts)

    # Helpers

    def _check_text(self, data: str) -> str:
        # A character is 1 to 4 bytes in UTF-8: only encode when that matters.
        if len(data) > self.max_size:
            self._check_size(len(data))
        elif len(data) * 4 > self.max_size:
            self._check_size(len(data.encode("utf-8", "surrogatepass")))
        return data

    def _check_size(self, size: int) -> None:
        if size > self.max_size:
            self._break()
            raise PayloadTooLargeError(size, self.max_size)

    def _break(self) -> None:
        self._is_broken = True
        self._parts.clear()
        self._size = 0

    @staticmethod
    def _parse(message: bytes | str) -> dict[str, Any]:
        try:
            payload = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"a received message is not valid JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise DecodeError(
                f"a received message is JSON {type(payload).__name__}, not an object"
            )
        return payload

    def __repr__(self) -> str:
        return (
            f"Decoder(compress={self.compress!r}, max_size={self.max_size}, "
            f"is_broken={self._is_broken})"
        )


def _to_json(value: object) -> object:
    """orjson fallback: serialise mappings that are not plain dicts."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode(payload: Mapping[str, Any]) -> str:
    """Encode a payload to send as compact JSON text.

    Args:
        payload: the envelope, ``{"op": ..., "d": ...}``.

    Raises:
        TypeError: the payload holds a value JSON cannot represent.
    """
    try:
        return orjson.dumps(payload, default=_to_json).decode()
    except orjson.JSONEncodeError as exc:
        raise TypeError(f"cannot encode a gateway payload: {exc}") from exc
