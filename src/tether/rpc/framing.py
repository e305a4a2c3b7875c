"""IPC framing: opcodes, frame encoding, and a bounded incremental frame reader.

A frame on Discord's IPC socket (or named pipe) is an 8-byte header, the opcode and
the body length as two little-endian ``u32``, followed by the body: UTF-8 JSON.
The reader checks the announced length against a cap *before* buffering the body,
so a hostile or broken peer cannot make it allocate without bound.

No I/O here: bytes in, frames out.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import orjson

from tether.errors import LocalProtocolError
from tether.rpc.errors import FrameTooLargeError, MalformedFrameError

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "HEADER_SIZE",
    "Frame",
    "FrameReader",
    "Opcode",
    "encode_frame",
]

#: Largest frame body accepted or sent by default; the official C library's cap.
DEFAULT_MAX_FRAME_SIZE: Final = 64 * 1024

_HEADER: Final = struct.Struct("<II")
#: Size of a frame header: opcode and body length.
HEADER_SIZE: Final = _HEADER.size


class Opcode(enum.IntEnum):
    """IPC opcodes, as Discord names them."""

    HANDSHAKE = 0
    FRAME = 1
    CLOSE = 2
    PING = 3
    PONG = 4


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded IPC frame.

    Attributes:
        op: the opcode.
        payload: the decoded JSON body (``None`` for an empty body).
        size: the body's size in bytes.
    """

    op: Opcode
    payload: Any
    size: int


def encode_frame(
    op: Opcode, payload: Any, *, max_size: int = DEFAULT_MAX_FRAME_SIZE
) -> bytes:
    """Return the bytes of one frame carrying ``payload`` as JSON.

    Raises:
        LocalProtocolError: the body would be larger than ``max_size``.
    """
    body = orjson.dumps(payload)
    if len(body) > max_size:
        raise LocalProtocolError(
            f"a {op.name} frame of {len(body)} bytes is over the {max_size}-byte cap"
        )
    return _HEADER.pack(op, len(body)) + body


class FrameReader:
    """Turns a byte stream into frames, never buffering more than one capped frame.

    Args:
        max_size: the largest body accepted.
    """

    def __init__(self, max_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if max_size < 1:
            raise ValueError("max_size must be positive")
        self.max_size = max_size
        # Bytes received and not yet consumed as frames.
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held now."""
        return len(self._buffer)

    def feed(self, data: bytes) -> Iterator[Frame]:
        """Add received bytes; yield every frame they complete, in order.

        Raises:
            FrameTooLargeError: a header announces a body over the cap.
            MalformedFrameError: an unknown opcode, or a body that is not JSON.
        """
        self._buffer += data
        while len(self._buffer) >= HEADER_SIZE:
            op, size = _HEADER.unpack_from(self._buffer)
            # An unknown opcode means the stream is out of step (IPC has five), so
            # nothing after it can be trusted either.
            try:
                opcode = Opcode(op)
            except ValueError:
                raise MalformedFrameError(
                    f"received unknown IPC opcode {op}; the stream is corrupt"
                ) from None
            if size > self.max_size:
                raise FrameTooLargeError(size, self.max_size)
            end = HEADER_SIZE + size
            if len(self._buffer) < end:
                return
            body = bytes(self._buffer[HEADER_SIZE:end])
            del self._buffer[:end]
            yield Frame(opcode, _decode(opcode, body), size)


def _decode(op: Opcode, body: bytes) -> Any:
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedFrameError(
            f"received a {op.name} frame whose body is not UTF-8 JSON ({exc})"
        ) from exc
