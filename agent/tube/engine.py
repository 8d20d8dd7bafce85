"""The tube transaction engine: one journaled state machine per transaction, run to its end.

The runner, the journal/outbox/e-journal commit and recovery are the shared step runner
(agent/engine_base.py); this module says what is the tube's: the handlers of each kind's
states (``deposit.py``, ``withdrawal.py``, ``closing.py``), the outbox sender both engines
share, the server's pushes, and the tube station. The customer's time limits count from the
journaled step, so after a restart a transaction whose customer has gone ends the way a
walk-away does.

Customers act through ``intend`` (the local TubeCustomer API): the runner consumes an intent
only in a stage that takes it, and only from the customer who opened the transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message

from branchline.agent.engine_base import Live as BaseLive
from branchline.agent.engine_base import StepEngine, journaled
from branchline.agent.engine_refusal import Ending
from branchline.agent.journal.txjournal import Transaction
from branchline.agent.refusal import Refused
from branchline.agent.tube import machines as m
from branchline.agent.tube.sender import OutboxSender
from branchline.agent.uplink import UplinkUnavailable
from branchline.common.logs import log_event
from branchline.common.waiting import wait_set
from branchline.drivers.base import Completion, DeviceError
from branchline.v1 import tube_pb2 as pb

if TYPE_CHECKING:
    from branchline.agent.config import TransactionSettings
    from branchline.agent.daemon import Agent

log = logging.getLogger("branchline.agent.tube")

STATION = "tube_station"


class TubeRefused(Refused):
    """A customer request the tube engine will not take; ``kind`` maps to a gRPC status."""


@dataclass(frozen=True)
class Intent:
    name: str  # send, cancel, decide, confirm_receipt
    customer_id: str
    decision: int = 0


@dataclass
class Live(BaseLive[Intent, pb.TubeTransaction]):
    """One tube transaction (``data`` as begun: customer, account, asset, rate version,
    masked card)."""

    FINAL = m.FINAL

    @property
    def txn_id(self) -> str:
        return self.key

    @property
    def customer_id(self) -> str:
        return str(self.data.get("customer_id", ""))


def asset_to_dict(asset: pb.TubeAsset) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": pb.AssetKind.Name(asset.kind),
        "currency": asset.currency,
        "amount": asset.amount,
    }
    if asset.HasField("bill"):
        out["bill"] = {
            "bill_id": asset.bill.bill_id,
            "instrument": asset.bill.instrument,
            "maturity": asset.bill.maturity,
        }
    return out


def asset_from_dict(data: Mapping[str, Any]) -> pb.TubeAsset:
    asset = pb.TubeAsset(currency=str(data.get("currency", "")), amount=str(data.get("amount", "")))
    asset.kind = pb.AssetKind.Value(str(data.get("kind", "ASSET_KIND_UNSPECIFIED")))  # type: ignore[assignment]
    bill = data.get("bill")
    if isinstance(bill, Mapping):
        asset.bill.CopyFrom(
            pb.BillInfo(
                bill_id=str(bill.get("bill_id", "")),
                instrument=str(bill.get("instrument", "")),
                maturity=str(bill.get("maturity", "")),
            )
        )
    return asset


def event(kind: int, **fields: Any) -> pb.TubeEvent:
    return pb.TubeEvent(kind=kind, **fields)  # type: ignore[arg-type]


Handler = Callable[["TubeEngine", Live], Awaitable[None]]


class TubeEngine(StepEngine[Live]):
    NAME = "tube"
    KEY = "txn"
    NOUN = "transaction"
    REFUSED = TubeRefused

    def __init__(self, agent: Agent, settings: TransactionSettings) -> None:
        super().__init__(agent, settings, Live, log)
        self.sender: OutboxSender | None = None
        self._handlers: dict[str, dict[str, Handler]] = {}

    # -- wiring -----------------------------------------------------------------------------

    def install(self) -> None:
        """Define the state machines in the journal and route the server's pushes here."""
        from branchline.agent.tube import closing, deposit, withdrawal

        for kind, machine in m.MACHINES.items():
            self.agent.store.txjournal.define(kind, machine)
        self._handlers = {
            m.DEPOSIT: {**deposit.HANDLERS, **closing.HANDLERS},
            m.WITHDRAWAL: {**withdrawal.HANDLERS, **closing.HANDLERS},
        }
        self.sender = OutboxSender(
            self.agent.store.outbox,
            self.agent.uplink,
            retry_seconds=self.settings.poll_seconds,
            on_reply=self._server_record,
        )
        self.agent.uplink.on_push("tube_update", self._on_push)
        self.agent.uplink.on_connected(self._on_connected)

    async def run(self) -> None:
        """Recover what a previous run left unfinished, then deliver the outbox forever."""
        assert self.sender is not None, "install() first"
        await self.recover()
        await self.sender.run()

    def owns(self, kind: str) -> bool:
        return kind in m.MACHINES

    def handler(self, live: Live) -> Handler | None:
        return self._handlers[live.kind].get(live.stage)

    def outbox_kind(self, message: Message) -> str:
        return "tube_open" if isinstance(message, pb.TubeOpen) else "tube_event"

    def staged(self, live: Live, step_data: dict[str, Any]) -> None:
        # A code journaled with a stage is the customer's to see, after a restart too.
        if step_data.get("code"):
            live.code = str(step_data["code"])

    def refusal_ending(self, live: Live) -> Ending:
        from branchline.agent.tube.ending import ending

        return ending(live)

    def kick_sender(self) -> None:
        if self.sender is not None:
            self.sender.kick()

    async def _on_push(self, message: Any) -> None:
        self.record(message.tube_update)

    async def _on_connected(self) -> None:
        self.kick_sender()

    def _server_record(self, reply: pb.TubeReply) -> None:
        if reply.HasField("txn"):
            self.record(reply.txn)

    async def begin(
        self,
        kind: str,
        data: dict[str, Any],
        open_message: pb.TubeOpen,
        ejournal: tuple[str, dict[str, Any]],
    ) -> Live:
        initial = m.MACHINES[kind].initial
        return await self._begin(kind, open_message.txn_id, data, open_message, initial, ejournal)

    # -- what handlers use ------------------------------------------------------------------

    async def answer(self, live: Live) -> pb.TubeReply:
        """The server's answer to the message the current stage queued."""
        assert self.sender is not None
        seq = int(live.stage_data["outbox_seq"])
        reply = pb.TubeReply.FromString(await self.sender.answer(seq))
        self._server_record(reply)
        return reply

    async def refresh(self, live: Live) -> None:
        """Ask the server for the transaction's record (pushes can be lost)."""
        try:
            reply = await self.agent.uplink.request(
                timeout=self.settings.poll_seconds * 3,
                tube_query=pb.TubeQuery(txn_id=live.txn_id),
            )
        except UplinkUnavailable:
            return
        if reply.HasField("tube_reply"):
            self._server_record(reply.tube_reply)

    async def wait_server(
        self,
        live: Live,
        done: Callable[[pb.TubeTransaction], bool],
        deadline: float,
        intents: frozenset[str] = frozenset(),
    ) -> pb.TubeTransaction | Intent | None:
        """Until the server's record satisfies ``done`` (returned), the customer sends one of
        ``intents`` (returned), or ``deadline`` (wall clock) passes (None)."""
        while True:
            if live.server is not None and done(live.server):
                return live.server
            intent: Intent | None = self.take_intent(live, intents)
            if intent is not None:
                return intent
            left = deadline - time.time()
            if left <= 0:
                return None
            changed = live.changed
            await self.refresh(live)
            if live.server is not None and done(live.server):
                return live.server
            # Not asyncio.wait_for: it can drop the cancel that stops the runner.
            await wait_set(changed, min(left, self.settings.poll_seconds))

    async def station(self, command: str, timeout: float | None = None, **params: Any) -> Any:
        owner = self.agent.owners.get(STATION)
        if owner is None:
            raise DeviceError(Completion.UNSUPPORTED, "no_device", "this terminal has no tube")
        return await owner.submit(command, params, timeout=timeout)

    async def station_status(self) -> dict[str, Any] | None:
        try:
            status: dict[str, Any] = await self.station("status", timeout=10)
            return status
        except DeviceError as exc:
            log_event(log, "tube_status_unknown", logging.WARNING, code=exc.code)
            return None

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    # -- customers --------------------------------------------------------------------------

    async def intend(self, live: Live, intent: Any, accepted_in: frozenset[str]) -> None:
        """Hand the customer's step to the runner (only the customer who opened it)."""
        if intent.customer_id != live.customer_id:
            raise TubeRefused(
                "refused",
                "not_your_transaction",
                f"txn_id: transaction {live.txn_id} belongs to another customer",
                field="txn_id",
            )
        await super().intend(live, intent, accepted_in)


def live_from_journal(txn: Transaction) -> Live:
    """The in-memory state of a transaction as its journal left it."""
    return journaled(Live, txn)
