"""The journaled step runner the transaction engines share (tube: agent/tube/engine.py,
cheque-book purchase: agent/cheques/engine.py).

Each transaction has one runner task, the only writer of its journal state. The runner looks
up the handler of the current state, which acts — a device command, a wait for the server or
the customer — and then ``advance``s: the next state, the outbox message that tells the server
and the electronic-journal line commit together, durably, BEFORE anything acts on them. A crash
anywhere leaves the journal at a state whose action is safe to run again, so on start
``recover`` gives every unfinished transaction a runner and it carries on from there.

An engine says what is its own: its log and e-journal names (``NAME``, ``KEY``, ``NOUN``), the
journal kinds it owns, each stage's handler, the outbox kind of each message, and how to wake
its outbox sender.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from google.protobuf.message import Message

from branchline.agent import failpoints
from branchline.agent.engine_refusal import PERMANENT, Ending, end_refused
from branchline.agent.journal.db import CorruptRecord
from branchline.agent.journal.txjournal import Transaction, UnknownTransaction
from branchline.agent.refusal import Refused
from branchline.agent.tube.sender import encode_body
from branchline.common.logs import log_event
from branchline.common.waiting import wait_set

if TYPE_CHECKING:
    from branchline.agent.config import TransactionSettings
    from branchline.agent.daemon import Agent


class Named(Protocol):
    """A customer's intent: the runner only needs its name."""

    @property
    def name(self) -> str: ...


class ServerRecord(Protocol):
    """The server's record of a transaction (TubeTransaction, ChequePurchase)."""

    @property
    def updated_at(self) -> Any: ...


IntentT = TypeVar("IntentT", bound=Named)
ServerT = TypeVar("ServerT", bound=ServerRecord)


@dataclass
class Live(Generic[IntentT, ServerT]):
    """What an engine holds in memory about one unfinished (or just finished) transaction."""

    key: str  # the transaction's id in the journal (the txn_id, the purchase_id)
    kind: str  # the journal kind (its state machine)
    data: dict[str, Any]  # as begun
    stage: str
    stage_data: dict[str, Any]
    stage_at: float  # wall-clock time the current stage was journaled
    step: int  # journal step number of the current stage
    server: ServerT | None = None
    code: str = ""
    message: str = ""
    bad_field: str = ""  # the request field the server named when it refused
    intents: asyncio.Queue[IntentT] = field(default_factory=asyncio.Queue)
    version: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    recovered: bool = False

    FINAL: ClassVar[frozenset[str]] = frozenset()

    @property
    def finished(self) -> bool:
        return self.stage in self.FINAL

    def touch(self) -> None:
        """Wake whoever waits on this transaction (the runner, the customer's screen)."""
        self.version += 1
        self.changed.set()
        self.changed = asyncio.Event()


LiveT = TypeVar("LiveT", bound=Live[Any, Any])
Handler = Callable[[Any, LiveT], Awaitable[None]]


async def changed_within(live: Live[Any, Any], seconds: float) -> None:
    """Until ``live`` changes or ``seconds`` pass (a cancel of the runner always goes
    through: common/waiting.py)."""
    await wait_set(live.changed, seconds)


def journaled(live_type: Callable[..., LiveT], txn: Transaction) -> LiveT:
    """The in-memory state of a transaction as its journal left it."""
    last = txn.last_step
    data = dict(last.data) if last is not None else {}
    for key in ("from", "to"):
        data.pop(key, None)
    return live_type(
        key=txn.id,
        kind=txn.kind,
        data=dict(txn.data),
        stage=txn.state,
        stage_data=data,
        stage_at=last.at if last is not None else txn.created_at,
        step=last.number if last is not None else 0,
        bad_field=str(data.get("field", "")),
    )


