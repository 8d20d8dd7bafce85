"""ISO/IEC 7816-4 short APDUs and the EMV commands a cash terminal reads a card with.

Command: ``CLA INS P1 P2 [Lc data] [Le]`` (cases 1-4; Le 0x00 means 256). Response:
``data SW1 SW2``. Extended-length APDUs are not used by EMV contact cards and are reported
as ``Malformed``. Parsers never raise; constructors raise ValueError for impossible fields.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from branchline.drivers.malformed import Malformed

PSE = b"1PAY.SYS.DDF01"  # contact Payment System Environment (EMV Book 1, 12.2.2)
PPSE = b"2PAY.SYS.DDF01"  # contactless


@dataclass(frozen=True)
class CommandApdu:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None  # expected response length 1..256, None for none

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            if not 0 <= getattr(self, name) <= 0xFF:
                raise ValueError(f"{name} {getattr(self, name)} outside 0..255")
        if len(self.data) > 255:
            raise ValueError("short APDU data is at most 255 bytes")
        if self.le is not None and not 1 <= self.le <= 256:
            raise ValueError(f"Le {self.le} outside 1..256")

    def encode(self) -> bytes:
        out = bytes([self.cla, self.ins, self.p1, self.p2])
        if self.data:
            out += bytes([len(self.data)]) + self.data
        if self.le is not None:
            out += bytes([self.le % 256])
        return out


@dataclass(frozen=True)
class ResponseApdu:
    data: bytes
    sw1: int
    sw2: int

    @property
    def sw(self) -> int:
        return (self.sw1 << 8) | self.sw2

    @property
    def ok(self) -> bool:
        return self.sw == 0x9000

    @property
    def meaning(self) -> str:
        return status_meaning(self.sw1, self.sw2)

    def encode(self) -> bytes:
        return self.data + bytes([self.sw1, self.sw2])


def parse_command(raw: bytes) -> CommandApdu | Malformed:
    raw = bytes(raw)
    if len(raw) < 4:
        return Malformed(f"APDU of {len(raw)} bytes is shorter than the 4-byte header", raw)
    cla, ins, p1, p2 = raw[:4]
    body = raw[4:]
    if not body:
        return CommandApdu(cla, ins, p1, p2)
    if len(body) == 1:
        return CommandApdu(cla, ins, p1, p2, le=body[0] or 256)
    lc = body[0]
    if lc == 0:
        return Malformed("extended-length APDU (Lc 00 followed by data) is not supported", raw)
    if len(body) == 1 + lc:
        return CommandApdu(cla, ins, p1, p2, body[1:])
    if len(body) == 2 + lc:
        return CommandApdu(cla, ins, p1, p2, body[1:-1], body[-1] or 256)
    return Malformed(f"bad length: Lc {lc} but {len(body) - 1} bytes follow it", raw)


def parse_response(raw: bytes) -> ResponseApdu | Malformed:
    raw = bytes(raw)
    if len(raw) < 2:
        return Malformed(f"response of {len(raw)} bytes has no SW1 SW2", raw)
    return ResponseApdu(raw[:-2], raw[-2], raw[-1])


def select_by_name(name: bytes, *, next_occurrence: bool = False) -> CommandApdu:
    """SELECT by DF name / AID (P1 04); P2 02 asks for the next matching application."""
    if not 1 <= len(name) <= 16:
        raise ValueError("a DF name is 1-16 bytes")
    return CommandApdu(0x00, 0xA4, 0x04, 0x02 if next_occurrence else 0x00, name, 256)


def get_processing_options(pdol_data: bytes = b"") -> CommandApdu:
    """GET PROCESSING OPTIONS with the PDOL data in tag 83 (``83 00`` when no PDOL)."""
    if len(pdol_data) > 253:
        raise ValueError("PDOL data too long for a short APDU")
    return CommandApdu(0x80, 0xA8, 0x00, 0x00, bytes([0x83, len(pdol_data)]) + pdol_data, 256)


def read_record(record: int, sfi: int) -> CommandApdu:
    """READ RECORD ``record`` of short file ``sfi`` (P2 = SFI << 3 | 4: "P1 is a record number")."""
    if not 1 <= record <= 254 or not 1 <= sfi <= 30:
        raise ValueError(f"record {record} / SFI {sfi} out of range")
    return CommandApdu(0x00, 0xB2, record, (sfi << 3) | 0x04, le=256)


def get_response(length: int) -> CommandApdu:
    """GET RESPONSE: fetch the bytes a T=0 card announced with 61xx."""
    return CommandApdu(0x00, 0xC0, 0x00, 0x00, le=length or 256)


def follow_up(command: CommandApdu, response: ResponseApdu) -> CommandApdu | None:
    """The command T=0 transport rules call for next, or None when the response is final.

    61xx: the card has xx bytes waiting, fetch them with GET RESPONSE. 6Cxx: Le was wrong,
    resend the same command with Le = xx (ISO/IEC 7816-3 and EMV Book 1 section 9.3).
    """
    if response.sw1 == 0x61:
        return get_response(response.sw2)
    if response.sw1 == 0x6C:
        return replace(command, le=response.sw2 or 256)
    return None


_EXACT = {
    0x9000: "success",
    0x6281: "part of the returned data may be corrupted",
    0x6282: "end of file or record reached before Le bytes",
    0x6283: "selected file or application is blocked",
    0x6400: "execution error, non-volatile memory unchanged",
    0x6581: "memory failure",
    0x6700: "wrong length",
    0x6982: "security status not satisfied",
    0x6983: "authentication method blocked",
    0x6984: "referenced data invalidated",
    0x6985: "conditions of use not satisfied",
    0x6986: "command not allowed, no current file",
    0x6A81: "function not supported (card or application blocked)",
    0x6A82: "file or application not found",
    0x6A83: "record not found",
    0x6A86: "incorrect parameters P1-P2",
    0x6A88: "referenced data not found",
    0x6B00: "wrong parameters P1-P2",
    0x6D00: "instruction not supported",
    0x6E00: "class not supported",
    0x6F00: "no precise diagnosis",
}


def status_meaning(sw1: int, sw2: int) -> str:
    """A short English reading of a status word (ISO/IEC 7816-4 section 5.6, EMV Book 3)."""
    exact = _EXACT.get((sw1 << 8) | sw2)
    if exact is not None:
        return exact
    if sw1 == 0x61:
        return f"success, {sw2 or 256} more bytes available (GET RESPONSE)"
    if sw1 == 0x6C:
        return f"wrong Le, resend with Le {sw2 or 256}"
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        return f"verification failed, {sw2 & 0x0F} tries left"
    if sw1 in (0x62, 0x63):
        return "warning, non-volatile memory possibly changed" if sw1 == 0x63 else "warning"
    return f"error {sw1:02X}{sw2:02X}"
