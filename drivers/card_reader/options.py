"""The card-reader driver's options, read strictly from its ``[device.card_reader]`` table."""

from __future__ import annotations

from dataclasses import dataclass

from branchline.common.config_reader import SectionReader

BAUD_RATES = (9600, 19200, 38400, 57600, 115200)
# Room the eject command needs beyond the take timeout: travel to the gate, then capture.
EJECT_MARGIN = 5.0


@dataclass(frozen=True)
class CardReaderOptions:
    port: str
    baudrate: int = 9600
    address: int = 0
    ack_timeout: float = 0.5
    reply_timeout: float = 5.0
    nak_retries: int = 3
    take_timeout: float = 20.0
    bin_capacity: int = 50
    insert_poll: float = 0.2


def read_card_reader_options(reader: SectionReader) -> CardReaderOptions:
    port = str(reader.get_str("port"))
    if "://" not in port:
        port = str(reader.get_path("port"))  # relative to the config file, like every path
    baudrate = reader.get_int("baudrate", 9600)
    if baudrate not in BAUD_RATES:
        raise reader.error(
            "baudrate", f"must be one of {', '.join(map(str, BAUD_RATES))}; got {baudrate}"
        )
    # 20 s: with the default 30 s command timeout, eject still has time to retain the card.
    take_timeout = reader.get_float("take_timeout", 20.0, above=0.0, maxval=300.0)
    # The agent reads command_timeout too; reading it again here only checks it against ours:
    # an eject that the owner cuts off while waiting for the customer would never retain.
    command_timeout = reader.get_float("command_timeout", 30.0, above=0.0, maxval=600.0)
    if take_timeout + EJECT_MARGIN > command_timeout:
        raise reader.error(
            "take_timeout",
            f"{take_timeout:g} s leaves eject no time to retain an untaken card within "
            f"command_timeout {command_timeout:g} s; make command_timeout at least "
            f"{take_timeout + EJECT_MARGIN:g} or take_timeout smaller",
        )
    return CardReaderOptions(
        port=port,
        baudrate=baudrate,
        address=reader.get_int("address", 0, minval=0, maxval=15),
        ack_timeout=reader.get_float("ack_timeout", 0.5, above=0.0, maxval=10.0),
        reply_timeout=reader.get_float("reply_timeout", 5.0, above=0.0, maxval=60.0),
        nak_retries=reader.get_int("nak_retries", 3, minval=0, maxval=10),
        take_timeout=take_timeout,
        bin_capacity=reader.get_int("bin_capacity", 50, minval=1, maxval=999),
        insert_poll=reader.get_float("insert_poll", 0.2, above=0.0, maxval=5.0),
    )
