"""Continuing on a phone: the QR on the attract screen, the matching code once paired, cancel.

The server pushes ``pairing_update`` whenever the terminal's handle rotates or a phone pairs
or leaves (``server/mobile/link.py``). The QR is drawn here, in Python, as SVG served at
``/phone/qr.svg`` (same origin, so the page's CSP stays ``'self'``): the page gets the
image's address (with a version, never the handle), the short code to type and, once
paired, the four-digit matching code. The phone's session token never reaches the agent.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import qrcode
import qrcode.image.svg
from aiohttp import web

from branchline.agent.uplink import UplinkUnavailable
from branchline.common.errors import FailedPrecondition, Unavailable
from branchline.common.logs import log_event
from branchline.v1 import mobile_pb2
from branchline.v1 import terminal_link_pb2 as link_pb

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession

log = logging.getLogger("branchline.agent.kiosk.phone")

QR_PATH = "/phone/qr.svg"
OFFERING = "offering"
PAIRED = "paired"


def render_qr(url: str) -> bytes:
    """The QR of ``url`` as SVG with a white quiet zone (cameras need the contrast)."""
    image = qrcode.make(
        url,
        image_factory=qrcode.image.svg.SvgPathFillImage,
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        box_size=10,
        border=4,
    )
    return bytes(image.to_string())


class PhonePairing:
    """The latest pairing state the server pushed, and the QR drawn from it."""

    def __init__(self) -> None:
        self.update: mobile_pb2.PairingUpdate | None = None
        self.svg = b""
        # Grows with every new QR: the image's address changes, the handle stays out of it.
        self.version = 0

    def set(self, update: mobile_pb2.PairingUpdate) -> None:
        if update.state == OFFERING and (self.update is None or update.url != self.update.url):
            self.svg = render_qr(update.url)
            self.version += 1
        self.update = update

    def attract_data(self, connected: bool) -> dict[str, Any] | None:
        """What the attract screen shows of the phone option (None: nothing)."""
        update = self.update
        if not connected or update is None:
            return None
        if update.state == PAIRED:
            return {"state": PAIRED, "matching_code": update.matching_code}
        if update.state == OFFERING:
            return {
                "state": OFFERING,
                "qr": f"{QR_PATH}?v={self.version}",
                "short_code": update.short_code,
                "ended": update.last_end_reason,
            }
        return None


def attach(session: KioskSession) -> PhonePairing:
    """Follow the server's pairing pushes for ``session``'s attract screen."""
    phone = PhonePairing()

    async def on_push(message: link_pb.ServerMessage) -> None:
        phone.set(message.pairing_update)
        log_event(log, "pairing_update", logging.DEBUG, state=message.pairing_update.state)

    session.agent.uplink.on_push("pairing_update", on_push)
    session.phone = phone
    from branchline.agent.kiosk.flows import phone_job

    phone_job.attach(session)
    return phone


async def qr_image(request: web.Request) -> web.Response:
    """``GET /phone/qr.svg``: the current QR (404 when none is on offer)."""
    from branchline.agent.kiosk.server import SESSION_KEY

    phone = request.app[SESSION_KEY].phone
    if phone is None or not phone.svg or phone.update is None or phone.update.state != OFFERING:
        raise web.HTTPNotFound(text="no pairing code on offer")
    return web.Response(body=phone.svg, content_type="image/svg+xml")


async def cancel(session: KioskSession) -> None:
    """The customer at the terminal ends the pairing (``phone_cancel`` on attract)."""
    phone = session.phone
    if phone is None or phone.update is None or phone.update.state != PAIRED:
        raise FailedPrecondition(
            "action: no phone is paired with this terminal", reason="not_paired"
        )
    try:
        reply = await session.agent.uplink.request(pairing_cancel=mobile_pb2.PairingCancel())
    except UplinkUnavailable as exc:
        raise Unavailable(f"the bank is not reachable: {exc}", reason="bank_unavailable") from None
    if reply.HasField("pairing_update"):
        phone.set(reply.pairing_update)
    log_event(log, "pairing_canceled_at_terminal")
