"""Creator CRT-591-style motorised card reader driver (magnetic tracks, EMV contact chip).

Options in ``[device.card_reader]`` (see ``options.py``):

=================  =========================================================================
``port``           serial path or pyserial URL
``baudrate``       9600 (default), 19200, 38400, 57600 or 115200
``address``        reader address on the line, 0..15 (default 0)
``ack_timeout``    seconds to wait for ACK/NAK after a frame (default 0.5); no answer = offline
``reply_timeout``  seconds to wait for the reply after ACK (default 5)
``nak_retries``    resends after a NAK before failing with ``nak_storm`` (default 3)
``take_timeout``   seconds the customer has to take an ejected card before it is retained
                   (default 30; must be at least 5 s below ``command_timeout``)
``bin_capacity``   cards the capture bin holds (default 50), reported as a capability
``insert_poll``    seconds between status polls while waiting for a card (default 0.2)
=================  =========================================================================

Commands (also what technicians run with ``branchline-diag card_reader NAME key=value``):

- ``initialise`` / ``reset`` {card: keep|eject|retain = keep} -> {card_position, bin_count}
- ``status`` -> {card_position: none|at_gate|inside, bin_full, bin_count, bin_capacity}
- ``accept_card`` {timeout_s = 30} -> {card: "inserted"}; TIMEOUT ``no_card_inserted``, CANCELED
- ``read_tracks`` -> {track1_present, track2_present, track3_present, pan_masked, expiry
  (YYYY-MM), cardholder_name, service_code, pan, track2}
- ``read_chip`` -> {atr, aid, app_label, pan, pan_masked, expiry (YYYY-MM), expiry_date,
  cardholder_name, track2}
- ``eject`` {take_timeout_s = take_timeout} -> {card: "taken"} or {card: "retained", bin_count}
- ``retain`` -> {bin_count}
- ``bin_count`` -> {bin_count, bin_capacity, bin_full}
- ``set_bin_count`` {count = 0} -> {bin_count} (after emptying the bin)

``pan`` and ``track2`` carry the full PAN and an ISO 7813 track 2 image (``;PAN=YYMM...?``)
because the transaction engine needs them; the key names are on the redaction list, and the
driver itself never logs track or chip data, not even inside an error message. A track with no
data reads as a positive reply with empty DATA (``trackN_present`` false).

Status: no ACK at all is ``offline``; a NAK storm and a card jam are ``hardware_error``; a full
capture bin is ``user_error`` ("capture bin full"): the reader still reads and ejects, but a
terminal that cannot retain a card must not take one, and a person (not a technician's repair)
clears it by emptying the bin and running ``set_bin_count``. A jam stays reported until
``initialise`` succeeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from branchline.common.config_reader import SectionReader
from branchline.common.redaction import mask_pan
from branchline.drivers import params as param
from branchline.drivers.base import (
    CancelToken,
    CommandCanceled,
    CommandHandler,
    Completion,
    DeviceError,
    DeviceGone,
    DeviceStatus,
    Driver,
    DriverContext,
    SelfTestResult,
    StatusReport,
)
from branchline.drivers.card_reader import commands as cmd
from branchline.drivers.card_reader import emv_read, tracks
from branchline.drivers.card_reader.apdu import CommandApdu, ResponseApdu, parse_response
from branchline.drivers.card_reader.emv_tlv import Track2Equivalent
from branchline.drivers.card_reader.frames import CardPosition, ReplyFrame
from branchline.drivers.card_reader.link import Clock, Link, NakStorm, NoAck, ReplyTimeout
from branchline.drivers.card_reader.options import CardReaderOptions, read_card_reader_options
from branchline.drivers.malformed import Malformed
from branchline.drivers.transport import Transport, open_transport

POSITION_NAMES = {
    CardPosition.NO_CARD: "none",
    CardPosition.AT_GATE: "at_gate",
    CardPosition.INSIDE: "inside",
}
INIT_MODES = {
    "keep": cmd.INIT_NO_MOVE,
    "eject": cmd.INIT_EJECT,
    "retain": cmd.INIT_CAPTURE_COUNTED,
}
MAX_WAIT_S = 600.0

Opener = Callable[[str, int], Transport]


class Crt591CardReaderDriver(Driver):
    device_class = "card_reader"

    def __init__(
        self,
        context: DriverContext,
        options: CardReaderOptions,
        *,
        opener: Opener = open_transport,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(context, options)
        self.options = options
        self._opener = opener
        self._clock = clock
        self._link: Link | None = None
        self._bin_count: int | None = None

    @classmethod
    def read_options(cls, reader: SectionReader) -> CardReaderOptions:
        return read_card_reader_options(reader)

    # -- life cycle ------------------------------------------------------------------------

    def open(self) -> None:
        transport = self._opener(self.options.port, self.options.baudrate)
        transport.tap = self.tap
        self._link = Link(
            transport,
            address=self.options.address,
            ack_timeout=self.options.ack_timeout,
            nak_retries=self.options.nak_retries,
            baudrate=self.options.baudrate,
            clock=self._clock,
        )
        try:
            transport.discard_input()
            # Clear whatever exchange a previous owner left half done.
            self._link.send_eot()
            # The bin counter is cached (only this driver changes it); a silent reader is
            # fine here, poll reports it offline and reads the counter once it answers.
            _best_effort(self._refresh_bin_count)
        except DeviceGone:
            self.close()  # the owner only closes drivers that opened
            raise

    def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.transport.close()

    def _line(self) -> Link:
        if self._link is None:
            raise DeviceGone("card reader is not open")
        return self._link

    def _exchange(self, code: cmd.CommandCode, data: bytes = b"") -> ReplyFrame:
        """One exchange; a negative reply raises the error-table DeviceError."""
        reply = self._line().exchange(code, data, reply_timeout=self.options.reply_timeout)
        if not reply.positive:
            raise cmd.error_for(reply.error_code or "").to_device_error()
        return reply

    # -- status ----------------------------------------------------------------------------

    def _position(self) -> tuple[CardPosition, bool]:
        reply = self._exchange(cmd.STATUS)
        position = reply.card_position
        if position is None:
            raise DeviceError(
                Completion.HARDWARE_ERROR,
                "bad_status",
                f"card reader sent an unknown card position byte 0x{reply.status[0]:02X}",
            )
        return position, bool(reply.bin_full)

    def _refresh_bin_count(self) -> int:
        reply = self._exchange(cmd.READ_BIN_COUNTER)
        digits = reply.data[:3]
        if len(digits) != 3 or not digits.isdigit():
            raise DeviceError(
                Completion.HARDWARE_ERROR,
                "bad_bin_counter",
                "card reader's capture-bin counter is not three ASCII digits",
            )
        self._bin_count = int(digits)
        return self._bin_count

    def _facts(self, position: CardPosition | None, bin_full: bool | None) -> dict[str, str]:
        facts = {"bin_capacity": str(self.options.bin_capacity)}
        if position is not None:
            facts["card_position"] = POSITION_NAMES[position]
        if bin_full is not None:
            facts["bin_full"] = "true" if bin_full else "false"
        if self._bin_count is not None:
            facts["bin_count"] = str(self._bin_count)
        return facts

    def poll(self) -> StatusReport:
        try:
            position, bin_full = self._position()
        except NoAck:
            return StatusReport(DeviceStatus.OFFLINE, "no answer from the card reader")
        except ReplyTimeout:
            return StatusReport(DeviceStatus.OFFLINE, "card reader acknowledged but did not reply")
        except NakStorm:
            return StatusReport(
                DeviceStatus.HARDWARE_ERROR, "card reader rejects every frame (NAK storm)"
            )
        except DeviceGone:
            raise
        except DeviceError as exc:
            return self._error_report(exc)
        if self._bin_count is None:
            _best_effort(self._refresh_bin_count)
        facts = self._facts(position, bin_full)
        if bin_full:
            return StatusReport(DeviceStatus.USER_ERROR, "capture bin full", facts)
        detail = {CardPosition.AT_GATE: "card at the gate", CardPosition.INSIDE: "card inside"}
        return StatusReport(DeviceStatus.ONLINE, detail.get(position, ""), facts)

    def _error_report(self, exc: DeviceError) -> StatusReport:
        facts = self._facts(None, None)
        if exc.code == "card_jam":
            return StatusReport(DeviceStatus.HARDWARE_ERROR, "card jam", facts)
        status = {
            Completion.USER_ERROR: DeviceStatus.USER_ERROR,
            Completion.DEVICE_NOT_READY: DeviceStatus.OFFLINE,
        }.get(exc.completion, DeviceStatus.HARDWARE_ERROR)
        return StatusReport(status, exc.message, facts)

    def capabilities(self) -> dict[str, str]:
        return {
            "transport": "serial",
            "tracks": "1,2,3",
            "chip": "emv_contact",
            "capture_bin_size": str(self.options.bin_capacity),
            "take_timeout_s": f"{self.options.take_timeout:g}",
        }

    def self_test(self, cancel: CancelToken) -> SelfTestResult:
        cancel.raise_if_canceled()
        self._exchange(cmd.INIT_NO_MOVE)
        position, bin_full = self._position()
        version = self._exchange(cmd.READ_VERSION).data.decode("ascii", "replace").strip()
        count = self._refresh_bin_count()
        return SelfTestResult(
            True,
            f"reader {version or 'answered'}; card {POSITION_NAMES[position]}; "
            f"bin {count}/{self.options.bin_capacity}{' FULL' if bin_full else ''}",
        )

    # -- commands --------------------------------------------------------------------------

    def commands(self) -> dict[str, CommandHandler]:
        return {
            "initialise": self.initialise,
            "reset": self.initialise,
            "status": self.status,
            "accept_card": self.accept_card,
            "read_tracks": self.read_tracks,
            "read_chip": self.read_chip,
            "eject": self.eject,
            "retain": self.retain,
            "bin_count": self.bin_count,
            "set_bin_count": self.set_bin_count,
        }

    def _require_card(self, *where: CardPosition) -> CardPosition:
        position, _ = self._position()
        if position not in where:
            raise DeviceError(
                Completion.SEQUENCE_ERROR,
                "no_card" if position is CardPosition.NO_CARD else "card_position",
                f"card reader: card is {POSITION_NAMES[position]}, this command needs it "
                + " or ".join(POSITION_NAMES[p] for p in where),
            )
        return position

    def initialise(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, {"card"})
        mode = param.one_of(params, "card", "keep", INIT_MODES)
        cancel.raise_if_canceled()
        self._exchange(INIT_MODES[mode])
        position, _ = self._position()
        return {"card_position": POSITION_NAMES[position], "bin_count": self._refresh_bin_count()}

    def status(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, ())
        position, bin_full = self._position()
        return {
            "card_position": POSITION_NAMES[position],
            "bin_full": bin_full,
            "bin_count": self._refresh_bin_count(),
            "bin_capacity": self.options.bin_capacity,
        }

    def bin_count(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, ())
        _, bin_full = self._position()
        return {
            "bin_count": self._refresh_bin_count(),
            "bin_capacity": self.options.bin_capacity,
            "bin_full": bin_full,
        }

    def set_bin_count(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, {"count"})
        count = param.whole_number(params, "count", 0, 0, 999)
        self._exchange(cmd.SET_BIN_COUNTER, f"{count:03d}".encode("ascii"))
        return {"bin_count": self._refresh_bin_count()}

    def accept_card(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, {"timeout_s"})
        timeout = param.seconds(params, "timeout_s", 30.0, maximum=MAX_WAIT_S)
        position = self._position()[0]
        if position is CardPosition.INSIDE:
            return {"card": "inserted"}
        if position is CardPosition.AT_GATE:
            raise DeviceError(
                Completion.SEQUENCE_ERROR,
                "card_at_gate",
                "card reader: a card is waiting at the gate; eject or retain it first",
            )
        self._exchange(cmd.ENABLE_INSERTION)
        deadline = self._clock() + timeout
        try:
            while True:
                if self._position()[0] is CardPosition.INSIDE:
                    return {"card": "inserted"}
                if self._clock() >= deadline:
                    raise DeviceError(
                        Completion.TIMEOUT,
                        "no_card_inserted",
                        f"no card was inserted within {timeout:g} s",
                    )
                if cancel.wait(min(self.options.insert_poll, max(0.0, deadline - self._clock()))):
                    raise CommandCanceled(cancel.reason or "accept_card canceled")
        finally:
            # Close the gate whatever happened (a card inside, timeout, cancel, error).
            _best_effort(lambda: self._exchange(cmd.DISABLE_INSERTION))

    # -- reading ---------------------------------------------------------------------------

    def _read_track(self, number: int) -> bytes:
        return self._exchange(cmd.READ_TRACK[number]).data

    def read_tracks(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, ())
        self._require_card(CardPosition.INSIDE)
        raw = {n: self._read_track(n) for n in (1, 2, 3)}
        cancel.raise_if_canceled()
        t1 = tracks.parse_track1(raw[1]) if raw[1] else None
        t2 = tracks.parse_track2(raw[2]) if raw[2] else None
        good1 = t1 if isinstance(t1, tracks.Track1) else None
        good2 = t2 if isinstance(t2, tracks.Track2) else None
        if (raw[1] or raw[2]) and good1 is None and good2 is None:
            # The parser's reason can quote track characters: say only which tracks failed.
            bad = " and ".join(f"track {n}" for n in (1, 2) if raw[n])
            raise DeviceError(
                Completion.INVALID_DATA, "unreadable_tracks", f"{bad} do not parse as ISO 7813"
            )
        if good1 is not None and good2 is not None and good1.pan != good2.pan:
            raise DeviceError(
                Completion.INVALID_DATA,
                "tracks_disagree",
                "track 1 and track 2 carry different PANs",
            )
        pan = good2.pan if good2 is not None else good1.pan if good1 is not None else None
        if pan is not None and not tracks.luhn_valid(pan):
            raise DeviceError(
                Completion.INVALID_DATA, "pan_check_digit", "the PAN on the stripe fails Luhn"
            )
        best = good2 or good1
        expiry = best.expiry if best is not None else None
        return {
            "track1_present": bool(raw[1]),
            "track2_present": bool(raw[2]),
            "track3_present": bool(raw[3]),
            "pan_masked": mask_pan(pan) if pan is not None else None,
            "expiry": f"20{expiry[:2]}-{expiry[2:]}" if expiry is not None else None,
            "cardholder_name": good1.name if good1 is not None else None,
            "service_code": best.service_code if best is not None else None,
            "pan": pan,
            "track2": tracks.encode_track2(good2) if good2 is not None else None,
        }

    def _transmit(self, command: CommandApdu) -> ResponseApdu:
        reply = self._exchange(cmd.APDU_AUTO, command.encode())
        response = parse_response(reply.data)
        if isinstance(response, Malformed):
            raise DeviceError(
                Completion.INVALID_DATA,
                "bad_apdu_response",
                f"card reader relayed a chip response without a status word ({response.reason})",
            )
        return response

    def read_chip(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, ())
        self._require_card(CardPosition.INSIDE)
        self._exchange(cmd.MOVE_TO_IC)
        cancel.raise_if_canceled()
        answer = self._exchange(cmd.IC_POWER_ON, bytes([cmd.VCC_5V_EMV])).data
        if len(answer) < 3:  # protocol byte plus at least TS and T0
            raise DeviceError(
                Completion.USER_ERROR, "no_atr", "chip card powered on but gave no answer-to-reset"
            )
        try:
            transmit = emv_read.with_follow_up(self._checked_transmit(cancel))
            chip = emv_read.read_application(transmit)
        finally:
            _best_effort(lambda: self._exchange(cmd.IC_POWER_OFF))
        return {
            "atr": answer[1:].hex().upper(),
            "protocol": f"T={chr(answer[0])}" if answer[:1] in (b"0", b"1") else "unknown",
            "aid": chip.aid.hex().upper(),
            "app_label": chip.app_label,
            "pan": chip.pan,
            "pan_masked": mask_pan(chip.pan),
            "expiry": chip.expiry,
            "expiry_date": chip.expiry_date,
            "cardholder_name": chip.cardholder_name,
            "track2": _track2_image(chip.track2),
        }

    def _checked_transmit(self, cancel: CancelToken) -> emv_read.Transmit:
        def transmit(command: CommandApdu) -> ResponseApdu:
            cancel.raise_if_canceled()
            return self._transmit(command)

        return transmit

    # -- card out --------------------------------------------------------------------------

    def retain(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, ())
        self._require_card(CardPosition.INSIDE, CardPosition.AT_GATE)
        self._exchange(cmd.CAPTURE)
        return {"bin_count": self._refresh_bin_count()}

    def eject(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, {"take_timeout_s"})
        take_timeout = param.seconds(
            params, "take_timeout_s", self.options.take_timeout, maximum=MAX_WAIT_S
        )
        position = self._require_card(CardPosition.INSIDE, CardPosition.AT_GATE)
        if position is CardPosition.INSIDE:
            self._exchange(cmd.MOVE_TO_GATE)  # held at the gate: the reader can still pull it in
        deadline = self._clock() + take_timeout
        while True:
            if self._position()[0] is CardPosition.NO_CARD:
                return {"card": "taken"}
            if self._clock() >= deadline:
                break
            if cancel.wait(min(self.options.insert_poll, max(0.0, deadline - self._clock()))):
                # The card stays held at the gate; the caller decides what happens to it.
                raise CommandCanceled(cancel.reason or "eject canceled")
        self._exchange(cmd.CAPTURE)
        return {"card": "retained", "bin_count": self._refresh_bin_count()}


def _best_effort(step: Callable[[], object]) -> None:
    """Run a clean-up step; a device error is ignored (the main outcome matters more), a
    vanished line is not (the owner must reconnect)."""
    try:
        step()
    except DeviceGone:
        raise
    except DeviceError:
        pass


def _track2_image(track: Track2Equivalent | None) -> str | None:
    """Tag 57 as the ISO 7813 track 2 text a magnetic read would give."""
    if track is None:
        return None
    return f";{track.pan}={track.expiry}{track.service_code}{track.discretionary}?"
