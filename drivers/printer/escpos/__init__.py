"""ESC/POS encoder for the receipt printer, one module per command group.

- :mod:`.text`: ESC @, ESC t, text, LF, ESC E, GS !, ESC a, ESC -
- :mod:`.qr`: GS ( k QR Code functions 165, 167, 169, 180, 181
- :mod:`.raster`: GS v 0 raster bit images from Pillow images
- :mod:`.paper`: ESC d feed, GS V cut
- :mod:`.status`: DLE EOT requests and reply decoders
- :mod:`.receipt`: the :class:`Receipt` builder on top of them

Every function returns ``bytes``; nothing here touches a transport.
"""

from .paper import cut, feed, full_cut, partial_cut
from .qr import (
    QR_MAX_DATA,
    QrErrorLevel,
    QrSymbolModel,
    qr_code,
    qr_error_correction,
    qr_module_size,
    qr_print,
    qr_select_model,
    qr_store,
)
from .raster import RasterScale, raster_bytes, raster_command, raster_image, to_monochrome
from .receipt import Receipt, ReceiptPart
from .status import (
    ErrorCause,
    MalformedStatus,
    OfflineCause,
    PrinterStatus,
    RollPaperStatus,
    StatusKind,
    StatusReply,
    decode_error_cause,
    decode_offline_cause,
    decode_printer_status,
    decode_roll_paper,
    decode_status,
    request_status,
)
from .text import (
    CODE_TABLES,
    DEFAULT_CODEPAGE,
    Alignment,
    UnderlineMode,
    UnencodableTextError,
    align,
    character_size,
    code_table_number,
    double_size,
    emphasis,
    encode_text,
    initialise,
    line,
    line_feed,
    select_code_table,
    text,
    underline,
)

__all__ = [
    "CODE_TABLES",
    "DEFAULT_CODEPAGE",
    "QR_MAX_DATA",
    "Alignment",
    "ErrorCause",
    "MalformedStatus",
    "OfflineCause",
    "PrinterStatus",
    "QrErrorLevel",
    "QrSymbolModel",
    "RasterScale",
    "Receipt",
    "ReceiptPart",
    "RollPaperStatus",
    "StatusKind",
    "StatusReply",
    "UnderlineMode",
    "UnencodableTextError",
    "align",
    "character_size",
    "code_table_number",
    "cut",
    "decode_error_cause",
    "decode_offline_cause",
    "decode_printer_status",
    "decode_roll_paper",
    "decode_status",
    "double_size",
    "emphasis",
    "encode_text",
    "feed",
    "full_cut",
    "initialise",
    "line",
    "line_feed",
    "partial_cut",
    "qr_code",
    "qr_error_correction",
    "qr_module_size",
    "qr_print",
    "qr_select_model",
    "qr_store",
    "raster_bytes",
    "raster_command",
    "raster_image",
    "request_status",
    "select_code_table",
    "text",
    "to_monochrome",
    "underline",
]
