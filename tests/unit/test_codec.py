"""Decoding gateway messages: plain JSON, zlib-stream, zstd-stream and size caps."""

from __future__ import annotations

import contextlib
import tracemalloc
import zlib
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import orjson
import pytest
import zstandard

from tether.errors import DecodeError, PayloadTooLargeError
from tether.gateway.codec import Compression, Decoder, encode

MiB = 1024 * 1024

Compressor = Callable[[bytes], bytes]


def zlib_stream() -> Compressor:
    """Compress messages the way the gateway does: one stream, sync-flushed."""
    compressor = zlib.compressobj()

    def compress(data: bytes) -> bytes:
        return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)

    return compress


def zstd_stream() -> Compressor:
    """One zstd frame per connection, block-flushed after each message."""
    compressor = zstandard.ZstdCompressor().compressobj()

    def compress(data: bytes) -> bytes:
        head = compressor.compress(data)
        return head + compressor.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    return compress


STREAMS: dict[Compression, Callable[[], Compressor]] = {
    "zlib-stream": zlib_stream,
    "zstd-stream": zstd_stream,
}


def big_payload(n: int) -> dict[str, Any]:
    """A GUILD_CREATE-like payload; large enough to span many zstd blocks."""
    members = [{"id": str(i * 7919 % 1000003), "nick": f"m{i * i:x}"} for i in range(n)]
    return {"op": 0, "t": "GUILD_CREATE", "s": 2, "d": {"members": members}}


