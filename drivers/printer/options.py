"""The printer driver's options, read strictly from its config table."""

from __future__ import annotations

from dataclasses import dataclass

from branchline.common.config_reader import SectionReader
from branchline.drivers.transport import parse_usb_url

BAUD_RATES = (2400, 4800, 9600, 19200, 38400, 57600, 115200)


@dataclass(frozen=True)
class PrinterOptions:
    port: str
    baudrate: int
    status_timeout: float
    width: int


def read_printer_options(reader: SectionReader) -> PrinterOptions:
    port = str(reader.get_str("port"))
    if port.startswith("usb://"):
        try:
            parse_usb_url(port)
        except ValueError as exc:
            raise reader.error("port", str(exc)) from None
    elif "://" not in port:
        port = str(reader.get_path("port"))  # relative to the config file, like every path
    baudrate = reader.get_int("baudrate", 19200)
    if baudrate not in BAUD_RATES:
        raise reader.error(
            "baudrate", f"must be one of {', '.join(map(str, BAUD_RATES))}; got {baudrate}"
        )
    return PrinterOptions(
        port=port,
        baudrate=baudrate,
        status_timeout=reader.get_float("status_timeout", 0.5, above=0.0, maxval=10.0),
        width=reader.get_int("width", 48, minval=16, maxval=96),
    )
