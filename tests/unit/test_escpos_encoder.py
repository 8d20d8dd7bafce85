"""ESC/POS encoder, checked byte for byte against frames written out by hand from the
Epson ESC/POS Command Reference (the section is named in each test)."""

from __future__ import annotations

import pytest
from PIL import Image

from branchline.drivers.printer import escpos
from branchline.drivers.printer.escpos import (
    Alignment,
    QrErrorLevel,
    QrSymbolModel,
    RasterScale,
    Receipt,
    UnderlineMode,
    UnencodableTextError,
)

# -- text.py -----------------------------------------------------------------------------------


def test_initialise() -> None:
    # Epson ESC/POS Command Reference, ESC @: 1B 40
    assert escpos.initialise() == b"\x1b\x40"


def test_select_code_table() -> None:
    # ESC t n: 1B 74 n; n = 0 PC437, 2 PC850, 16 WPC1252, 19 PC858
    assert escpos.select_code_table() == b"\x1b\x74\x00"
    assert escpos.select_code_table("cp850") == b"\x1b\x74\x02"
    assert escpos.select_code_table("windows-1252") == b"\x1b\x74\x10"
    assert escpos.select_code_table("IBM858") == b"\x1b\x74\x13"
    with pytest.raises(ValueError, match="no ESC/POS code table"):
        escpos.select_code_table("utf-8")
    with pytest.raises(ValueError, match="unknown codepage"):
        escpos.select_code_table("no-such-codec")


def test_text_cp437() -> None:
    # PC437: é = 0x82, £ = 0x9C, ü = 0x81
    assert escpos.text("Café £5 über") == b"Caf\x82 \x9c5 \x81ber"


def test_text_other_codepage() -> None:
    # PC858 has the euro sign at 0xD5; PC437 has none
    assert escpos.text("5€", "cp858") == b"5\xd5"
    assert escpos.text("5€") == b"5?"


def test_unencodable_replaced_by_question_mark() -> None:
    assert escpos.encode_text("Łódź ✓") == b"?\xa2d? ?"


def test_unencodable_strict_names_every_character() -> None:
    with pytest.raises(UnencodableTextError) as caught:
        escpos.encode_text("a€b✓", strict=True)
    assert caught.value.bad == [(1, "€"), (3, "✓")]
    assert caught.value.codepage == "cp437"
    assert "U+20AC" in str(caught.value) and "U+2713" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_control_characters_cannot_inject_commands() -> None:
    # A customer name holding ESC @ or GS V must print as text, not reset or cut the printer.
    assert escpos.encode_text("A\x1b@B\x1dV\x00\r\t") == b"A?@B?V???"
    with pytest.raises(UnencodableTextError):
        escpos.encode_text("A\x1b@", strict=True)


def test_newlines_become_line_feeds() -> None:
    # LF: 0A
    assert escpos.text("a\nb") == b"a\nb"
    assert escpos.line("total") == b"total\x0a"
    assert escpos.line() == b"\x0a"
    assert escpos.line_feed(3) == b"\n\n\n"


def test_emphasis() -> None:
    # ESC E n: 1B 45 n, on when the LSB of n is 1
    assert escpos.emphasis() == b"\x1b\x45\x01"
    assert escpos.emphasis(False) == b"\x1b\x45\x00"


def test_character_size() -> None:
    # GS ! n: 1D 21 n; bits 4-6 width - 1, bits 0-2 height - 1
    assert escpos.double_size() == b"\x1d\x21\x11"
    assert escpos.double_size(False) == b"\x1d\x21\x00"
    assert escpos.character_size(width=2, height=1) == b"\x1d\x21\x10"
    assert escpos.character_size(width=1, height=3) == b"\x1d\x21\x02"
    assert escpos.character_size(8, 8) == b"\x1d\x21\x77"
    with pytest.raises(ValueError):
        escpos.character_size(9, 1)
    with pytest.raises(ValueError):
        escpos.character_size(1, 0)


def test_align() -> None:
    # ESC a n: 1B 61 n; 0 left, 1 center, 2 right
    assert escpos.align(Alignment.LEFT) == b"\x1b\x61\x00"
    assert escpos.align(Alignment.CENTER) == b"\x1b\x61\x01"
    assert escpos.align(Alignment.RIGHT) == b"\x1b\x61\x02"
    with pytest.raises(ValueError):
        escpos.align(3)


def test_underline() -> None:
    # ESC - n: 1B 2D n; 0 off, 1 one dot, 2 two dots
    assert escpos.underline() == b"\x1b\x2d\x01"
    assert escpos.underline(UnderlineMode.TWO_DOT) == b"\x1b\x2d\x02"
    assert escpos.underline(UnderlineMode.OFF) == b"\x1b\x2d\x00"


