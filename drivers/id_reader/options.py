"""The ID-card reader driver's options, read strictly from its config table."""

from __future__ import annotations

from dataclasses import dataclass

from branchline.common.config_reader import SectionReader

BAUD_RATES = (9600, 19200, 38400, 57600, 115200)
DEFAULT_BAUDRATE = 115200  # what SAM_V readers ship set to


@dataclass(frozen=True)
class IdReaderOptions:
    port: str
    baudrate: int
    # Seconds to wait for the SAM status reply (the SAM answers at once; polls use it).
    status_timeout: float
    # Seconds to wait for one card reply. A card read is the slow one: the SAM reads the card over
    # the air (about 1 s on real readers) before it answers.
    reply_timeout: float
    # Seconds between find-card attempts while waiting for a customer to place a card.
    find_interval: float


def read_id_reader_options(reader: SectionReader) -> IdReaderOptions:
    port = str(reader.get_str("port"))
    if "://" not in port:
        port = str(reader.get_path("port"))  # relative to the config file, like every path
    baudrate = reader.get_int("baudrate", DEFAULT_BAUDRATE)
    if baudrate not in BAUD_RATES:
        raise reader.error(
            "baudrate", f"must be one of {', '.join(map(str, BAUD_RATES))}; got {baudrate}"
        )
    return IdReaderOptions(
        port=port,
        baudrate=baudrate,
        status_timeout=reader.get_float("status_timeout", 0.5, above=0.0, maxval=10.0),
        reply_timeout=reader.get_float("reply_timeout", 3.0, above=0.0, maxval=30.0),
        find_interval=reader.get_float("find_interval", 0.2, above=0.0, maxval=5.0),
    )
