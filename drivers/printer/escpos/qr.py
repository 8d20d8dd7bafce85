"""QR Code commands: GS ( k with cn = 49 (Epson ESC/POS Command Reference, "GS ( k", QR Code).

The printer builds and prints the symbol itself; the host only sends settings and data:

- <Function 165> fn = 65: select the model
- <Function 167> fn = 67: set the module size in dots
- <Function 169> fn = 69: select the error correction level
- <Function 180> fn = 80: store data in the symbol storage area
- <Function 181> fn = 81: print the stored symbol

Every GS ( k frame is ``1D 28 6B pL pH cn fn [parameters]`` where ``pL + pH * 256`` counts the
bytes after pH.
"""

from __future__ import annotations

from enum import IntEnum

from ._codes import GS, check_range

_CN_QR = 49
QR_MAX_DATA = 7089  # Function 180: 4 <= pL + pH * 256 <= 7092, k = (pL + pH * 256) - 3


class QrSymbolModel(IntEnum):
    """Function 165, n1."""

    MODEL_1 = 49
    MODEL_2 = 50
    MICRO = 51


class QrErrorLevel(IntEnum):
    """Function 169, n: error correction level (recovers about 7, 15, 25, 30 % of the symbol)."""

    L = 48
    M = 49
    Q = 50
    H = 51


def _gs_k(fn: int, params: bytes) -> bytes:
    size = len(params) + 2  # cn and fn are counted by pL pH
    return bytes((GS, 0x28, 0x6B, size & 0xFF, size >> 8, _CN_QR, fn)) + params


def qr_select_model(model: QrSymbolModel | int = QrSymbolModel.MODEL_2) -> bytes:
    """<Function 165>: GS ( k 04 00 31 41 n1 00."""
    return _gs_k(65, bytes((QrSymbolModel(model).value, 0)))


def qr_module_size(size: int) -> bytes:
    """<Function 167>: GS ( k 03 00 31 43 n, module size 1..16 dots."""
    return _gs_k(67, bytes((check_range("module size", size, 1, 16),)))


def qr_error_correction(level: QrErrorLevel | int = QrErrorLevel.M) -> bytes:
    """<Function 169>: GS ( k 03 00 31 45 n."""
    return _gs_k(69, bytes((QrErrorLevel(level).value,)))


def qr_store(data: bytes | str) -> bytes:
    """<Function 180>: GS ( k pL pH 31 50 30 d1..dk, 1 <= k <= 7089. ``str`` is sent as UTF-8."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if not 1 <= len(raw) <= QR_MAX_DATA:
        raise ValueError(f"QR data must be 1..{QR_MAX_DATA} bytes, got {len(raw)}")
    return _gs_k(80, b"\x30" + raw)


def qr_print() -> bytes:
    """<Function 181>: GS ( k 03 00 31 51 30."""
    return _gs_k(81, b"\x30")


def qr_code(
    data: bytes | str,
    *,
    module_size: int = 6,
    error_correction: QrErrorLevel | int = QrErrorLevel.M,
    model: QrSymbolModel | int = QrSymbolModel.MODEL_2,
) -> bytes:
    """Select model, size and level, store ``data`` and print it: Functions 165, 167, 169, 180, 181."""
    return (
        qr_select_model(model)
        + qr_module_size(module_size)
        + qr_error_correction(error_correction)
        + qr_store(data)
        + qr_print()
    )
