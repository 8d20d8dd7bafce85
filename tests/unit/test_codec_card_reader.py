"""Card reader framing, command/error tables and magnetic tracks.

Frames are built by hand from the framing description in drivers/card_reader/frames.py
(CRT-591-M001 sections 1.1-1.2): F2 ADDR LEN_H LEN_L TEXT 03 BCC, BCC = XOR of F2..03.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from branchline.drivers.base import Completion, DeviceError
from branchline.drivers.card_reader import commands, tracks
from branchline.drivers.card_reader.frames import (
    Ack,
    CardPosition,
    CommandFrame,
    Eot,
    FrameDecoder,
    Item,
    Malformed,
    Nak,
    ReplyFrame,
    bcc,
    encode_command,
    encode_item,
    encode_reply,
)

# Initialise, leave the card (CM 30 PM 33), address 0. TEXT = 'C' 30 33, LEN 3.
# BCC = F2^00^00^03^43^30^33^03 = B2.
INIT_NO_MOVE = bytes.fromhex("F2 00 00 03 43 30 33 03 B2")
# Positive status reply: 'P' 31 30 ST0 '2' (card inside) ST1 '0' (bin not full), LEN 5.
# BCC = F2^05^50^31^30^32^30^03 = A7.
STATUS_CARD_INSIDE = bytes.fromhex("F2 00 00 05 50 31 30 32 30 03 A7")
# Negative reply to "move to IC" (32 31): 'N' 32 31 E1 '1' E0 '0' = card jam, LEN 5.
# BCC = F2^05^4E^32^31^31^30^03 = B8.
MOVE_JAMMED = bytes.fromhex("F2 00 00 05 4E 32 31 31 30 03 B8")


def decode_all(data: bytes, cuts: list[int] | None = None) -> list[Item]:
    decoder = FrameDecoder()
    out: list[Item] = []
    pieces = [data] if cuts is None else split(data, cuts)
    for piece in pieces:
        out += decoder.feed(piece)
    return out + decoder.flush()


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


# --- hand-built frames ---------------------------------------------------------------------


def test_command_frame_matches_the_hand_built_bytes() -> None:
    assert encode_command(0x30, 0x33) == INIT_NO_MOVE
    assert bcc(INIT_NO_MOVE[:-1]) == 0xB2
    assert decode_all(INIT_NO_MOVE) == [CommandFrame(0, 0x30, 0x33)]


def test_positive_reply_matches_the_hand_built_bytes() -> None:
    assert encode_reply(0x31, 0x30, b"20") == STATUS_CARD_INSIDE
    [reply] = decode_all(STATUS_CARD_INSIDE)
    assert isinstance(reply, ReplyFrame)
    assert reply.positive and reply.card_position is CardPosition.INSIDE
    assert reply.bin_full is False and reply.error_code is None


def test_negative_reply_matches_the_hand_built_bytes() -> None:
    assert encode_reply(0x32, 0x31, b"10", positive=False) == MOVE_JAMMED
    [reply] = decode_all(MOVE_JAMMED)
    assert isinstance(reply, ReplyFrame)
    assert not reply.positive and reply.error_code == "10" and reply.card_position is None
    error = commands.error_for(reply.error_code)
    assert (error.code, error.completion) == ("card_jam", Completion.HARDWARE_ERROR)


def test_apdu_exchange_carries_the_apdu_as_data() -> None:
    apdu = bytes.fromhex("00A404000E315041592E5359532E444446303100")
    frame = encode_command(0x51, 0x39, apdu, address=1)
    assert frame[:7] == bytes([0xF2, 0x01, 0x00, 3 + len(apdu), 0x43, 0x51, 0x39])
    assert frame[-2] == 0x03 and frame[-1] == bcc(frame[:-1])
    assert decode_all(frame) == [CommandFrame(1, 0x51, 0x39, apdu)]


def test_control_bytes_outside_frames() -> None:
    assert decode_all(b"\x06" + INIT_NO_MOVE + b"\x15\x04") == [
        Ack(),
        CommandFrame(0, 0x30, 0x33),
        Nak(),
        Eot(),
    ]


def test_control_byte_values_inside_a_frame_are_data() -> None:
    frame = encode_command(0x51, 0x33, b"\x06\x15\x04\xf2\x03")
    assert decode_all(frame) == [CommandFrame(0, 0x51, 0x33, b"\x06\x15\x04\xf2\x03")]


# --- malformed frames ----------------------------------------------------------------------


def test_bad_checksum_names_expected_and_received() -> None:
    bad = INIT_NO_MOVE[:-1] + b"\xb3"
    assert decode_all(bad) == [Malformed("bad checksum: expected 0xB2, got 0xB3", bad)]


def test_missing_etx_is_reported() -> None:
    bad = bytes.fromhex("F2 00 00 03 43 30 33 05 B2")
    [item] = decode_all(bad)
    assert isinstance(item, Malformed) and item.reason.startswith("missing ETX")
    assert "offset 7" in item.reason and item.raw == bad


def test_bad_length_is_reported_at_once() -> None:
    # LEN 0x0300 is beyond any legal TEXT; the decoder must not wait for 768 bytes.
    bad = bytes.fromhex("F2 00 03 00 43")
    [item] = FrameDecoder().feed(bad)
    assert isinstance(item, Malformed) and item.reason.startswith("bad length")
    short = bytes.fromhex("F2 00 00 02 50 31 03 00")  # a reply needs at least 5 TEXT bytes
    assert decode_all(short)[0] == Malformed(
        "bad length: LEN 2 outside 5..517 for a 'P' frame", short[:5]
    )


def test_unknown_head_is_reported() -> None:
    [item, *_] = decode_all(bytes.fromhex("F2 00 00 03 45 30 33 03 B8"))
    assert isinstance(item, Malformed) and "unknown TEXT head 0x45" in item.reason


def test_garbage_then_frame_resynchronises() -> None:
    items = decode_all(b"\x00\x11\x22" + INIT_NO_MOVE)
    assert items == [
        Malformed("3 unexpected byte(s) outside a frame", b"\x00\x11\x22"),
        CommandFrame(0, 0x30, 0x33),
    ]


def test_frame_hidden_inside_a_bad_candidate_is_found() -> None:
    # A stray F2 whose LEN claims 9 TEXT bytes swallows the start of a real frame.
    stray = bytes.fromhex("F2 00 00 09 43")
    items = decode_all(stray + INIT_NO_MOVE)
    assert items[-1] == CommandFrame(0, 0x30, 0x33)
    assert [type(i) for i in items] == [Malformed, CommandFrame]


def test_truncated_frame_reported_on_flush() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(INIT_NO_MOVE[:6]) == []
    assert decoder.buffered == 6
    [item] = decoder.flush()
    assert isinstance(item, Malformed) and item.reason == "truncated frame: only 6 of 9 bytes"
    assert decoder.buffered == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda: encode_command(0x100, 0),
        lambda: encode_command(0, 0, address=-1),
        lambda: encode_command(0, 0, b"x" * 513),
        lambda: encode_reply(0, 0, b"00", b"x" * 513),
        lambda: encode_reply(0, 0, b"0"),
    ],
)
def test_encoders_refuse_bad_arguments(call: Callable[[], bytes]) -> None:
    with pytest.raises(ValueError):
        call()


def test_longest_data_is_accepted() -> None:
    frame = encode_reply(0x51, 0x39, b"20", b"x" * 512)
    assert decode_all(frame) == [ReplyFrame(0, 0x51, 0x39, True, b"20", b"x" * 512)]


# --- properties ----------------------------------------------------------------------------

bytes_ = st.integers(0, 255)
data_ = st.binary(max_size=40)
command_frames = st.builds(CommandFrame, bytes_, bytes_, bytes_, data_)
reply_frames = st.builds(
    ReplyFrame, bytes_, bytes_, bytes_, st.booleans(), st.binary(min_size=2, max_size=2), data_
)
frames = st.one_of(command_frames, reply_frames)
items = st.one_of(frames, st.sampled_from([Ack(), Nak(), Eot()]))
cuts = st.lists(st.integers(0, 10_000), max_size=12)


@given(st.lists(items, max_size=8), cuts)
def test_valid_streams_round_trip_in_any_chunking(sent: list[Item], where: list[int]) -> None:
    wire = b"".join(encode_item(i) for i in sent)  # type: ignore[arg-type]
    assert decode_all(wire, where) == sent


@given(st.binary(max_size=600), cuts)
def test_random_bytes_never_raise_and_chunking_does_not_matter(
    data: bytes, where: list[int]
) -> None:
    whole = decode_all(data)
    assert decode_all(data, where) == whole
    for item in whole:
        assert isinstance(item, Ack | Nak | Eot | CommandFrame | ReplyFrame | Malformed)


@given(frames, st.data())
def test_any_single_byte_corruption_is_reported(
    frame: CommandFrame | ReplyFrame, data: st.DataObject
) -> None:
    wire = bytearray(encode_item(frame))
    at = data.draw(st.integers(0, len(wire) - 1))
    wire[at] = data.draw(st.integers(0, 255).filter(lambda b: b != wire[at]))
    out = decode_all(bytes(wire))
    assert out != [frame]
    assert any(isinstance(i, Malformed) for i in out)


@given(frames, st.data())
def test_truncation_is_one_malformed(frame: CommandFrame | ReplyFrame, data: st.DataObject) -> None:
    wire = encode_item(frame)
    cut = data.draw(st.integers(1, len(wire) - 1))
    [item] = decode_all(wire[:cut])
    assert isinstance(item, Malformed) and item.reason.startswith("truncated frame")


@given(st.lists(st.tuples(frames, st.binary(min_size=1, max_size=20)), max_size=5), cuts)
def test_frames_survive_garbage_between_them(
    pairs: list[tuple[CommandFrame | ReplyFrame, bytes]], where: list[int]
) -> None:
    # Garbage free of STX and control bytes, so it can only be garbage.
    clean = [
        (f, bytes(b for b in g if b not in (0xF2, 0x06, 0x15, 0x04)) or b"x") for f, g in pairs
    ]
    wire = b"".join(g + encode_item(f) for f, g in clean)
    out = decode_all(wire, where)
    assert [i for i in out if not isinstance(i, Malformed)] == [f for f, _ in clean]
    assert [i.raw for i in out if isinstance(i, Malformed)] == [g for _, g in clean]


@given(st.lists(frames, min_size=1, max_size=4), st.binary(max_size=60), cuts)
def test_frames_after_arbitrary_garbage_are_recovered(
    sent: list[CommandFrame | ReplyFrame], garbage: bytes, where: list[int]
) -> None:
    wire = garbage + b"".join(encode_item(f) for f in sent)
    out = decode_all(wire, where)
    found = [i for i in out if isinstance(i, CommandFrame | ReplyFrame)]
    assert found[-len(sent) :] == sent


# --- command and error tables --------------------------------------------------------------


def test_command_table_is_consistent() -> None:
    assert len(commands.BY_CODE) == len(commands.ALL_COMMANDS)
    assert (commands.IC_POWER_ON.cm, commands.IC_POWER_ON.pm) == (0x51, 0x30)
    assert (commands.APDU_AUTO.cm, commands.APDU_AUTO.pm) == (0x51, 0x39)
    assert commands.READ_TRACK[2] == commands.READ_TRACK_2
    assert commands.BY_CODE[(0x32, 0x33)] is commands.CAPTURE


def test_error_table_maps_to_device_errors() -> None:
    assert commands.error_for("00").code == "undefined_command"
    assert commands.error_for("01").completion is Completion.INVALID_DATA
    assert commands.error_for("02").completion is Completion.SEQUENCE_ERROR
    err = commands.error_for("A1").to_device_error()
    assert isinstance(err, DeviceError) and err.code == "bin_full" and "A1" in err.message
    unknown = commands.error_for("7Z")
    assert unknown.code == "reader_error_7Z" and unknown.completion is Completion.HARDWARE_ERROR
    assert commands.error_for("\x00\xff").code == "reader_error_unknown"


# --- magnetic tracks (ISO/IEC 7813 layouts) ------------------------------------------------

TRACK1 = "%B4761739001010010^CARDHOLDER/VISA^22122011143804400000?"
TRACK2 = ";4761739001010010=22122011143804400000?"


def test_track1_fields() -> None:
    t1 = tracks.parse_track1(TRACK1)
    assert t1 == tracks.Track1(
        "4761739001010010", "CARDHOLDER/VISA", "2212", "201", "1143804400000"
    )
    assert t1.expiry_year_month == (2022, 12)
    assert (t1.surname, t1.given_names) == ("CARDHOLDER", "VISA")
    assert tracks.luhn_valid(t1.pan)
    assert tracks.encode_track1(t1) == TRACK1


def test_track2_fields_from_reader_bytes_with_lrc() -> None:
    t2 = tracks.parse_track2(TRACK2.encode() + b"5")
    assert t2 == tracks.Track2("4761739001010010", "2212", "201", "1143804400000")
    assert tracks.encode_track2(t2) == TRACK2


def test_track_absent_expiry_and_service_code() -> None:
    assert tracks.parse_track2(";4761739001010010===?") == tracks.Track2(
        "4761739001010010", None, None, ""
    )


def test_track_errors_are_clear() -> None:
    cases = {
        "B4761739001010010^X Y^2212201?": "missing start sentinel",
        "%B4761739001010010^CARDHOLDER/VISA^2212201": "missing end sentinel",
        "%A4761739001010010^CARDHOLDER/VISA^2212201?": "format code",
        "%B4761739001010010^CARDHOLDER/VISA^2213201?": "month 13",
        "%B47617390010100AA^CARDHOLDER/VISA^2212201?": "not all digits",
        "%B4761739001010010CARDHOLDER/VISA2212201?": "field separator",
        "%B4761739001010010^X^2212201?": "name has 1",
        ";4761739001010010=2212?": "service code",
        ";4761739001010010=22122011143804400000000000?": "track too long",
        ";4761739001010010=2212201?12": "characters after the end sentinel",
        ";4761739001010010=2212201A?": "not allowed",
    }
    for text, fragment in cases.items():
        parsed = tracks.parse_track2(text) if text.startswith(";") else tracks.parse_track1(text)
        assert isinstance(parsed, tracks.Malformed), text
        assert fragment in parsed.reason, (text, parsed.reason)


@given(st.one_of(st.text(max_size=100), st.binary(max_size=100)))
def test_track_parsers_never_raise(text: str | bytes) -> None:
    tracks.parse_track1(text)
    tracks.parse_track2(text)


digits = st.text("0123456789", min_size=1)
track2s = st.builds(
    tracks.Track2,
    st.text("0123456789", min_size=8, max_size=19),
    st.one_of(
        st.none(),
        st.tuples(st.integers(0, 99), st.integers(1, 12)).map(lambda t: f"{t[0]:02}{t[1]:02}"),
    ),
    st.one_of(st.none(), st.text("0123456789", min_size=3, max_size=3)),
    st.text("0123456789", max_size=8),
)


@given(track2s)
def test_track2_round_trips(track: tracks.Track2) -> None:
    assert tracks.parse_track2(tracks.encode_track2(track)) == track
