"""What the simulated printer understands: one frozen dataclass per parsed ESC/POS command.

Values are normalised: ``Align.alignment`` is 0/1/2 whether the host sent 0 or 48, and so on.
Nothing here imports the driver's encoder: the simulator is an independent reading of the
Epson ESC/POS Command Reference, so the two can check each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Text:
    """Printable bytes (0x20..0xFF) in the selected code table, not yet decoded."""

    data: bytes


@dataclass(frozen=True, slots=True)
class LineFeed:
    """LF: print the buffer and feed one line."""


@dataclass(frozen=True, slots=True)
class CarriageReturn:
    """CR: ignored by receipt printers unless auto line feed is on."""


@dataclass(frozen=True, slots=True)
class Initialise:
    """ESC @."""


@dataclass(frozen=True, slots=True)
class SelectCodeTable:
    """ESC t n."""

    table: int


@dataclass(frozen=True, slots=True)
class Emphasis:
    """ESC E n (on when the least significant bit of n is 1)."""

    on: bool


@dataclass(frozen=True, slots=True)
class DoubleSize:
    """GS ! n: character magnification, 1..8 in each direction (2, 2 is double size)."""

    width: int = 1
    height: int = 1


@dataclass(frozen=True, slots=True)
class Align:
    """ESC a n: 0 left, 1 center, 2 right."""

    alignment: int


@dataclass(frozen=True, slots=True)
class Underline:
    """ESC - n: 0 off, 1 one dot, 2 two dots thick."""

    thickness: int


@dataclass(frozen=True, slots=True)
class Feed:
    """ESC d n: print the buffer and feed n lines."""

    lines: int


@dataclass(frozen=True, slots=True)
class Cut:
    """GS V (and the older ESC i / ESC m). ``feed`` is Function B/C/D's n, else 0."""

    partial: bool
    feed: int = 0


@dataclass(frozen=True, slots=True)
class QrModel:
    """GS ( k <Function 165>: 1, 2 or 3 (Micro QR)."""

    model: int


@dataclass(frozen=True, slots=True)
class QrModuleSize:
    """GS ( k <Function 167>: module size in dots, 1..16."""

    size: int


@dataclass(frozen=True, slots=True)
class QrErrorCorrection:
    """GS ( k <Function 169>: "L", "M", "Q" or "H"."""

    level: str


@dataclass(frozen=True, slots=True)
class QrStore:
    """GS ( k <Function 180>: the symbol data."""

    data: bytes


@dataclass(frozen=True, slots=True)
class QrPrint:
    """GS ( k <Function 181>."""


@dataclass(frozen=True, slots=True)
class RasterImage:
    """GS v 0: ``height`` rows of ``width_px // 8`` bytes, most significant bit leftmost, 1 = dot.

    ``scale`` is m normalised to 0 normal, 1 double width, 2 double height, 3 quadruple.
    """

    width_px: int
    height: int
    data: bytes
    scale: int = 0


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """DLE EOT n, n = 1..4: the host wants one status byte back."""

    n: int


@dataclass(frozen=True, slots=True)
class Unknown:
    """A well-formed command the simulator does not act on (whole frame when its length is known)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Garbage:
    """Bytes that are not a valid command: stray control bytes, out-of-range parameters, or an
    incomplete command left at the end of the stream."""

    data: bytes
    reason: str


Command = (
    Text
    | LineFeed
    | CarriageReturn
    | Initialise
    | SelectCodeTable
    | Emphasis
    | DoubleSize
    | Align
    | Underline
    | Feed
    | Cut
    | QrModel
    | QrModuleSize
    | QrErrorCorrection
    | QrStore
    | QrPrint
    | RasterImage
    | StatusRequest
    | Unknown
    | Garbage
)
