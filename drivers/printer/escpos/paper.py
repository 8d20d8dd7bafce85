"""Paper movement: ESC d (print and feed n lines) and GS V (select cut mode and cut paper).

Epson ESC/POS Command Reference, "ESC d" and "GS V" (Function A: ``GS V m``, m = 0 full cut,
m = 1 partial cut; Function B: ``GS V m n``, m = 65 full / 66 partial, feeds paper to the cutting
position plus n motion units and then cuts).
"""

from __future__ import annotations

from ._codes import ESC, GS, check_range


def feed(lines: int) -> bytes:
    """ESC d n: print the buffer and feed ``lines`` lines (0..255)."""
    return bytes((ESC, 0x64, check_range("lines", lines, 0, 255)))


def cut(partial: bool = False, *, feed: int | None = None) -> bytes:
    """GS V: cut now (Function A), or with ``feed`` move the paper past the cutter first (Function B).

    ``feed`` counts vertical motion units beyond the cutting position (0..255); Function B is what
    a receipt wants, since the last printed line sits below the cutter until it is fed.
    """
    if feed is None:
        return bytes((GS, 0x56, 1 if partial else 0))
    return bytes((GS, 0x56, 66 if partial else 65, check_range("feed", feed, 0, 255)))


def full_cut(*, feed: int | None = None) -> bytes:
    return cut(False, feed=feed)


def partial_cut(*, feed: int | None = None) -> bytes:
    return cut(True, feed=feed)
