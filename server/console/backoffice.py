"""The back office's screen: carriers arriving live, receive / count / send, incidents with
resolve, and the history search.

State lives here (the page is a view of ``snapshot``). The branch's tube events arrive over
``TubeDesk.Watch``; each burst of events marks the lists stale and one refresher re-reads
them, so a replay of old events after a reconnect costs one refresh, not one per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from branchline.common.errors import MAX_TEXT, FailedPrecondition, InvalidArgument, check_text
from branchline.common.logs import log_event
from branchline.server.console import count as counting
from branchline.server.console.client import StaffClient
from branchline.server.console.i18n import format_amount, format_time
from branchline.server.console.labels import (
    actor_name,
    asset_name,
    incident_name,
    tube_event_name,
    tube_kind_name,
    tube_state_name,
)
from branchline.server.console.redact import mask_pan
from branchline.server.console.watch import follow
from branchline.v1 import tube_pb2 as pb

log = logging.getLogger("branchline.server.console")

RECENT_EVENTS = 30
HISTORY_FIELDS = ("from_date", "to_date", "terminal_id", "customer_id", "reference")
ASSET = {pb.ASSET_KIND_CASH: "cash", pb.ASSET_KIND_METAL: "metal", pb.ASSET_KIND_BILL: "bill"}
# While a received deposit is in one of these, its carrier is in the back office's hands.
HANDLING = (pb.TUBE_STATE_IN_TRANSIT, pb.TUBE_STATE_RECEIVED)
ACTIONS = ("receive", "count", "prepare", "send", "resolve", "search", "clear_search")


def _state(value: int) -> str:
    return str(pb.TubeState.Name(value)).removeprefix("TUBE_STATE_").lower()


def _kind(value: int) -> str:
    return str(pb.TubeKind.Name(value)).removeprefix("TUBE_KIND_").lower()


def _ts(message: Any, name: str) -> str:
    return format_time(getattr(message, name).ToDatetime()) if message.HasField(name) else ""


def actions_for(txn: pb.TubeTransaction, preparing: bool = False) -> list[str]:
    """What the back office can do with the transaction in its state. A withdrawal's
    carrier is prepared (the camera records from then) before it can be sent."""
    deposit = txn.kind == pb.TUBE_KIND_DEPOSIT
    if deposit and txn.state == pb.TUBE_STATE_IN_TRANSIT:
        return ["receive", "count"]
    if deposit and txn.state == pb.TUBE_STATE_RECEIVED:
        return ["count"]
    if deposit and txn.state == pb.TUBE_STATE_DISPUTED:
        return ["send"]
    if not deposit and txn.state == pb.TUBE_STATE_OPEN:
        return ["send"] if preparing else ["prepare"]
    return []


def _in_hand(txn: pb.TubeTransaction) -> bool:
    """Whether a carrier this person took on is still in the back office's hands: a
    received deposit until its count is in, a withdrawal being loaded until it is sent."""
    if txn.kind == pb.TUBE_KIND_DEPOSIT:
        return txn.state in HANDLING
    return txn.state == pb.TUBE_STATE_OPEN


def txn_view(lang: str, txn: pb.TubeTransaction, handling: str = "") -> dict[str, Any]:
    asset = txn.requested
    counted = txn.counted
    return {
        "txn_id": txn.txn_id,
        "reference": f"BLTX:{txn.terminal_id}:{txn.txn_id}",
        "terminal_id": txn.terminal_id,
        "customer_id": txn.customer_id,
        "pan_masked": mask_pan(txn.pan_masked),
        "kind": _kind(txn.kind),
        "kind_name": tube_kind_name(lang, _kind(txn.kind)),
        "state": _state(txn.state),
        "state_name": tube_state_name(lang, _state(txn.state)),
        "asset": ASSET.get(asset.kind, ""),
        "asset_name": asset_name(lang, ASSET.get(asset.kind, "")),
        "currency": asset.currency,
        "declared": format_amount(lang, asset.amount, asset.currency),
        "declared_plain": asset.amount,
        "bill_id": asset.bill.bill_id,
        "counted": format_amount(lang, counted.amount, counted.currency)
        if txn.HasField("counted")
        else "",
        "carrier_id": txn.carrier_id,
        "note": txn.note,
        "reason": txn.reason,
        "created_at": _ts(txn, "created_at"),
        "updated_at": _ts(txn, "updated_at"),
        "actions": actions_for(txn, preparing=handling == txn.txn_id),
        "denominations": list(counting.denominations(asset.currency))
        if asset.kind == pb.ASSET_KIND_CASH
        else [],
    }


def incident_view(lang: str, incident: pb.Incident) -> dict[str, Any]:
    return {
        "incident_id": incident.incident_id,
        "terminal_id": incident.terminal_id,
        "txn_id": incident.txn_id,
        "kind": incident.kind,
        "kind_name": incident_name(lang, incident.kind),
        "detail": incident.detail,
        "opened_at": _ts(incident, "opened_at"),
        "resolved": incident.HasField("resolved_at"),
    }


def event_view(lang: str, event: pb.TubeEventRecord) -> dict[str, Any]:
    """A tube event with its kind, state and actor in words (the ids kept beside them)."""
    return {
        "event_id": event.event_id,
        "txn_id": event.txn_id,
        "terminal_id": event.terminal_id,
        "event": event.event,
        "event_name": tube_event_name(lang, event.event),
        "state": _state(event.state),
        "state_name": tube_state_name(lang, _state(event.state)),
        "actor": event.actor,
        "actor_name": actor_name(lang, event.actor),
        "at": _ts(event, "at"),
    }


def _carrier(data: dict[str, Any], fallback: int) -> int:
    raw = str(data.get("carrier_id", "")).strip()
    if not raw:
        if fallback:
            return fallback
        raise InvalidArgument("carrier_id", "enter the number on the carrier")
    if not raw.isdigit() or not 1 <= int(raw) <= 4294967295:
        raise InvalidArgument("carrier_id", "a carrier number from 1 to 4294967295")
    return int(raw)


class BackOfficeDesk:
    def __init__(self, client: StaffClient, changed: Callable[[], None]) -> None:
        self._client = client
        self._changed = changed
        self.carriers: dict[str, pb.TubeTransaction] = {}
        self.incidents: list[pb.Incident] = []
        self.events: deque[pb.TubeEventRecord] = deque(maxlen=RECENT_EVENTS)
        self.history: list[pb.TubeTransaction] = []
        self.history_query: dict[str, str] = {}
        self.searched = False
        self.last_event_id = 0
        self._stale = asyncio.Event()
        # The deposit this person received and is counting, or the withdrawal whose carrier
        # this person is loading: the page records the back-office camera while it is
        # (``record`` in the snapshot).
        self.handling = ""

    # -- reading ----------------------------------------------------------------------------

    async def refresh(self) -> None:
        listed = await self._client.call(self._client.tube.ListTransactions, pb.ListTubeRequest())
        found = await self._client.call(self._client.tube.ListIncidents, pb.ListIncidentsRequest())
        self.carriers = {t.txn_id: t for t in listed.txns}
        self.incidents = list(found.incidents)
        if self.searched:
            await self._search(self.history_query)
        self._changed()

    def _on_event(self, event: pb.TubeEventRecord) -> None:
        self.last_event_id = max(self.last_event_id, event.event_id)
        self.events.appendleft(event)
        self._stale.set()

    async def run(self, on_down: Callable[[], None]) -> None:
        """Follow the branch's events forever (reconnecting), refreshing after each burst."""
        refresher = asyncio.ensure_future(self._refresh_when_stale())
        try:
            await follow(
                lambda: self._client.stream(
                    self._client.tube.Watch, pb.WatchTubeRequest(after_id=self.last_event_id)
                ),
                self._on_event,
                self._stale.set,
                on_down,
            )
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher

    async def _refresh_when_stale(self) -> None:
        while True:
            await self._stale.wait()
            await asyncio.sleep(0.05)  # let a burst of events land first
            self._stale.clear()
            try:
                await self.refresh()
            except Exception as exc:  # try again shortly (the server may be restarting)
                log_event(log, "desk_refresh_failed", logging.WARNING, error=repr(exc))
                self._stale.set()
                await asyncio.sleep(1.0)

    def record(self) -> dict[str, str] | None:
        """What the page records now: the deposit this person received, until counted, or
        the withdrawal this person prepares, until its carrier is sent."""
        txn = self.carriers.get(self.handling)
        if txn is None or not _in_hand(txn):
            return None
        return {"txn_ref": txn.txn_id, "kind": "tube", "source": "backoffice"}

    def snapshot(self, lang: str) -> dict[str, Any]:
        return {
            "record": self.record(),
            "carriers": [txn_view(lang, t, self.handling) for t in self.carriers.values()],
            "incidents": [incident_view(lang, i) for i in self.incidents],
            "events": [event_view(lang, e) for e in self.events],
            "history": {
                "query": dict(self.history_query),
                "searched": self.searched,
                "results": [txn_view(lang, t) for t in self.history],
            },
        }

    # -- acting -----------------------------------------------------------------------------

    def _known(self, data: dict[str, Any]) -> pb.TubeTransaction:
        txn_id = check_text("txn_id", str(data.get("txn_id", "")))
        txn = self.carriers.get(txn_id)
        if txn is None:
            raise FailedPrecondition(f"txn_id: {txn_id} is not waiting for the back office")
        return txn

    async def handle(self, action: str, data: dict[str, Any]) -> None:
        tube = self._client.tube
        if action == "receive":
            txn = self._known(data)
            request = pb.CarrierRequest(
                txn_id=txn.txn_id, carrier_id=_carrier(data, txn.carrier_id)
            )
            self._keep(await self._client.call(tube.ReceiveCarrier, request))
            self.handling = txn.txn_id
        elif action == "count":
            txn = self._known(data)
            found = counting.parse_count(data, txn.requested.currency)
            counted = pb.CountRequest(txn_id=txn.txn_id, counted=found.asset, note=found.note)
            self._keep(await self._client.call(tube.EnterCount, counted))
        elif action == "prepare":
            txn = self._known(data)
            if "prepare" not in actions_for(txn):
                raise FailedPrecondition(
                    f"txn_id: {txn.txn_id} has no carrier to prepare", reason="wrong_state"
                )
            self.handling = txn.txn_id
        elif action == "send":
            txn = self._known(data)
            if txn.kind == pb.TUBE_KIND_WITHDRAWAL and self.handling != txn.txn_id:
                # Its carrier is loaded on camera: "prepare" starts the recording.
                raise FailedPrecondition(
                    f"txn_id: prepare the carrier of {txn.txn_id} first",
                    field="txn_id",
                    reason="prepare_first",
                )
            request = pb.CarrierRequest(txn_id=txn.txn_id, carrier_id=_carrier(data, 0))
            self._keep(await self._client.call(tube.SendCarrier, request))
        elif action == "resolve":
            raw = str(data.get("incident_id", ""))
            if not raw.isdigit():
                raise InvalidArgument("incident_id", "names an incident by its number")
            resolution = check_text(
                "resolution", str(data.get("resolution", "")).strip(), max_len=MAX_TEXT
            )
            resolve = pb.ResolveIncidentRequest(incident_id=int(raw), resolution=resolution)
            await self._client.call(tube.ResolveIncident, resolve)
            await self.refresh()
        elif action == "search":
            await self._search({k: str(data.get(k, "")).strip() for k in HISTORY_FIELDS})
        elif action == "clear_search":
            self.history, self.history_query, self.searched = [], {}, False
        self._changed()

    def _keep(self, txn: pb.TubeTransaction) -> None:
        """Show the answer at once (the watch stream confirms it a moment later)."""
        self.carriers[txn.txn_id] = txn

    async def _search(self, query: dict[str, str]) -> None:
        request = pb.HistoryRequest(
            from_date=query["from_date"],
            to_date=query["to_date"],
            terminal_id=query["terminal_id"],
            customer_id=query["customer_id"],
            reference=query["reference"],
        )
        found = await self._client.call(self._client.tube.SearchHistory, request)
        self.history, self.history_query, self.searched = list(found.txns), query, True