# -- qr.py -------------------------------------------------------------------------------------


def test_qr_select_model() -> None:
    # GS ( k <Function 165>: 1D 28 6B 04 00 31 41 n1 n2, n1 = 50 model 2, n2 = 0
    assert escpos.qr_select_model() == bytes.fromhex("1d 28 6b 04 00 31 41 32 00")
    assert escpos.qr_select_model(QrSymbolModel.MODEL_1) == bytes.fromhex("1d286b0400314131 00")


def test_qr_module_size() -> None:
    # GS ( k <Function 167>: 1D 28 6B 03 00 31 43 n, 1 <= n <= 16
    assert escpos.qr_module_size(6) == bytes.fromhex("1d 28 6b 03 00 31 43 06")
    assert escpos.qr_module_size(16) == bytes.fromhex("1d 28 6b 03 00 31 43 10")
    for bad in (0, 17):
        with pytest.raises(ValueError):
            escpos.qr_module_size(bad)


def test_qr_error_correction() -> None:
    # GS ( k <Function 169>: 1D 28 6B 03 00 31 45 n, n = 48 L, 49 M, 50 Q, 51 H
    assert escpos.qr_error_correction(QrErrorLevel.L) == bytes.fromhex("1d 28 6b 03 00 31 45 30")
    assert escpos.qr_error_correction(QrErrorLevel.H) == bytes.fromhex("1d 28 6b 03 00 31 45 33")


def test_qr_store() -> None:
    # GS ( k <Function 180>: 1D 28 6B pL pH 31 50 30 d1..dk, pL + pH * 256 = k + 3
    assert escpos.qr_store("T-0001") == bytes.fromhex("1d 28 6b 09 00 31 50 30") + b"T-0001"


def test_qr_store_length_over_255_uses_ph() -> None:
    # k = 300: pL + pH * 256 = 303 = 0x012F -> pL = 2F, pH = 01
    frame = escpos.qr_store(b"x" * 300)
    assert frame[:8] == bytes.fromhex("1d 28 6b 2f 01 31 50 30")
    assert len(frame) == 8 + 300


def test_qr_store_limits() -> None:
    # 4 <= pL + pH * 256 <= 7092, so 1 <= k <= 7089
    assert escpos.qr_store(b"x" * 7089)[3:5] == (7092).to_bytes(2, "little")
    with pytest.raises(ValueError):
        escpos.qr_store(b"")
    with pytest.raises(ValueError):
        escpos.qr_store(b"x" * 7090)


def test_qr_print() -> None:
    # GS ( k <Function 181>: 1D 28 6B 03 00 31 51 30
    assert escpos.qr_print() == bytes.fromhex("1d 28 6b 03 00 31 51 30")


def test_qr_code_sends_the_five_functions_in_order() -> None:
    assert escpos.qr_code("T-0001", module_size=4, error_correction=QrErrorLevel.Q) == (
        bytes.fromhex("1d 28 6b 04 00 31 41 32 00")
        + bytes.fromhex("1d 28 6b 03 00 31 43 04")
        + bytes.fromhex("1d 28 6b 03 00 31 45 32")
        + bytes.fromhex("1d 28 6b 09 00 31 50 30")
        + b"T-0001"
        + bytes.fromhex("1d 28 6b 03 00 31 51 30")
    )


# -- raster.py ---------------------------------------------------------------------------------


def test_raster_frame_from_hand_drawn_image() -> None:
    # GS v 0: 1D 76 30 m xL xH yL yH d1..dk; x in bytes, y in dots, MSB leftmost, 1 = black.
    image = Image.new("1", (10, 2), 1)  # 10 dots wide -> 2 bytes, padded with white
    image.putpixel((0, 0), 0)
    image.putpixel((9, 1), 0)
    assert escpos.raster_image(image) == bytes.fromhex("1d 76 30 00 02 00 02 00 80 00 00 40")


def test_raster_converts_colour_and_transparency() -> None:
    image = Image.new("RGBA", (8, 1), (0, 0, 0, 0))  # fully transparent: white paper
    image.putpixel((3, 0), (200, 0, 0, 255))  # dark red: printed without dithering
    assert escpos.raster_image(image, dither=False) == bytes.fromhex("1d 76 30 00 01 00 01 00 10")


def test_raster_threshold() -> None:
    image = Image.new("L", (8, 1), 255)
    image.putpixel((0, 0), 100)
    assert escpos.raster_image(image, dither=False, threshold=128)[-1] == 0x80
    assert escpos.raster_image(image, dither=False, threshold=90)[-1] == 0x00


