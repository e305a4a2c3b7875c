"""Decoding any split of a compressed stream, and surviving any bytes at all."""

from __future__ import annotations

import zlib
from typing import Any

import orjson
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.errors import DecodeError, PayloadTooLargeError
from tether.gateway.codec import Compression, Decoder

PROPERTY = settings(max_examples=100, deadline=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)
payloads = st.dictionaries(st.sampled_from(["op", "d", "s", "t"]), json_values)


def zlib_messages(messages: list[bytes]) -> list[bytes]:
    compressor = zlib.compressobj()
    return [
        compressor.compress(m) + compressor.flush(zlib.Z_SYNC_FLUSH) for m in messages
    ]


def zstd_messages(messages: list[bytes]) -> list[bytes]:
    compressor = zstandard.ZstdCompressor().compressobj()
    flush = zstandard.COMPRESSOBJ_FLUSH_BLOCK
    return [compressor.compress(m) + compressor.flush(flush) for m in messages]


@PROPERTY
@given(st.lists(payloads, min_size=1, max_size=8), st.data())
def test_zlib_stream_decodes_any_split_of_each_message_in_order(
    sent: list[dict[str, Any]], data: st.DataObject
) -> None:
    decoder = Decoder("zlib-stream")
    received: list[dict[str, Any] | None] = []

    for compressed in zlib_messages([orjson.dumps(p) for p in sent]):
        cuts = data.draw(
            st.lists(st.integers(1, max(1, len(compressed) - 1)), max_size=4)
        )
        bounds = [0, *sorted(set(cuts)), len(compressed)]
        frames = [compressed[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
        results = [decoder.feed(frame) for frame in frames if frame]
        assert all(r is None for r in results[:-1])
        received.append(results[-1])

    assert received == sent


@PROPERTY
@given(st.lists(payloads, min_size=1, max_size=8))
def test_zstd_stream_decodes_every_message_in_order(sent: list[dict[str, Any]]) -> None:
    decoder = Decoder("zstd-stream")

    frames = zstd_messages([orjson.dumps(p) for p in sent])

    assert [decoder.feed(frame) for frame in frames] == sent


@PROPERTY
@pytest.mark.parametrize("compress", [None, "zlib-stream", "zstd-stream"])
@given(payload=payloads, cap=st.integers(1, 400))
def test_a_message_decodes_exactly_when_it_fits_the_cap(
    compress: Compression, payload: dict[str, Any], cap: int
) -> None:
    message = orjson.dumps(payload)
    decoder = Decoder(compress, max_size=cap, max_compressed_size=10**6)
    frames = {
        None: [message],
        "zlib-stream": zlib_messages([message]),
        "zstd-stream": zstd_messages([message]),
    }[compress]

    if len(message) <= cap:
        assert decoder.feed(frames[0]) == payload
    else:
        with pytest.raises(PayloadTooLargeError):
            decoder.feed(frames[0])


@PROPERTY
@pytest.mark.parametrize("compress", [None, "zlib-stream", "zstd-stream"])
@given(frames=st.lists(st.binary(max_size=64) | st.text(max_size=64), max_size=10))
def test_any_bytes_raise_only_decode_errors(
    compress: Compression, frames: list[bytes | str]
) -> None:
    decoder = Decoder(compress, max_size=1024)

    for frame in frames:
        try:
            result = decoder.feed(frame)
        except (DecodeError, PayloadTooLargeError):
            continue
        assert result is None or isinstance(result, dict)
