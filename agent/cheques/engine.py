"""The cheque-book purchase engine: one journaled state machine per purchase, run to its end.

The runner, the journal/outbox/e-journal commit and recovery are the shared step runner
(agent/engine_base.py, docs/flows/tube.md): the handler of the current state (``steps.py``,
``printing.py``, ``closing.py``) acts — a device command, a wait for the server or the
customer — and then ``advance``s. Outbox messages share the tube's sender (one outbox,
delivered in journal order, each keyed ``<terminal>:<seq>`` so the server applies it once).
The server's ``cheque_update`` push (a change made at the back office or the console) and its
replies keep ``Live.server`` current.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message

from branchline.agent.cheques import machine as m
from branchline.agent.engine_base import Live as BaseLive
from branchline.agent.engine_base import StepEngine
from branchline.agent.engine_refusal import Ending
from branchline.agent.refusal import Refused
from branchline.agent.tube.sender import OutboxSender
from branchline.agent.uplink import UplinkUnavailable
from branchline.drivers.base import Completion, DeviceError
from branchline.v1 import cheques_pb2 as pb

if TYPE_CHECKING:
    from branchline.agent.config import TransactionSettings
    from branchline.agent.daemon import Agent

log = logging.getLogger("branchline.agent.cheques")

# The outbox kind of each message type.
KINDS: dict[type[Message], str] = {
    pb.ChequeStart: "cheque_start",
    pb.ChequeIdCard: "cheque_id_card",
    pb.ChequeFace: "cheque_face",
    pb.ChequeOrder: "cheque_order",
    pb.ChequeLeaves: "cheque_leaves",
    pb.ChequeFinish: "cheque_finish",
}


class ChequeRefused(Refused):
    """A customer request the cheque engine will not take (kind as agent/refusal.py knows them)."""


@dataclass(frozen=True)
class Intent:
    name: str  # read_id, capture, order, cancel
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Live(BaseLive[Intent, pb.ChequePurchase]):
    """One purchase (``data`` as begun: method, account shown, masked card)."""

    FINAL = m.FINAL

    @property
    def purchase_id(self) -> str:
        return self.key


Handler = Callable[["ChequeEngine", Live], Awaitable[None]]


class ChequeEngine(StepEngine[Live]):
    NAME = "cheque"
    KEY = "purchase"
    NOUN = "purchase"
    REFUSED = ChequeRefused
    RETRY_AFTER = 2.0

    def __init__(self, agent: Agent, settings: TransactionSettings) -> None:
        super().__init__(agent, settings, Live, log)
        self._handlers: dict[str, Handler] = {}
        # Book types' names as last offered (book_type -> name): the result screen labels
        # the books it issued with them once the offers are no longer in the record.
        self.book_names: dict[str, str] = {}

    # -- wiring -----------------------------------------------------------------------------

    def install(self) -> None:
        from branchline.agent.cheques import closing, printing, steps

        self.agent.store.txjournal.define(m.KIND, m.MACHINE)
        self._handlers = {**steps.HANDLERS, **printing.HANDLERS, **closing.HANDLERS}
        self.sender.on_reply("cheque_reply", self._on_reply)
        self.agent.uplink.on_push("cheque_update", self._on_push)

    @property
    def sender(self) -> OutboxSender:
        sender = self.agent.tube.sender
        assert sender is not None, "the tube engine owns the outbox sender: install it first"
        return sender

    def owns(self, kind: str) -> bool:
        return kind == m.KIND

    def handler(self, live: Live) -> Handler | None:
        return self._handlers.get(live.stage)

    def outbox_kind(self, message: Message) -> str:
        return KINDS[type(message)]

    def kick_sender(self) -> None:
        self.sender.kick()

    def refusal_ending(self, live: Live) -> Ending:
        from branchline.agent.cheques.ending import ending

        return ending(live)

    def staged(self, live: Live, step_data: dict[str, Any]) -> None:
        # A purchase's stage data carries why the customer's last step was refused.
        live.code = str(step_data.get("code", ""))
        live.message = str(step_data.get("message", ""))
        live.bad_field = str(step_data.get("field", ""))

    async def _on_push(self, message: Any) -> None:
        self.record(message.cheque_update)

    def _on_reply(self, reply: pb.ChequeReply) -> None:
        if reply.HasField("purchase"):
            self.record(reply.purchase)

    async def begin(
        self, data: dict[str, Any], start: pb.ChequeStart, ejournal: dict[str, Any]
    ) -> Live:
        return await self._begin(
            m.KIND, start.purchase_id, data, start, m.STARTING, ("cheque_started", ejournal)
        )

    # -- what handlers use ------------------------------------------------------------------

    async def answer(self, live: Live) -> pb.ChequeReply:
        """The server's answer to the message the current stage queued."""
        seq = int(live.stage_data["outbox_seq"])
        reply = pb.ChequeReply.FromString(await self.sender.answer(seq))
        self._on_reply(reply)
        return reply

    async def device(
        self, name: str, command: str, params: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        owner = self.agent.owners.get(name)
        if owner is None:
            raise DeviceError(Completion.UNSUPPORTED, "no_device", f"this terminal has no {name}")
        result: dict[str, Any] = await owner.submit(command, params, timeout=timeout)
        return result

    def driver_name(self, device: str) -> str:
        for config in self.agent.config.devices:
            if config.name == device:
                return config.driver_name
        return ""

    async def refresh(self, live: Live) -> None:
        """Ask the server for the purchase's record (pushes can be lost)."""
        try:
            reply = await self.agent.uplink.request(
                timeout=self.settings.poll_seconds * 3,
                cheque_query=pb.ChequeQuery(purchase_id=live.purchase_id),
            )
        except UplinkUnavailable:
            return
        if reply.HasField("cheque_reply"):
            for purchase in reply.cheque_reply.purchases:
                self.record(purchase)
            self._on_reply(reply.cheque_reply)
