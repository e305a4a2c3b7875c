"""IPC framing: frames out of any split of the byte stream, caps checked first."""

from __future__ import annotations

import struct

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.errors import LocalProtocolError
from tether.rpc.errors import FrameTooLargeError, MalformedFrameError
from tether.rpc.framing import FrameReader, Opcode, encode_frame


def test_a_frame_is_opcode_and_length_little_endian_then_json() -> None:
    data = encode_frame(Opcode.FRAME, {"cmd": "GET_GUILDS"})

    body = b'{"cmd":"GET_GUILDS"}'
    assert data == struct.pack("<II", 1, len(body)) + body


def test_the_documented_close_frame_decodes() -> None:
    body = b'{"code":4000,"message":"Invalid Client ID"}'
    assert len(body) == 43
    data = bytes.fromhex("02000000 2B000000") + body

    [frame] = FrameReader().feed(data)

    assert frame.op is Opcode.CLOSE
    assert frame.payload == {"code": 4000, "message": "Invalid Client ID"}


def test_frames_split_anywhere_come_out_whole_and_in_order() -> None:
    stream = b"".join(encode_frame(Opcode.FRAME, {"n": n}) for n in range(3))
    reader = FrameReader()

    frames = [f for byte in stream for f in reader.feed(bytes([byte]))]

    assert [f.payload for f in frames] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert reader.buffered == 0


def test_an_oversized_header_is_refused_before_its_body_arrives() -> None:
    reader = FrameReader(max_size=1024)

    with pytest.raises(FrameTooLargeError) as caught:
        list(reader.feed(struct.pack("<II", 1, 1025)))

    assert caught.value.size == 1025 and caught.value.limit == 1024


def test_an_unknown_opcode_means_a_corrupt_stream() -> None:
    with pytest.raises(MalformedFrameError, match="opcode 7"):
        list(FrameReader().feed(struct.pack("<II", 7, 2) + b"{}"))


def test_a_body_that_is_not_json_is_malformed() -> None:
    with pytest.raises(MalformedFrameError, match="not UTF-8 JSON"):
        list(FrameReader().feed(struct.pack("<II", 1, 3) + b"{x}"))


def test_an_empty_body_decodes_to_none() -> None:
    [frame] = FrameReader().feed(struct.pack("<II", 3, 0))

    assert frame.op is Opcode.PING and frame.payload is None


def test_encoding_over_the_cap_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError, match="over the 16-byte cap"):
        encode_frame(Opcode.FRAME, {"text": "x" * 32}, max_size=16)


payloads = st.dictionaries(
    st.text(max_size=8),
    st.one_of(st.integers(-(2**53), 2**53), st.text(max_size=20), st.none()),
    max_size=4,
)


@given(st.lists(payloads, min_size=1, max_size=6), st.data())
def test_any_split_of_a_stream_yields_the_same_frames(
    messages: list[dict[str, object]], data: st.DataObject
) -> None:
    stream = b"".join(encode_frame(Opcode.FRAME, m) for m in messages)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)), max_size=10)))
    chunks = [
        stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)
    ]
    reader = FrameReader()

    decoded = [f.payload for chunk in chunks for f in reader.feed(chunk)]

    assert decoded == [orjson.loads(orjson.dumps(m)) for m in messages]
    assert reader.buffered == 0
