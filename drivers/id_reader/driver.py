"""China resident ID-card reader driver (GA 467 SAM_V module over serial).

Options in ``[device.id_reader]``:

==================  ========================================================================
``port``            serial path or pyserial URL
``baudrate``        serial speed (default 115200, as real readers ship)
``status_timeout``  seconds to wait for the SAM status reply (default 0.5)
``reply_timeout``   seconds to wait for a find/select/read reply (default 3.0)
``find_interval``   seconds between find-card attempts while waiting for a card (default 0.2)
==================  ========================================================================

Commands:

- ``sam_status``: the SAM's self-check; ``{"sam": "ok", "sw3": "0x90"}``.
- ``read_card {timeout_s=10}``: find (repeated until a card is there or ``timeout_s`` passes)
  → select → read text and photo → parse → validate against today's date. A card with
  problems (expired, bad check digit, ...) is a *successful* read with ``valid`` false and the
  problem codes listed; the transaction decides what to do with it.
- ``test_read {timeout_s=5}``: the technician's read: the same, but only masked data.

Status comes from SAM status, which the SAM answers whether or not a card is on the reader:
no answer is offline, a SAM failure result is a hardware error.

The full ID number is in ``read_card``'s result because the transaction engine needs it; it is
never put in a log, an error message or a status. Errors name the command and SW3 only.
"""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import date
from typing import Any

from branchline.common.config_reader import SectionReader
from branchline.drivers import params as param
from branchline.drivers.base import (
    CancelToken,
    Completion,
    DeviceError,
    DeviceGone,
    DeviceStatus,
    SelfTestResult,
    StatusReport,
)
from branchline.drivers.id_reader.frames import Command, Malformed, parse_text_and_photo
from branchline.drivers.id_reader.identity import IdentityCard, parse_identity, validate
from branchline.drivers.id_reader.link import Ga467Link, NoReply, describe
from branchline.drivers.id_reader.options import IdReaderOptions, read_id_reader_options
from branchline.drivers.serial_link import SerialLinkDriver, status_failure
from branchline.drivers.transport import Transport

SW3_OK = 0x90
SW3_CARD_FOUND = 0x9F
SW3_NO_CARD = 0x80
MAX_TIMEOUT_S = 300.0
READ_CARD_TIMEOUT_S = 10.0
TEST_READ_TIMEOUT_S = 5.0


def mask_id_number(id_number: str) -> str:
    """``11010519491231002X`` -> ``110105********002X`` (first 6, last 4 kept)."""
    if len(id_number) < 11:
        return "*" * len(id_number)
    return id_number[:6] + "*" * (len(id_number) - 10) + id_number[-4:]


def mask_name(name: str) -> str:
    """Family name kept (the first character), the rest starred."""
    return name[:1] + "*" * max(0, len(name) - 1)


def _timeout(params: dict[str, Any], default: float) -> float:
    param.only(params, ("timeout_s",))
    return param.seconds(params, "timeout_s", default, maximum=MAX_TIMEOUT_S)


