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
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from branchline.common.errors import InvalidArgument, NotFound, check_text, echo
from branchline.common.logs import log_event
from branchline.server.console.client import StaffClient
from branchline.server.console.i18n import format_time
from branchline.server.console.image_route import image_type
from branchline.server.console.watch import follow
from branchline.v1 import cheques_pb2 as pb

ACTIONS = ("load", "unload", "enrol", "unlock", "issue_code", "resolve")
MAX_UPLOAD = 4 * 1024 * 1024
# The ID card photo formats the display shows (as the server's desk.DISPLAYABLE_PHOTOS).
PHOTO_FORMATS = ("jpeg", "png", "bmp")
MAX_PURCHASE_ID = 64
log = logging.getLogger("branchline.server.console")


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


def photo_url(purchase_id: str) -> str:
    """Where the display loads a purchase's ID card photo (cheques_web.py): the state carries
    this address, never the photo."""
    return f"/display/photos/{quote(purchase_id, safe='')}"


def display_view(shown: pb.BranchDisplay) -> dict[str, Any]:
    """The counter screen: buyer, contact, order per purchase (no full ID number, ever)."""
    out = []
    for p in shown.purchases:
        photo = photo_url(p.purchase_id) if p.photo_format in PHOTO_FORMATS else ""
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
    def __init__(self, client: StaffClient, publish: Callable[[], None], who: str = "") -> None:
        self._client = client
        self._who = who  # "role:id", for the log of photos viewed
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

    async def photo(self, purchase_id: str) -> tuple[bytes, str]:
        """The ID card photo of a purchase on this console's display now (its bytes and
        sniffed type), asked of the server as this person (which checks the display again and
        audits the read); refused, naming ``purchase_id``, for an id that is not one, a
        purchase not on the display or one shown without a photo."""
        if not purchase_id or len(purchase_id) > MAX_PURCHASE_ID or not purchase_id.isprintable():
            raise InvalidArgument(
                "purchase_id", f"{echo(purchase_id)} is not a purchase id (1 to 64 characters)"
            )
        shown = next(
            (p for p in self.display["purchases"] if p["purchase_id"] == purchase_id), None
        )
        if shown is None:
            raise NotFound(
                f"purchase_id: purchase {echo(purchase_id)} is not on the branch display",
                reason="not_on_display",
                field="purchase_id",
            )
        if not shown["photo"]:
            raise NotFound(
                f"purchase_id: purchase {purchase_id} is shown without an ID card photo",
                reason="no_photo",
                field="purchase_id",
            )
        found = await self._client.call(
            self._stub.GetDisplayPhoto, pb.DisplayPhotoRequest(purchase_id=purchase_id)
        )
        kind = image_type(found.photo)
        if not kind:
            raise NotFound(
                f"purchase_id: the ID card photo of purchase {purchase_id} is not an image "
                "a browser shows",
                reason="no_photo",
                field="purchase_id",
            )
        log_event(log, "display_photo_viewed", who=self._who, purchase_id=purchase_id)
        return bytes(found.photo), kind

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
