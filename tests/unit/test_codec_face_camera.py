"""The face-module frames and messages: exact bytes, round trips, and damage named."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from branchline.drivers.face_camera.capture import (
    Capture,
    Liveness,
    ModuleStatus,
    Quality,
    decode_capture,
    decode_capture_request,
    decode_status,
    decode_texts,
    encode_capture,
    encode_capture_request,
    encode_status,
    encode_texts,
)
from branchline.drivers.face_camera.frames import (
    MAX_PAYLOAD,
    Frame,
    FrameDecoder,
    Malformed,
    encode_frame,
)

JPEG = b"\xff\xd8\xff\xe0" + b"jpeg body" + b"\xff\xd9"


def test_status_request_bytes_match_the_documented_example() -> None:
    # docs/protocols/face-camera.md: STATUS request, SEQ 1.
    # The CRC was worked out bit by bit (reflected polynomial 0xEDB88320), apart from zlib.
    assert encode_frame(1, 0x01).hex(" ") == "fa ce 00 00 00 02 01 01 dc 5a 74 1a"
    # CRC-32/ISO-HDLC's published check value: the frames use that CRC.
    assert zlib.crc32(b"123456789") == 0xCBF43926


def test_frames_round_trip_across_split_feeds_and_noise() -> None:
    frames = [encode_frame(7, 0x10, b"\x13\x88"), encode_frame(8, 0x90, b"\x00" + b"x" * 5000)]
    stream = b"\x00noise\xfa" + frames[0] + frames[1]
    decoder = FrameDecoder()
    items: list[Frame | Malformed] = []
    for at in range(0, len(stream), 7):
        items += decoder.feed(stream[at : at + 7])
    got = [i for i in items if isinstance(i, Frame)]
    assert [(f.seq, f.cmd, len(f.payload)) for f in got] == [(7, 0x10, 2), (8, 0x90, 5001)]
    assert any(isinstance(i, Malformed) and i.reason.startswith("noise") for i in items)


def test_bad_crc_bad_length_and_truncation_are_named() -> None:
    frame = bytearray(encode_frame(3, 0x01))
    frame[-1] ^= 0xFF
    [item] = FrameDecoder().feed(bytes(frame))
    assert isinstance(item, Malformed) and item.reason.startswith("bad checksum")
    huge = b"\xfa\xce" + struct.pack(">I", MAX_PAYLOAD + 3) + b"\x01\x01"
    items = FrameDecoder().feed(huge)
    assert isinstance(items[0], Malformed) and items[0].reason.startswith("bad length")
    decoder = FrameDecoder()
    assert decoder.feed(encode_frame(1, 1, b"abc")[:-2]) == []
    [cut] = decoder.flush()
    assert isinstance(cut, Malformed) and cut.reason.startswith("truncated frame")


@given(st.binary(max_size=400))
def test_the_decoder_never_raises(data: bytes) -> None:
    decoder = FrameDecoder()
    decoder.feed(data)
    decoder.flush()


def test_capture_round_trip_and_unavailable_liveness() -> None:
    capture = Capture(
        jpeg=JPEG,
        width=320,
        height=360,
        liveness=Liveness.LIVE,
        liveness_score=0.962,
        quality=Quality(1, 0.8, -12.5, 3.0, 0.5),
    )
    assert decode_capture(encode_capture(capture)) == capture
    no_ir = Capture(JPEG, 640, 480, Liveness.UNAVAILABLE, None, Quality(1, 0.5, 0, 0, 0))
    assert decode_capture(encode_capture(no_ir)) == no_ir


def test_damaged_capture_replies_are_named() -> None:
    good = encode_capture(Capture(JPEG, 1, 1, Liveness.LIVE, 0.9, Quality(1, 0.5, 0, 0, 0)))
    cases = {
        good[:5]: "shorter than its",
        good[:-1]: "image length",
        good[:1] + b"\x07" + good[2:]: "unknown liveness code 7",
        good[:1] + b"\x00" + good[2:]: "liveness unavailable with score 900",
        good[:20] + b"\x00\x00" + good[22:]: "not a JPEG",
    }
    for payload, reason in cases.items():
        result = decode_capture(payload)
        assert isinstance(result, Malformed) and reason in result.reason, (reason, result)


def test_capture_request_status_and_texts() -> None:
    assert encode_capture_request(5000) == b"\x13\x88"
    assert decode_capture_request(b"\x13\x88") == 5000
    assert isinstance(decode_capture_request(b"\x00\x01"), Malformed)
    assert isinstance(decode_capture_request(b"\x01"), Malformed)
    status = ModuleStatus(sensor_fault=False, ir_fault=True, captures=41)
    assert encode_status(status) == b"\x02\x00\x00\x00\x29"
    assert decode_status(encode_status(status)) == status
    assert isinstance(decode_status(b"\x00"), Malformed)
    assert decode_texts(encode_texts("BL-FCM-2", "SN1", "2.4.1"), 3) == ["BL-FCM-2", "SN1", "2.4.1"]
    assert isinstance(decode_texts(b"\x05ab", 1), Malformed)


def test_the_protocol_pages_examples_byte_for_byte() -> None:
    # docs/protocols/face-camera.md, "Frames".
    ok = b"\x00"
    capture = Capture(
        b"\xff\xd8\xff\xd9", 640, 480, Liveness.LIVE, 0.962, Quality(1, 0.81, -3.5, 2.0, 0.0)
    )
    examples = {
        encode_frame(1, 0x81, ok + encode_status(ModuleStatus(False, False, 41))): (
            "fa ce 00 00 00 08 01 81 00 00 00 00 00 29 60 74 1d c3"
        ),
        encode_frame(
            2, 0x10, encode_capture_request(5000)
        ): "fa ce 00 00 00 04 02 10 13 88 a4 01 58 d2",
        encode_frame(2, 0x90, b"\x12"): "fa ce 00 00 00 03 02 90 12 0e a5 5f ac",
        encode_frame(2, 0x90, ok + encode_capture(capture)): (
            "fa ce 00 00 00 1b 02 90 00 01 01 03 c2 03 2a ff dd 00 14 "
            "00 00 02 80 01 e0 00 00 00 04 ff d8 ff d9 9a 75 4e f4"
        ),
    }
    for frame, documented in examples.items():
        assert frame.hex(" ") == documented
    page = (Path(__file__).resolve().parents[2] / "docs/protocols/face-camera.md").read_text()
    assert "fa ce 00 00 00 03 02 90 12 0e a5 5f ac" in page