def bomb(compress: Compressor, size: int) -> bytes:
    """A valid JSON message of `size` bytes, mostly zeros, compressed in pieces."""
    parts = [compress(b'{"op":0,"d":"')]
    parts += [compress(b"0" * MiB) for _ in range(size // MiB)]
    parts.append(compress(b'"}'))
    return b"".join(parts)


def peak_memory(action: Callable[[], object]) -> int:
    """Run `action` and return the peak of Python allocations meanwhile."""
    tracemalloc.start()
    with contextlib.suppress(PayloadTooLargeError):
        action()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


# Plain JSON


def test_plain_text_and_binary_messages_decode_to_payloads() -> None:
    decoder = Decoder(None)

    assert decoder.feed('{"op":11,"d":null}') == {"op": 11, "d": None}
    assert decoder.feed(b'{"op":0,"t":"X","s":1,"d":{"id":"1"}}') == {
        "op": 0,
        "t": "X",
        "s": 1,
        "d": {"id": "1"},
    }


@pytest.mark.parametrize("message", ["{not json", "[1, 2]", "42", "", b"\xff\xfe"])
def test_malformed_or_non_object_json_is_a_decode_error(message: str | bytes) -> None:
    decoder = Decoder(None)

    with pytest.raises(DecodeError):
        decoder.feed(message)
    assert not decoder.is_broken
    assert decoder.feed('{"op":11}') == {"op": 11}


def test_plain_messages_over_the_cap_are_refused() -> None:
    decoder = Decoder(None, max_size=100)

    with pytest.raises(PayloadTooLargeError) as caught:
        decoder.feed(b'{"d":"' + b"x" * 100 + b'"}')

    assert caught.value.limit == 100
    assert decoder.is_broken


def test_text_size_is_counted_in_utf8_bytes() -> None:
    text = '{"d":"' + "é" * 50 + '"}'  # 58 characters, 108 bytes

    assert Decoder(None, max_size=108).feed(text) == {"d": "é" * 50}
    with pytest.raises(PayloadTooLargeError):
        Decoder(None, max_size=107).feed(text)


def test_unknown_compression_is_refused() -> None:
    with pytest.raises(ValueError, match="gzip"):
        Decoder("gzip")  # type: ignore[arg-type]  # the check under test


# zlib-stream


def test_zlib_stream_decodes_many_messages_with_one_inflater() -> None:
    compress = zlib_stream()
    decoder = Decoder("zlib-stream")
    payloads = [{"op": 0, "s": n, "t": "X", "d": {"n": n}} for n in range(20)]

    decoded = [decoder.feed(compress(orjson.dumps(p))) for p in payloads]

    assert decoded == payloads


def test_zlib_stream_message_may_span_frames_even_inside_the_marker() -> None:
    compress = zlib_stream()
    decoder = Decoder("zlib-stream")
    data = compress(orjson.dumps(big_payload(300)))

    cuts = [0, 100, len(data) // 2, len(data) - 2, len(data)]
    pieces = [data[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    results = [decoder.feed(piece) for piece in pieces]

    assert results[:-1] == [None, None, None]
    assert results[-1] == big_payload(300)


def test_zlib_stream_text_frames_are_plain_json() -> None:
    assert Decoder("zlib-stream").feed('{"op":7}') == {"op": 7}


def test_zlib_bomb_is_stopped_without_inflating_it() -> None:
    data = bomb(zlib_stream(), 64 * MiB)
    decoder = Decoder("zlib-stream", max_size=MiB)

    peak = peak_memory(lambda: decoder.feed(data))

    assert peak < 4 * MiB
    assert decoder.is_broken
    with pytest.raises(DecodeError, match="broken"):
        decoder.feed(zlib_stream()(b"{}"))


def test_zlib_message_exactly_at_the_cap_is_accepted() -> None:
    message = b'{"d":"' + b"x" * 92 + b'"}'  # 100 bytes
    compress = zlib_stream()
    decoder = Decoder("zlib-stream", max_size=100)

    assert decoder.feed(compress(message)) == {"d": "x" * 92}
    with pytest.raises(PayloadTooLargeError):
        decoder.feed(compress(message + b" "))


def test_zlib_compressed_bytes_of_one_message_are_capped() -> None:
    decoder = Decoder("zlib-stream", max_size=MiB, max_compressed_size=1000)
    compressor = zlib.compressobj()
    decoder.feed(
        compressor.compress(b'{"op":0,"d":"') + compressor.flush(zlib.Z_FULL_FLUSH)[:-4]
    )

    with pytest.raises(PayloadTooLargeError):
        decoder.feed(b"\x00" * 1000)
    assert decoder.is_broken


def test_corrupt_zlib_data_breaks_the_stream() -> None:
    decoder = Decoder("zlib-stream")

    with pytest.raises(DecodeError, match="zlib"):
        decoder.feed(b"this is not zlib\x00\x00\xff\xff")
    assert decoder.is_broken


def test_malformed_json_in_an_intact_zlib_stream_is_survived() -> None:
    compress = zlib_stream()
    decoder = Decoder("zlib-stream")

    with pytest.raises(DecodeError, match="JSON"):
        decoder.feed(compress(b"{oops"))

    assert not decoder.is_broken
    assert decoder.feed(compress(b'{"op":11}')) == {"op": 11}


# zstd-stream


def test_zstd_stream_decodes_many_messages_with_one_context() -> None:
    compress = zstd_stream()
    decoder = Decoder("zstd-stream")
    payloads = [{"op": 0, "s": n, "t": "X", "d": {"n": n}} for n in range(20)]

    decoded = [decoder.feed(compress(orjson.dumps(p))) for p in payloads]

    assert decoded == payloads


def test_zstd_stream_drains_all_output_of_messages_over_one_block() -> None:
    compress = zstd_stream()
    decoder = Decoder("zstd-stream")
    payloads = [big_payload(n) for n in (20000, 3, 9000)]

    decoded = [decoder.feed(compress(orjson.dumps(p))) for p in payloads]

    assert len(orjson.dumps(payloads[0])) > 4 * 128 * 1024
    assert decoded == payloads


def test_zstd_bomb_is_stopped_without_inflating_it() -> None:
    data = bomb(zstd_stream(), 256 * MiB)
    decoder = Decoder("zstd-stream", max_size=MiB)

    peak = peak_memory(lambda: decoder.feed(data))

    assert peak < 8 * MiB
    assert decoder.is_broken


def test_corrupt_zstd_data_breaks_the_stream() -> None:
    decoder = Decoder("zstd-stream")

    with pytest.raises(DecodeError, match="zstd"):
        decoder.feed(b"\x00" * 64)
    assert decoder.is_broken


@pytest.mark.parametrize("compress", list(STREAMS))
def test_every_compression_enforces_the_same_cap(compress: Compression) -> None:
    message = orjson.dumps(big_payload(2000))
    stream = STREAMS[compress]()

    with pytest.raises(PayloadTooLargeError) as caught:
        Decoder(compress, max_size=len(message) - 1).feed(stream(message))

    assert caught.value.limit == len(message) - 1
    assert Decoder(compress, max_size=len(message)).feed(STREAMS[compress]()(message))


# encode


def test_encode_returns_compact_json_text() -> None:
    text = encode({"op": 1, "d": None})

    assert text == '{"op":1,"d":null}'
    assert isinstance(text, str)


def test_encode_accepts_any_mapping() -> None:
    payload = MappingProxyType({"op": 3, "d": MappingProxyType({"status": "idle"})})

    assert encode(payload) == '{"op":3,"d":{"status":"idle"}}'


def test_encode_refuses_values_json_cannot_hold() -> None:
    with pytest.raises(TypeError):
        encode({"op": 3, "d": object()})
