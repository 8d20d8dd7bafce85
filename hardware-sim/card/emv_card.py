"""A contact EMV chip card that answers the APDUs a cash terminal reads a card with.

It has a Payment System Environment (``1PAY.SYS.DDF01``) whose directory (SFI 1) lists its
applications, and each application answers SELECT (FCI with label, priority and a PDOL),
GET PROCESSING OPTIONS (format 2: AIP + AFL, checking the PDOL data length) and READ
RECORD for the records its AFL names. A ``t0`` card behaves like a T=0 card: a command with
data answers ``61xx`` and hands its data over on GET RESPONSE, and a READ RECORD with the
wrong Le answers ``6Cxx`` (ISO/IEC 7816-3 / EMV Book 1 9.3). A ``mute`` card gives no ATR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from branchline.drivers.card_reader import apdu, emv_tlv
from branchline.drivers.card_reader.apdu import CommandApdu, ResponseApdu
from branchline.drivers.card_reader.emv_tlv import AflEntry, Tlv, Track2Equivalent
from branchline.drivers.malformed import Malformed

# A plausible T=0 ATR: TS 3B, T0 68 (TB1, 8 historical bytes) ... (no TCK for T=0 only).
DEFAULT_ATR = bytes.fromhex("3B6800000073C84013009000")
# Terminal country code, transaction currency, date, type, unpredictable number.
DEFAULT_PDOL = bytes.fromhex("9F1A025F2A029A039C019F3704")

P = emv_tlv.primitive
C = emv_tlv.constructed


def _sw(code: int, data: bytes = b"") -> ResponseApdu:
    return ResponseApdu(data, code >> 8, code & 0xFF)


@dataclass(frozen=True)
class EmvApplication:
    aid: bytes
    label: str
    priority: int
    pan: str
    expiry: date
    effective: date
    cardholder_name: str
    service_code: str = "201"
    discretionary: str = "10000000000"
    pan_sequence: int = 1
    pdol: bytes = DEFAULT_PDOL

    @property
    def track2(self) -> Track2Equivalent:
        return Track2Equivalent(
            self.pan, self.expiry.strftime("%y%m"), self.service_code, self.discretionary
        )

    def fci(self) -> bytes:
        proprietary = [
            P(emv_tlv.TAG_APP_LABEL, self.label.encode("ascii")),
            P(0x87, bytes([self.priority])),
        ]
        if self.pdol:
            proprietary.append(P(emv_tlv.TAG_PDOL, self.pdol))
        return C(
            emv_tlv.TAG_FCI,
            P(emv_tlv.TAG_DF_NAME, self.aid),
            C(emv_tlv.TAG_FCI_PROPRIETARY, *proprietary),
        ).encode()

    def afl(self) -> tuple[AflEntry, ...]:
        return (AflEntry(1, 1, 1, 0), AflEntry(2, 1, 2, 1))

    def records(self) -> dict[tuple[int, int], bytes]:
        """(sfi, record) -> the record's tag 70 template."""
        return {
            (1, 1): C(
                emv_tlv.TAG_RECORD,
                P(emv_tlv.TAG_TRACK2_EQUIVALENT, emv_tlv.encode_track2_equivalent(self.track2)),
                P(emv_tlv.TAG_CARDHOLDER_NAME, self.cardholder_name.encode("ascii")),
            ).encode(),
            (2, 1): C(
                emv_tlv.TAG_RECORD,
                P(emv_tlv.TAG_PAN, emv_tlv.encode_pan(self.pan)),
                P(emv_tlv.TAG_EXPIRY, emv_tlv.encode_date(self.expiry)),
                P(emv_tlv.TAG_EFFECTIVE, emv_tlv.encode_date(self.effective)),
                P(emv_tlv.TAG_PAN_SEQUENCE, bytes([self.pan_sequence])),
                P(0x5F28, bytes.fromhex("0840")),  # issuer country code
            ).encode(),
            (2, 2): C(
                emv_tlv.TAG_RECORD,
                P(0x8C, bytes.fromhex("9F02069F03069F1A0295055F2A029A039C019F3704")),  # CDOL1
                P(0x8D, bytes.fromhex("8A029F02069F03069F1A0295055F2A029A039C019F3704")),
                P(0x8E, bytes.fromhex("000000000000000042031E031F03")),  # CVM list
            ).encode(),
        }


