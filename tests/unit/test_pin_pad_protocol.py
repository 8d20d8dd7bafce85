"""Branchline EPP command set: hand-built frames, message round trips, garbage never raises.

Frames are built by hand from the table in drivers/pin_pad/protocol.py:
STX 02, LEN_H LEN_L (= 2 + payload), SEQ, CMD, PAYLOAD, ETX 03, LRC = XOR of LEN_H..ETX.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from branchline.drivers.pin_pad import protocol as p
from branchline.drivers.pin_pad.protocol import Frame, FrameDecoder, Malformed

# STATUS request, SEQ 1. LRC = 00^02^01^10^03 = 10.
STATUS_REQ = bytes.fromhex("02 0002 01 10 03 10")
# STATUS reply, SEQ 1: ok, idle, no flags, 4 slots, slot 0 TDES. LEN 10.
# LRC = 00^0A^01^90^00^00^00^04^01^00^00^00^03 = 9D.
STATUS_REPLY = bytes.fromhex("02 000A 01 90 00 00 00 04 01 00 00 00 03 9D")
# KEY_EVENT, SEQ 7: digit, 3 digits entered. LRC = 00^04^07^40^44^03^03 = 07.
KEY_EVENT = bytes.fromhex("02 0004 07 40 44 03 03 07")
# GET_KCV reply, SEQ 5: result 03 no_key (the same value as ETX). LRC = 00^03^05^A1^03^03 = A7.
NO_KEY = bytes.fromhex("02 0003 05 A1 03 03 A7")


def decode_all(data: bytes, cuts: list[int] | None = None) -> list[Frame | Malformed]:
    decoder = FrameDecoder()
    out: list[Frame | Malformed] = []
    pieces = [data] if cuts is None else split(data, cuts)
    for piece in pieces:
        out += decoder.feed(piece)
    return out + decoder.flush()


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def one_message(data: bytes) -> p.DeviceMessage | Malformed:
    [frame] = decode_all(data)
    assert isinstance(frame, Frame)
    return p.decode_device_message(frame)


# --- hand-built frames ---------------------------------------------------------------------


def test_status_request_matches_the_hand_built_bytes() -> None:
    assert p.encode_request(1, p.Status()) == STATUS_REQ
    assert decode_all(STATUS_REQ) == [Frame(1, 0x10)]
    assert p.decode_request(Frame(1, 0x10)) == (1, p.Status())


def test_status_reply_matches_the_hand_built_bytes() -> None:
    reply = p.StatusReply(1, False, False, False, (1, 0, 0, 0))
    assert p.encode_message(reply) == STATUS_REPLY
    assert one_message(STATUS_REPLY) == reply
    assert reply.slot_algorithm(0) is p.Algorithm.TDES and reply.slot_algorithm(1) is None
    assert not reply.slot_exhausted(0)


def test_key_event_carries_a_count_only() -> None:
    assert p.encode_message(p.KeyEvent(7, p.KeyKind.DIGIT, 3)) == KEY_EVENT
    assert one_message(KEY_EVENT) == p.KeyEvent(7, p.KeyKind.DIGIT, 3)


def test_error_reply_whose_code_equals_etx() -> None:
    assert p.encode_error(5, p.Cmd.GET_KCV, p.ResultCode.NO_KEY) == NO_KEY
    message = one_message(NO_KEY)
    assert message == p.ErrorReply(5, p.Cmd.GET_KCV, p.ResultCode.NO_KEY)
    assert isinstance(message, p.ErrorReply) and p.reply_to(message) is p.Cmd.GET_KCV


def test_load_key_request_layout() -> None:
    key, ksn = bytes(range(16)), bytes.fromhex("FFFF9876543210E00000")
    frame = p.encode_request(9, p.LoadKey(2, p.Algorithm.TDES, key, ksn))
    # slot 02, alg 01, key_len 10, key, ksn_len 0A, ksn
    payload = bytes([2, 1, 16]) + key + bytes([10]) + ksn
    assert frame[:5] == bytes([0x02, 0x00, 2 + len(payload), 9, 0x20])
    assert frame[5:-2] == payload and frame[-2] == 0x03 and frame[-1] == p.lrc(frame[1:-1])
    assert p.decode_request(decode_all(frame)[0]) == (9, p.LoadKey(2, p.Algorithm.TDES, key, ksn))  # type: ignore[arg-type]


def test_start_pin_request_layout() -> None:
    request = p.StartPin(0, 4, 6, 30, None, "4111111111111111")
    frame = p.encode_request(3, request)
    assert frame[5:11] == bytes([0, 4, 6, 30, 0xFF, 16]) and frame[11:27] == b"4111111111111111"
    assert p.decode_request(decode_all(frame)[0]) == (3, request)  # type: ignore[arg-type]


def test_pin_result_layout() -> None:
    block, ksn = bytes(range(8)), bytes.fromhex("FFFF9876543210E00001")
    result = p.PinResult(4, p.ResultCode.OK, 4, 0, block, ksn)
    frame = p.encode_message(result)
    assert frame[3:5] == bytes([4, 0x41]) and frame[5:9] == bytes([0, 4, 0, 8])
    assert frame[9:17] == block and frame[17] == 10 and frame[18:28] == ksn
    assert one_message(frame) == result


# --- malformed input -----------------------------------------------------------------------


def test_bad_lrc_names_expected_and_received() -> None:
    bad = STATUS_REQ[:-1] + b"\x11"
    assert decode_all(bad) == [Malformed("bad LRC: expected 0x10, got 0x11", bad)]


def test_missing_etx_is_reported() -> None:
    bad = bytes.fromhex("02 0002 01 10 04 10")
    [item] = decode_all(bad)
    assert isinstance(item, Malformed) and item.reason.startswith("missing ETX")


def test_bad_length_is_reported_without_waiting() -> None:
    [item] = FrameDecoder().feed(bytes.fromhex("02 0FFF"))
    assert isinstance(item, Malformed) and item.reason == "bad length: LEN 4095 outside 2..258"
    [item, *_] = FrameDecoder().feed(bytes.fromhex("02 0001 00"))
    assert isinstance(item, Malformed) and item.reason.startswith("bad length: LEN 1")


def test_garbage_then_frame_resynchronises() -> None:
    assert decode_all(b"\xaa\xbb" + STATUS_REQ) == [
        Malformed("2 unexpected byte(s) outside a frame", b"\xaa\xbb"),
        Frame(1, 0x10),
    ]


def test_frame_swallowed_by_a_stray_stx_is_found() -> None:
    stray = bytes.fromhex("02 0009 77")
    items = decode_all(stray + STATUS_REQ)
    assert items[-1] == Frame(1, 0x10) and isinstance(items[0], Malformed)


def test_truncated_frame_is_reported_on_flush() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(STATUS_REPLY[:6]) == []
    assert decoder.needed == len(STATUS_REPLY) - 6
    [item] = decoder.flush()
    assert isinstance(item, Malformed) and item.reason.startswith("truncated frame")
    assert decoder.buffered == 0 and decoder.needed == 1


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (Frame(1, 0x90, b""), "STATUS: payload ends before result code"),
        (Frame(1, 0x90, b"\x00\x02\x00\x00"), "STATUS reply: unknown state 2"),
        (Frame(1, 0x90, b"\x55"), "STATUS reply: unknown result code 0x55"),
        (Frame(1, 0xA1, b"\x00\x01\x05abcde"), "GET_KCV reply: tdes KCV must be 3 bytes, got 5"),
        (Frame(1, 0xA2, b"\x00\x03\x00\x00"), "GET_KSN reply: unknown algorithm 0x03"),
        (Frame(1, 0xFF, b"\x00"), "reply to unknown CMD 0x7F"),
        (Frame(1, 0x10, b""), "CMD 0x10 is not a reply or event"),
        (Frame(1, 0x40, b"Q\x01"), "KEY_EVENT: unknown key kind 0x51"),
        (Frame(1, 0x40, b"D\x0d"), "KEY_EVENT: digit count 13 above 12"),
        (Frame(1, 0x41, b"\x00\x04\x00\x02ab\x00"), "PIN_RESULT: format 0 with a 2-byte PIN block"),
        (Frame(1, 0x41, b"\x10\x00\x00\x01a\x00"), "PIN_RESULT: outcome customer_canceled"),
        (Frame(1, 0xB1, b"\x00\x00"), "CANCEL_ENTRY: 1 unexpected trailing byte(s)"),
    ],
)
def test_bad_device_messages_name_what_was_wrong(frame: Frame, reason: str) -> None:
    message = p.decode_device_message(frame)
    assert isinstance(message, Malformed) and message.reason.startswith(reason), message


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (Frame(2, 0x20, b"\x00\x01\x03abc\x00"), "LOAD_KEY: tdes key must be 16 bytes, got 3"),
        (Frame(2, 0x20, b"\x04\x01"), "LOAD_KEY: key slot 4 outside 0..3"),
        (Frame(2, 0x30, b"\x00\x05\x04\x1e\x00\x08" + b"4" * 8), "START_PIN: PIN lengths"),
        (Frame(2, 0x30, b"\x00\x04\x04\x00\x00\x08" + b"4" * 8), "START_PIN: timeout"),
        (Frame(2, 0x30, b"\x00\x04\x04\x1e\x01\x08" + b"4" * 8), "START_PIN: PIN block format"),
        (Frame(2, 0x30, b"\x00\x04\x04\x1e\x00\x08" + b"4" * 7 + b"x"), "START_PIN: PAN must"),
        (Frame(2, 0x21, b""), "GET_KCV: payload ends before slot"),
    ],
)
def test_bad_requests_name_what_was_wrong(frame: Frame, reason: str) -> None:
    decoded = p.decode_request(frame)
    assert isinstance(decoded, p.BadRequest) and decoded.reason.startswith(reason), decoded
    assert decoded.seq == 2 and decoded.cmd == frame.cmd


def test_unknown_request_cmd_is_reported_as_such() -> None:
    assert p.decode_request(Frame(4, 0x55)) == (4, p.UnknownRequest(0x55))
    assert p.decode_request(Frame(4, 0x41)) == (4, p.UnknownRequest(0x41))


def test_encoder_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError):
        p.encode_frame(256, 0x10)
    with pytest.raises(ValueError):
        p.encode_frame(1, 0x10, bytes(p.MAX_PAYLOAD + 1))


# --- redaction for the spy -----------------------------------------------------------------


def test_redact_frame_blanks_key_block_and_pan() -> None:
    key, ksn = bytes(range(1, 17)), bytes.fromhex("FFFF9876543210E00000")
    load = p.redact_frame(
        Frame(1, p.Cmd.LOAD_KEY, p.LoadKey(0, p.Algorithm.TDES, key, ksn).payload())
    )
    assert key not in load.payload and ksn in load.payload
    block = bytes(range(1, 9))
    result = p.PinResult(2, p.ResultCode.OK, 4, 0, block, ksn)
    frame = decode_all(p.encode_message(result))[0]
    assert isinstance(frame, Frame)
    redacted = p.redact_frame(frame)
    assert block not in redacted.payload and ksn in redacted.payload
    start = Frame(3, p.Cmd.START_PIN, p.StartPin(0, 4, 12, 30, 0, "4111111111111111").payload())
    assert b"411111******1111" in p.redact_frame(start).payload
    assert p.redact_frame(Frame(1, 0x10)) == Frame(1, 0x10)


# --- properties ----------------------------------------------------------------------------

seqs = st.integers(1, 255)
algorithms = st.sampled_from(list(p.Algorithm))
ascii_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)


@st.composite
def pin_results(draw: st.DrawFn) -> p.PinResult:
    seq = draw(seqs)
    outcome = draw(st.sampled_from(list(p.ResultCode)))
    if outcome is p.ResultCode.OK:
        fmt = draw(st.sampled_from([0, 4]))
        block = draw(st.binary(min_size=p.BLOCK_LENGTH[fmt], max_size=p.BLOCK_LENGTH[fmt]))
        ksn = draw(st.binary(min_size=10 + 2 * (fmt == 4), max_size=10 + 2 * (fmt == 4)))
        return p.PinResult(seq, outcome, draw(st.integers(4, 12)), fmt, block, ksn)
    return p.PinResult(seq, outcome, draw(st.integers(0, 255)), draw(st.integers(0, 255)))


@st.composite
def kcv_replies(draw: st.DrawFn) -> p.KcvReply:
    alg = draw(algorithms)
    kcv = draw(st.binary(min_size=alg.kcv_length, max_size=alg.kcv_length))
    return p.KcvReply(draw(seqs), alg, kcv)


@st.composite
def ksn_replies(draw: st.DrawFn) -> p.KsnReply:
    alg = draw(algorithms)
    ksn = draw(st.binary(min_size=alg.ksn_length, max_size=alg.ksn_length))
    return p.KsnReply(draw(seqs), alg, draw(st.booleans()), ksn)


messages = st.one_of(
    st.builds(
        p.ErrorReply,
        seqs,
        st.sampled_from([c for c in p.Cmd if c < 0x40]),
        st.sampled_from([c for c in p.ResultCode if c is not p.ResultCode.OK]),
    ),
    st.builds(
        p.OkReply,
        seqs,
        st.sampled_from([p.Cmd.ERASE_KEYS, p.Cmd.START_PIN, p.Cmd.CANCEL_ENTRY, p.Cmd.CLEAR_ENTRY]),
    ),
    st.builds(
        p.StatusReply,
        seqs,
        st.booleans(),
        st.booleans(),
        st.booleans(),
        st.lists(st.sampled_from([0, 1, 2, 0x81, 0x82]), max_size=4).map(tuple),
    ),
    st.builds(p.InfoReply, seqs, ascii_text, ascii_text, ascii_text),
    kcv_replies(),
    ksn_replies(),
    st.builds(p.KeyEvent, seqs, st.sampled_from(list(p.KeyKind)), st.integers(0, 12)),
    pin_results(),
)
requests = st.one_of(
    st.just(p.Status()),
    st.just(p.GetInfo()),
    st.just(p.CancelEntry()),
    st.just(p.ClearEntry()),
    st.builds(p.GetKcv, st.integers(0, 3)),
    st.builds(p.GetKsn, st.integers(0, 3)),
    st.builds(p.EraseKeys, st.sampled_from([0, 1, 2, 3, 0xFF])),
    st.builds(
        p.StartPin,
        st.integers(0, 3),
        st.just(4),
        st.integers(4, 12),
        st.integers(1, 255),
        st.sampled_from([None, 0, 4]),
        st.text("0123456789", min_size=8, max_size=19),
    ),
    st.builds(
        p.LoadKey,
        st.integers(0, 3),
        st.just(p.Algorithm.AES),
        st.binary(min_size=32, max_size=32),
        st.binary(min_size=12, max_size=12),
    ),
)
cuts = st.lists(st.integers(0, 10_000), max_size=12)


@given(st.lists(messages, max_size=6), cuts)
def test_device_messages_round_trip_in_any_chunking(
    sent: list[p.DeviceMessage], where: list[int]
) -> None:
    wire = b"".join(p.encode_message(m) for m in sent)
    frames = decode_all(wire, where)
    assert [p.decode_device_message(f) for f in frames if isinstance(f, Frame)] == sent
    assert len(frames) == len(sent)


@given(seqs, requests)
def test_requests_round_trip(seq: int, request: p.Request) -> None:
    [frame] = decode_all(p.encode_request(seq, request))
    assert isinstance(frame, Frame)
    assert p.decode_request(frame) == (seq, request)


@given(st.binary(max_size=600), cuts)
def test_garbage_never_raises_and_chunking_does_not_matter(data: bytes, where: list[int]) -> None:
    whole = decode_all(data)
    assert decode_all(data, where) == whole
    for item in whole:
        assert isinstance(item, Frame | Malformed)
        if isinstance(item, Frame):
            assert isinstance(p.decode_device_message(item), p.DeviceMessage | Malformed)
            p.decode_request(item)


known_cmds = st.sampled_from([c | r for c in p.Cmd for r in (0, p.REPLY_BIT)])


@given(st.integers(0, 255), st.one_of(st.integers(0, 255), known_cmds), st.binary(max_size=80))
def test_any_payload_decodes_or_is_malformed(seq: int, cmd: int, payload: bytes) -> None:
    frame = Frame(seq, cmd, payload)
    message = p.decode_device_message(frame)
    if not isinstance(message, Malformed):
        assert p.encode_message(message) == p.encode_frame(seq, cmd, payload)
    decoded = p.decode_request(frame)
    assert isinstance(decoded, p.BadRequest | tuple)


@given(st.binary(max_size=200), messages, st.binary(max_size=200))
def test_a_message_in_garbage_is_found(
    before: bytes, message: p.DeviceMessage, after: bytes
) -> None:
    wire = p.encode_message(message)
    frames = [f for f in decode_all(before + wire + after) if isinstance(f, Frame)]
    assert message in [p.decode_device_message(f) for f in frames]
