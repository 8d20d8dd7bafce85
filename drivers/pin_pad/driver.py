"""Encrypting PIN pad (EPP) driver speaking Branchline's EPP command set (see ``protocol``).

Options in ``[device.pin_pad]``:

=================  =========================================================================
``port``           serial path or pyserial URL
``baudrate``       serial speed (9600 default; 19200, 38400, 57600, 115200)
``reply_timeout``  seconds to wait for each reply (default 1.0)
``key_slot``       the PIN pad key slot this terminal uses (0-3, default 0)
=================  =========================================================================

Set the device's ``command_timeout`` above the longest ``read_pin`` ``timeout_s`` you use: the
owner cancels a command that runs longer, whatever the customer is doing.

The clear PIN never reaches this driver: the PIN pad reports key presses as digit counts and
returns an encrypted PIN block (format 0 under TDES DUKPT, format 4 under AES DUKPT) with its
KSN. Key material, PIN blocks and PANs are never logged and are blanked in the wire spy;
command parameters are never logged at all.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from branchline.common.config_reader import SectionReader
from branchline.common.logs import log_event
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
from branchline.drivers.pin_pad import ksn as ksn_counter
from branchline.drivers.pin_pad import protocol as p
from branchline.drivers.pin_pad.command_params import load_key_request, pin_request
from branchline.drivers.pin_pad.options import EppOptions, read_epp_options
from branchline.drivers.pin_pad.spy import SpyRedactor
from branchline.drivers.transport import Transport, open_transport

log = logging.getLogger("branchline.drivers.pin_pad")

# How often a wait wakes up to look at the cancel token.
READ_SLICE = 0.1
# Silence after a partial frame that ends it (the rest is not coming).
FRAME_GAP = 0.2
# Extra time past the PIN pad's own entry timeout before the driver gives up on it.
ENTRY_GUARD = 3.0
REQUEST_ATTEMPTS = 2

# How each PIN pad result code ends a command, and what the technician is told.
_ERRORS: dict[p.ResultCode, tuple[Completion, str]] = {
    p.ResultCode.UNKNOWN_COMMAND: (Completion.UNSUPPORTED, "the PIN pad does not know {cmd}"),
    p.ResultCode.BAD_PARAMETER: (Completion.INVALID_DATA, "the PIN pad refused {cmd}'s parameters"),
    p.ResultCode.NO_KEY: (Completion.DEVICE_NOT_READY, "no key is loaded in slot {slot}"),
    p.ResultCode.KSN_EXHAUSTED: (
        Completion.HARDWARE_ERROR,
        "the KSN counter of slot {slot} is exhausted: load a new key",
    ),
    p.ResultCode.BUSY: (Completion.SEQUENCE_ERROR, "a PIN entry is already in progress"),
    p.ResultCode.TAMPER: (
        Completion.HARDWARE_ERROR,
        "tamper detected: the PIN pad has erased its keys",
    ),
    p.ResultCode.NOT_IN_ENTRY: (Completion.SEQUENCE_ERROR, "no PIN entry is in progress"),
    p.ResultCode.KEY_REJECTED: (Completion.INVALID_DATA, "the PIN pad rejected the key"),
    p.ResultCode.FORMAT_MISMATCH: (
        Completion.INVALID_DATA,
        "the PIN block format does not match the key in slot {slot} (tdes: 0, aes: 4)",
    ),
    p.ResultCode.CUSTOMER_CANCELED: (Completion.CANCELED, "the customer pressed cancel"),
    p.ResultCode.ENTRY_TIMEOUT: (Completion.TIMEOUT, "the customer did not finish in time"),
    p.ResultCode.HOST_CANCELED: (Completion.CANCELED, "PIN entry canceled"),
}

M = TypeVar("M")


class EppDriver(Driver):
    device_class = "pin_pad"

    def __init__(self, context: DriverContext, options: EppOptions) -> None:
        super().__init__(context, options)
        self.options = options
        self._transport: Transport | None = None
        self._decoder = p.FrameDecoder()
        self._pending: deque[p.DeviceMessage] = deque()
        self._last_rx = 0.0
        self._seq = 0
        self._info: p.InfoReply | None = None
        self.malformed = 0

    @classmethod
    def read_options(cls, reader: SectionReader) -> EppOptions:
        return read_epp_options(reader)

    # -- life cycle -------------------------------------------------------------------------

    def _open_transport(self) -> Transport:
        return open_transport(self.options.port, self.options.baudrate)

    def open(self) -> None:
        transport = self._open_transport()
        self._transport = transport
        transport.tap = SpyRedactor(self.tap).tap if self.tap is not None else None
        transport.discard_input()
        self._decoder.reset()
        self._pending.clear()
        # An entry left running before a reconnect must not keep waiting for a customer.
        self._try(lambda: self._request(p.CancelEntry(), attempts=1))
        info = self._try(lambda: self._request(p.GetInfo()))
        self._info = info if isinstance(info, p.InfoReply) else None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _line(self) -> Transport:
        if self._transport is None:
            raise DeviceGone("PIN pad is not open")
        return self._transport

    @staticmethod
    def _try(fn: Callable[[], M]) -> M | None:
        """``fn()``, or None when the PIN pad refuses or does not answer (but not when gone)."""
        try:
            return fn()
        except DeviceGone:
            raise
        except DeviceError:
            return None

    # -- the wire ---------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = self._seq % 255 + 1  # 1..255; 0 is the device's
        return self._seq

    def _send(self, request: p.Request) -> int:
        seq = self._next_seq()
        self._line().write(p.encode_request(seq, request))
        return seq

    def _take(self, items: list[p.Frame | p.Malformed]) -> None:
        for item in items:
            message = p.decode_device_message(item) if isinstance(item, p.Frame) else item
            if isinstance(message, p.Malformed):
                self.malformed += 1
                # The reason only: raw bytes could hold a PIN block.
                log_event(
                    log,
                    "epp_malformed",
                    logging.WARNING,
                    device=self.context.device_name,
                    reason=message.reason,
                    length=len(message.raw),
                )
            else:
                self._pending.append(message)

    def _next_message(self, deadline: float) -> p.DeviceMessage | None:
        """The next message from the PIN pad, or None once ``deadline`` (monotonic) passes."""
        line = self._line()
        while not self._pending:
            now = time.monotonic()
            if now >= deadline:
                return None
            data = line.read(self._decoder.needed, min(deadline - now, READ_SLICE))
            if data:
                self._last_rx = time.monotonic()
                self._take(self._decoder.feed(data))
            elif self._decoder.buffered and time.monotonic() - self._last_rx >= FRAME_GAP:
                self._take(self._decoder.flush())
        return self._pending.popleft()

    def _error(self, code: p.ResultCode, cmd: int, suffix: str = "") -> DeviceError:
        completion, text = _ERRORS.get(code, (Completion.HARDWARE_ERROR, "PIN pad error"))
        message = text.format(cmd=p.Cmd(cmd).name, slot=self.options.key_slot)
        return DeviceError(completion, code.label, f"pin pad: {message}{suffix}")

    def _request(self, request: p.Request, attempts: int = REQUEST_ATTEMPTS) -> p.DeviceMessage:
        """Send ``request`` and return its ok reply; the PIN pad's refusal raises DeviceError."""
        for _ in range(attempts):
            seq = self._send(request)
            deadline = time.monotonic() + self.options.reply_timeout
            while (message := self._next_message(deadline)) is not None:
                if message.seq != seq or p.reply_to(message) is not request.cmd:
                    continue  # a late reply or event of an earlier exchange
                if isinstance(message, p.ErrorReply):
                    raise self._error(message.code, request.cmd)
                return message
        raise DeviceError(
            Completion.DEVICE_NOT_READY,
            "no_reply",
            f"pin pad: no valid reply to {request.cmd.name} within "
            f"{self.options.reply_timeout:g} s ({attempts} attempt(s))",
        )

    def _ask(self, request: p.Request, kind: type[M]) -> M:
        message = self._request(request)
        if not isinstance(message, kind):  # reply_to() matched, so this is a codec bug
            raise DeviceError(
                Completion.HARDWARE_ERROR, "bad_reply", f"pin pad: unexpected {type(message)}"
            )
        return message

    # -- status -----------------------------------------------------------------------------

    def poll(self) -> StatusReport:
        try:
            status = self._ask(p.Status(), p.StatusReply)
        except DeviceGone:
            raise
        except DeviceError as exc:
            return StatusReport(DeviceStatus.OFFLINE, exc.message)
        slot = self.options.key_slot
        algorithm = status.slot_algorithm(slot)
        exhausted = algorithm is not None and status.slot_exhausted(slot)
        state = (
            "tampered"
            if status.tamper
            else "exhausted"
            if exhausted
            else "ready"
            if algorithm
            else "not_initialized"
        )
        facts = {
            "encryption_state": state,
            "key_algorithm": str(algorithm or "none"),
            "entry": "active" if status.entry_active else "idle",
        }
        if status.tamper:
            return StatusReport(DeviceStatus.HARDWARE_ERROR, "tamper detected: keys erased", facts)
        if status.key_stuck:
            return StatusReport(DeviceStatus.HARDWARE_ERROR, "a key is stuck", facts)
        if exhausted:
            return StatusReport(
                DeviceStatus.HARDWARE_ERROR, "KSN counter exhausted: load a new key", facts
            )
        return StatusReport(DeviceStatus.ONLINE, "" if algorithm else "no key loaded", facts)

    def capabilities(self) -> dict[str, str]:
        caps = {
            "transport": "serial",
            "pin_block_formats": "0,4",
            "dukpt": "tdes,aes",
            "key_slot": str(self.options.key_slot),
            "digit_counts_only": "true",
        }
        if self._info is not None:
            caps.update(
                model=self._info.model,
                serial_number=self._info.serial,
                firmware=self._info.firmware,
            )
        return caps

    def self_test(self, cancel: CancelToken) -> SelfTestResult:
        cancel.raise_if_canceled()
        info = self._ask(p.GetInfo(), p.InfoReply)
        report = self.poll()
        if report.status is not DeviceStatus.ONLINE:
            return SelfTestResult(False, f"{info.model} {info.serial}: {report.detail}")
        key = report.facts.get("key_algorithm", "none")
        detail = f"{info.model} {info.serial} firmware {info.firmware} answers; key: {key}"
        return SelfTestResult(True, detail)

    # -- commands ---------------------------------------------------------------------------

    def commands(self) -> dict[str, CommandHandler]:
        return {
            "status": self.cmd_status,
            "info": self.cmd_info,
            "load_key": self.cmd_load_key,
            "kcv": self.cmd_kcv,
            "ksn": self.cmd_ksn,
            "erase_keys": self.cmd_erase_keys,
            "read_pin": self.read_pin,
            "read_signature": self.read_signature,
        }

    def cmd_status(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, (), command="status")
        status = self._ask(p.Status(), p.StatusReply)
        slot = self.options.key_slot
        algorithm = status.slot_algorithm(slot)
        return {
            "entry": "active" if status.entry_active else "idle",
            "tamper": status.tamper,
            "key_stuck": status.key_stuck,
            "slot": slot,
            "key_algorithm": str(algorithm or "none"),
            "ksn_exhausted": algorithm is not None and status.slot_exhausted(slot),
        }

    def cmd_info(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, (), command="info")
        info = self._ask(p.GetInfo(), p.InfoReply)
        self._info = info
        return {"model": info.model, "serial_number": info.serial, "firmware": info.firmware}

    def cmd_load_key(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        # Never log or echo ``params``: key_hex is key material.
        request = load_key_request(params, self.options.key_slot)
        cancel.raise_if_canceled()
        reply = self._ask(request, p.KeyLoadedReply)
        log_event(
            log,
            "epp_key_loaded",
            device=self.context.device_name,
            slot=self.options.key_slot,
            algorithm=str(reply.algorithm),
            kcv=reply.kcv.hex().upper(),
        )
        return {
            "slot": self.options.key_slot,
            "algorithm": str(reply.algorithm),
            "kcv": reply.kcv.hex().upper(),
            "ksn": reply.ksn.hex().upper(),
        }

    def cmd_kcv(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, (), command="kcv")
        reply = self._ask(p.GetKcv(self.options.key_slot), p.KcvReply)
        return {
            "slot": self.options.key_slot,
            "algorithm": str(reply.algorithm),
            "kcv": reply.kcv.hex().upper(),
        }

    def cmd_ksn(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, (), command="ksn")
        reply = self._ask(p.GetKsn(self.options.key_slot), p.KsnReply)
        counter = ksn_counter.ksn_counter(reply.algorithm, reply.ksn)
        return {
            "slot": self.options.key_slot,
            "algorithm": str(reply.algorithm),
            "ksn": reply.ksn.hex().upper(),
            "counter": counter,
            "remaining": 0 if reply.exhausted else ksn_counter.remaining(reply.algorithm, counter),
            "exhausted": reply.exhausted,
        }

    def cmd_erase_keys(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, (), command="erase_keys")
        self._request(p.EraseKeys(self.options.key_slot))
        log_event(
            log, "epp_keys_erased", device=self.context.device_name, slot=self.options.key_slot
        )
        return {"slot": self.options.key_slot, "erased": True}

    # -- PIN entry --------------------------------------------------------------------------

    def read_pin(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        """Wait for the customer's PIN; returns the encrypted PIN block, its KSN and the count of
        digits. The driver sees key presses as digit counts only."""
        request = pin_request(params, self.options.key_slot)
        cancel.raise_if_canceled()
        seq = self._send(request)
        started = False
        deadline = time.monotonic() + self.options.reply_timeout
        while True:
            if cancel.canceled:
                self._cancel_entry(seq)
                raise CommandCanceled(cancel.reason)
            now = time.monotonic()
            if now >= deadline:
                self._abandon_entry()
                what = "PIN result" if started else "reply to START_PIN"
                raise DeviceError(
                    Completion.DEVICE_NOT_READY, "no_reply", f"pin pad: no {what} in time"
                )
            message = self._next_message(min(deadline, now + READ_SLICE))
            if message is None or message.seq != seq:
                continue
            if isinstance(message, p.ErrorReply) and message.cmd == p.Cmd.START_PIN:
                raise self._error(message.code, message.cmd)
            if isinstance(message, p.OkReply) and message.cmd == p.Cmd.START_PIN:
                started = True
            elif isinstance(message, p.KeyEvent):
                pass  # a count only; the result carries the final one
            elif isinstance(message, p.PinResult):
                return self._pin_result(message, request)
            else:
                continue
            # Every sign of life restarts the PIN pad's timeout, so restart the guard too.
            deadline = time.monotonic() + request.timeout_s + ENTRY_GUARD

    # -- signature ---------------------------------------------------------------------------

    def read_signature(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        """The customer signs on the pad's screen: returns the signature as a PNG (base64)
        with its SHA-256. Params: ``timeout_s`` (1-255, default 60)."""
        param.only(params, {"timeout_s"}, command="read_signature")
        timeout_s = param.whole_number(params, "timeout_s", 60, 1, 255, command="read_signature")
        cancel.raise_if_canceled()
        self._request(p.SignStart(timeout_s))
        deadline = time.monotonic() + timeout_s + ENTRY_GUARD
        while True:
            if cancel.canceled:
                raise CommandCanceled(cancel.reason)
            first = self._ask(p.SignRead(0), p.SignChunk)
            if first.state is p.SignState.DONE:
                break
            if first.state is p.SignState.TIMED_OUT:
                raise DeviceError(
                    Completion.TIMEOUT,
                    "entry_timeout",
                    "pin pad: the customer did not sign in time",
                )
            if first.state is p.SignState.CANCELED:
                raise DeviceError(
                    Completion.CANCELED, "customer_canceled", "pin pad: the customer canceled"
                )
            if time.monotonic() >= deadline:
                raise DeviceError(
                    Completion.DEVICE_NOT_READY, "no_reply", "pin pad: the signature never came"
                )
            time.sleep(READ_SLICE)
        data = bytearray(first.chunk)
        while len(data) < first.total:
            cancel.raise_if_canceled()
            piece = self._ask(p.SignRead(len(data)), p.SignChunk)
            if not piece.chunk or piece.total != first.total:
                raise DeviceError(
                    Completion.HARDWARE_ERROR,
                    "bad_reply",
                    f"pin pad: the signature changed or stopped at byte {len(data)}",
                )
            data += piece.chunk
        png = bytes(data[: first.total])
        if not png.startswith(b"\x89PNG\r\n\x1a\n"):
            raise DeviceError(
                Completion.HARDWARE_ERROR, "bad_signature", "pin pad: the signature is not a PNG"
            )
        log_event(log, "signature_read", bytes=len(png))
        return {
            "png_base64": base64.b64encode(png).decode("ascii"),
            "sha256": hashlib.sha256(png).hexdigest(),
            "bytes": len(png),
        }

    def _pin_result(self, result: p.PinResult, request: p.StartPin) -> dict[str, Any]:
        log_event(
            log,
            "epp_pin_entry",
            device=self.context.device_name,
            outcome=result.outcome.label,
            digits=result.digits,
        )
        if result.outcome is not p.ResultCode.OK:
            counted = (p.ResultCode.CUSTOMER_CANCELED, p.ResultCode.ENTRY_TIMEOUT)
            suffix = f" ({result.digits} digit(s) entered)" if result.outcome in counted else ""
            raise self._error(result.outcome, p.Cmd.START_PIN, suffix)
        if request.pin_format is not None and result.pin_format != request.pin_format:
            raise DeviceError(
                Completion.HARDWARE_ERROR,
                "bad_reply",
                f"pin pad: asked for format {request.pin_format}, got {result.pin_format}",
            )
        return {
            "pin_block": result.block.hex().upper(),
            "ksn": result.ksn.hex().upper(),
            "format": result.pin_format,
            "digits": result.digits,
        }

    def _cancel_entry(self, entry_seq: int) -> None:
        """Tell the PIN pad to stop and wait briefly for it to confirm; a PIN block that raced
        the cancel is dropped."""
        self._send(p.CancelEntry())
        deadline = time.monotonic() + self.options.reply_timeout
        while (message := self._next_message(deadline)) is not None:
            if isinstance(message, p.PinResult) and message.seq == entry_seq:
                return

    def _abandon_entry(self) -> None:
        self._send(p.CancelEntry())  # best effort: the PIN pad has stopped answering