class StepEngine(Generic[LiveT]):
    """Runs each transaction's journaled stages to the end; the engines subclass it."""

    NAME: ClassVar[str]  # log events are <NAME>_stage, <NAME>_finished, ...
    KEY: ClassVar[str]  # the id's name: e-journal field <KEY>, log field and message <KEY>_id
    NOUN: ClassVar[str]  # what customers are told they named (transaction, purchase)
    REFUSED: ClassVar[type[Refused]] = Refused
    # How long a customer call waits for its step to show before answering with the view so far.
    ANSWER_WAIT: ClassVar[float] = 20.0
    # After an unexpected failure of a handler, how long before the stage is tried again.
    RETRY_AFTER: ClassVar[float] = 5.0
    # Finished transactions kept in memory (the newest): the kiosk's result screens read
    # them; older ones are read back from the journal when asked for (``get``), so a
    # long-running agent does not keep every customer's transaction for ever.
    KEEP_FINISHED: ClassVar[int] = 64

    def __init__(
        self,
        agent: Agent,
        settings: TransactionSettings,
        live_type: Callable[..., LiveT],
        log: logging.Logger,
    ) -> None:
        self.agent = agent
        self.settings = settings
        self.live: dict[str, LiveT] = {}
        self._live_type = live_type
        self._log = log
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what an engine says --------------------------------------------------------------

    def owns(self, kind: str) -> bool:
        raise NotImplementedError

    def handler(self, live: LiveT) -> Handler[LiveT] | None:
        raise NotImplementedError

    def outbox_kind(self, message: Message) -> str:
        raise NotImplementedError

    def kick_sender(self) -> None:
        raise NotImplementedError

    def staged(self, live: LiveT, step_data: dict[str, Any]) -> None:
        """What a newly journaled stage's data tells the customer (default: nothing more)."""

    def refusal_ending(self, live: LiveT) -> Ending | None:
        """How ``live`` ends when the journal refused its stage's data for good
        (agent/engine_refusal.py); None: the engine cannot end it, people must."""
        return None

    def _ids(self, key: str) -> dict[str, Any]:
        return {f"{self.KEY}_id": key}

    # -- the server's record --------------------------------------------------------------

    def record(self, server: Any) -> None:
        """The server's newest record of a transaction (a push can overtake a reply, so an
        older one never replaces a newer one)."""
        live = self.live.get(getattr(server, f"{self.KEY}_id"))
        if live is None:
            return
        known = live.server
        if known is not None and (
            known.updated_at.ToNanoseconds() > server.updated_at.ToNanoseconds()
        ):
            return
        live.server = server
        live.touch()

    # -- journal --------------------------------------------------------------------------

    async def _begin(
        self,
        kind: str,
        key: str,
        data: dict[str, Any],
        message: Message,
        initial: str,
        ejournal: tuple[str, dict[str, Any]],
    ) -> LiveT:
        """Open the transaction: its journal record, the opening message and the e-journal
        line in one durable commit."""
        store = self.agent.store

        def commit() -> tuple[int, int, float]:
            with store.db.transaction() as conn:
                store.txjournal.begin_in(conn, kind, data, txn_id=key)
                seq, _ = store.outbox.enqueue_in(
                    conn, self.outbox_kind(message), encode_body(message), txn_id=key
                )
                number = store.txjournal.record_step_in(conn, key, "open", {"outbox_seq": seq})
                store.ejournal.append(ejournal[0], {self.KEY: key, **ejournal[1]})
            return number, seq, store.db.now()

        number, seq, at = await asyncio.to_thread(commit)
        failpoints.hit(f"{kind}.after", number)
        live = self._live_type(
            key=key,
            kind=kind,
            data=data,
            stage=initial,
            stage_data={"outbox_seq": seq},
            stage_at=at,
            step=number,
        )
        self._keep(key, live)
        self.kick_sender()
        return live

    async def advance(
        self,
        live: LiveT,
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
        if message is not None:
            setattr(message, f"{self.KEY}_id", live.key)

        def commit() -> tuple[int, dict[str, Any], float]:
            with store.db.transaction() as conn:
                step_data = dict(data or {})
                if message is not None:
                    seq, _ = store.outbox.enqueue_in(
                        conn, self.outbox_kind(message), encode_body(message), txn_id=live.key
                    )
                    step_data["outbox_seq"] = seq
                number = store.txjournal.set_state_in(conn, live.key, state, step_data)
                if ejournal is not None:
                    store.ejournal.append(ejournal[0], {self.KEY: live.key, **ejournal[1]})
            return number, step_data, store.db.now()

        number, step_data, at = await asyncio.to_thread(commit)
        failpoints.hit(f"{live.kind}.after", number)
        log_event(
            self._log,
            f"{self.NAME}_stage",
            **self._ids(live.key),
            kind=live.kind,
            stage=state,
            step=number,
        )
        live.stage, live.stage_data, live.stage_at, live.step = state, step_data, at, number
        self.staged(live, step_data)
        live.touch()
        if message is not None:
            self.kick_sender()

    def from_journal(self, txn: Transaction) -> LiveT:
        live = journaled(self._live_type, txn)
        self.staged(live, live.stage_data)
        return live

    # -- recovery and the runner ----------------------------------------------------------

    async def recover(self) -> None:
        for txn in await asyncio.to_thread(self.agent.store.txjournal.unfinished):
            if not self.owns(txn.kind):
                continue
            if txn.problem:
                # A damaged record cannot be acted on safely: people must look at it.
                log_event(
                    self._log,
                    f"{self.NAME}_unrecoverable",
                    logging.CRITICAL,
                    **self._ids(txn.id),
                    error=txn.problem,
                )
                await self.ejournal(
                    f"{self.NAME}_unrecoverable", {self.KEY: txn.id, "problem": txn.problem[:200]}
                )
                continue
            live = self.from_journal(txn)
            live.recovered = True
            self.live[live.key] = live
            log_event(
                self._log,
                f"{self.NAME}_recovering",
                **self._ids(live.key),
                kind=live.kind,
                stage=live.stage,
            )
            self.start(live)

    def start(self, live: LiveT) -> None:
        task = asyncio.create_task(self._run(live), name=f"{self.NAME}-{live.key}")
        live.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, live: LiveT) -> None:
        ids = self._ids(live.key)
        while not live.finished:
            handler = self.handler(live)
            if handler is None:
                log_event(
                    self._log, f"{self.NAME}_no_handler", logging.CRITICAL, **ids, stage=live.stage
                )
                return
            before = live.step
            try:
                await handler(self, live)
            except asyncio.CancelledError:
                raise
            except PERMANENT as exc:
                # The journal will refuse this data every time: end it, never retry.
                if await self._end_refused(live, exc):
                    continue
                return
            except Exception as exc:
                # A bug or a journal failure: nothing was journaled, so the stage's action is
                # still the one to run; try it again rather than leave the transaction hanging.
                await self._stage_failed(live, exc)
                continue
            if live.step == before:
                log_event(
                    self._log, f"{self.NAME}_stage_stalled", logging.ERROR, **ids, stage=live.stage
                )
                await asyncio.sleep(self.RETRY_AFTER)
        log_event(self._log, f"{self.NAME}_finished", **ids, kind=live.kind, outcome=live.stage)

    async def _end_refused(self, live: LiveT, exc: Any) -> bool:
        """End ``live`` after a permanent refusal; False: it could not be, stop the runner.
        A transient failure of the ending itself runs the stage again (refused again, it
        comes back here)."""
        try:
            return await end_refused(self, live, exc)
        except asyncio.CancelledError:
            raise
        except Exception as again:
            await self._stage_failed(live, again)
            return True

    async def _stage_failed(self, live: LiveT, exc: Exception) -> None:
        """Log a stage's failure and wait before the runner tries it again."""
        log_event(
            self._log,
            f"{self.NAME}_stage_failed",
            logging.ERROR,
            **self._ids(live.key),
            stage=live.stage,
            error=repr(exc),
        )
        await asyncio.sleep(self.RETRY_AFTER)

    # -- what handlers use ----------------------------------------------------------------

    def take_intent(self, live: LiveT, accepted: frozenset[str]) -> Any:
        """The first waiting intent this stage takes; others are dropped (they came too late)."""
        while not live.intents.empty():
            intent = live.intents.get_nowait()
            if intent.name in accepted:
                return intent
            log_event(
                self._log, f"{self.NAME}_intent_dropped", **self._ids(live.key), intent=intent.name
            )
        return None

    async def wait_intent(self, live: LiveT, accepted: frozenset[str], deadline: float) -> Any:
        """The customer's next intent this stage takes, or None once ``deadline`` (wall
        clock) passes."""
        while True:
            intent = self.take_intent(live, accepted)
            if intent is not None:
                return intent
            left = deadline - time.time()
            if left <= 0:
                return None
            await changed_within(live, left)

    def say(self, live: LiveT, code: str, message: str, field: str = "") -> None:
        """Tell the customer why their last step was not taken (the stage stays)."""
        live.code, live.message, live.bad_field = code, message, field
        live.touch()

    async def ejournal(self, kind: str, fields: dict[str, Any]) -> None:
        try:
            await asyncio.to_thread(self.agent.store.ejournal.append, kind, fields)
        except Exception as exc:
            log_event(
                self._log, "ejournal_append_failed", logging.ERROR, kind=kind, error=repr(exc)
            )

    # -- customers ------------------------------------------------------------------------

    def get(self, key: str) -> LiveT:
        live = self.live.get(key) or self._finished_from_journal(key)
        if live is None:
            raise self.REFUSED(
                "not_found",
                f"unknown_{self.NOUN}",
                f"{self.KEY}_id: no {self.NOUN} {key[:64]!r}",
                f"{self.KEY}_id",
            )
        return live

    def _finished_from_journal(self, key: str) -> LiveT | None:
        """A transaction finished in an earlier run of the agent, as its journal tells it."""
        try:
            txn = self.agent.store.txjournal.get(key)
        except (UnknownTransaction, CorruptRecord):
            return None
        if not self.owns(txn.kind) or not txn.finished:
            return None  # unfinished ones are all in ``live`` since recovery
        live = self.from_journal(txn)
        self._keep(key, live)
        return live

    def _keep(self, key: str, live: LiveT) -> None:
        """``live`` in memory; the oldest finished ones beyond ``KEEP_FINISHED`` let go (an
        unfinished one never: its runner and recovery hold it)."""
        self.live[key] = live
        finished = [k for k, x in self.live.items() if x.finished and k != key]
        for old in finished[: max(len(finished) - self.KEEP_FINISHED, 0)]:
            del self.live[old]

    def busy(self) -> LiveT | None:
        return next((x for x in self.live.values() if not x.finished), None)

    async def intend(self, live: LiveT, intent: Named, accepted_in: frozenset[str]) -> None:
        """Hand the customer's step to the runner and wait until the stage moves on (or the
        engine says why it did not)."""
        if live.stage not in accepted_in:
            raise self.REFUSED(
                "precondition",
                "wrong_stage",
                f"{self.KEY}_id: {self.NOUN} {live.key} is at {live.stage}; "
                f"{intent.name} is taken at {', '.join(sorted(accepted_in))}",
                f"{self.KEY}_id",
            )
        live.code, live.message, live.bad_field = "", "", ""
        stage, version = live.stage, live.version
        live.intents.put_nowait(intent)
        live.touch()
        await self.wait_moved(live, stage, version + 1)

    async def wait_until(self, live: LiveT, done: Callable[[LiveT], bool]) -> None:
        """Until ``done(live)``, at most ANSWER_WAIT (the screen follows the rest live)."""
        deadline = time.monotonic() + self.ANSWER_WAIT
        while not done(live):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await changed_within(live, left)

    async def wait_moved(self, live: LiveT, stage: str, version: int) -> None:
        """Until the stage is no longer ``stage`` or something was said to the customer."""
        await self.wait_until(
            live, lambda x: x.stage != stage or (x.version > version and bool(x.code))
        )
