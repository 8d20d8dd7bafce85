"""The back office's camera on the customer's screen, the kiosk's side: while the back office
handles the carrier of the transaction on the tube screen, its console page offers one-way
video (docs/flows/tube.md "Back office on the customer's screen"). This relays the
signalling only:

- the desk's offer, candidates and ``bye`` (pushed by the server as ``desk_signal``) go to
  the pages as ``{"type": "desk_signal", "txn_id", "kind", "payload", "signal_id"}`` while
  that transaction is on the tube screen;
- the page's answer, candidates and ``bye`` (``desk_signal`` frames) go to the server.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from branchline.agent.uplink import UplinkUnavailable
from branchline.common.errors import FailedPrecondition, InvalidArgument
from branchline.v1 import tube_pb2

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession
    from branchline.v1 import terminal_link_pb2 as link_pb2

KINDS = ("answer", "candidate", "bye")
MAX_PAYLOAD = 16 * 1024


class DeskMedia:
    def __init__(self, session: KioskSession) -> None:
        self.session = session
        self._seen: set[int] = set()
        session.agent.uplink.on_push("desk_signal", self._on_push)

    def _txn_shown(self) -> str:
        if self.session.screen != "tube":
            return ""
        return str(self.session.scratch.get("txn_id", ""))

    async def _on_push(self, message: link_pb2.ServerMessage) -> None:
        signal = message.desk_signal
        if signal.signal_id in self._seen:
            return
        self._seen.add(signal.signal_id)
        if not signal.txn_id or signal.txn_id != self._txn_shown():
            return  # not the transaction on screen (or an old one): nobody to show it to
        self.session.send_frame(
            {
                "type": "desk_signal",
                "txn_id": signal.txn_id,
                "kind": signal.kind,
                "payload": signal.payload,
                "signal_id": signal.signal_id,
                "ice_servers": self.session.settings.ice.for_page(),
            },
            opaque=True,
        )

    async def on_frame(self, message: dict[str, Any]) -> None:
        """The page's answer / candidate / bye for the transaction on screen."""
        txn_id, kind, payload = message.get("txn_id"), message.get("kind"), message.get("payload")
        if not isinstance(txn_id, str) or not txn_id or txn_id != self._txn_shown():
            raise FailedPrecondition(
                "txn_id: not the transaction on the tube screen", reason="no_transaction"
            )
        if kind not in KINDS:
            raise InvalidArgument("kind", f"one of {', '.join(KINDS)}", reason="invalid_frame")
        if not isinstance(payload, str) or len(payload) > MAX_PAYLOAD:
            raise InvalidArgument("payload", f"at most {MAX_PAYLOAD} characters")
        request = tube_pb2.DeskSignalRequest(txn_id=txn_id, kind=str(kind), payload=payload)
        try:
            reply = await self.session.agent.uplink.request(desk_signal=request)
        except UplinkUnavailable as exc:
            raise FailedPrecondition(
                f"the bank cannot be reached: {exc}", reason="bank_unavailable"
            ) from None
        if reply.HasField("error"):
            raise FailedPrecondition(reply.error.message, reason=reply.error.code or "refused")


def attach(session: KioskSession) -> DeskMedia | None:
    with contextlib.suppress(AttributeError):  # a session without an uplink (unit tests)
        return DeskMedia(session)
    return None
