"""The simulated receipt printer's side of ESC/POS: parse what the host sends, keep sensor state,
answer status requests and draw receipts.

- :mod:`.commands`: the parsed commands (frozen dataclasses)
- :mod:`.parser`: :class:`EscPosParser`, incremental and garbage-proof
- :mod:`.state`: :class:`PrinterModel`, the sensors and the DLE EOT replies
- :mod:`.render`: :func:`render_receipt` and :func:`save_receipt`
"""

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
from .parser import EscPosParser, parse
from .render import PAPER_WIDTH, render_receipt, save_receipt, split_receipts
from .state import PrinterModel

__all__ = [
    "PAPER_WIDTH",
    "Align",
    "CarriageReturn",
    "Command",
    "Cut",
    "DoubleSize",
    "Emphasis",
    "EscPosParser",
    "Feed",
    "Garbage",
    "Initialise",
    "LineFeed",
    "PrinterModel",
    "QrErrorCorrection",
    "QrModel",
    "QrModuleSize",
    "QrPrint",
    "QrStore",
    "RasterImage",
    "SelectCodeTable",
    "StatusRequest",
    "Text",
    "Underline",
    "Unknown",
    "parse",
    "render_receipt",
    "save_receipt",
    "split_receipts",
]
