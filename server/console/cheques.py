"""The cheque-sale screens of the console: cassette stock (load / unload ranges), authorised
purchasers (enrol or replace a face image, unlock), purchase codes, alerts, and the branch
display (``/display``: the counter screen's mode).

State lives here (the page is a view of ``snapshot``). ``ChequeDesk.WatchDisplay`` pushes the
branch display; each push also refreshes the lists (stock, purchasers, alerts), since a
purchase moves stock and may lock a purchaser.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections.abc import Callable
from typing import Any

from branchline.common.errors import InvalidArgument, check_text
from branchline.server.console.client import StaffClient
from branchline.server.console.i18n import format_time
from branchline.server.console.watch import follow
from branchline.v1 import cheques_pb2 as pb

ACTIONS = ("load", "unload", "enrol", "unlock", "issue_code", "resolve")
MAX_UPLOAD = 4 * 1024 * 1024
PHOTO_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "bmp": "image/bmp"}


def _state(value: int) -> str:
    return str(pb.ChequeState.Name(value)).removeprefix("CHEQUE_STATE_").lower()


def _ts(message: Any, name: str) -> str:
    return format_time(getattr(message, name).ToDatetime()) if message.HasField(name) else ""


def _serial(value: object, field: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise InvalidArgument(field, "a serial number (1 to 8 digits)") from None
    if not 1 <= number <= 99_999_999:
        raise InvalidArgument(field, "1 to 99999999")
    return number


def display_view(shown: pb.BranchDisplay) -> dict[str, Any]:
    """The counter screen: buyer, contact, order per purchase (no full ID number, ever)."""
    out = []
    for p in shown.purchases:
        photo = ""
        if p.photo and p.photo_format in PHOTO_TYPES:
            photo = (
                f"data:{PHOTO_TYPES[p.photo_format]};base64,{base64.b64encode(p.photo).decode()}"
            )
        out.append(
            {
                "purchase_id": p.purchase_id,
                "terminal_id": p.terminal_id,
                "state": _state(p.state),
                "buyer_name": p.buyer_name,
                "id_number_masked": p.id_number_masked,
                "photo": photo,
                "company_name": p.company_name,
                "account_number": p.account_number,
                "contact_name": p.contact_name,
                "contact_phone": p.contact_phone,
                "books": [
                    {
                        "book_type": b.book_type,
                        "first": f"{b.prefix}{b.first_serial:08d}",
                        "last": f"{b.prefix}{b.last_serial:08d}",
                        "fee": b.fee,
                    }
                    for b in p.books
                ],
                "lines": [{"book_type": line.book_type, "books": line.books} for line in p.lines],
                "fee_total": p.fee_total if p.books else "",
                "fee_refunded": p.fee_refunded,
            }
        )
    return {"branch": shown.branch, "purchases": out, "open_alerts": shown.open_alerts}


class ChequeDesk:
    def __init__(self, client: StaffClient, publish: Callable[[], None]) -> None:
        self._client = client
        self._publish = publish
        self._stub = client.cheques
        self.display: dict[str, Any] = {"branch": "", "purchases": [], "open_alerts": 0}
        self.stock: list[dict[str, Any]] = []
        self.book_types: list[dict[str, str]] = []
        self.terminals: list[str] = []
        self.purchasers: list[dict[str, Any]] = []
        self.alerts: list[dict[str, Any]] = []
        # A code just issued: shown once on this console, then cleared on the next issue.
        self.issued: dict[str, str] | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "display": self.display,
            "stock": self.stock,
            "book_types": self.book_types,
            "terminals": self.terminals,
            "purchasers": self.purchasers,
            "alerts": self.alerts,
            "issued": self.issued,
        }

    async def run(self, on_down: Callable[[], None]) -> None:
        def on_item(shown: pb.BranchDisplay) -> None:
            self.display = display_view(shown)
            asyncio.ensure_future(self.refresh())
            self._publish()

        await follow(
            lambda: self._client.stream(self._stub.WatchDisplay, pb.WatchDisplayRequest()),
            on_item,
            lambda: None,
            on_down,
        )

    async def refresh(self) -> None:
        with contextlib.suppress(Exception):
            stock = await self._client.call(self._stub.ListStock, pb.ListStockRequest())
            self.terminals = list(stock.terminal_ids)
            self.book_types = [{"book_type": k.book_type, "name": k.name} for k in stock.book_types]
            self.stock = [
                {
                    "range_id": r.range_id,
                    "terminal_id": r.terminal_id,
                    "book_type": r.book_type,
                    "first": f"{r.prefix}{r.first_serial:08d}",
                    "last": f"{r.prefix}{r.last_serial:08d}",
                    "books_free": r.books_free,
                    "loaded_by": r.loaded_by,
                    "loaded_at": _ts(r, "loaded_at"),
                }
                for r in stock.ranges
            ]
            people = await self._client.call(self._stub.ListPurchasers, pb.ListPurchasersRequest())
            self.purchasers = [
                {
                    "purchaser_id": p.purchaser_id,
                    "account_id": p.account_id,
                    "company_name": p.company_name,
                    "name": p.name,
                    "id_number_masked": p.id_number_masked,
                    "enrolled": p.enrolled,
                    "face_sha256": p.face_sha256[:12],
                    "enrolled_at": _ts(p, "enrolled_at"),
                    "enrolled_by": p.enrolled_by,
                    "locked": p.locked,
                    "failed_faces": p.failed_faces,
                }
                for p in people.purchasers
            ]
            alerts = await self._client.call(self._stub.ListAlerts, pb.ListAlertsRequest())
            self.alerts = [
                {
                    "incident_id": a.incident_id,
                    "terminal_id": a.terminal_id,
                    "purchase_id": a.purchase_id,
                    "kind": a.kind,
                    "detail": a.detail,
                    "opened_at": _ts(a, "opened_at"),
                }
                for a in alerts.alerts
            ]
            self._publish()

    async def handle(self, name: str, data: dict[str, Any]) -> None:
        call = self._client.call
        if name == "load":
            await call(
                self._stub.LoadStock,
                pb.LoadStockRequest(
                    terminal_id=check_text(
                        "terminal_id", str(data.get("terminal_id", "")), max_len=128
                    ),
                    book_type=check_text("book_type", str(data.get("book_type", "")), max_len=32),
                    first_serial=_serial(data.get("first_serial", ""), "first_serial"),
                    last_serial=_serial(data.get("last_serial", ""), "last_serial"),
                ),
            )
        elif name == "unload":
            await call(
                self._stub.UnloadStock, pb.StockRangeRef(range_id=int(data.get("range_id", 0)))
            )
        elif name == "enrol":
            await call(
                self._stub.EnrolFace,
                pb.EnrolFaceRequest(
                    purchaser_id=check_text("purchaser_id", str(data.get("purchaser_id", ""))),
                    image=_image(data),
                ),
            )
        elif name == "unlock":
            await call(
                self._stub.UnlockPurchaser,
                pb.PurchaserRef(
                    purchaser_id=check_text("purchaser_id", str(data.get("purchaser_id", "")))
                ),
            )
        elif name == "issue_code":
            account_id = check_text("account_id", str(data.get("account_id", "")))
            code = await call(
                self._stub.IssuePurchaseCode, pb.IssueCodeRequest(account_id=account_id)
            )
            self.issued = {
                "account_id": account_id,
                "code": code.code,
                "expires_at": _ts(code, "expires_at"),
            }
        elif name == "resolve":
            await call(
                self._stub.ResolveAlert,
                pb.ResolveAlertRequest(
                    incident_id=int(data.get("incident_id", 0)),
                    resolution=check_text(
                        "resolution", str(data.get("resolution", "")), max_len=500
                    ),
                ),
            )
        await self.refresh()


def _image(data: dict[str, Any]) -> bytes:
    raw = data.get("image_bytes")
    if isinstance(raw, bytes):  # the HTTP upload (cheques_web)
        if not raw:
            raise InvalidArgument("image", "choose an image file")
        if len(raw) > MAX_UPLOAD:
            raise InvalidArgument("image", f"at most {MAX_UPLOAD} bytes")
        return raw
    return _upload(data.get("image", ""))


def _upload(value: object) -> bytes:
    """An image the page read from a file input, as a data: URL or bare base64."""
    text = str(value)
    if text.startswith("data:"):
        text = text.partition(",")[2]
    if not text:
        raise InvalidArgument("image", "choose an image file")
    if len(text) > MAX_UPLOAD * 4 // 3 + 4:
        raise InvalidArgument("image", f"at most {MAX_UPLOAD} bytes")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument("image", "not base64 image data") from None
