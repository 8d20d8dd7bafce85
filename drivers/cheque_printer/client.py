"""A synchronous IPP client for the driver's owner thread, over pyipp.

pyipp is asyncio; drivers run on their owner's thread. The client keeps its own event loop
(created in the owner thread, never shared) and runs each request to completion on it.
pyipp builds and sends every request (its serializer, including the module's vendor
operations, which are just operation codes it does not name); responses are decoded with
this package's RFC 8010 codec, which names a malformed reply precisely.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import IntEnum
from typing import Any, cast

from pyipp import IPP
from pyipp.enums import IppOperation
from pyipp.exceptions import IPPConnectionError, IPPConnectionUpgradeRequired, IPPResponseError
from pyipp.serializer import encode_dict

from branchline.drivers.base import Completion, DeviceError, DeviceGone
from branchline.drivers.cheque_printer import interface as ipp
from branchline.drivers.cheque_printer.ipp_codec import (
    JOB_GROUP,
    OPERATION_GROUP,
    PRINTER_GROUP,
    IppMessage,
    attributes,
    decode,
)
from branchline.drivers.malformed import Malformed


class VendorOperation(IntEnum):
    """The module's vendor operations (interface.py); pyipp encodes any ``.value``."""

    PRESENT_BOOK = ipp.PRESENT_BOOK
    RETRACT_BOOK = ipp.RETRACT_BOOK


class IppRefused(DeviceError):
    """The printer answered with an IPP error status."""

    def __init__(self, operation: str, status: int, message: str) -> None:
        super().__init__(
            Completion.INVALID_DATA if 0x0400 <= status < 0x0500 else Completion.HARDWARE_ERROR,
            "ipp_refused",
            f"{operation}: printer answered status 0x{status:04x}"
            + (f" ({message})" if message else ""),
        )
        self.status = status


class IppClient:
    def __init__(self, uri: str, user_name: str, request_timeout: float) -> None:
        self.uri = uri
        self.user_name = user_name
        self._loop = asyncio.new_event_loop()
        self._ipp = IPP(host=uri, request_timeout=cast(int, request_timeout))
        self.last_request_bytes = 0
        self.tap: Callable[[str, bytes], None] | None = None

    def close(self) -> None:
        try:
            self._loop.run_until_complete(self._ipp.close())
        except Exception:  # closing must never raise
            pass
        finally:
            self._loop.close()

    def _call(
        self,
        operation: IppOperation | VendorOperation,
        name: str,
        operation_attributes: dict[str, Any] | None = None,
        data: bytes | None = None,
    ) -> IppMessage:
        message: dict[str, Any] = {
            "operation-attributes-tag": {"requesting-user-name": self.user_name}
        }
        message["operation-attributes-tag"].update(operation_attributes or {})
        if data is not None:
            message["data"] = data
            self.last_request_bytes = len(data)
        # pyipp's own steps of ``IPP.raw`` (message, serializer, request), so that the bytes
        # on the wire can go to ``branchline-diag spy`` as well.
        body = encode_dict(self._ipp._message(cast(IppOperation, operation), message))
        if self.tap is not None:
            self.tap("tx", body)
        try:
            raw = self._loop.run_until_complete(self._ipp._request(data=body))
        except (IPPConnectionError, IPPConnectionUpgradeRequired) as exc:
            raise DeviceGone(f"{name}: printer at {self.uri} not reachable: {exc}") from None
        except IPPResponseError as exc:
            details = exc.args[1] if len(exc.args) > 1 else {}
            text = str(details.get("message", "")).strip()[:200]
            raise DeviceError(
                Completion.HARDWARE_ERROR, "ipp_http_error", f"{name}: {exc.args[0]} {text}"
            ) from None
        if self.tap is not None:
            self.tap("rx", raw)
        reply = decode(raw)
        if isinstance(reply, Malformed):
            raise DeviceError(
                Completion.HARDWARE_ERROR, "ipp_bad_reply", f"{name}: bad reply: {reply.reason}"
            )
        if reply.code >= 0x0400:
            status_message = reply.group(OPERATION_GROUP).get("status-message")
            raise IppRefused(name, reply.code, str(status_message.value) if status_message else "")
        return reply

    # -- operations ----------------------------------------------------------------------------

    def printer_attributes(self, names: list[str] | None = None) -> dict[str, Any]:
        extra = {"requested-attributes": names} if names else {}
        reply = self._call(IppOperation.GET_PRINTER_ATTRIBUTES, "Get-Printer-Attributes", extra)
        return attributes(reply, PRINTER_GROUP)

    def validate_job(self, job_name: str, document_format: str) -> None:
        self._call(
            IppOperation.VALIDATE_JOB,
            "Validate-Job",
            {"job-name": job_name, "document-format": document_format},
        )

    def print_job(self, job_name: str, document_format: str, document: bytes) -> int:
        reply = self._call(
            IppOperation.PRINT_JOB,
            "Print-Job",
            {"job-name": job_name, "document-format": document_format},
            document,
        )
        job_id = attributes(reply, JOB_GROUP).get("job-id")
        if not isinstance(job_id, int):
            raise DeviceError(
                Completion.HARDWARE_ERROR, "ipp_bad_reply", "Print-Job: reply carries no job-id"
            )
        return job_id

    def job_attributes(self, job_id: int) -> dict[str, Any]:
        reply = self._call(
            IppOperation.GET_JOB_ATTRIBUTES,
            "Get-Job-Attributes",
            {
                "job-id": job_id,
                "requested-attributes": ["job-id", "job-state", "job-state-reasons"],
            },
        )
        return attributes(reply, JOB_GROUP)

    def jobs(self, which: str = "not-completed") -> list[dict[str, Any]]:
        reply = self._call(
            IppOperation.GET_JOBS,
            "Get-Jobs",
            {"which-jobs": which, "requested-attributes": ["job-id", "job-state"]},
        )
        return [
            {n: a.values if len(a.values) > 1 else a.value for n, a in group.items()}
            for group in reply.all_groups(JOB_GROUP)
        ]

    def jobs_named(self, which: str = "all") -> list[dict[str, Any]]:
        """Get-Jobs with each job's name (the issuing flow finds its own jobs by name)."""
        reply = self._call(
            IppOperation.GET_JOBS,
            "Get-Jobs",
            {"which-jobs": which, "requested-attributes": ["job-id", "job-state", "job-name"]},
        )
        return [
            {n: a.values if len(a.values) > 1 else a.value for n, a in group.items()}
            for group in reply.all_groups(JOB_GROUP)
        ]

    def cancel_job(self, job_id: int) -> None:
        self._call(IppOperation.CANCEL_JOB, "Cancel-Job", {"job-id": job_id})

    def vendor(self, operation: VendorOperation, name: str) -> None:
        self._call(operation, name)
