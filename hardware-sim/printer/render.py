"""Draw one receipt, as the simulated printer would print it, onto a 1-bit Pillow image.

The paper is 576 dots wide (80 mm paper at 203 dpi, 72 mm printable). Text uses Pillow's
built-in 6x11 bitmap font drawn in a 6x12 cell and scaled 2x, i.e. a 12x24 cell like ESC/POS
Font A (48 characters per line); GS ! magnifies it further, ESC E draws it twice one magnified dot apart,
ESC - underlines it. Lines wrap at the paper edge and are justified by the ESC a in force when
the line started. QR codes are drawn with the ``qrcode`` library at the stored module size (the
printer draws model 1 and Micro QR requests as model 2, and skips a symbol wider than the paper,
as printers do); raster images are pasted as they come, cut at the paper edge.

This is a picture for people and barcode readers, not a dot-exact emulation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import qrcode
import qrcode.constants
import qrcode.exceptions
from PIL import Image, ImageChops, ImageDraw, ImageFont

from .commands import (
    Align,
    Command,
    Cut,
    DoubleSize,
    Emphasis,
    Feed,
    Initialise,
    LineFeed,
    QrErrorCorrection,
    QrModuleSize,
    QrPrint,
    QrStore,
    RasterImage,
    SelectCodeTable,
    Text,
    Underline,
)

PAPER_WIDTH = 576
LINE_SPACING = 30  # dots fed per line (ESC 2 default); a taller line feeds its own height
CELL_WIDTH, CELL_HEIGHT = 12, 24  # Font A
MAX_HEIGHT = 32768  # paper longer than this is not drawn

# ESC t n -> Python codec (Epson ESC/POS Command Reference, ESC t); others fall back to PC437.
CODE_TABLE_CODECS = {
    0: "cp437",
    2: "cp850",
    3: "cp860",
    4: "cp863",
    5: "cp865",
    16: "cp1252",
    17: "cp866",
    18: "cp852",
    19: "cp858",
}
_QR_LEVELS = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}
_FONT = ImageFont.load_default_imagefont()


@lru_cache(maxsize=1024)
def _glyph(char: str, width: int, height: int, bold: bool, underline: int) -> Image.Image:
    """One character cell, black on white, magnified ``width`` x ``height`` times."""
    if ord(char) > 0xFF:  # the bitmap font holds Latin-1 only
        char = "?"
    base = Image.new("1", (CELL_WIDTH // 2, CELL_HEIGHT // 2), 1)
    draw = ImageDraw.Draw(base)
    draw.text((0, 0), char, font=_FONT, fill=0)
    cell = base.resize((CELL_WIDTH * width, CELL_HEIGHT * height), Image.Resampling.NEAREST)
    if bold:  # emphasized: the same dots again, shifted right by one (magnified) dot
        shifted = Image.new("1", cell.size, 1)
        shifted.paste(cell.crop((0, 0, cell.width - width, cell.height)), (width, 0))
        cell = ImageChops.logical_and(cell, shifted)
    if underline:
        ImageDraw.Draw(cell).rectangle(
            (0, cell.height - underline, cell.width - 1, cell.height - 1), fill=0
        )
    return cell


def _qr_image(data: bytes, module_size: int, level: str) -> Image.Image | None:
    code = qrcode.QRCode(version=None, error_correction=_QR_LEVELS[level], box_size=1, border=0)
    try:
        code.add_data(data)
        code.make(fit=True)
    except (qrcode.exceptions.DataOverflowError, ValueError):
        return None  # a printer prints nothing for data it cannot encode
    matrix = code.get_matrix()
    n = len(matrix)
    pixels = bytes(0 if dark else 255 for row in matrix for dark in row)
    image = Image.frombytes("L", (n, n), pixels).convert("1")
    return image.resize((n * module_size, n * module_size), Image.Resampling.NEAREST)


@dataclass
class _Paper:
    width: int
    max_height: int
    y: int = 0
    placed: list[tuple[Image.Image, int, int]] = field(default_factory=list)
    truncated: bool = False

    def place(self, image: Image.Image, align: int, advance: int | None = None) -> None:
        """Put ``image`` at the current line, justified, then feed ``advance`` (its height)."""
        if image.width > self.width:
            image = image.crop((0, 0, self.width, image.height))
        x = {1: (self.width - image.width) // 2, 2: self.width - image.width}.get(align, 0)
        if self.y + image.height > self.max_height:
            self.truncated = True
        else:
            self.placed.append((image, x, self.y))
        self.skip(image.height if advance is None else advance)

    def skip(self, dots: int) -> None:
        self.y = min(self.y + dots, self.max_height)

    def image(self) -> Image.Image:
        out = Image.new("1", (self.width, max(self.y, 1)), 1)
        for image, x, y in self.placed:
            out.paste(image, (x, y))
        return out


@dataclass
class _Printer:
    paper: _Paper
    codec: str = "cp437"
    align: int = 0
    bold: bool = False
    width: int = 1
    height: int = 1
    underline: int = 0
    qr_size: int = 3
    qr_level: str = "L"
    qr_data: bytes | None = None
    line: list[Image.Image] = field(default_factory=list)
    line_width: int = 0
    line_align: int = 0

    def reset(self) -> None:
        paper = self.paper
        self.__dict__.update(_Printer(paper).__dict__)

    def put_char(self, char: str) -> None:
        glyph = _glyph(char, self.width, self.height, self.bold, self.underline)
        if self.line and self.line_width + glyph.width > self.paper.width:
            self.print_line()
        if not self.line:
            self.line_align = self.align
        self.line.append(glyph)
        self.line_width += glyph.width

    def print_line(self, *, feed_if_empty: bool = False) -> None:
        """Print the line buffer (LF, ESC d, a full line, ...) and feed past it."""
        if not self.line:
            if feed_if_empty:
                self.paper.skip(LINE_SPACING)
            return
        height = max(glyph.height for glyph in self.line)
        band = Image.new("1", (self.line_width, height), 1)
        x = 0
        for glyph in self.line:
            band.paste(glyph, (x, height - glyph.height))  # characters share a baseline
            x += glyph.width
        self.paper.place(band, self.line_align, max(height, LINE_SPACING))
        self.line.clear()
        self.line_width = 0

    def run(self, command: Command) -> bool:
        """Apply one command; False at the cut that ends the receipt."""
        match command:
            case Text(data):
                for char in data.decode(self.codec, errors="replace"):
                    self.put_char(char)
            case LineFeed():
                self.print_line(feed_if_empty=True)
            case Feed(lines):
                self.print_line()
                self.paper.skip(lines * LINE_SPACING)
            case Initialise():
                self.reset()
            case SelectCodeTable(table):
                self.codec = CODE_TABLE_CODECS.get(table, "cp437")
            case Emphasis(on):
                self.bold = on
            case DoubleSize(width, height):
                self.width, self.height = width, height
            case Align(alignment):
                self.align = alignment
            case Underline(thickness):
                self.underline = thickness
            case QrModuleSize(size):
                self.qr_size = size
            case QrErrorCorrection(level):
                self.qr_level = level
            case QrStore(data):
                self.qr_data = data
            case QrPrint():
                self.print_line()
                if self.qr_data is not None:
                    symbol = _qr_image(self.qr_data, self.qr_size, self.qr_level)
                    if symbol is not None and symbol.width <= self.paper.width:
                        self.paper.place(symbol, self.align)
            case RasterImage(width_px, height, data, scale):
                self.print_line()
                image = Image.frombytes("1", (width_px, height), data, "raw", "1;I")
                if scale:
                    x_scale, y_scale = (2 if scale & 1 else 1), (2 if scale & 2 else 1)
                    # only what fits on the paper is magnified
                    visible = image.crop(
                        (0, 0, min(width_px, -(-self.paper.width // x_scale)), height)
                    )
                    image = visible.resize(
                        (visible.width * x_scale, height * y_scale), Image.Resampling.NEAREST
                    )
                self.paper.place(image, self.align)
            case Cut():
                self.print_line()
                return False
        return True  # CarriageReturn, QrModel, StatusRequest, Unknown, Garbage: nothing to draw


def render_receipt(
    commands: Iterable[Command], *, width: int = PAPER_WIDTH, max_height: int = MAX_HEIGHT
) -> Image.Image:
    """Draw ``commands`` up to and including the first Cut (the rest is ignored) on fresh paper.

    Text still in the line buffer when the commands run out is printed too, so a receipt without
    a cut can be inspected. Returns a mode "1" image ``width`` dots wide.
    """
    printer = _Printer(_Paper(width, max_height))
    for command in commands:
        if not printer.run(command):
            break
    else:
        printer.print_line()
    return printer.paper.image()


def split_receipts(commands: Iterable[Command]) -> Iterator[list[Command]]:
    """Group a command stream into receipts, each ending with its Cut (the last one may not)."""
    current: list[Command] = []
    for command in commands:
        current.append(command)
        if isinstance(command, Cut):
            yield current
            current = []
    if current:
        yield current


_NAME = re.compile(r"^receipt-(\d+)-.*\.png$")


def save_receipt(image: Image.Image, directory: str | Path, *, now: datetime | None = None) -> Path:
    """Write ``image`` as ``receipt-NNNNNN-<UTC timestamp>.png`` and return its path.

    NNNNNN continues from the highest number already in ``directory``, so names sort in print
    order. The file appears atomically (written under a temporary name, then renamed). One
    writer per directory is assumed.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    highest = 0
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            highest = max(highest, int(match.group(1)))
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"receipt-{highest + 1:06d}-{stamp}.png"
    partial = folder / f".{path.name}.tmp"
    image.save(partial, format="PNG")
    partial.replace(path)
    return path
