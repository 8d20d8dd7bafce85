"""The tube transaction engine: one journaled state machine per transaction, run to its end.

Each transaction has one runner task, the only writer of its journal state. The runner looks
up the handler of the current state (``deposit.py``, ``withdrawal.py``, ``closing.py``), which
acts — a device command, a wait for the server or the customer — and then ``advance``s: the
next state, the outbox message that tells the server, and the electronic-journal line commit
together, durably, BEFORE anything acts on them. A crash anywhere leaves the journal at a
state whose action is safe to run again, so on start ``recover`` gives every unfinished
transaction a runner and it carries on from there; the customer's time limits count from the
journaled step, so a transaction whose customer has gone ends the way a walk-away does.

Customers act through ``intend`` (the local TubeCustomer API): the runner consumes an intent
only in a stage that takes it, and only from the customer who opened the transaction.
"""

# long-module: the engine's one runner loop and the journal/outbox/e-journal commit it guards
# belong together; the per-kind stages already live in deposit.py, withdrawal.py, closing.py.
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message

from branchline.agent import failpoints
from branchline.agent.journal.db import CorruptRecord
from branchline.agent.journal.txjournal import Transaction, UnknownTransaction
from branchline.agent.refusal import domain_error
from branchline.agent.tube import machines as m
from branchline.agent.tube.sender import OutboxSender, encode_body
from branchline.agent.uplink import UplinkUnavailable
from branchline.common.errors import DomainError
from branchline.common.logs import log_event
from branchline.drivers.base import Completion, DeviceError
from branchline.v1 import tube_pb2 as pb

if TYPE_CHECKING:
    from branchline.agent.config import TransactionSettings
    from branchline.agent.daemon import Agent

log = logging.getLogger("branchline.agent.tube")

# How long a customer call waits for its step to show before answering with the view so far.
ANSWER_WAIT = 20.0
# After an unexpected failure of a handler, how long before the stage is tried again.
RETRY_AFTER = 5.0
STATION = "tube_station"


class TubeRefused(Exception):
    """A customer request the engine will not take; ``kind`` maps to a gRPC status."""

    def __init__(self, kind: str, code: str, message: str, field: str = "") -> None:
        super().__init__(message)
        self.kind = kind  # invalid, not_found, refused, precondition, unavailable
        self.code = code
        self.message = message
        self.field = field  # the request field's path when one field was wrong

    def as_domain(self) -> DomainError:
        return domain_error(self.kind, self.code, self.message, self.field)


@dataclass(frozen=True)
class Intent:
    name: str  # send, cancel, decide, confirm_receipt
    customer_id: str
    decision: int = 0


@dataclass
class Live:
    """What the engine holds in memory about one unfinished (or just finished) transaction."""

    txn_id: str
    kind: str
    data: dict[str, Any]  # as begun: customer, account, asset, rate version, masked card
    stage: str
    stage_data: dict[str, Any]
    stage_at: float  # wall-clock time the current stage was journaled
    step: int  # journal step number of the current stage
    server: pb.TubeTransaction | None = None
    code: str = ""
    message: str = ""
    bad_field: str = ""  # the request field the server named when it refused (TubeReply.field)
    intents: asyncio.Queue[Intent] = field(default_factory=asyncio.Queue)
    version: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    recovered: bool = False

    @property
    def customer_id(self) -> str:
        return str(self.data.get("customer_id", ""))

    @property
    def finished(self) -> bool:
        return self.stage in m.FINAL

    def touch(self) -> None:
        self.version += 1
        self.changed.set()
        self.changed = asyncio.Event()


Handler = Callable[["TubeEngine", Live], Awaitable[None]]


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


