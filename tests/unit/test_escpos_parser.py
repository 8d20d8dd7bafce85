"""The simulator's ESC/POS parser: frames from the Epson ESC/POS Command Reference, encoder round
trips, chunking independence, and garbage that must never escape as an exception."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from branchline.drivers.printer import escpos
from branchline.sim.printer import (
    Align,
    CarriageReturn,
    Command,
    Cut,
    DoubleSize,
    Emphasis,
    EscPosParser,
    Feed,
    Garbage,
    Initialise,
    LineFeed,
    QrErrorCorrection,
    QrModel,
    QrModuleSize,
    QrPrint,
    QrStore,
    RasterImage,
    SelectCodeTable,
    StatusRequest,
    Text,
    Underline,
    Unknown,
    parse,
)


def bytewise(data: bytes, **limits: int) -> list[Command]:
    parser = EscPosParser(**limits)
    out: list[Command] = []
    for i in range(len(data)):
        out += parser.feed(data[i : i + 1])
    return out + parser.flush()


# -- single frames, written from the reference -----------------------------------------------


@pytest.mark.parametrize(
    ("frame", "command"),
    [
        (b"\x1b\x40", Initialise()),  # ESC @
        (b"\x1b\x74\x02", SelectCodeTable(2)),  # ESC t n
        (b"\x1b\x45\x01", Emphasis(True)),  # ESC E n: LSB
        (b"\x1b\x45\xfe", Emphasis(False)),
        (b"\x1d\x21\x11", DoubleSize(2, 2)),  # GS ! n
        (b"\x1d\x21\x70", DoubleSize(8, 1)),
        (b"\x1b\x61\x01", Align(1)),  # ESC a n
        (b"\x1b\x61\x32", Align(2)),  # n = 50 is right too
        (b"\x1b\x2d\x31", Underline(1)),  # ESC - n, n = 49
        (b"\x1b\x64\x05", Feed(5)),  # ESC d n
        (b"\x1d\x56\x00", Cut(partial=False)),  # GS V Function A
        (b"\x1d\x56\x31", Cut(partial=True)),
        (b"\x1d\x56\x42\x03", Cut(partial=True, feed=3)),  # Function B
        (b"\x1d\x56\x41\x00", Cut(partial=False, feed=0)),
        (b"\x1b\x69", Cut(partial=True)),  # ESC i (older models)
        (bytes.fromhex("1d286b0400314132 00"), QrModel(2)),  # GS ( k <Function 165>
        (bytes.fromhex("1d286b03003143 08"), QrModuleSize(8)),  # <Function 167>
        (bytes.fromhex("1d286b03003145 33"), QrErrorCorrection("H")),  # <Function 169>
        (bytes.fromhex("1d286b0600315030") + b"abc", QrStore(b"abc")),  # <Function 180>
        (bytes.fromhex("1d286b0300315130"), QrPrint()),  # <Function 181>
        (bytes.fromhex("1d763000010002 00 80 01"), RasterImage(8, 2, b"\x80\x01")),  # GS v 0
        (bytes.fromhex("1d763033010001 00 ff"), RasterImage(8, 1, b"\xff", scale=3)),
        (b"\x10\x04\x01", StatusRequest(1)),  # DLE EOT n
        (b"\x10\x04\x04", StatusRequest(4)),
        (b"\n", LineFeed()),
        (b"\r", CarriageReturn()),
    ],
)
def test_frames(frame: bytes, command: Command) -> None:
    assert parse(frame) == [command]
    assert bytewise(frame) == [command]


@pytest.mark.parametrize(
    "frame",
    [
        b"\x1b\x21\x08",  # ESC ! n: print mode, one parameter
        b"\x1b\x70\x00\x19\xfa",  # ESC p m t1 t2: drawer pulse
        b"\x1b\x24\x10\x00",  # ESC $ nL nH
        b"\x1d\x4c\x00\x00",  # GS L nL nH
        b"\x1d\x6b\x04ABC\x00",  # GS k m d1..dk NUL (CODE39)
        b"\x1d\x6b\x49\x03ABC",  # GS k m n d1..dn (CODE128)
        b"\x1d\x28\x4c\x02\x00\x30\x32",  # GS ( L pL pH ...: graphics, not acted on
        b"\x1d\x28\x6b\x03\x00\x31\x52\x30",  # GS ( k <Function 182>: QR size information
        b"\x1d\x28\x6b\x03\x00\x30\x41\x00",  # GS ( k cn = 48: PDF417
        b"\x1b\x2a\x00\x02\x00\xff\x00",  # ESC * m nL nH d1 d2
        b"\x10\x05\x01",  # DLE ENQ n
        b"\x10\x14\x01\x00\x01",  # DLE DC4 1 m t
        b"\x1c\x70\x01\x00",  # FS p n m
        b"\x1b\x44\x08\x10\x00",  # ESC D n1 n2 NUL
    ],
)
def test_known_frames_not_acted_on_are_unknown_with_their_parameters(frame: bytes) -> None:
    assert parse(frame + b"A") == [Unknown(frame), Text(b"A")]


def test_text_is_held_until_a_control_byte() -> None:
    parser = EscPosParser()
    assert parser.feed(b"Hello ") == []
    assert parser.feed(b"world\n") == [Text(b"Hello world"), LineFeed()]
    assert parser.feed(b"tail") == []
    assert parser.flush() == [Text(b"tail")]


def test_long_text_is_split_at_fixed_points() -> None:
    data = b"x" * 10 + b"\n"
    expected = [Text(b"xxxx"), Text(b"xxxx"), Text(b"xx"), LineFeed()]
    assert parse(data, max_text_run=4) == expected
    assert bytewise(data, max_text_run=4) == expected


def test_truncated_command_waits_for_more() -> None:
    parser = EscPosParser()
    frame = escpos.qr_store(b"0123456789")
    assert parser.feed(frame[:5]) == []
    assert parser.feed(frame[5:-1]) == []
    assert parser.pending == frame[:-1]
    assert parser.feed(frame[-1:]) == [QrStore(b"0123456789")]
    assert parser.pending == b""
    assert parser.consumed == len(frame)


def test_incomplete_command_at_end_of_stream_is_garbage() -> None:
    parser = EscPosParser()
    assert parser.feed(b"ok\n\x1d\x76\x30\x00\x01") == [Text(b"ok"), LineFeed()]
    (garbage,) = parser.flush()
    assert isinstance(garbage, Garbage)
    assert garbage.data == b"\x1d\x76\x30\x00\x01"


# -- garbage and resynchronisation -----------------------------------------------------------


def test_stray_control_bytes_are_garbage() -> None:
    assert parse(b"\x00A\x01\n") == [
        Garbage(b"\x00", "stray control byte 0x00"),
        Text(b"A"),
        Garbage(b"\x01", "stray control byte 0x01"),
        LineFeed(),
    ]


def test_unknown_escape_is_two_bytes() -> None:
    assert parse(b"\x1b\x07x\n") == [Unknown(b"\x1b\x07"), Text(b"x"), LineFeed()]


@pytest.mark.parametrize(
    "frame",
    [
        b"\x1b\x61\x03",  # ESC a 3
        b"\x1b\x2d\x07",  # ESC - 7
        b"\x1d\x21\x08",  # GS ! with reserved bit 3
        b"\x1d\x56\x02",  # GS V 2
        b"\x10\x04\x09",  # DLE EOT 9
        bytes.fromhex("1d286b03003143 00"),  # QR module size 0
        bytes.fromhex("1d286b03003143 11"),  # QR module size 17
        bytes.fromhex("1d286b03003145 34"),  # QR error correction 52
        bytes.fromhex("1d286b0400314134 00"),  # QR model 52
        bytes.fromhex("1d286b0300315031"),  # QR store with m = 49 and no data
        bytes.fromhex("1d286b0300315131"),  # QR print with m = 49
    ],
)
def test_out_of_range_parameters_are_garbage_and_parsing_goes_on(frame: bytes) -> None:
    result = parse(frame + b"\x1b\x40")
    assert isinstance(result[0], Garbage)
    assert result[0].data == frame
    assert result[1:] == [Initialise()]


def test_oversized_raster_is_rejected_and_parser_resynchronises() -> None:
    # 4104 dots wide (513 bytes): beyond 4096
    header = b"\x1d\x76\x30\x00" + (513).to_bytes(2, "little") + (1).to_bytes(2, "little")
    result = parse(header + b"\x1b\x40hi\n")
    assert isinstance(result[0], Garbage) and "exceeds" in result[0].reason
    assert result[1:] == [Initialise(), Text(b"hi"), LineFeed()]
    # 8193 rows
    header = b"\x1d\x76\x30\x00\x01\x00" + (8193).to_bytes(2, "little")
    result = parse(header + b"\x1b\x40")
    assert isinstance(result[0], Garbage) and result[1:] == [Initialise()]


def test_largest_allowed_raster_is_accepted() -> None:
    header = b"\x1d\x76\x30\x00" + (512).to_bytes(2, "little") + (8192).to_bytes(2, "little")
    data = bytes(512 * 8192)
    (image,) = parse(header + data)
    assert isinstance(image, RasterImage)
    assert (image.width_px, image.height) == (4096, 8192)


def test_empty_raster_is_garbage() -> None:
    result = parse(b"\x1d\x76\x30\x00\x00\x00\x01\x00\x1b\x40")
    assert isinstance(result[0], Garbage) and result[1:] == [Initialise()]


def test_huge_gs8l_frame_is_rejected() -> None:
    result = parse(b"\x1d\x38\x4c\xff\xff\xff\xff" + b"\x1b\x40")
    assert isinstance(result[0], Garbage) and result[1:] == [Initialise()]


def test_barcode_without_nul_is_bounded() -> None:
    result = parse(b"\x1d\x6b\x04" + b"A" * 300 + b"\n")
    assert isinstance(result[0], Garbage)
    assert result[-1] == LineFeed()


# -- encoder round trips ---------------------------------------------------------------------


def sample_stream() -> bytes:
    logo = Image.new("1", (20, 3), 1)
    logo.putpixel((0, 0), 0)
    logo.putpixel((19, 2), 0)
    return escpos.Receipt(codepage="cp850").title("Branchline").line(
        "Cash withdrawal", bold=True, underline=True, align=escpos.Alignment.RIGHT
    ).key_value("Amount", "100.00 EUR").qr(
        "T-0001", module_size=5, error_correction=escpos.QrErrorLevel.H
    ).image(logo).feed(2).cut(partial=False, feed=3).to_bytes() + escpos.request_status(
        escpos.StatusKind.ROLL_PAPER
    )


def test_encoder_round_trip() -> None:
    commands = parse(sample_stream())
    assert commands == [
        Initialise(),
        SelectCodeTable(2),
        Align(1),
        Emphasis(True),
        DoubleSize(2, 2),
        Text(b"Branchline"),
        LineFeed(),
        DoubleSize(1, 1),
        Emphasis(False),
        Align(0),
        Align(2),
        Emphasis(True),
        Underline(1),
        Text(b"Cash withdrawal"),
        LineFeed(),
        Underline(0),
        Emphasis(False),
        Align(0),
        Text(b"Amount" + b" " * 32 + b"100.00 EUR"),
        LineFeed(),
        LineFeed(),
        Align(1),
        QrModel(2),
        QrModuleSize(5),
        QrErrorCorrection("H"),
        QrStore(b"T-0001"),
        QrPrint(),
        LineFeed(),
        Align(0),
        Align(1),
        RasterImage(24, 3, bytes.fromhex("800000 000000 000010")),
        Align(0),
        Feed(2),
        Cut(partial=False, feed=3),
        StatusRequest(4),
    ]


def test_each_encoder_function_round_trips() -> None:
    cases: list[tuple[bytes, list[Command]]] = [
        (escpos.initialise(), [Initialise()]),
        (escpos.emphasis(True), [Emphasis(True)]),
        (escpos.character_size(3, 5), [DoubleSize(3, 5)]),
        (escpos.align(escpos.Alignment.CENTER), [Align(1)]),
        (escpos.underline(escpos.UnderlineMode.TWO_DOT), [Underline(2)]),
        (escpos.feed(7), [Feed(7)]),
        (escpos.partial_cut(), [Cut(True)]),
        (escpos.full_cut(feed=9), [Cut(False, 9)]),
        (escpos.qr_select_model(escpos.QrSymbolModel.MICRO), [QrModel(3)]),
        (escpos.qr_store(b"x" * 7089), [QrStore(b"x" * 7089)]),
        (escpos.line("é"), [Text(b"\x82"), LineFeed()]),
    ]
    for frame, expected in cases:
        assert parse(frame) == expected, frame


def test_tall_image_bands_round_trip() -> None:
    image = Image.new("1", (16, 2500), 0)
    commands = parse(escpos.raster_image(image))
    assert [(c.width_px, c.height) for c in commands if isinstance(c, RasterImage)] == [
        (16, 1024),
        (16, 1024),
        (16, 452),
    ]


def test_byte_at_a_time_equals_whole() -> None:
    data = sample_stream() + b"\x00\x1b\x61\x09junk\x10\x04\x09\x1d\x28\x6b\x01\x00\x31tail"
    whole = parse(data)
    assert bytewise(data) == whole
    assert any(isinstance(c, Garbage) for c in whole)


# -- hypothesis: nothing escapes, and the parser always makes progress ---------------------


LIMITS = {"max_raster_width": 256, "max_raster_height": 256, "max_frame": 4096}


def check_invariants(data: bytes, chunks: list[int]) -> list[Command]:
    """Feed ``data`` cut at ``chunks``; check the bookkeeping; return everything parsed."""
    parser = EscPosParser(**LIMITS)
    out: list[Command] = []
    start = 0
    for cut in [*sorted(chunks), len(data)]:
        piece = data[start:cut]
        start = max(start, cut)
        out += parser.feed(piece)
        # every byte is either in a returned command or still pending, never lost or duplicated
        assert parser.consumed + len(parser.pending) == start
        # what is pending is the start of one command or text run, never a finished one
        assert EscPosParser(**LIMITS).feed(parser.pending) == []
        assert len(parser.pending) <= 8 + 32 * 256 + 4096
    out += parser.flush()
    assert parser.pending == b""
    assert parser.consumed == len(data)
    # progress: every command took at least one byte
    assert len(out) <= len(data)
    return out


CHUNKED = st.binary(max_size=600).flatmap(
    lambda data: st.tuples(
        st.just(data), st.lists(st.integers(0, len(data)), max_size=len(data) // 4 + 1)
    )
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CHUNKED)
def test_random_bytes_never_raise(case: tuple[bytes, list[int]]) -> None:
    data, chunks = case
    out = check_invariants(data, chunks)
    assert out == parse(data, **LIMITS)


@st.composite
def mutated_streams(draw: st.DrawFn) -> bytes:
    data = bytearray(sample_stream())
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_streams(), st.lists(st.integers(0, 400), max_size=20))
def test_mutated_valid_streams_never_raise(data: bytes, chunks: list[int]) -> None:
    out = check_invariants(data, [c for c in chunks if c <= len(data)])
    assert out == parse(data, **LIMITS)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_parser_resynchronises_after_garbage(junk: bytes) -> None:
    """Whatever came before, a flush followed by a valid stream parses exactly."""
    parser = EscPosParser()
    parser.feed(junk)
    parser.flush()
    assert parser.feed(sample_stream()) == parse(sample_stream())
