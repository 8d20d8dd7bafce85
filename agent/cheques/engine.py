"""The cheque-book purchase engine: one journaled state machine per purchase, run to its end.

Built like the tube engine (agent/tube/engine.py, docs/flows/tube.md): each purchase has one
runner task, the only writer of its journal state. The handler of the current state
(``steps.py``, ``printing.py``, ``closing.py``) acts — a device command, a wait for the
server or the customer — and then ``advance``s: the next state, the outbox message that tells
the server and the e-journal line commit together, durably, BEFORE anything acts on them.
Outbox messages share the tube's sender (one outbox, delivered in journal order, each keyed
``<terminal>:<seq>`` so the server applies it once). On start, ``recover`` gives every
unfinished purchase a runner again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message

from branchline.agent import failpoints
from branchline.agent.cheques import machine as m
from branchline.agent.journal.db import CorruptRecord
from branchline.agent.journal.txjournal import Transaction, UnknownTransaction
from branchline.agent.tube.sender import OutboxSender, encode_body
from branchline.agent.uplink import UplinkUnavailable
from branchline.common.logs import log_event
from branchline.drivers.base import Completion, DeviceError
from branchline.v1 import cheques_pb2 as pb

if TYPE_CHECKING:
    from branchline.agent.config import TransactionSettings
    from branchline.agent.daemon import Agent

log = logging.getLogger("branchline.agent.cheques")

ANSWER_WAIT = 20.0
RETRY_AFTER = 2.0
# The outbox kind of each message type.
KINDS: dict[type[Message], str] = {
    pb.ChequeStart: "cheque_start",
    pb.ChequeIdCard: "cheque_id_card",
    pb.ChequeFace: "cheque_face",
    pb.ChequeOrder: "cheque_order",
    pb.ChequeLeaves: "cheque_leaves",
    pb.ChequeFinish: "cheque_finish",
}


class ChequeRefused(Exception):
    """A customer request the engine will not take (kind as agent/refusal.py knows them)."""

    def __init__(self, kind: str, code: str, message: str, field: str = "") -> None:
        super().__init__(message)
        self.kind = kind  # invalid, not_found, refused, precondition, unavailable
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Intent:
    name: str  # read_id, capture, order, cancel
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Live:
    purchase_id: str
    data: dict[str, Any]  # as begun: method, account shown, masked card
    stage: str
    stage_data: dict[str, Any]
    stage_at: float
    step: int
    server: pb.ChequePurchase | None = None
    code: str = ""
    message: str = ""
    bad_field: str = ""
    intents: asyncio.Queue[Intent] = field(default_factory=asyncio.Queue)
    version: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    recovered: bool = False

    @property
    def finished(self) -> bool:
        return self.stage in m.FINAL

    def touch(self) -> None:
        self.version += 1
        self.changed.set()
        self.changed = asyncio.Event()


Handler = Callable[["ChequeEngine", Live], Awaitable[None]]


class ChequeEngine:
    def __init__(self, agent: Agent, settings: TransactionSettings) -> None:
        self.agent = agent
        self.settings = settings
        self.live: dict[str, Live] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: dict[str, Handler] = {}

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

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_push(self, message: Any) -> None:
        self.record(message.cheque_update)

    def _on_reply(self, reply: pb.ChequeReply) -> None:
        if reply.HasField("purchase"):
            self.record(reply.purchase)

    def record(self, purchase: pb.ChequePurchase) -> None:
        live = self.live.get(purchase.purchase_id)
        if live is None:
            return
        known = live.server
        if known is not None and known.updated_at.ToNanoseconds() > (
            purchase.updated_at.ToNanoseconds()
        ):
            return
        live.server = purchase
        live.touch()

    # -- journal ----------------------------------------------------------------------------

    async def begin(
        self, data: dict[str, Any], start: pb.ChequeStart, ejournal: dict[str, Any]
    ) -> Live:
        store = self.agent.store
        purchase_id = start.purchase_id

        def commit() -> tuple[int, int, float]:
            with store.db.transaction() as conn:
                store.txjournal.begin_in(conn, m.KIND, data, txn_id=purchase_id)
                seq, _ = store.outbox.enqueue_in(
                    conn, "cheque_start", encode_body(start), txn_id=purchase_id
                )
                number = store.txjournal.record_step_in(
                    conn, purchase_id, "open", {"outbox_seq": seq}
                )
                store.ejournal.append("cheque_started", {"purchase": purchase_id, **ejournal})
            return number, seq, store.db.now()

        number, seq, at = await asyncio.to_thread(commit)
        failpoints.hit(f"{m.KIND}.after", number)
        live = Live(purchase_id, data, m.STARTING, {"outbox_seq": seq}, at, number)
        self.live[purchase_id] = live
        self.sender.kick()
        return live

    async def advance(
        self,
        live: Live,
        state: str,
        data: dict[str, Any] | None = None,
        *,
        message: Message | None = None,
        ejournal: tuple[str, dict[str, Any]] | None = None,
    ) -> None:
        """Journal the next state with the message and e-journal line it implies, in one
        durable commit; only then does anything act on it."""
        failpoints.hit(f"{m.KIND}.acted", live.step)
        store = self.agent.store
        if message is not None:
            message.purchase_id = live.purchase_id  # type: ignore[attr-defined]

        def commit() -> tuple[int, dict[str, Any], float]:
            with store.db.transaction() as conn:
                step_data = dict(data or {})
                if message is not None:
                    seq, _ = store.outbox.enqueue_in(
                        conn, KINDS[type(message)], encode_body(message), txn_id=live.purchase_id
                    )
                    step_data["outbox_seq"] = seq
                number = store.txjournal.set_state_in(conn, live.purchase_id, state, step_data)
                if ejournal is not None:
                    store.ejournal.append(
                        ejournal[0], {"purchase": live.purchase_id, **ejournal[1]}
                    )
            return number, step_data, store.db.now()

        number, step_data, at = await asyncio.to_thread(commit)
        failpoints.hit(f"{m.KIND}.after", number)
        log_event(log, "cheque_stage", purchase_id=live.purchase_id, stage=state, step=number)
        live.stage, live.stage_data, live.stage_at, live.step = state, step_data, at, number
        live.code = str(step_data.get("code", ""))
        live.message = str(step_data.get("message", ""))
        live.bad_field = str(step_data.get("field", ""))
        live.touch()
        if message is not None:
            self.sender.kick()

    # -- recovery and the runner ------------------------------------------------------------

    async def recover(self) -> None:
        for txn in await asyncio.to_thread(self.agent.store.txjournal.unfinished):
            if txn.kind != m.KIND:
                continue
            if txn.problem:
                log_event(log, "cheque_unrecoverable", logging.CRITICAL, purchase_id=txn.id)
                await self.ejournal(
                    "cheque_unrecoverable", {"purchase": txn.id, "problem": txn.problem[:200]}
                )
                continue
            live = live_from_journal(txn)
            live.recovered = True
            self.live[live.purchase_id] = live
            log_event(log, "cheque_recovering", purchase_id=live.purchase_id, stage=live.stage)
            self.start(live)

    def start(self, live: Live) -> None:
        task = asyncio.create_task(self._run(live), name=f"cheque-{live.purchase_id}")
        live.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, live: Live) -> None:
        while not live.finished:
            handler = self._handlers.get(live.stage)
            if handler is None:
                log_event(log, "cheque_no_handler", logging.CRITICAL, stage=live.stage)
                return
            before = live.step
            try:
                await handler(self, live)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Nothing was journaled: the stage's action is still the one to run.
                log_event(
                    log,
                    "cheque_stage_failed",
                    logging.ERROR,
                    purchase_id=live.purchase_id,
                    stage=live.stage,
                    error=repr(exc),
                )
                await asyncio.sleep(RETRY_AFTER)
                continue
            if live.step == before:
                await asyncio.sleep(RETRY_AFTER)
        log_event(log, "cheque_finished", purchase_id=live.purchase_id, outcome=live.stage)

    # -- what handlers use ------------------------------------------------------------------

    async def answer(self, live: Live) -> pb.ChequeReply:
        """The server's answer to the message the current stage queued."""
        seq = int(live.stage_data["outbox_seq"])
        reply = pb.ChequeReply.FromString(await self.sender.answer(seq))
        if reply.HasField("purchase"):
            self.record(reply.purchase)
        return reply

    def take_intent(self, live: Live, accepted: frozenset[str]) -> Intent | None:
        while not live.intents.empty():
            intent = live.intents.get_nowait()
            if intent.name in accepted:
                return intent
        return None

    async def wait_intent(
        self, live: Live, accepted: frozenset[str], deadline: float
    ) -> Intent | None:
        while True:
            intent = self.take_intent(live, accepted)
            if intent is not None:
                return intent
            left = deadline - time.time()
            if left <= 0:
                return None
            changed = live.changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), left)

    def say(self, live: Live, code: str, message: str, field: str = "") -> None:
        """Tell the customer why their last step was not taken (the stage stays)."""
        live.code, live.message, live.bad_field = code, message, field
        live.touch()

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

    async def ejournal(self, kind: str, fields: dict[str, Any]) -> None:
        try:
            await asyncio.to_thread(self.agent.store.ejournal.append, kind, fields)
        except Exception as exc:
            log_event(log, "ejournal_append_failed", logging.ERROR, kind=kind, error=repr(exc))

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
            if reply.cheque_reply.HasField("purchase"):
                self.record(reply.cheque_reply.purchase)

    # -- customers --------------------------------------------------------------------------

    def get(self, purchase_id: str) -> Live:
        live = self.live.get(purchase_id)
        if live is None:
            live = self._from_journal(purchase_id)
        if live is None:
            raise ChequeRefused(
                "not_found",
                "unknown_purchase",
                f"purchase_id: no purchase {purchase_id[:64]!r}",
                "purchase_id",
            )
        return live

    def _from_journal(self, purchase_id: str) -> Live | None:
        try:
            txn = self.agent.store.txjournal.get(purchase_id)
        except (UnknownTransaction, CorruptRecord):
            return None
        if txn.kind != m.KIND or not txn.finished:
            return None
        live = live_from_journal(txn)
        self.live[purchase_id] = live
        return live

    def busy(self) -> Live | None:
        return next((x for x in self.live.values() if not x.finished), None)

    async def intend(self, live: Live, intent: Intent, accepted_in: frozenset[str]) -> None:
        """Hand the customer's step to the runner and wait until the stage moves on (or the
        engine says why it did not)."""
        if live.stage not in accepted_in:
            raise ChequeRefused(
                "precondition",
                "wrong_stage",
                f"purchase_id: purchase {live.purchase_id} is at {live.stage}; "
                f"{intent.name} is taken at {', '.join(sorted(accepted_in))}",
                "purchase_id",
            )
        live.code, live.message, live.bad_field = "", "", ""
        stage, version = live.stage, live.version
        live.intents.put_nowait(intent)
        live.touch()
        await self.wait_moved(live, stage, version + 1)

    async def wait_until(self, live: Live, done: Callable[[Live], bool]) -> None:
        """Until ``done(live)``, at most ANSWER_WAIT (the screen follows the rest live)."""
        deadline = time.monotonic() + ANSWER_WAIT
        while not done(live):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            changed = live.changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), left)

    async def wait_moved(self, live: Live, stage: str, version: int) -> None:
        deadline = time.monotonic() + ANSWER_WAIT
        while live.stage == stage and not (live.version > version and live.code):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            changed = live.changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), left)


def live_from_journal(txn: Transaction) -> Live:
    last = txn.last_step
    data = dict(last.data) if last is not None else {}
    for key in ("from", "to"):
        data.pop(key, None)
    return Live(
        purchase_id=txn.id,
        data=dict(txn.data),
        stage=txn.state,
        stage_data=data,
        stage_at=last.at if last is not None else txn.created_at,
        step=last.number if last is not None else 0,
        code=str(data.get("code", "")),
        message=str(data.get("message", "")),
        bad_field=str(data.get("field", "")),
    )