class Ga467IdReaderDriver(SerialLinkDriver[Ga467Link]):
    device_class = "id_reader"
    device_name = "ID reader"
    options: IdReaderOptions

    @classmethod
    def read_options(cls, reader: SectionReader) -> IdReaderOptions:
        return read_id_reader_options(reader)

    def make_link(self, transport: Transport) -> Ga467Link:
        return Ga467Link(transport)

    # -- status ------------------------------------------------------------------------------

    def _sam_status(self, cancel: CancelToken | None = None) -> dict[str, str]:
        reply = self._line().exchange(Command.SAM_STATUS, self.options.status_timeout, cancel)
        if reply.sw3 != SW3_OK:
            raise reply.result.to_device_error()
        return {"sam": "ok", "sw3": f"0x{reply.sw3:02X}"}

    def poll(self) -> StatusReport:
        try:
            self._sam_status()
        except DeviceGone:
            raise
        except DeviceError as exc:
            return status_failure(exc, "sam", NoReply)
        # No read counter in the facts: a fact change is a status event to the server.
        return StatusReport(DeviceStatus.ONLINE, "", {"sam": "ok"})

    def capabilities(self) -> dict[str, str]:
        return {
            "transport": "serial",
            "protocol": "ga467",
            "text": "true",
            "photo": "true",
            "sam": "true",
        }

    # -- reading -----------------------------------------------------------------------------

    def _expect(self, command: Command, sw3_ok: int, cancel: CancelToken) -> bytes:
        reply = self._line().exchange(command, self.options.reply_timeout, cancel)
        if reply.sw3 != sw3_ok:
            raise reply.result.to_device_error()
        return reply.data

    def _wait_for_card(self, timeout_s: float, cancel: CancelToken) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            reply = self._line().exchange(Command.FIND_CARD, self.options.reply_timeout, cancel)
            if reply.sw3 == SW3_CARD_FOUND:
                return
            if reply.sw3 != SW3_NO_CARD:
                raise reply.result.to_device_error()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeviceError(
                    Completion.TIMEOUT, "no_card", f"no ID card placed within {timeout_s:g} s"
                )
            if cancel.wait(min(self.options.find_interval, remaining)):
                cancel.raise_if_canceled()

    def read_identity(self, timeout_s: float, cancel: CancelToken) -> IdentityCard:
        """Find, select and read a card; the parsed card (not yet validated)."""
        cancel.raise_if_canceled()
        self._wait_for_card(timeout_s, cancel)
        self._expect(Command.SELECT_CARD, SW3_OK, cancel)
        data = self._expect(Command.READ_TEXT_PHOTO, SW3_OK, cancel)
        parts = parse_text_and_photo(data)
        if isinstance(parts, Malformed):
            raise self._bad_card_data(parts)
        card = parse_identity(parts.text, parts.photo)
        if isinstance(card, Malformed):
            raise self._bad_card_data(card)
        return card

    @staticmethod
    def _bad_card_data(problem: Malformed) -> DeviceError:
        # Only the reason: the raw bytes hold the card holder's data.
        return DeviceError(
            Completion.INVALID_DATA,
            "bad_card_data",
            f"ID reader: {describe(Command.READ_TEXT_PHOTO)} reply: {problem.reason}",
        )

    def read_card(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        timeout_s = _timeout(params, READ_CARD_TIMEOUT_S)
        card = self.read_identity(timeout_s, cancel)
        # The raw fields and photo too: the issuing flows send them to the server.
        return {
            **card_result(card, date.today()),
            "sex_code": card.sex_code,
            "ethnicity_code": card.ethnicity_code,
            "photo_b64": base64.b64encode(card.photo).decode("ascii"),
        }

    def test_read(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        timeout_s = _timeout(params, TEST_READ_TIMEOUT_S)
        card = self.read_identity(timeout_s, cancel)
        return masked_result(card_result(card, date.today()))

    def sam_status(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, ())
        return dict(self._sam_status(cancel))

    def commands(self) -> dict[str, Any]:
        return {
            "sam_status": self.sam_status,
            "read_card": self.read_card,
            "test_read": self.test_read,
        }

    def self_test(self, cancel: CancelToken) -> SelfTestResult:
        # A SAM failure raises here; the owner reports its completion code.
        self._sam_status(cancel)
        return SelfTestResult(True, "SAM answered its status request: OK")


def card_result(card: IdentityCard, today: date) -> dict[str, Any]:
    """``read_card``'s result. Holds the full ID number: never log it."""
    problems = [p.code for p in validate(card, today)]
    return {
        "name": card.name,
        "sex": card.sex,
        "ethnicity": card.ethnicity,
        "birth_date": card.birth_date,
        "address": card.address,
        "id_number_masked": mask_id_number(card.id_number),
        "id_number": card.id_number,
        "issuing_authority": card.issuing_authority,
        "valid_from": card.valid_from,
        "valid_to": card.valid_to,
        "photo_sha256": hashlib.sha256(card.photo).hexdigest(),
        "photo_bytes": len(card.photo),
        "problems": problems,
        "valid": not problems,
    }


def masked_result(result: dict[str, Any]) -> dict[str, Any]:
    """What a technician may see of a read: enough to tell the reader works, no identity."""
    return {
        "name_masked": mask_name(str(result["name"])),
        "id_number_masked": result["id_number_masked"],
        "valid_from": result["valid_from"],
        "valid_to": result["valid_to"],
        "photo_bytes": result["photo_bytes"],
        "photo_sha256": result["photo_sha256"],
        "problems": result["problems"],
        "valid": result["valid"],
    }
