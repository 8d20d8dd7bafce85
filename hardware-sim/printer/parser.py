"""Incremental ESC/POS parser for the simulated receipt printer.

Feed it bytes in chunks of any size; it returns the commands completed so far. The result does
not depend on how the stream was cut into chunks: a command (or a run of text) that is not yet
complete stays buffered until more bytes arrive, and long text is split at fixed points.

It never raises on its input:

- bytes that cannot start a command become :class:`Garbage` (one byte each), and parsing goes on
  with the next byte;
- a command it recognises but does not act on becomes :class:`Unknown`, with its parameters when
  their length is known (so they are not misread as text);
- out-of-range parameters make the command's fixed header :class:`Garbage`, and parsing goes on
  right after it, as a printer does (Epson: "the command is ignored" / data "processed as normal
  data"). A raster image larger than ``max_raster_width`` x ``max_raster_height`` and other
  variable-length frames larger than ``max_frame`` bytes are rejected this way, so the bytes held
  while waiting for a command to complete stay bounded. (QR data is bounded by GS ( k itself.)

At the end of a stream call :meth:`EscPosParser.flush`: pending text is returned as Text and an
incomplete command as Garbage.

Frames per the Epson ESC/POS Command Reference (section named after each command).
"""

from __future__ import annotations

import re

from .commands import (
    Align,
    CarriageReturn,
    Command,
    Cut,
    DoubleSize,
    Emphasis,
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
)

HT, LF, FF, CR, CAN = 0x09, 0x0A, 0x0C, 0x0D, 0x18
DLE, EOT, ENQ, DC4 = 0x10, 0x04, 0x05, 0x14
ESC, FS, GS = 0x1B, 0x1C, 0x1D

_TEXT_RUN = re.compile(rb"[\x20-\xff]+")

# Commands with a fixed number of parameter bytes that the simulator does not act on.
_ESC_FIXED = {
    0x0C: 0,  # ESC FF   print data in page mode
    0x20: 1,  # ESC SP n right-side character spacing
    0x21: 1,  # ESC ! n  print mode
    0x24: 2,  # ESC $    absolute print position
    0x25: 1,  # ESC % n  user-defined character set
    0x32: 0,  # ESC 2    default line spacing
    0x33: 1,  # ESC 3 n  line spacing
    0x3C: 0,  # ESC <    return home
    0x3D: 1,  # ESC = n  select peripheral device
    0x3F: 1,  # ESC ? n  cancel user-defined character
    0x47: 1,  # ESC G n  double-strike
    0x4A: 1,  # ESC J n  print and feed n dots
    0x4B: 1,  # ESC K n  print and reverse feed
    0x4C: 0,  # ESC L    page mode
    0x4D: 1,  # ESC M n  character font
    0x52: 1,  # ESC R n  international character set
    0x53: 0,  # ESC S    standard mode
    0x54: 1,  # ESC T n  print direction in page mode
    0x55: 1,  # ESC U n  unidirectional printing
    0x56: 1,  # ESC V n  90 degree rotation
    0x57: 8,  # ESC W    print area in page mode
    0x5C: 2,  # ESC \    relative print position
    0x63: 2,  # ESC c 3 n / ESC c 4 n / ESC c 5 n
    0x65: 1,  # ESC e n  print and reverse feed n lines
    0x70: 3,  # ESC p m t1 t2  generate pulse (cash drawer)
    0x72: 1,  # ESC r n  print colour
    0x75: 1,  # ESC u n  transmit peripheral status
    0x76: 0,  # ESC v    transmit paper sensor status
    0x7B: 1,  # ESC { n  upside-down printing
}
_GS_FIXED = {
    0x24: 2,  # GS $     absolute vertical position in page mode
    0x2F: 1,  # GS / m   print downloaded bit image
    0x3A: 0,  # GS :     start/end macro definition
    0x42: 1,  # GS B n   white/black reverse printing
    0x45: 1,  # GS E n   print density / head energy
    0x48: 1,  # GS H n   HRI character position
    0x49: 1,  # GS I n   transmit printer ID
    0x4C: 2,  # GS L     left margin
    0x50: 2,  # GS P x y motion units
    0x54: 1,  # GS T n   print position to beginning of line
    0x57: 2,  # GS W     print area width
    0x5A: 1,  # GS Z n   select 2D barcode type
    0x5C: 2,  # GS \     relative vertical position in page mode
    0x5E: 3,  # GS ^ r t m  execute macro
    0x61: 1,  # GS a n   automatic status back
    0x62: 1,  # GS b n   smoothing
    0x66: 1,  # GS f n   HRI font
    0x68: 1,  # GS h n   barcode height
    0x6A: 1,  # GS j n   automatic ink status back
    0x72: 1,  # GS r n   transmit status
    0x77: 1,  # GS w n   barcode width
}
_FS_FIXED = {
    0x21: 1,  # FS ! n   kanji print mode
    0x26: 0,  # FS &     kanji mode on
    0x2D: 1,  # FS - n   kanji underline
    0x2E: 0,  # FS .     kanji mode off
    0x43: 1,  # FS C n   kanji code system
    0x53: 2,  # FS S n1 n2  kanji spacing
    0x57: 1,  # FS W n   kanji quadruple size
    0x70: 2,  # FS p n m print NV bit image
}
_DLE_DC4_SIZE = {1: 5, 2: 5, 7: 4, 8: 10}  # DLE DC4 fn ...: whole frame length by fn
_RASTER_MODES = (0, 1, 2, 3, 48, 49, 50, 51)
_CUT_A = {0: False, 48: False, 1: True, 49: True}  # GS V m: m -> partial
_CUT_WITH_FEED = {65: False, 66: True, 97: False, 98: True, 103: False, 104: True}
_QR_LEVELS = "LMQH"
_QR_DATA_MAX = 7089  # GS ( k <Function 180>: 4 <= pL + pH * 256 <= 7092
_BARCODE_DATA_MAX = 255  # GS k m d1..dk NUL (Function A): bounded search for the NUL

