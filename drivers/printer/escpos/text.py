"""Text and character-style commands.

Epson ESC/POS Command Reference: ESC @ (initialize printer), ESC t (select character code table),
LF (print and line feed), ESC E (emphasized mode), GS ! (select character size),
ESC a (select justification), ESC - (underline mode).

Text is sent as bytes in the printer's selected code table. Characters the code table cannot hold
and control characters (which would otherwise be read by the printer as commands: a customer name
containing ESC must not become a command) are replaced by ``?``; ``strict=True`` raises
:class:`UnencodableTextError` instead, naming every offending character.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from enum import IntEnum
from types import MappingProxyType

from ._codes import ESC, GS, LF, check_range

DEFAULT_CODEPAGE = "cp437"

# Python codec name -> ESC t n (Epson ESC/POS Command Reference, ESC t, "Character code table").
CODE_TABLES: Mapping[str, int] = MappingProxyType(
    {
        "cp437": 0,  # PC437: USA, Standard Europe
        "cp850": 2,  # PC850: Multilingual
        "cp860": 3,  # PC860: Portuguese
        "cp863": 4,  # PC863: Canadian-French
        "cp865": 5,  # PC865: Nordic
        "cp1252": 16,  # WPC1252
        "cp866": 17,  # PC866: Cyrillic #2
        "cp852": 18,  # PC852: Latin 2
        "cp858": 19,  # PC858: Euro
    }
)


class Alignment(IntEnum):
    """ESC a n."""

    LEFT = 0
    CENTER = 1
    RIGHT = 2


class UnderlineMode(IntEnum):
    """ESC - n."""

    OFF = 0
    ONE_DOT = 1
    TWO_DOT = 2


class UnencodableTextError(ValueError):
    """Text holds characters the code table cannot print (raised only with ``strict=True``)."""

    def __init__(self, text: str, codepage: str, bad: list[tuple[int, str]]) -> None:
        shown = ", ".join(f"{ch!r} (U+{ord(ch):04X}) at {i}" for i, ch in bad[:10])
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        super().__init__(f"cannot print in {codepage}: {shown}{more}")
        self.text = text
        self.codepage = codepage
        self.bad = bad


def _codec_name(codepage: str) -> str:
    try:
        return codecs.lookup(codepage).name
    except LookupError:
        raise ValueError(f"unknown codepage {codepage!r}") from None


def code_table_number(codepage: str) -> int:
    """The ESC t table number for a Python codec name (``cp437``, ``IBM850``, ``windows-1252``)."""
    name = _codec_name(codepage)
    try:
        return CODE_TABLES[name]
    except KeyError:
        known = ", ".join(CODE_TABLES)
        raise ValueError(
            f"codepage {codepage!r} has no ESC/POS code table; known: {known}"
        ) from None


def initialise() -> bytes:
    """ESC @: clear the print buffer and reset every mode to its power-on default."""
    return bytes((ESC, 0x40))


def select_code_table(codepage: str = DEFAULT_CODEPAGE) -> bytes:
    """ESC t n for the code table matching ``codepage``."""
    return bytes((ESC, 0x74, code_table_number(codepage)))


def encode_text(text: str, codepage: str = DEFAULT_CODEPAGE, *, strict: bool = False) -> bytes:
    """Encode printable text; unencodable and control characters become ``?`` (or raise if strict).

    Newlines are control characters here too; use :func:`text` or :func:`line` to print them.
    """
    codec = _codec_name(codepage)
    out = bytearray()
    bad: list[tuple[int, str]] = []
    for index, char in enumerate(text):
        try:
            encoded = char.encode(codec)
        except UnicodeEncodeError:
            encoded = b""
        if len(encoded) != 1 or encoded[0] < 0x20:
            bad.append((index, char))
            encoded = b"?"
        out += encoded
    if bad and strict:
        raise UnencodableTextError(text, codec, bad)
    return bytes(out)


def text(value: str, codepage: str = DEFAULT_CODEPAGE, *, strict: bool = False) -> bytes:
    """Text for the print buffer; each ``\\n`` becomes LF (print and line feed)."""
    return b"\n".join(encode_text(part, codepage, strict=strict) for part in value.split("\n"))


def line(value: str = "", codepage: str = DEFAULT_CODEPAGE, *, strict: bool = False) -> bytes:
    """Text followed by LF."""
    return text(value, codepage, strict=strict) + bytes((LF,))


def line_feed(count: int = 1) -> bytes:
    """LF: print the buffer and feed one line, ``count`` times."""
    check_range("count", count, 0, 255)
    return bytes((LF,)) * count


def emphasis(on: bool = True) -> bytes:
    """ESC E n: emphasized (bold) mode on or off."""
    return bytes((ESC, 0x45, 1 if on else 0))


def character_size(width: int = 1, height: int = 1) -> bytes:
    """GS ! n: character width and height magnification, 1..8 each."""
    check_range("width", width, 1, 8)
    check_range("height", height, 1, 8)
    return bytes((GS, 0x21, ((width - 1) << 4) | (height - 1)))


def double_size(on: bool = True) -> bytes:
    """GS ! 0x11 (double width and height) or GS ! 0 (normal)."""
    return character_size(2, 2) if on else character_size(1, 1)


def align(alignment: Alignment | int) -> bytes:
    """ESC a n: justification of the lines that follow."""
    return bytes((ESC, 0x61, Alignment(alignment).value))


def underline(mode: UnderlineMode | int = UnderlineMode.ONE_DOT) -> bytes:
    """ESC - n: underline off, one dot thick or two dots thick."""
    return bytes((ESC, 0x2D, UnderlineMode(mode).value))
