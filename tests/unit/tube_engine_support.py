"""The terminal's tube engine over the real server service, in one process: the real journal
store and outbox sender on the terminal's side, the real TubeService and ledger
(tube_support's world) on the server's, joined by an uplink that calls the service directly.

What a test needs besides: count the ledger's hold releases, hold back one kind of message
(the link down for it), or change an answer on its way (a refusal text the server might send).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

from branchline.agent.config import TransactionSettings
from branchline.agent.journal.store import Store
from branchline.agent.service_state import ServiceState
from branchline.agent.tube import machines as m
from branchline.agent.tube.engine import Live, TubeEngine, asset_to_dict
from branchline.agent.uplink import UplinkUnavailable
from branchline.v1 import terminal_link_pb2 as link_pb2
from branchline.v1 import tube_pb2 as pb
from tests.unit.tube_support import PAN_MASKED, World, token

TERMINAL = "K-1"
# How long an agent may take to stop, or a step of a test to happen.
STOP_WITHIN = 10.0
T = TypeVar("T")


@dataclass
class ServiceUplink:
    """TerminalLink as the terminal's sender sees it, answered by ``world.svc``."""

    world: World
    terminal_id: str = TERMINAL
    connected: bool = True
    last_error: str = ""
    held: set[str] = field(default_factory=set)  # bodies answered "unavailable"
    change: Callable[[str, pb.TubeReply], None] | None = None
    applied: list[tuple[str, Any]] = field(default_factory=list)

    def on_push(self, body: str, handler: Any) -> None:
        pass

    def on_connected(self, handler: Any) -> None:
        pass

    async def request(self, timeout: float = 15.0, **body: Any) -> link_pb2.ServerMessage:
        ((kind, message),) = body.items()
        if kind in self.held:
            raise UplinkUnavailable(f"{kind} held back by the test")
        svc, now = self.world.svc, self.world.clock()
        if kind == "tube_open":
            reply = svc.handle_open(self.terminal_id, message, now)
        elif kind == "tube_event":
            reply = svc.handle_event(self.terminal_id, message, now)
        else:
            reply = svc.query(self.terminal_id, message.txn_id)
        if kind != "tube_query":
            self.applied.append((kind, message))
        if self.change is not None:
            self.change(kind, reply)
        return link_pb2.ServerMessage(tube_reply=reply)

    def events(self, kind: int) -> list[pb.TubeEvent]:
        return [x for k, x in self.applied if k == "tube_event" and x.kind == kind]


@dataclass
class Terminal:
    store: Store
    engine: TubeEngine
    uplink: ServiceUplink
    sender_task: asyncio.Task[None]

    async def close(self) -> None:
        """Stop as the agent does on shutdown (or a crash: nothing more is journaled), within
        STOP_WITHIN, or fail naming what ran on after its cancel."""
        tasks = [*self.engine._tasks, self.sender_task]
        stopping = asyncio.ensure_future(self._stop())
        try:
            # asyncio.wait, not a timeout around the stop: a timeout's cancel would reach the
            # tasks (through gather) and hide which of them ran on.
            done, _ = await asyncio.wait({stopping}, timeout=STOP_WITHIN)
            if not done:
                running = [t for t in tasks if not t.done()]
                named = ", ".join(where(t) for t in running) or "none of its tasks"
                for task in (*running, stopping):  # again, so the test's loop can close
                    task.cancel()
                await asyncio.wait({*running, stopping}, timeout=STOP_WITHIN)
                raise AssertionError(
                    f"the agent did not stop within {STOP_WITHIN} s; ran on after cancel(): {named}"
                )
            stopping.result()
        finally:
            self.store.close()

    async def _stop(self) -> None:
        await self.engine.stop()
        self.sender_task.cancel()
        await asyncio.gather(self.sender_task, return_exceptions=True)


def terminal(state_dir: Path, uplink: ServiceUplink) -> Terminal:
    """An agent with a tube engine (no station, no printer) over ``uplink``."""
    store = Store(state_dir, uplink.terminal_id)
    agent = SimpleNamespace(
        store=store,
        uplink=uplink,
        owners={},
        service=SimpleNamespace(state=ServiceState.IN_SERVICE),
        config=SimpleNamespace(terminal=SimpleNamespace(terminal_id=TERMINAL, branch="BR-1")),
    )
    settings = TransactionSettings(customer_timeout=5.0, take_timeout=2.0, poll_seconds=0.05)
    engine = TubeEngine(agent, settings)  # type: ignore[arg-type]
    engine.install()
    assert engine.sender is not None
    task = asyncio.get_running_loop().create_task(engine.sender.run(), name="outbox-sender")
    return Terminal(store, engine, uplink, task)


async def withdraw(tube: Terminal, account: str, amount: str, txn_id: str) -> Live:
    """Open a cash withdrawal for customer c1 as agent/tube/customer.py does, and run it."""
    asset = pb.TubeAsset(kind=pb.ASSET_KIND_CASH, currency="CNY", amount=amount)
    data = {
        "customer_id": "c1",
        "account_id": account,
        "account_currency": "CNY",
        "asset": asset_to_dict(asset),
        "rate_version": 0,
        "pan_masked": PAN_MASKED,
    }
    message = pb.TubeOpen(
        txn_id=txn_id,
        kind=pb.TUBE_KIND_WITHDRAWAL,
        session_token=token(),
        account_id=account,
        asset=asset,
    )
    live = await tube.engine.begin(m.WITHDRAWAL, data, message, ("tube_withdrawal_started", {}))
    tube.engine.start(live)
    return live


async def until(live: Live, done: Callable[[Live], bool], timeout: float = 10.0) -> None:
    """Until ``done(live)`` (the runner touches ``live`` at every step)."""

    async def wait() -> None:
        while not done(live):
            changed = live.changed
            await changed.wait()

    await within(wait(), f"{live.key} still at {live.stage!r}", timeout)


async def within(work: Awaitable[T], what: str, seconds: float = STOP_WITHIN) -> T:
    """``work``'s result, or a failure saying ``what`` once ``seconds`` have passed."""
    try:
        async with asyncio.timeout(seconds):
            return await work
    except TimeoutError:
        raise AssertionError(f"{what} after {seconds} s") from None


def where(task: asyncio.Task[Any]) -> str:
    """A task's name and the line of its coroutine it waits at."""
    frames = task.get_stack(limit=1)
    at = f"{frames[0].f_code.co_qualname}:{frames[0].f_lineno}" if frames else "?"
    return f"{task.get_name()} at {at}"


def journal_states(store: Store, txn_id: str) -> list[str]:
    """The states the journal went through, in order."""
    txn = store.txjournal.get(txn_id)
    return [str(s.data["to"]) for s in txn.steps if s.name == "state"]