class TubeEngine:
    def __init__(self, agent: Agent, settings: TransactionSettings) -> None:
        self.agent = agent
        self.settings = settings
        self.live: dict[str, Live] = {}
        self.sender: OutboxSender | None = None
        self._tasks: set[asyncio.Task[None]] = set()
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

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_push(self, message: Any) -> None:
        self._server_record_txn(message.tube_update)

    async def _on_connected(self) -> None:
        if self.sender is not None:
            self.sender.kick()

    def _server_record(self, reply: pb.TubeReply) -> None:
        if reply.HasField("txn"):
            self._server_record_txn(reply.txn)

    def _server_record_txn(self, txn: pb.TubeTransaction) -> None:
        live = self.live.get(txn.txn_id)
        if live is None:
            return
        known = live.server
        # Never replace a newer record with an older one (a push can overtake a reply).
        if known is not None and (
            known.updated_at.ToNanoseconds() > txn.updated_at.ToNanoseconds()
        ):
            return
        live.server = txn
        live.touch()

    # -- journal ----------------------------------------------------------------------------

    async def begin(
        self,
        kind: str,
        data: dict[str, Any],
        open_message: pb.TubeOpen,
        ejournal: tuple[str, dict[str, Any]],
    ) -> Live:
        store = self.agent.store
        txn_id = open_message.txn_id

        def commit() -> tuple[int, int, float]:
            with store.db.transaction() as conn:
                store.txjournal.begin_in(conn, kind, data, txn_id=txn_id)
                seq, _ = store.outbox.enqueue_in(
                    conn, "tube_open", encode_body(open_message), txn_id=txn_id
                )
                number = store.txjournal.record_step_in(conn, txn_id, "open", {"outbox_seq": seq})
                store.ejournal.append(ejournal[0], {"txn": txn_id, **ejournal[1]})
            return number, seq, store.db.now()

        number, seq, at = await asyncio.to_thread(commit)
        failpoints.hit(f"{kind}.after", number)
        live = Live(
            txn_id=txn_id,
            kind=kind,
            data=data,
            stage=m.MACHINES[kind].initial,
            stage_data={"outbox_seq": seq},
            stage_at=at,
            step=number,
        )
        self.live[txn_id] = live
        self._kick_sender()
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
        """Journal the next state — with the server message and e-journal line it implies —
        in one durable commit; only then does anything act on it."""
        failpoints.hit(f"{live.kind}.acted", live.step)
        store = self.agent.store
        data = dict(data or {})
        if message is not None:
            message.txn_id = live.txn_id  # type: ignore[attr-defined]

        def commit() -> tuple[int, dict[str, Any], float]:
            with store.db.transaction() as conn:
                step_data = dict(data)
                if message is not None:
                    kind = "tube_open" if isinstance(message, pb.TubeOpen) else "tube_event"
                    seq, _ = store.outbox.enqueue_in(
                        conn, kind, encode_body(message), txn_id=live.txn_id
                    )
                    step_data["outbox_seq"] = seq
                number = store.txjournal.set_state_in(conn, live.txn_id, state, step_data)
                if ejournal is not None:
                    store.ejournal.append(ejournal[0], {"txn": live.txn_id, **ejournal[1]})
            return number, step_data, store.db.now()

        number, step_data, at = await asyncio.to_thread(commit)
        failpoints.hit(f"{live.kind}.after", number)
        log_event(log, "tube_stage", txn_id=live.txn_id, kind=live.kind, stage=state, step=number)
        live.stage, live.stage_data, live.stage_at, live.step = state, step_data, at, number
        live.touch()
        if message is not None:
            self._kick_sender()

    def _kick_sender(self) -> None:
        if self.sender is not None:
            self.sender.kick()

    # -- recovery ---------------------------------------------------------------------------

    async def recover(self) -> None:
        unfinished = await asyncio.to_thread(self.agent.store.txjournal.unfinished)
        for txn in unfinished:
            if txn.kind not in m.MACHINES:
                continue
            if txn.problem:
                # A damaged record cannot be acted on safely: people must look at it.
                log_event(
                    log, "tube_unrecoverable", logging.CRITICAL, txn_id=txn.id, error=txn.problem
                )
                await asyncio.to_thread(
                    self.agent.store.ejournal.append,
                    "tube_unrecoverable",
                    {"txn": txn.id, "problem": txn.problem[:200]},
                )
                continue
            live = live_from_journal(txn)
            live.recovered = True
            self.live[live.txn_id] = live
            log_event(log, "tube_recovering", txn_id=live.txn_id, kind=live.kind, stage=live.stage)
            self.start(live)

    def start(self, live: Live) -> None:
        task = asyncio.create_task(self._run(live), name=f"tube-{live.txn_id}")
        live.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, live: Live) -> None:
        handlers = self._handlers[live.kind]
        while not live.finished:
            handler = handlers.get(live.stage)
            if handler is None:
                log_event(
                    log, "tube_no_handler", logging.CRITICAL, txn_id=live.txn_id, stage=live.stage
                )
                return
            before = live.step
            try:
                await handler(self, live)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A bug or a journal failure: nothing was journaled, so the stage's action is
                # still the one to run; try it again rather than leave the money hanging.
                log_event(
                    log,
                    "tube_stage_failed",
                    logging.ERROR,
                    txn_id=live.txn_id,
                    stage=live.stage,
                    error=repr(exc),
                )
                await asyncio.sleep(RETRY_AFTER)
                continue
            if live.step == before:
                log_event(
                    log, "tube_stage_stalled", logging.ERROR, txn_id=live.txn_id, stage=live.stage
                )
                await asyncio.sleep(RETRY_AFTER)
        log_event(log, "tube_finished", txn_id=live.txn_id, kind=live.kind, outcome=live.stage)

    # -- what handlers use ------------------------------------------------------------------

    async def answer(self, live: Live) -> pb.TubeReply:
        """The server's answer to the message the current stage queued."""
        assert self.sender is not None
        seq = int(live.stage_data["outbox_seq"])
        reply = pb.TubeReply.FromString(await self.sender.answer(seq))
        if reply.HasField("txn"):
            self._server_record_txn(reply.txn)
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
        if reply.HasField("tube_reply") and reply.tube_reply.HasField("txn"):
            self._server_record_txn(reply.tube_reply.txn)

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
            intent = self.take_intent(live, intents)
            if intent is not None:
                return intent
            left = deadline - time.time()
            if left <= 0:
                return None
            changed = live.changed
            await self.refresh(live)
            if live.server is not None and done(live.server):
                return live.server
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(left, self.settings.poll_seconds))

    def take_intent(self, live: Live, accepted: frozenset[str]) -> Intent | None:
        """The first waiting intent this stage takes; others are dropped (they came too late)."""
        while not live.intents.empty():
            intent = live.intents.get_nowait()
            if intent.name in accepted:
                return intent
            log_event(log, "tube_intent_dropped", txn_id=live.txn_id, intent=intent.name)
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

    def say(self, live: Live, code: str, message: str) -> None:
        """Tell the customer why their last step was not taken (the stage stays)."""
        live.code, live.message, live.bad_field = code, message, ""
        live.touch()

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

    async def ejournal(self, kind: str, fields: dict[str, Any]) -> None:
        try:
            await asyncio.to_thread(self.agent.store.ejournal.append, kind, fields)
        except Exception as exc:
            log_event(log, "ejournal_append_failed", logging.ERROR, kind=kind, error=repr(exc))

    # -- customers --------------------------------------------------------------------------

    def get(self, txn_id: str) -> Live:
        live = self.live.get(txn_id)
        if live is None:
            live = self._from_journal(txn_id)
        if live is None:
            raise TubeRefused(
                "not_found",
                "unknown_transaction",
                f"txn_id: no transaction {txn_id[:64]!r}",
                field="txn_id",
            )
        return live

    def _from_journal(self, txn_id: str) -> Live | None:
        """A transaction finished in an earlier run of the agent, as its journal tells it."""
        try:
            txn = self.agent.store.txjournal.get(txn_id)
        except (UnknownTransaction, CorruptRecord):
            return None
        if txn.kind not in m.MACHINES or not txn.finished:
            return None  # unfinished ones are all in ``live`` since recovery
        live = live_from_journal(txn)
        self.live[txn_id] = live
        return live

    def busy(self) -> Live | None:
        return next((x for x in self.live.values() if not x.finished), None)

    async def intend(self, live: Live, intent: Intent, accepted_in: frozenset[str]) -> None:
        """Hand the customer's step to the runner and wait until the stage moves on."""
        if intent.customer_id != live.customer_id:
            raise TubeRefused(
                "refused",
                "not_your_transaction",
                f"txn_id: transaction {live.txn_id} belongs to another customer",
                field="txn_id",
            )
        if live.stage not in accepted_in:
            raise TubeRefused(
                "precondition",
                "wrong_stage",
                f"txn_id: transaction {live.txn_id} is at {live.stage}; "
                f"{intent.name} is taken at {', '.join(sorted(accepted_in))}",
                field="txn_id",
            )
        live.code, live.message, live.bad_field = "", "", ""
        stage, version = live.stage, live.version
        live.intents.put_nowait(intent)
        live.touch()
        await self.wait_moved(live, stage, version + 1)

    async def wait_moved(self, live: Live, stage: str, version: int) -> None:
        """Until the stage is no longer ``stage`` or something was said to the customer."""
        deadline = time.monotonic() + ANSWER_WAIT
        while live.stage == stage and not (live.version > version and live.code):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            changed = live.changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), left)


def live_from_journal(txn: Transaction) -> Live:
    """The in-memory state of a transaction as its journal left it."""
    last = txn.last_step
    data = dict(last.data) if last is not None else {}
    for key in ("from", "to"):
        data.pop(key, None)
    return Live(
        txn_id=txn.id,
        kind=txn.kind,
        data=dict(txn.data),
        stage=txn.state,
        stage_data=data,
        stage_at=last.at if last is not None else txn.created_at,
        step=last.number if last is not None else 0,
        bad_field=str(data.get("field", "")),
    )
