"""Named command codes and the negative-reply error table of the Creator CRT-591-style reader.

Source: Creator "CRT-591-M001 communication protocol" (2013-07-02, v1.0), section 2.1.1
(command list), 3.1 (dispenser operation), 3.3 (CPU card) and 2.2 (e1/e0 error codes), as
transcribed in public integration code; no primary copy was reachable. Rows marked
"Branchline" are not in that document and are Branchline's own assignment for its reader
variant (the M001 is a dispenser without a magnetic head).

======  ======  ===================================================================
CM      PM      meaning
======  ======  ===================================================================
0x30    0x30    initialise; a card inside is moved to the gate
0x30    0x31    initialise; a card inside is captured to the bin
0x30    0x33    initialise; a card inside is not moved
0x30    0x34    as 0x30, and count a capture in the bin counter
0x30    0x35    as 0x31, and count a capture in the bin counter
0x30    0x37    as 0x33, and count a capture in the bin counter
0x31    0x30    status (ST0 ST1 only)
0x31    0x31    sensor states (DATA: one ASCII '0'/'1' per sensor)
0x32    0x30    move card to the gate, held (customer can see it, reader keeps it)
0x32    0x31    move card to the IC-contact position
0x32    0x32    move card to the contactless (RF) position
0x32    0x33    capture: move card to the capture bin
0x32    0x39    eject: move card out of the gate
0x32    0x34    move card to the magnetic read position (Branchline; seen on CRT-591-HB units)
0x33    0x30    enable card insertion at the gate
0x33    0x31    disable card insertion at the gate
0x36    0x31    read magnetic track 1 (Branchline; DATA = track characters with sentinels)
0x36    0x32    read magnetic track 2 (Branchline)
0x36    0x33    read magnetic track 3 (Branchline)
0x51    0x30    IC power on (cold reset); DATA optional Vcc byte: 0x30 5 V EMV, 0x33 5 V ISO,
                0x35 3 V ISO; reply DATA = protocol ('0' T=0, '1' T=1) + ATR
0x51    0x31    IC power off (deactivate)
0x51    0x32    IC status
0x51    0x33    APDU exchange, T=0
0x51    0x34    APDU exchange, T=1
0x51    0x38    IC warm reset
0x51    0x39    APDU exchange, protocol chosen from the ATR (T=0 or T=1)
0xA2    0x30    read reader serial number (DATA = length byte + serial)
0xA4    0x30    read firmware version
0xA5    0x30    read capture-bin counter (DATA = three ASCII digits)
0xA5    0x31    set capture-bin counter (DATA = three ASCII digits)
======  ======  ===================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from branchline.drivers.base import Completion, DeviceError


@dataclass(frozen=True)
class CommandCode:
    cm: int
    pm: int
    name: str


INIT_EJECT = CommandCode(0x30, 0x30, "initialise, card to gate")
INIT_CAPTURE = CommandCode(0x30, 0x31, "initialise, capture card")
INIT_NO_MOVE = CommandCode(0x30, 0x33, "initialise, leave card")
INIT_EJECT_COUNTED = CommandCode(0x30, 0x34, "initialise, card to gate, count capture")
INIT_CAPTURE_COUNTED = CommandCode(0x30, 0x35, "initialise, capture card, count capture")
INIT_NO_MOVE_COUNTED = CommandCode(0x30, 0x37, "initialise, leave card, count capture")
STATUS = CommandCode(0x31, 0x30, "status")
SENSORS = CommandCode(0x31, 0x31, "sensor states")
MOVE_TO_GATE = CommandCode(0x32, 0x30, "move card to gate (held)")
MOVE_TO_IC = CommandCode(0x32, 0x31, "move card to IC position")
MOVE_TO_RF = CommandCode(0x32, 0x32, "move card to RF position")
CAPTURE = CommandCode(0x32, 0x33, "capture card to bin")
MOVE_TO_MAGNETIC = CommandCode(0x32, 0x34, "move card to magnetic read position")
EJECT = CommandCode(0x32, 0x39, "eject card")
ENABLE_INSERTION = CommandCode(0x33, 0x30, "enable card insertion")
DISABLE_INSERTION = CommandCode(0x33, 0x31, "disable card insertion")
READ_TRACK_1 = CommandCode(0x36, 0x31, "read magnetic track 1")
READ_TRACK_2 = CommandCode(0x36, 0x32, "read magnetic track 2")
READ_TRACK_3 = CommandCode(0x36, 0x33, "read magnetic track 3")
IC_POWER_ON = CommandCode(0x51, 0x30, "IC power on (cold reset)")
IC_POWER_OFF = CommandCode(0x51, 0x31, "IC power off")
IC_STATUS = CommandCode(0x51, 0x32, "IC status")
APDU_T0 = CommandCode(0x51, 0x33, "APDU exchange T=0")
APDU_T1 = CommandCode(0x51, 0x34, "APDU exchange T=1")
IC_WARM_RESET = CommandCode(0x51, 0x38, "IC warm reset")
APDU_AUTO = CommandCode(0x51, 0x39, "APDU exchange T=0/T=1")
READ_SERIAL_NUMBER = CommandCode(0xA2, 0x30, "read serial number")
READ_VERSION = CommandCode(0xA4, 0x30, "read firmware version")
READ_BIN_COUNTER = CommandCode(0xA5, 0x30, "read capture-bin counter")
SET_BIN_COUNTER = CommandCode(0xA5, 0x31, "set capture-bin counter")

# Every CommandCode defined above, in definition order.
ALL_COMMANDS: tuple[CommandCode, ...] = tuple(
    value for value in list(globals().values()) if isinstance(value, CommandCode)
)
BY_CODE: dict[tuple[int, int], CommandCode] = {(c.cm, c.pm): c for c in ALL_COMMANDS}

READ_TRACK = {1: READ_TRACK_1, 2: READ_TRACK_2, 3: READ_TRACK_3}

# Vcc selector for IC_POWER_ON (DATA byte), CRT-591-M001 section 3.3.
VCC_5V_EMV = 0x30
VCC_5V_ISO = 0x33
VCC_3V_ISO = 0x35


@dataclass(frozen=True)
class ReaderError:
    """One row of the error table: the wire code, a stable name, a message, and how it ends."""

    wire: str
    code: str
    message: str
    completion: Completion

    def to_device_error(self) -> DeviceError:
        return DeviceError(self.completion, self.code, f"{self.message} (reader error {self.wire})")


_C = Completion
# E1 E0 of a negative reply, CRT-591-M001 section 2.2; the messages are ours, and so is the
# choice of completion code. Codes that table leaves blank are not listed: ``error_for``
# turns them into a generic hardware error that keeps the wire code.
_TABLE = (
    ("00", "undefined_command", "reader received an undefined command", _C.UNSUPPORTED),
    ("01", "parameter_error", "command parameter error", _C.INVALID_DATA),
    ("02", "sequence_error", "command out of sequence", _C.SEQUENCE_ERROR),
    ("03", "not_supported_by_hardware", "not supported by this hardware", _C.UNSUPPORTED),
    ("04", "data_error", "command data error", _C.INVALID_DATA),
    ("05", "ic_contact_engaged", "IC contacts engaged; power the card off", _C.SEQUENCE_ERROR),
    ("10", "card_jam", "card jammed", _C.HARDWARE_ERROR),
    ("12", "sensor_error", "sensor error", _C.HARDWARE_ERROR),
    ("13", "card_too_long", "card too long", _C.USER_ERROR),
    ("14", "card_too_short", "card too short", _C.USER_ERROR),
    ("40", "capture_failed", "could not pull the card back in", _C.HARDWARE_ERROR),
    ("41", "ic_magnet_error", "IC card magnet error", _C.HARDWARE_ERROR),
    ("43", "move_to_ic_failed", "could not move the card to the IC position", _C.HARDWARE_ERROR),
    ("45", "card_moved_by_hand", "card moved by hand; initialise the reader", _C.USER_ERROR),
    ("50", "bin_counter_overflow", "capture-bin counter overflow", _C.HARDWARE_ERROR),
    ("51", "motor_error", "motor error", _C.HARDWARE_ERROR),
    ("60", "ic_power_short", "short circuit on the IC card supply", _C.HARDWARE_ERROR),
    ("61", "ic_activation_failed", "IC card activation failed", _C.USER_ERROR),
    ("62", "ic_command_unsupported", "command not supported by the IC card", _C.UNSUPPORTED),
    ("65", "ic_not_activated", "IC card not activated", _C.SEQUENCE_ERROR),
    ("66", "ic_command_unsupported_now", "not supported by the current IC card", _C.UNSUPPORTED),
    ("67", "ic_transmission_error", "IC card transmission error", _C.HARDWARE_ERROR),
    ("68", "ic_timeout", "IC card did not answer in time", _C.TIMEOUT),
    ("69", "ic_not_emv", "IC card is not EMV-compliant", _C.USER_ERROR),
    ("A0", "stacker_empty", "card stacker empty", _C.HARDWARE_ERROR),
    ("A1", "bin_full", "capture bin full", _C.HARDWARE_ERROR),
    ("B0", "not_initialised", "reader not initialised since power-on", _C.DEVICE_NOT_READY),
)
ERRORS: dict[str, ReaderError] = {row[0]: ReaderError(*row) for row in _TABLE}


def error_for(wire: str) -> ReaderError:
    """The table row for an E1 E0 code; unknown codes become a generic hardware error."""
    known = ERRORS.get(wire)
    if known is not None:
        return known
    # Keep the stable code printable: an unknown alphanumeric pair names itself.
    suffix = wire if len(wire) == 2 and wire.isascii() and wire.isalnum() else "unknown"
    return ReaderError(
        wire, f"reader_error_{suffix}", f"unknown reader error {wire!r}", Completion.HARDWARE_ERROR
    )
