"""The simulated printer's receipt picture: QR codes a reader can scan, text, images, files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from branchline.drivers.printer import escpos
from branchline.sim.printer import (
    PAPER_WIDTH,
    Align,
    Cut,
    Garbage,
    LineFeed,
    QrPrint,
    QrStore,
    RasterImage,
    Text,
    parse,
    render_receipt,
    save_receipt,
    split_receipts,
)


def ink(image: Image.Image) -> int:
    """Number of black dots."""
    return image.width * image.height - sum(1 for v in image.convert("L").tobytes() if v)


def test_qr_code_on_the_receipt_scans_back() -> None:
    data = (
        escpos.Receipt()
        .title("Branchline")
        .key_value("Ticket", "T-0001")
        .qr("T-0001")
        .line("Thank you")
        .cut()
        .to_bytes()
    )
    image = render_receipt(parse(data))
    assert image.width == PAPER_WIDTH == 576
    results = zxingcpp.read_barcodes(image)
    assert [r.text for r in results] == ["T-0001"]


def test_qr_module_size_sets_the_symbol_size() -> None:
    def qr_width(size: int) -> int:
        commands = parse(escpos.qr_code("T-0001", module_size=size) + escpos.cut())
        image = render_receipt(commands)
        box = image.convert("L").point(lambda v: 255 - v).getbbox()
        assert box is not None
        return box[2] - box[0]

    # version 1 symbol: 21 modules
    assert qr_width(3) == 21 * 3
    assert qr_width(8) == 21 * 8


def test_qr_wider_than_paper_is_not_printed() -> None:
    commands = parse(escpos.qr_code("x" * 500, module_size=16) + escpos.cut())
    assert ink(render_receipt(commands)) == 0


def test_qr_print_without_data_prints_nothing() -> None:
    assert ink(render_receipt([QrPrint(), Cut(False)])) == 0


def test_qr_data_too_long_for_any_symbol_prints_nothing() -> None:
    assert ink(render_receipt([QrStore(b"\xff" * 7089), QrPrint()])) == 0


def test_alignment_moves_text() -> None:
    def left_edge(alignment: int) -> int:
        image = render_receipt([Align(alignment), Text(b"HI"), LineFeed()])
        box = image.convert("L").point(lambda v: 255 - v).getbbox()
        assert box is not None
        return box[0]

    assert left_edge(0) < 12
    assert 576 // 2 - 24 <= left_edge(1) <= 576 // 2
    assert left_edge(2) >= 576 - 24


def test_double_size_and_emphasis_draw_more_ink() -> None:
    normal = ink(render_receipt(parse(escpos.line("Branchline"))))
    bold = ink(render_receipt(parse(escpos.emphasis() + escpos.line("Branchline"))))
    double = ink(render_receipt(parse(escpos.double_size() + escpos.line("Branchline"))))
    assert normal < bold
    assert double == 4 * normal


def test_long_line_wraps_at_48_characters() -> None:
    one = render_receipt(parse(escpos.line("x" * 48)))
    two = render_receipt(parse(escpos.line("x" * 49)))
    assert two.height > one.height


def test_raster_image_is_pasted_dot_for_dot() -> None:
    logo = Image.new("1", (16, 4), 1)
    logo.putpixel((0, 0), 0)
    logo.putpixel((15, 3), 0)
    image = render_receipt(parse(escpos.raster_image(logo) + escpos.cut()))
    assert image.size == (576, 4)
    assert image.getpixel((0, 0)) == 0 and image.getpixel((15, 3)) == 0
    assert ink(image) == 2


def test_raster_wider_than_paper_is_cut_at_the_edge() -> None:
    image = render_receipt([RasterImage(1024, 2, b"\xff" * 256)])
    assert image.size == (576, 2)
    assert ink(image) == 576 * 2


def test_rendering_stops_at_the_first_cut() -> None:
    commands = parse(escpos.line("one") + escpos.cut() + escpos.line("two") + escpos.line("three"))
    receipts = list(split_receipts(commands))
    assert len(receipts) == 2 and isinstance(receipts[0][-1], Cut)
    assert render_receipt(commands).tobytes() == render_receipt(receipts[0]).tobytes()


def test_garbage_and_unusual_text_do_not_break_rendering() -> None:
    commands = parse(bytes(range(256)) * 2 + b"\x1b\x74\x11\xe0\xe1\n" + b"\x1b\x74\x63\xb0\n")
    assert any(isinstance(c, Garbage) for c in commands)
    image = render_receipt(commands)
    assert image.width == 576 and image.height > 0


def test_save_receipt_numbers_continue(tmp_path: Path) -> None:
    image = Image.new("1", (576, 10), 1)
    first = save_receipt(image, tmp_path / "out", now=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert first.name == "receipt-000001-20250102T030405000000Z.png"
    (tmp_path / "out" / "receipt-000041-20200101T000000000000Z.png").write_bytes(b"")
    (tmp_path / "out" / "notes.txt").write_text("not a receipt")
    second = save_receipt(image, tmp_path / "out", now=datetime(2025, 1, 1, tzinfo=UTC))
    assert second.name.startswith("receipt-000042-")
    names = sorted(p.name for p in (tmp_path / "out").glob("receipt-*.png"))
    assert names[-1] == second.name  # newest sorts last even with an older clock
    with Image.open(second) as reloaded:
        assert reloaded.size == (576, 10)
    assert not list((tmp_path / "out").glob(".*.tmp"))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_any_parsed_stream_renders(data: bytes) -> None:
    image = render_receipt(parse(data, max_raster_width=1024, max_raster_height=512))
    assert image.width == 576


def test_raster_scale_modes_magnify() -> None:
    # GS v 0 m: 1 double width, 2 double height, 3 quadruple
    dot = bytes.fromhex("80")
    assert render_receipt([RasterImage(8, 1, dot, scale=1)]).getpixel((1, 0)) == 0
    tall = render_receipt([RasterImage(8, 1, dot, scale=2)])
    assert tall.height == 2 and tall.getpixel((0, 1)) == 0 and tall.getpixel((1, 0)) == 255
    assert ink(render_receipt([RasterImage(8, 1, dot, scale=3)])) == 4


def test_huge_scaled_raster_is_bounded() -> None:
    image = render_receipt([RasterImage(4096, 8192, b"\xff" * (512 * 8192), scale=3)])
    assert image.size == (576, 16384)