# (command, bytes consumed) or None when the command is not complete yet.
Step = tuple[Command, int] | None


class EscPosParser:
    """Turns an ESC/POS byte stream into :mod:`.commands`, chunk by chunk."""

    def __init__(
        self,
        *,
        max_raster_width: int = 4096,
        max_raster_height: int = 8192,
        max_text_run: int = 4096,
        max_frame: int = 1 << 20,
    ) -> None:
        if min(max_raster_width, max_raster_height, max_text_run, max_frame) < 1:
            raise ValueError("parser limits must be positive")
        self.max_raster_width = max_raster_width
        self.max_raster_height = max_raster_height
        self.max_text_run = max_text_run
        self.max_frame = max_frame
        self._buf = bytearray()
        self.consumed = 0  # bytes turned into commands so far

    @property
    def pending(self) -> bytes:
        """Bytes received but not yet part of a returned command."""
        return bytes(self._buf)

    def feed(self, data: bytes) -> list[Command]:
        """Add ``data`` to the stream; return every command it completed, in order."""
        buf = self._buf
        buf += data
        out: list[Command] = []
        pos = 0
        while pos < len(buf):
            step = self._parse_at(buf, pos)
            if step is None:
                break
            command, size = step
            out.append(command)
            pos += size
        del buf[:pos]
        self.consumed += pos
        return out

    def flush(self) -> list[Command]:
        """End of stream: return what is pending (text as Text, anything else as Garbage)."""
        out = self.feed(b"")
        rest = bytes(self._buf)
        self._buf.clear()
        self.consumed += len(rest)
        if not rest:
            return out
        if _TEXT_RUN.fullmatch(rest):
            out.append(Text(rest))
        else:
            out.append(Garbage(rest, "incomplete command at end of stream"))
        return out

    def reset(self) -> None:
        """Drop whatever is pending (e.g. the host reconnected)."""
        self._buf.clear()

    # -- one command at buf[pos] ------------------------------------------------------------

    def _parse_at(self, buf: bytearray, pos: int) -> Step:
        b = buf[pos]
        if b >= 0x20:
            return self._text(buf, pos)
        if b == LF:
            return LineFeed(), 1
        if b == CR:
            return CarriageReturn(), 1
        if b == ESC:
            return self._esc(buf, pos)
        if b == GS:
            return self._gs(buf, pos)
        if b == DLE:
            return self._dle(buf, pos)
        if b == FS:
            return self._fs(buf, pos)
        if b in (HT, FF, CAN):
            return Unknown(bytes((b,))), 1
        return Garbage(bytes((b,)), f"stray control byte {b:#04x}"), 1

    def _text(self, buf: bytearray, pos: int) -> Step:
        match = _TEXT_RUN.match(buf, pos)
        assert match is not None  # buf[pos] >= 0x20
        end = match.end()
        if end == len(buf) and end - pos < self.max_text_run:
            return None  # the run may go on in the next chunk
        size = min(end - pos, self.max_text_run)
        return Text(bytes(buf[pos : pos + size])), size

    def _fixed(self, buf: bytearray, pos: int, params: int) -> Step:
        """An introducer, a function byte and ``params`` more bytes, passed on as Unknown."""
        size = 2 + params
        if len(buf) - pos < size:
            return None
        return Unknown(bytes(buf[pos : pos + size])), size

    def _long_frame(self, buf: bytearray, pos: int, header: int, size: int) -> Step:
        """A frame of ``size`` bytes passed on as Unknown; its ``header`` is Garbage if too long."""
        if size > self.max_frame:
            head = bytes(buf[pos : pos + header])
            return Garbage(head, f"frame of {size} bytes exceeds {self.max_frame}"), header
        if len(buf) - pos < size:
            return None
        return Unknown(bytes(buf[pos : pos + size])), size

    def _esc(self, buf: bytearray, pos: int) -> Step:
        avail = len(buf) - pos
        if avail < 2:
            return None
        c = buf[pos + 1]
        if c == 0x40:  # ESC @
            return Initialise(), 2
        if c in (0x69, 0x6D):  # ESC i / ESC m: partial cut (older models)
            return Cut(partial=True), 2
        if c in (0x45, 0x61, 0x2D, 0x64, 0x74):  # one parameter
            if avail < 3:
                return None
            n = buf[pos + 2]
            frame = bytes(buf[pos : pos + 3])
            if c == 0x45:  # ESC E n
                return Emphasis(bool(n & 1)), 3
            if c == 0x64:  # ESC d n
                return Feed(n), 3
            if c == 0x74:  # ESC t n
                return SelectCodeTable(n), 3
            if n not in (0, 1, 2, 48, 49, 50):
                return Garbage(frame, f"ESC {chr(c)} n out of range: {n}"), 3
            return (Align(n % 48), 3) if c == 0x61 else (Underline(n % 48), 3)
        if c == 0x2A:  # ESC * m nL nH d1..dk: bit image
            if avail < 5:
                return None
            m, count = buf[pos + 2], buf[pos + 3] | buf[pos + 4] << 8
            if m in (0, 1):
                size = 5 + count
            elif m in (32, 33):
                size = 5 + 3 * count
            else:
                return Garbage(bytes(buf[pos : pos + 3]), f"ESC * m out of range: {m}"), 3
            if count == 0:
                return Garbage(bytes(buf[pos : pos + 5]), "ESC * with no columns"), 5
            return self._long_frame(buf, pos, 5, size)
        if c == 0x44:  # ESC D n1..nk NUL: tab positions, at most 32
            window = buf[pos + 2 : pos + 2 + 33]
            nul = window.find(0)
            if nul < 0:
                if len(window) < 33:
                    return None
                return Garbage(bytes(buf[pos : pos + 2]), "ESC D without NUL"), 2
            return Unknown(bytes(buf[pos : pos + 3 + nul])), 3 + nul
        if c in _ESC_FIXED:
            return self._fixed(buf, pos, _ESC_FIXED[c])
        return Unknown(bytes(buf[pos : pos + 2])), 2

    def _gs(self, buf: bytearray, pos: int) -> Step:
        avail = len(buf) - pos
        if avail < 2:
            return None
        c = buf[pos + 1]
        if c == 0x21:  # GS ! n
            if avail < 3:
                return None
            n = buf[pos + 2]
            if n & 0x88:
                return Garbage(bytes(buf[pos : pos + 3]), f"GS ! n out of range: {n:#04x}"), 3
            return DoubleSize(width=(n >> 4) + 1, height=(n & 0x07) + 1), 3
        if c == 0x56:  # GS V
            return self._cut(buf, pos)
        if c == 0x76:  # GS v 0
            return self._raster(buf, pos)
        if c == 0x28:  # GS ( X pL pH ...
            return self._gs_paren(buf, pos)
        if c == 0x38:  # GS 8 L p1 p2 p3 p4 ...
            if avail < 3:
                return None
            if buf[pos + 2] != 0x4C:
                return Unknown(bytes(buf[pos : pos + 2])), 2
            if avail < 7:
                return None
            return self._long_frame(
                buf, pos, 7, 7 + int.from_bytes(buf[pos + 3 : pos + 7], "little")
            )
        if c == 0x6B:  # GS k: barcode
            return self._barcode(buf, pos)
        if c == 0x2A:  # GS * x y d1..d(x*y*8): define downloaded bit image
            if avail < 4:
                return None
            size = 4 + buf[pos + 2] * buf[pos + 3] * 8
            if size == 4:
                return Garbage(bytes(buf[pos : pos + 4]), "GS * with an empty image"), 4
            return self._long_frame(buf, pos, 4, size)
        if c in _GS_FIXED:
            return self._fixed(buf, pos, _GS_FIXED[c])
        return Unknown(bytes(buf[pos : pos + 2])), 2

    def _cut(self, buf: bytearray, pos: int) -> Step:
        avail = len(buf) - pos
        if avail < 3:
            return None
        m = buf[pos + 2]
        if m in _CUT_A:
            return Cut(partial=_CUT_A[m]), 3
        if m in _CUT_WITH_FEED:
            if avail < 4:
                return None
            return Cut(partial=_CUT_WITH_FEED[m], feed=buf[pos + 3]), 4
        return Garbage(bytes(buf[pos : pos + 3]), f"GS V m out of range: {m}"), 3

    def _raster(self, buf: bytearray, pos: int) -> Step:
        avail = len(buf) - pos
        if avail < 3:
            return None
        if buf[pos + 2] != 0x30:
            return Unknown(bytes(buf[pos : pos + 2])), 2
        if avail < 8:
            return None
        header = bytes(buf[pos : pos + 8])
        m = header[3]
        width_bytes = header[4] | header[5] << 8
        height = header[6] | header[7] << 8
        if m not in _RASTER_MODES:
            return Garbage(header, f"GS v 0 m out of range: {m}"), 8
        if width_bytes == 0 or height == 0:
            return Garbage(header, f"GS v 0 empty image {width_bytes * 8}x{height}"), 8
        if width_bytes * 8 > self.max_raster_width or height > self.max_raster_height:
            return (
                Garbage(
                    header,
                    f"GS v 0 image {width_bytes * 8}x{height} exceeds "
                    f"{self.max_raster_width}x{self.max_raster_height}",
                ),
                8,
            )
        size = 8 + width_bytes * height
        if avail < size:
            return None
        return RasterImage(width_bytes * 8, height, bytes(buf[pos + 8 : pos + size]), m & 3), size

    def _gs_paren(self, buf: bytearray, pos: int) -> Step:
        avail = len(buf) - pos
        if avail < 5:
            return None
        length = buf[pos + 3] | buf[pos + 4] << 8
        size = 5 + length
        step = self._long_frame(buf, pos, 5, size)  # GS ( A, GS ( L, ...: all share pL pH
        if step is None or buf[pos + 2] != 0x6B or isinstance(step[0], Garbage):
            return step
        frame = bytes(buf[pos : pos + size])
        if length < 2:
            return Garbage(frame, "GS ( k without cn fn"), size
        cn, fn, params = frame[5], frame[6], frame[7:]
        if cn != 49:  # PDF417, MaxiCode, ... (cn 48, 50, ...)
            return Unknown(frame), size
        command: Command | None = None
        if fn == 65 and len(params) == 2 and params[0] in (49, 50, 51) and params[1] == 0:
            command = QrModel(params[0] - 48)
        elif fn == 67 and len(params) == 1 and 1 <= params[0] <= 16:
            command = QrModuleSize(params[0])
        elif fn == 69 and len(params) == 1 and 48 <= params[0] <= 51:
            command = QrErrorCorrection(_QR_LEVELS[params[0] - 48])
        elif fn == 80 and 2 <= len(params) <= _QR_DATA_MAX + 1 and params[0] == 48:
            command = QrStore(params[1:])
        elif fn == 81 and len(params) == 1 and params[0] == 48:
            command = QrPrint()
        elif fn in (65, 67, 69, 80, 81):
            return Garbage(frame, f"GS ( k QR function {fn + 100} parameters out of range"), size
        else:
            return Unknown(frame), size  # e.g. Function 182 (transmit size information)
        return command, size

    def _barcode(self, buf: bytearray, pos: int) -> Step:
        avail = len(buf) - pos
        if avail < 3:
            return None
        m = buf[pos + 2]
        if m <= 6:  # Function A: d1..dk NUL
            window = buf[pos + 3 : pos + 3 + _BARCODE_DATA_MAX + 1]
            nul = window.find(0)
            if nul < 0:
                if len(window) <= _BARCODE_DATA_MAX:
                    return None
                return Garbage(bytes(buf[pos : pos + 3]), "GS k barcode data without NUL"), 3
            size = 3 + nul + 1
            return Unknown(bytes(buf[pos : pos + size])), size
        if 65 <= m <= 79:  # Function B: n d1..dn
            if avail < 4:
                return None
            size = 4 + buf[pos + 3]
            if avail < size:
                return None
            return Unknown(bytes(buf[pos : pos + size])), size
        return Garbage(bytes(buf[pos : pos + 3]), f"GS k m out of range: {m}"), 3

    def _dle(self, buf: bytearray, pos: int) -> Step:
        avail = len(buf) - pos
        if avail < 2:
            return None
        c = buf[pos + 1]
        if c not in (EOT, ENQ, DC4):
            return Garbage(bytes((DLE,)), "DLE not followed by EOT, ENQ or DC4"), 1
        if avail < 3:
            return None
        n = buf[pos + 2]
        if c == EOT:
            if 1 <= n <= 4:
                return StatusRequest(n), 3
            if n in (7, 8):  # DLE EOT 7 a / DLE EOT 8 a (ink, peeler): one more byte
                return self._fixed(buf, pos, 2)
            if n in (5, 6):  # slip and validation status on some models
                return Unknown(bytes(buf[pos : pos + 3])), 3
            return Garbage(bytes(buf[pos : pos + 3]), f"DLE EOT n out of range: {n}"), 3
        if c == ENQ:
            return Unknown(bytes(buf[pos : pos + 3])), 3
        size = _DLE_DC4_SIZE.get(n)
        if size is None:
            return Garbage(bytes(buf[pos : pos + 3]), f"DLE DC4 fn out of range: {n}"), 3
        return self._fixed(buf, pos, size - 2)

    def _fs(self, buf: bytearray, pos: int) -> Step:
        if len(buf) - pos < 2:
            return None
        c = buf[pos + 1]
        if c in _FS_FIXED:
            return self._fixed(buf, pos, _FS_FIXED[c])
        return Unknown(bytes(buf[pos : pos + 2])), 2


def parse(data: bytes, **limits: int) -> list[Command]:
    """Parse a complete stream (feed then flush)."""
    parser = EscPosParser(**limits)
    return parser.feed(data) + parser.flush()
