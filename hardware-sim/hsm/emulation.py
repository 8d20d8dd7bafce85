"""What the simulated payShield answers: one payload in, one payload out, never a raise.

Commands are decoded with the same layouts the client encodes
(:mod:`branchline.common.hsm.payshield.messages`) and carried out by the soft backend on
the simulator's own keystore, so the two backends give identical results. Anything
malformed gets the payShield error code for it; an unexpected failure answers 41
(internal error) and is logged, and the connection stays usable.
"""

from __future__ import annotations

import logging

from branchline.common.hsm.errors import (
    HsmError,
    KeyNotFoundError,
    KeystoreError,
    MasterKeyError,
)
from branchline.common.hsm.interface import Ibm3624Record, KeyType, PvvRecord
from branchline.common.hsm.payshield import messages as m
from branchline.common.hsm.payshield.errorcodes import code_for
from branchline.common.hsm.payshield.wire import (
    FieldError,
    Fields,
    Message,
    parse_message,
    response_code,
)
from branchline.common.hsm.soft import SoftHsm
from branchline.common.logs import log_event
from branchline.common.paycrypto import aes_kcv

log = logging.getLogger("branchline.sim.hsm")

FIRMWARE = "BL10-SIM1"  # 9 characters, as payShield firmware numbers are
_PIN_KEY_TYPES = {m.KEY_TYPE_TPK: KeyType.TPK, m.KEY_TYPE_ZPK: KeyType.ZPK}


def _key_fields(request: m.Request) -> tuple[str, ...]:
    """The request's key references in field order (errors 10 and 11 name the first two)."""
    if isinstance(request, m.TranslateTpkToZpk):
        return (request.tpk, request.zpk)
    if isinstance(request, m.TranslateDukptToZpk):
        return (request.bdk, request.zpk)
    if isinstance(request, m.VerifyPvvDukpt | m.VerifyIbmDukpt):
        return (request.bdk, request.pvk)
    if isinstance(request, m.GeneratePvv | m.GenerateIbmOffset):
        return (request.pin_key, request.pvk)
    return ()


class PayShieldEmulation:
    def __init__(self, soft: SoftHsm, header_length: int = 4) -> None:
        self.soft = soft
        self.header_length = header_length

    def handle(self, payload: bytes) -> bytes:
        try:
            message = parse_message(payload, self.header_length)
        except FieldError as exc:
            log_event(log, "hsm_malformed_message", logging.WARNING, reason=exc.message)
            return payload[: self.header_length] + b"ZZ" + exc.error_code.encode()
        error_code, body = self._answer(message)
        log_event(log, "hsm_command", command=message.code, error_code=error_code)
        code = response_code(message.code)
        return Message(message.header, code, error_code + body, message.trailer).encode()

    def _answer(self, message: Message) -> tuple[str, str]:
        request_class = m.REQUESTS.get(message.code)
        if request_class is None:
            return "68", ""  # not a command this simulator offers
        try:
            request = request_class.decode(Fields(message.body))
        except FieldError as exc:
            log_event(
                log, "hsm_field_error", logging.INFO, command=message.code, reason=exc.message
            )
            return exc.error_code, ""
        try:
            return self._dispatch(request)
        except (KeystoreError, MasterKeyError) as exc:
            log_event(log, "hsm_keystore_error", logging.ERROR, reason=exc.message)
            return "13", ""
        except HsmError as exc:
            log_event(log, "hsm_refused", logging.INFO, command=message.code, code=exc.code)
            if isinstance(exc, KeyNotFoundError):
                # 10 names the command's first key field, 11 the second.
                return ("10" if exc.key_name == _key_fields(request)[0] else "11"), ""
            return code_for(exc), ""
        except Exception:  # a bug must not take the simulated HSM down
            log.exception("hsm_internal_error")
            return "41", ""

    # long: one branch per payShield command, a flat table
    def _dispatch(self, request: m.Request) -> tuple[str, str]:
        soft = self.soft
        if isinstance(request, m.TranslateTpkToZpk):
            block, length = soft.tpk_to_zpk(
                request.tpk,
                request.pin_block,
                request.pan,
                request.zpk,
                request.in_format,
                request.out_format,
            )
            return "00", m.TranslatedPin(length, block, request.out_format).encode()
        if isinstance(request, m.TranslateDukptToZpk):
            block, length = soft.dukpt_to_zpk(
                request.bdk,
                request.ksn,
                request.pin_block,
                request.pan,
                request.zpk,
                request.out_format,
            )
            return "00", m.TranslatedPin(length, block, request.out_format).encode()
        if isinstance(request, m.VerifyPvvDukpt):
            record = PvvRecord(request.pvki, request.pvv)
            ok = soft.verify_pin_dukpt(
                request.bdk, request.ksn, request.pin_block, request.pan, request.pvk, record
            )
            return ("00" if ok else "01"), ""
        if isinstance(request, m.VerifyIbmDukpt):
            ibm = Ibm3624Record(
                request.offset, request.validation_data, request.decimalization_table
            )
            ok = soft.verify_pin_dukpt(
                request.bdk, request.ksn, request.pin_block, request.pan, request.pvk, ibm
            )
            return ("00" if ok else "01"), ""
        if isinstance(request, m.GeneratePvv):
            pvv = soft.generate_pvv(
                request.pin_key,
                request.pin_block,
                request.pan,
                request.pvk,
                request.pvki,
                request.in_format,
                _PIN_KEY_TYPES[request.key_type],
            )
            return "00", m.PvvResult(pvv.pvv).encode()
        if isinstance(request, m.GenerateIbmOffset):
            offset = soft.generate_ibm3624_offset(
                request.pin_key,
                request.pin_block,
                request.pan,
                request.pvk,
                request.validation_data,
                request.decimalization_table,
                "F",
                request.in_format,
                _PIN_KEY_TYPES[request.key_type],
            )
            return "00", m.OffsetResult(offset.offset).encode()
        return "00", self.diagnostics().encode()

    def diagnostics(self) -> m.DiagnosticsResult:
        self.soft.keystore.records()  # fails (error 13) when the keystore is unusable
        lmk = aes_kcv(self.soft.keystore.master.value, 8).hex().upper()
        return m.DiagnosticsResult(lmk, FIRMWARE)
