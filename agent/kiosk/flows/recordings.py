""" "My recordings": the customer signed in with card + PIN types (or brings from the tube
result screen) a receipt's reference and watches that transaction's recordings.

The agent asks the server as the terminal with the customer's session (which the page never
sees); the server opens only that customer's own transactions (``own_recordings_only``).
The page plays the chosen one from ``/recordings/mine/<txn_ref>/<sha256>`` (seekable).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import grpc

from branchline.agent.kiosk import i18n
from branchline.common.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from branchline.common.grpc_errors import error_details
from branchline.common.txref import txn_ref_of
from branchline.v1 import recordings_pb2 as pb
from branchline.v1 import recordings_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession

SHA256 = re.compile(r"[0-9a-f]{64}")


def _base(reference: str) -> dict[str, Any]:
    return {
        "reference": reference,
        "txn_ref": "",
        "recordings": [],
        "searched": False,
        "playing": "",
        "play_url": "",
        "refusal": "",
    }


def show(session: KioskSession, reference: str = "") -> None:
    session.show("my_recordings", **_base(reference))
    if reference:
        session.spawn(lookup(session, reference), "lookup", "lookup")


def _item(lang: str, r: pb.Recording, index: int) -> dict[str, Any]:
    return {
        "sha256": r.sha256,
        "kind": r.kind,
        "source": r.source,
        "number": index + 1,
        "duration": i18n.format_seconds(lang, int(round(r.duration_seconds))),
        "size": r.size,
    }


def _refusal(exc: grpc.aio.AioRpcError) -> DomainError:
    details = error_details(exc)
    if details.status == "PERMISSION_DENIED":
        return PermissionDenied(details.message, rule=details.reason, field="reference")
    if details.status == "NOT_FOUND":
        return NotFound(details.message, field="reference", reason="no_recordings")
    if details.status == "INVALID_ARGUMENT":
        return InvalidArgument("reference", details.message)
    return Unavailable("the bank cannot be reached; try again", reason="bank_unavailable")


async def lookup(session: KioskSession, reference: str) -> None:
    customer = session.customer
    recordings = session.agent.recordings
    if customer is None:
        raise PermissionDenied("sign in with card and PIN", rule="sign_in_required")
    if recordings is None:
        raise FailedPrecondition("this terminal keeps no recordings", reason="no_recordings")
    txn_ref = txn_ref_of(reference)
    channel, metadata = recordings.server_access()
    async with channel:
        try:
            reply = await pb_grpc.RecordingsStub(channel).ListRecordings(
                pb.ListRecordingsRequest(txn_ref=txn_ref, session_token=customer.token),
                metadata=metadata,
                timeout=10,
            )
        except grpc.aio.AioRpcError as exc:
            refused = _refusal(exc)
            if session.screen == "my_recordings":
                session.update(**{**_base(reference), "searched": True, "refusal": refused.reason})
            raise refused from None
    if session.screen != "my_recordings":
        return
    items = [_item(session.lang, r, i) for i, r in enumerate(reply.recordings)]
    session.update(
        **{**_base(reference), "txn_ref": txn_ref, "recordings": items, "searched": True}
    )


async def on_action(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    if action == "lookup":
        reference = data.get("reference", "")
        if not isinstance(reference, str):
            raise InvalidArgument("reference", "must be text")
        txn_ref_of(reference)  # a bad reference is refused at once, naming the field
        session.spawn(lookup(session, reference), "lookup", action)
    elif action == "play":
        sha = data.get("sha256", "")
        known = {r["sha256"] for r in session.data.get("recordings", [])}
        if not isinstance(sha, str) or sha not in known or not SHA256.fullmatch(sha):
            raise InvalidArgument("sha256", "choose one of the recordings listed")
        session.update(playing=sha, play_url=f"/recordings/mine/{session.data['txn_ref']}/{sha}")
    elif action == "stop":
        session.update(playing="", play_url="")
    elif action == "back":
        session.home()
    else:
        raise FailedPrecondition(
            f"action: my recordings takes lookup, play, stop or back, not {action[:32]!r}",
            reason="wrong_screen",
        )
