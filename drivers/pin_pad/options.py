"""The EPP driver's options, read strictly from its ``[device.pin_pad]`` table."""

from __future__ import annotations

from dataclasses import dataclass

from branchline.common.config_reader import SectionReader
from branchline.drivers.pin_pad.protocol import SLOT_COUNT

BAUD_RATES = (9600, 19200, 38400, 57600, 115200)


@dataclass(frozen=True)
class EppOptions:
    port: str
    baudrate: int
    reply_timeout: float
    key_slot: int


def read_epp_options(reader: SectionReader) -> EppOptions:
    port = str(reader.get_str("port"))
    if "://" not in port:
        port = str(reader.get_path("port"))  # relative to the config file, like every path
    baudrate = reader.get_int("baudrate", 9600)
    if baudrate not in BAUD_RATES:
        raise reader.error(
            "baudrate", f"must be one of {', '.join(map(str, BAUD_RATES))}; got {baudrate}"
        )
    return EppOptions(
        port=port,
        baudrate=baudrate,
        reply_timeout=reader.get_float("reply_timeout", 1.0, above=0.0, maxval=10.0),
        key_slot=reader.get_int("key_slot", 0, minval=0, maxval=SLOT_COUNT - 1),
    )