@dataclass
class ChipCard:
    applications: tuple[EmvApplication, ...]
    atr: bytes = DEFAULT_ATR
    t0: bool = True
    mute: bool = False
    with_pse: bool = True
    # Session state, reset at every power-on.
    _selected: EmvApplication | str | None = field(default=None, init=False)
    _pending: bytes = field(default=b"", init=False)
    _gpo_done: bool = field(default=False, init=False)

    def power_on(self) -> bytes | None:
        """The ATR, or None when the chip stays mute."""
        self._selected, self._pending, self._gpo_done = None, b"", False
        return None if self.mute else self.atr

    def transmit(self, raw: bytes) -> bytes:
        command = apdu.parse_command(raw)
        if isinstance(command, Malformed):
            return _sw(0x6700).encode()
        return self._answer(command).encode()

    # -- dispatch ---------------------------------------------------------------------------

    def _answer(self, command: CommandApdu) -> ResponseApdu:
        if command.ins == 0xC0 and command.cla == 0x00:
            return self._get_response(command)
        self._pending = b""
        if command.cla not in (0x00, 0x80):
            return _sw(0x6E00)
        if command.ins == 0xA4:
            return self._outgoing(command, self._select(command))
        if command.ins == 0xA8 and command.cla == 0x80:
            return self._outgoing(command, self._gpo(command))
        if command.ins == 0xB2:
            return self._read_record(command)
        return _sw(0x6D00)

    def _outgoing(self, command: CommandApdu, response: ResponseApdu) -> ResponseApdu:
        """T=0 case 4: data is not returned with the command; announce it with 61xx."""
        if self.t0 and response.ok and response.data and command.data:
            self._pending = response.data
            return _sw(0x6100 | min(len(response.data), 256) % 256)
        return response

    def _get_response(self, command: CommandApdu) -> ResponseApdu:
        if not self._pending:
            return _sw(0x6985)
        wanted = command.le or 256
        data, self._pending = self._pending[:wanted], self._pending[wanted:]
        if self._pending:
            return _sw(0x6100 | min(len(self._pending), 256) % 256, data)
        return _sw(0x9000, data)

    def _select(self, command: CommandApdu) -> ResponseApdu:
        if command.p1 != 0x04 or command.p2 not in (0x00, 0x02):
            return _sw(0x6A86)
        name = command.data
        if self.with_pse and name == apdu.PSE:
            self._selected = "PSE"
            fci = C(
                emv_tlv.TAG_FCI,
                P(emv_tlv.TAG_DF_NAME, apdu.PSE),
                C(emv_tlv.TAG_FCI_PROPRIETARY, P(0x88, b"\x01"), P(0x5F2D, b"en")),
            )
            return _sw(0x9000, fci.encode())
        # Partial names select the first application whose AID starts with them (EMV 12.3.3).
        for app in self.applications:
            if name and app.aid.startswith(name):
                self._selected, self._gpo_done = app, False
                return _sw(0x9000, app.fci())
        return _sw(0x6A82)

    def _gpo(self, command: CommandApdu) -> ResponseApdu:
        app = self._selected
        if not isinstance(app, EmvApplication) or self._gpo_done:
            return _sw(0x6985)
        data = emv_tlv.parse(command.data)
        wanted = sum(_dol_lengths(app.pdol))
        if isinstance(data, Malformed) or len(data) != 1 or data[0].tag != 0x83:
            return _sw(0x6700)
        if len(data[0].value) != wanted:
            return _sw(0x6700)
        self._gpo_done = True
        body = C(
            emv_tlv.TAG_RESPONSE_FORMAT_2,
            P(emv_tlv.TAG_AIP, bytes.fromhex("1980")),  # SDA, cardholder verification, TRM
            P(emv_tlv.TAG_AFL, emv_tlv.encode_afl(app.afl())),
        )
        return _sw(0x9000, body.encode())

    def _read_record(self, command: CommandApdu) -> ResponseApdu:
        if command.p2 & 0x07 != 0x04:
            return _sw(0x6A86)
        sfi, record = command.p2 >> 3, command.p1
        if self._selected == "PSE":
            data = self._directory().get((sfi, record))
        elif isinstance(self._selected, EmvApplication):
            if not self._gpo_done:
                return _sw(0x6985)
            data = self._selected.records().get((sfi, record))
        else:
            return _sw(0x6986)
        if data is None:
            return _sw(0x6A83)
        if self.t0 and (command.le or 256) != len(data):
            return _sw(0x6C00 | len(data) % 256)
        return _sw(0x9000, data)

    def _directory(self) -> dict[tuple[int, int], bytes]:
        entries: list[Tlv] = [
            C(
                emv_tlv.TAG_APP_TEMPLATE,
                P(emv_tlv.TAG_AID, app.aid),
                P(emv_tlv.TAG_APP_LABEL, app.label.encode("ascii")),
                P(0x87, bytes([app.priority])),
            )
            for app in self.applications
        ]
        return {(1, 1): C(emv_tlv.TAG_RECORD, *entries).encode()}


def _dol_lengths(dol: bytes) -> list[int]:
    """The lengths a well-formed DOL asks for (the card's own PDOL is trusted)."""
    out, i = [], 0
    while i < len(dol):
        i += 2 if dol[i] & 0x1F == 0x1F else 1
        out.append(dol[i])
        i += 1
    return out