def test_raster_scale_and_width_over_255_bytes() -> None:
    image = Image.new("1", (2048 + 8, 1), 1)  # 257 bytes: xL = 01, xH = 01
    frame = escpos.raster_image(image, scale=RasterScale.QUADRUPLE)
    assert frame[:8] == bytes.fromhex("1d 76 30 03 01 01 01 00")
    assert len(frame) == 8 + 257


def test_raster_tall_image_is_sent_in_bands() -> None:
    image = Image.new("1", (8, 5), 0)
    frames = escpos.raster_image(image, band_height=2)
    band = bytes.fromhex("1d 76 30 00 01 00 02 00 ff ff")
    last = bytes.fromhex("1d 76 30 00 01 00 01 00 ff")
    assert frames == band + band + last


def test_raster_rejects_empty_image_and_bad_band() -> None:
    with pytest.raises(ValueError):
        escpos.raster_image(Image.new("1", (0, 0)))
    with pytest.raises(ValueError):
        escpos.raster_image(Image.new("1", (8, 8)), band_height=2304)  # yH <= 8


# -- paper.py ----------------------------------------------------------------------------------


def test_feed() -> None:
    # ESC d n: 1B 64 n
    assert escpos.feed(3) == b"\x1b\x64\x03"
    with pytest.raises(ValueError):
        escpos.feed(256)


def test_cut() -> None:
    # GS V Function A: 1D 56 m, m = 0 full cut, 1 partial cut
    assert escpos.full_cut() == b"\x1d\x56\x00"
    assert escpos.partial_cut() == b"\x1d\x56\x01"
    # GS V Function B: 1D 56 m n, m = 65 full, 66 partial, after feeding to the cutter + n
    assert escpos.cut(False, feed=0) == b"\x1d\x56\x41\x00"
    assert escpos.cut(True, feed=5) == b"\x1d\x56\x42\x05"


# -- status.py (requests; decoding is in test_escpos_status.py) ---------------------------------


def test_status_requests() -> None:
    # DLE EOT n: 10 04 n
    assert [escpos.request_status(n) for n in (1, 2, 3, 4)] == [
        b"\x10\x04\x01",
        b"\x10\x04\x02",
        b"\x10\x04\x03",
        b"\x10\x04\x04",
    ]
    with pytest.raises(ValueError):
        escpos.request_status(5)


# -- receipt.py --------------------------------------------------------------------------------


def test_receipt_bytes() -> None:
    data = (
        Receipt(width=20)
        .title("Bank")
        .line("Hi", bold=True)
        .key_value("Amount", "5.00")
        .qr("T-0001", module_size=4, error_correction=QrErrorLevel.L)
        .feed(2)
        .cut()
        .to_bytes()
    )
    assert data == (
        b"\x1b@\x1bt\x00"  # initialise, PC437
        + b"\x1ba\x01\x1bE\x01\x1d!\x11Bank\n\x1d!\x00\x1bE\x00\x1ba\x00"  # title
        + b"\x1bE\x01Hi\n\x1bE\x00"
        + b"Amount"
        + b" " * 10
        + b"5.00\n"  # 20 characters wide
        + b"\n\x1ba\x01"
        + escpos.qr_code("T-0001", module_size=4, error_correction=QrErrorLevel.L)
        + b"\n\x1ba\x00"
        + b"\x1bd\x02"
        + b"\x1dVB\x00"  # partial cut after feeding past the cutter
    )


def test_receipt_key_value_too_long_uses_two_lines() -> None:
    data = Receipt(width=10).key_value("Reference", "ABC-123").to_bytes()
    assert data.endswith(b"Reference\n   ABC-123\n")


def test_receipt_image_and_codepage() -> None:
    image = Image.new("1", (8, 1), 0)
    data = Receipt(codepage="cp858").line("5€").image(image).to_bytes()
    assert data == (
        b"\x1b@\x1bt\x13"
        + b"5\xd5\n"
        + b"\x1ba\x01"
        + bytes.fromhex("1d 76 30 00 01 00 01 00 ff")
        + b"\x1ba\x00"
    )


def test_receipt_validates_early() -> None:
    with pytest.raises(ValueError):
        Receipt(codepage="utf-8")
    with pytest.raises(ValueError):
        Receipt().qr("")
    with pytest.raises(ValueError):
        Receipt().qr("x", module_size=20)
    with pytest.raises(UnencodableTextError):
        Receipt(strict=True).line("€").to_bytes()
