"""A small declarative receipt: list what goes on it, get the ESC/POS bytes.

    data = (
        Receipt()
        .title("Branchline Bank")
        .line("Cash withdrawal")
        .key_value("Amount", "100.00 EUR")
        .qr("T-0001")
        .cut()
        .to_bytes()
    )

Each part leaves the printer in its normal state (left aligned, normal size, no emphasis or
underline), so parts can be listed in any order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from . import paper, qr, raster
from . import text as t
from .text import Alignment


@dataclass(frozen=True, slots=True)
class Title:
    text: str


@dataclass(frozen=True, slots=True)
class TextLine:
    text: str
    align: Alignment = Alignment.LEFT
    bold: bool = False
    underline: bool = False


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class QrBlock:
    data: str | bytes
    module_size: int = 6
    error_correction: qr.QrErrorLevel = qr.QrErrorLevel.M


@dataclass(frozen=True, slots=True)
class ImageBlock:
    image: Image.Image
    align: Alignment = Alignment.CENTER
    dither: bool = True


@dataclass(frozen=True, slots=True)
class FeedBlock:
    lines: int


@dataclass(frozen=True, slots=True)
class CutBlock:
    partial: bool = True
    feed: int = 0


ReceiptPart = Title | TextLine | KeyValue | QrBlock | ImageBlock | FeedBlock | CutBlock


@dataclass
class Receipt:
    """Parts in print order. ``width`` is characters per line at normal size (48: Font A, 80 mm)."""

    codepage: str = t.DEFAULT_CODEPAGE
    width: int = 48
    strict: bool = False
    parts: list[ReceiptPart] = field(default_factory=list)

    def __post_init__(self) -> None:
        t.code_table_number(self.codepage)  # fail now, not at to_bytes()
        if self.width < 2:
            raise ValueError(f"width must be at least 2 characters, got {self.width}")

    def add(self, part: ReceiptPart) -> Receipt:
        self.parts.append(part)
        return self

    def title(self, text: str) -> Receipt:
        """Centered, emphasized, double width and height."""
        return self.add(Title(text))

    def line(
        self,
        text: str = "",
        *,
        align: Alignment = Alignment.LEFT,
        bold: bool = False,
        underline: bool = False,
    ) -> Receipt:
        return self.add(TextLine(text, align, bold, underline))

    def lines(self, *texts: str) -> Receipt:
        for text in texts:
            self.line(text)
        return self

    def key_value(self, key: str, value: str) -> Receipt:
        """``key`` at the left, ``value`` at the right; on two lines when they do not fit on one."""
        return self.add(KeyValue(key, value))

    def qr(
        self,
        data: str | bytes,
        *,
        module_size: int = 6,
        error_correction: qr.QrErrorLevel = qr.QrErrorLevel.M,
    ) -> Receipt:
        """A centered QR code, rendered by the printer, with a blank line above and below."""
        qr.qr_store(data)  # validate now
        qr.qr_module_size(module_size)
        return self.add(QrBlock(data, module_size, error_correction))

    def image(
        self, image: Image.Image, *, align: Alignment = Alignment.CENTER, dither: bool = True
    ) -> Receipt:
        return self.add(ImageBlock(image, align, dither))

    def feed(self, lines: int) -> Receipt:
        paper.feed(lines)  # validate now
        return self.add(FeedBlock(lines))

    def cut(self, *, partial: bool = True, feed: int = 0) -> Receipt:
        """Feed the last line past the cutter and cut (GS V Function B)."""
        paper.cut(partial, feed=feed)
        return self.add(CutBlock(partial, feed))

    def to_bytes(self) -> bytes:
        out = bytearray(t.initialise() + t.select_code_table(self.codepage))
        for part in self.parts:
            out += self._encode(part)
        return bytes(out)

    def _text_line(self, value: str) -> bytes:
        return t.line(value, self.codepage, strict=self.strict)

    def _encode(self, part: ReceiptPart) -> bytes:
        match part:
            case Title(text):
                return (
                    t.align(Alignment.CENTER)
                    + t.emphasis(True)
                    + t.double_size(True)
                    + self._text_line(text)
                    + t.double_size(False)
                    + t.emphasis(False)
                    + t.align(Alignment.LEFT)
                )
            case TextLine(text, align, bold, underline):
                out = t.align(align) if align != Alignment.LEFT else b""
                out += t.emphasis(True) if bold else b""
                out += t.underline(t.UnderlineMode.ONE_DOT) if underline else b""
                out += self._text_line(text)
                out += t.underline(t.UnderlineMode.OFF) if underline else b""
                out += t.emphasis(False) if bold else b""
                out += t.align(Alignment.LEFT) if align != Alignment.LEFT else b""
                return out
            case KeyValue(key, value):
                if len(key) + 1 + len(value) <= self.width:
                    return self._text_line(key + " " * (self.width - len(key) - len(value)) + value)
                return self._text_line(key) + self._text_line(value.rjust(self.width))
            case QrBlock(data, module_size, level):
                return (
                    t.line_feed()
                    + t.align(Alignment.CENTER)
                    + qr.qr_code(data, module_size=module_size, error_correction=level)
                    + t.line_feed()
                    + t.align(Alignment.LEFT)
                )
            case ImageBlock(image, align, dither):
                return (
                    t.align(align)
                    + raster.raster_image(image, dither=dither)
                    + t.align(Alignment.LEFT)
                )
            case FeedBlock(lines):
                return paper.feed(lines)
            case CutBlock(partial, feed):
                return paper.cut(partial, feed=feed)
        raise TypeError(f"not a receipt part: {part!r}")
