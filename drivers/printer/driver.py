"""ESC/POS receipt printer driver over serial (pyserial) or USB (pyusb).

Options in ``[device.printer]``:

=================  =========================================================================
``port``           serial path or pyserial URL, or ``usb://VID:PID`` (hex) for a USB printer
``baudrate``       serial speed (default 19200; ignored for USB)
``status_timeout`` seconds to wait for each DLE EOT reply (default 0.5)
``width``          characters per line at normal size (default 48: Font A on 80 mm paper)
=================  =========================================================================

Status comes from real-time DLE EOT requests (they are answered even while the printer is
offline): paper out and cover open are user errors, an autocutter or unrecoverable error is a
hardware error, no answer at all is offline. Bytes on the line that are not a valid status
reply (noise, garbage) are discarded and the request asked again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from branchline.common.config_reader import SectionReader
from branchline.drivers.base import (
    CancelToken,
    Completion,
    DeviceError,
    DeviceGone,
    DeviceStatus,
    Driver,
    DriverContext,
    SelfTestResult,
    StatusReport,
)
from branchline.drivers.printer import escpos
from branchline.drivers.printer.options import PrinterOptions, read_printer_options
from branchline.drivers.transport import Transport, open_transport

STATUS_ATTEMPTS = 3


class EscPosPrinterDriver(Driver):
    device_class = "printer"

    def __init__(self, context: DriverContext, options: PrinterOptions) -> None:
        super().__init__(context, options)
        self.options = options
        self._transport: Transport | None = None

    @classmethod
    def read_options(cls, reader: SectionReader) -> PrinterOptions:
        return read_printer_options(reader)

    # -- life cycle -------------------------------------------------------------------------

    def open(self) -> None:
        self._transport = open_transport(self.options.port, self.options.baudrate)
        self._transport.tap = self.tap
        self._transport.discard_input()
        self._transport.write(escpos.initialise())

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _line(self) -> Transport:
        if self._transport is None:
            raise DeviceGone("printer is not open")
        return self._transport

    # -- status ------------------------------------------------------------------------------

    def _ask(self, kind: escpos.StatusKind) -> escpos.StatusReply | None:
        """One DLE EOT exchange; None when the printer does not answer validly."""
        line = self._line()
        for _ in range(STATUS_ATTEMPTS):
            line.discard_input()
            line.write(escpos.request_status(kind))
            reply = line.read(1, self.options.status_timeout)
            if not reply:
                continue
            decoded = escpos.decode_status(kind, reply)
            if not isinstance(decoded, escpos.MalformedStatus):
                return decoded
        return None

    def poll(self) -> StatusReport:
        printer = self._ask(escpos.StatusKind.PRINTER)
        if printer is None:
            return StatusReport(DeviceStatus.OFFLINE, "no valid reply to status request")
        assert isinstance(printer, escpos.PrinterStatus)
        cause = self._ask(escpos.StatusKind.OFFLINE_CAUSE)
        error = self._ask(escpos.StatusKind.ERROR_CAUSE)
        paper = self._ask(escpos.StatusKind.ROLL_PAPER)
        if None in (cause, error, paper):
            return StatusReport(DeviceStatus.OFFLINE, "no valid reply to status request")
        assert isinstance(cause, escpos.OfflineCause)
        assert isinstance(error, escpos.ErrorCause)
        assert isinstance(paper, escpos.RollPaperStatus)
        facts = {
            "paper": "out" if paper.paper_end else "near_end" if paper.near_end else "ok",
            "cover": "open" if cause.cover_open else "closed",
        }
        if error.unrecoverable_error or error.autocutter_error:
            what = "autocutter error" if error.autocutter_error else "unrecoverable error"
            return StatusReport(DeviceStatus.HARDWARE_ERROR, what, facts)
        if paper.paper_end or cause.paper_end_stop:
            return StatusReport(DeviceStatus.USER_ERROR, "paper out", facts)
        if cause.cover_open:
            return StatusReport(DeviceStatus.USER_ERROR, "cover open", facts)
        if printer.offline:
            return StatusReport(DeviceStatus.OFFLINE, "printer offline", facts)
        detail = "paper near end" if paper.near_end else ""
        return StatusReport(DeviceStatus.ONLINE, detail, facts)

    def capabilities(self) -> dict[str, str]:
        return {
            "transport": "usb" if self.options.port.startswith("usb://") else "serial",
            "width_chars": str(self.options.width),
            "qr": "true",
            "raster": "true",
            "cut": "partial",
            "real_time_status": "true",
        }

    # -- printing ----------------------------------------------------------------------------

    def _ready_or_raise(self) -> None:
        report = self.poll()
        if report.status is DeviceStatus.USER_ERROR:
            code = report.detail.replace(" ", "_")
            raise DeviceError(Completion.USER_ERROR, code, f"printer: {report.detail}")
        if report.status is DeviceStatus.HARDWARE_ERROR:
            raise DeviceError(
                Completion.HARDWARE_ERROR, "printer_fault", f"printer: {report.detail}"
            )
        if report.status is DeviceStatus.OFFLINE:
            raise DeviceError(Completion.DEVICE_NOT_READY, "offline", f"printer: {report.detail}")

    def print_bytes(self, data: bytes, cancel: CancelToken) -> None:
        """Check the printer can print, send the job, and check it is still fine afterwards."""
        cancel.raise_if_canceled()
        self._ready_or_raise()
        line = self._line()
        # Pace large jobs in chunks so a cancel or a pulled cable is noticed mid-job.
        for start in range(0, len(data), 1024):
            cancel.raise_if_canceled()
            line.write(data[start : start + 1024])
        self._ready_or_raise()

    def print_receipt(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        receipt = receipt_from_params(params, self.options.width)
        data = receipt.to_bytes()
        self.print_bytes(data, cancel)
        return {"bytes": len(data)}

    def print_job(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        """Print a ready-made ESC/POS job (``data_hex``), e.g. a transaction receipt."""
        data = job_from_params(params)
        self.print_bytes(data, cancel)
        return {"bytes": len(data)}

    def commands(self) -> dict[str, Any]:
        return {"print_receipt": self.print_receipt, "print_job": self.print_job}

    def self_test(self, cancel: CancelToken) -> SelfTestResult:
        receipt = escpos.Receipt(width=self.options.width)
        receipt.title("SELF-TEST")
        receipt.key_value("Terminal", self.context.terminal_id)
        receipt.key_value("Branch", self.context.branch)
        receipt.key_value("Device", self.context.device_name)
        receipt.key_value("Time", datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
        receipt.qr(self.context.terminal_id)
        receipt.line("If you can read this, the printer works.")
        receipt.cut(feed=3)
        # A printer that cannot print raises here; the owner reports the completion code.
        self.print_bytes(receipt.to_bytes(), cancel)
        return SelfTestResult(True, "printed a test page with the terminal id as a QR code")


MAX_JOB_BYTES = 256 * 1024


def job_from_params(params: dict[str, Any]) -> bytes:
    """The job bytes of a ``print_job`` command, naming the field that is wrong."""
    unknown = set(params) - {"data_hex"}
    if unknown:
        raise DeviceError(
            Completion.INVALID_DATA, "invalid_job", f"print_job.{sorted(unknown)[0]}: unknown field"
        )
    value = params.get("data_hex")
    if not isinstance(value, str) or not value:
        raise DeviceError(
            Completion.INVALID_DATA, "invalid_job", "print_job.data_hex: the job as hex is required"
        )
    if len(value) > 2 * MAX_JOB_BYTES:
        raise DeviceError(
            Completion.INVALID_DATA,
            "invalid_job",
            f"print_job.data_hex: larger than {MAX_JOB_BYTES} bytes",
        )
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise DeviceError(
            Completion.INVALID_DATA, "invalid_job", "print_job.data_hex: not hexadecimal"
        ) from None


def receipt_from_params(params: dict[str, Any], width: int) -> escpos.Receipt:
    """Build a receipt from a command's parameters, naming the field that is wrong."""

    def text(field: str, value: Any) -> str:
        if not isinstance(value, str):
            raise DeviceError(
                Completion.INVALID_DATA,
                "invalid_receipt",
                f"receipt.{field}: expected text, got {type(value).__name__}",
            )
        return value

    receipt = escpos.Receipt(width=width)
    unknown = set(params) - {"title", "lines", "fields", "qr"}
    if unknown:
        raise DeviceError(
            Completion.INVALID_DATA,
            "invalid_receipt",
            f"receipt.{sorted(unknown)[0]}: unknown field",
        )
    if "title" in params:
        receipt.title(text("title", params["title"]))
    for i, (key, value) in enumerate(params.get("fields", [])):
        receipt.key_value(text(f"fields[{i}][0]", key), text(f"fields[{i}][1]", value))
    for i, value in enumerate(params.get("lines", [])):
        receipt.line(text(f"lines[{i}]", value))
    if "qr" in params:
        try:
            receipt.qr(text("qr", params["qr"]))
        except ValueError as exc:
            raise DeviceError(
                Completion.INVALID_DATA, "invalid_receipt", f"receipt.qr: {exc}"
            ) from None
    receipt.cut(feed=3)
    return receipt
