"""A cancel that comes in the very turn a wait is woken goes through (common/waiting.py).

``asyncio.wait_for`` of Python 3.11 drops such a cancel and returns the result; the agent's
outbox sender, a transaction's runner and an uplink request then ran on after ``cancel()``,
and the agent's shutdown, which cancels them and waits for them, waited for ever (the
restart-after-refusal test of test_tube_engine_refusal hung so: the sender, kicked by the
runner that had just queued the REVERSE, was canceled as it woke).

Each test puts the waiter in its wait, wakes it and cancels it in the same turn, and gives
it two seconds to end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from branchline.agent.config import TransactionSettings
from branchline.agent.device_owner import DeviceOwner
from branchline.agent.engine_base import changed_within
from branchline.agent.journal.store import Store
from branchline.agent.rates import RateBook
from branchline.agent.service_state import ServiceState
from branchline.agent.tube import machines as m
from branchline.agent.tube.engine import Live, TubeEngine
from branchline.agent.tube.sender import OutboxSender
from branchline.agent.uplink import Uplink, UplinkUnavailable
from branchline.common.waiting import wait_set
from branchline.v1 import terminal_link_pb2 as link_pb2
from branchline.v1 import tube_pb2 as pb
from tests.unit.link_support import loopback_terminal

STOP_WITHIN = 2.0


class Watched(asyncio.Event):
    """An event that tells when someone has started to wait on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waited = asyncio.Event()

    async def wait(self) -> bool:  # type: ignore[override]
        self.waited.set()
        return await super().wait()


async def ends_when_canceled(task: asyncio.Task[Any], what: str) -> None:
    """``task`` was canceled: it must end with CancelledError, and soon."""
    done, _ = await asyncio.wait({task}, timeout=STOP_WITHIN)
    if not done:
        task.cancel()  # the cancel was dropped; this one finds it at another await
        await asyncio.wait({task}, timeout=STOP_WITHIN)
        pytest.fail(f"{what} ran on after cancel() (still running after {STOP_WITHIN} s)")
    assert task.cancelled(), f"{what} ended without the cancel: {task.result()!r}"


async def waiting_on(event: Watched, work: Awaitable[Any]) -> asyncio.Task[Any]:
    """Start ``work`` and return once it waits on ``event``."""
    task = asyncio.ensure_future(work)
    await asyncio.wait_for(event.waited.wait(), STOP_WITHIN)
    return task


@pytest.mark.asyncio
async def test_wait_set_answers_set_or_not() -> None:
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    event.set()
    assert await wait_set(event, 0.01) is True


@pytest.mark.asyncio
async def test_wait_set_is_canceled_as_the_event_is_set() -> None:
    event = Watched()
    task = await waiting_on(event, wait_set(event, 30))
    event.set()
    task.cancel()
    await ends_when_canceled(task, "wait_set")


@pytest.mark.asyncio
async def test_the_outbox_sender_stops_when_canceled_as_it_is_kicked(tmp_path: Path) -> None:
    # The agent's shutdown cancels the sender just as something kicks it (a runner queued a
    # message, the link came back).
    store = Store(tmp_path, "K-1")
    uplink = SimpleNamespace(connected=True, last_error="")
    sender = OutboxSender(store.outbox, uplink, retry_seconds=30)  # type: ignore[arg-type]
    wake = sender._wake = Watched()
    try:
        task = await waiting_on(wake, sender.run())
        sender.kick()
        task.cancel()
        await ends_when_canceled(task, "the outbox sender")
    finally:
        store.close()


def live() -> Live:
    return Live(
        key="T-1",
        kind=m.WITHDRAWAL,
        data={"customer_id": "c1"},
        stage="awaiting_delivery",
        stage_data={},
        stage_at=time.time(),
        step=1,
    )


@pytest.mark.asyncio
async def test_a_runner_waiting_for_a_change_stops_when_canceled_as_it_changes() -> None:
    waiting = live()
    changed = waiting.changed = Watched()
    task = await waiting_on(changed, changed_within(waiting, 30))
    waiting.touch()
    task.cancel()
    await ends_when_canceled(task, "changed_within")


class Unreachable:
    connected = False
    last_error = "test"

    async def request(self, timeout: float = 15.0, **body: Any) -> link_pb2.ServerMessage:
        raise UplinkUnavailable("not connected")


@pytest.mark.asyncio
async def test_a_runner_waiting_for_the_server_stops_when_canceled_as_it_changes() -> None:
    agent = SimpleNamespace(uplink=Unreachable())
    settings = TransactionSettings(poll_seconds=30.0)
    engine = TubeEngine(agent, settings)  # type: ignore[arg-type]
    waiting = live()
    changed = waiting.changed = Watched()
    deadline = time.time() + 60
    task = await waiting_on(changed, engine.wait_server(waiting, lambda txn: False, deadline))
    waiting.touch()
    task.cancel()
    await ends_when_canceled(task, "wait_server")


@pytest.mark.asyncio
async def test_an_uplink_request_is_canceled_as_its_answer_comes(tmp_path: Path) -> None:
    uplink = Uplink(
        loopback_terminal("T-1", 1, tmp_path), lambda: [], lambda: ServiceState.IN_SERVICE
    )
    uplink.connected = True
    task = asyncio.ensure_future(uplink.request(tube_query=pb.TubeQuery(txn_id="T-1")))
    await asyncio.sleep(0)  # it has sent and waits for the answer

    async def answer() -> AsyncIterator[link_pb2.ServerMessage]:
        yield link_pb2.ServerMessage(ack_seq=1, tube_reply=pb.TubeReply())

    await uplink._drain(answer())  # as the stream's reader hands the answer over
    task.cancel()
    await ends_when_canceled(task, "the uplink request")


@pytest.mark.asyncio
async def test_a_device_owner_stops_when_canceled_as_a_command_arrives() -> None:
    # The owner's loop waits for its next command; the agent's shutdown cancels it just as
    # one is queued. The command must stay queued (failed by the owner's close), not be
    # taken by a loop that then runs on.
    owner = DeviceOwner.__new__(DeviceOwner)  # only the queue is used by _next_command
    owner._queue = asyncio.Queue()
    task = asyncio.ensure_future(owner._next_command(30))
    for _ in range(3):
        await asyncio.sleep(0)  # it waits on the queue
    owner._queue.put_nowait("command")  # type: ignore[arg-type]
    task.cancel()
    await ends_when_canceled(task, "the device owner's command wait")
    assert owner._queue.qsize() == 1


@pytest.mark.asyncio
async def test_a_rates_waiter_stops_when_canceled_as_the_table_changes(tmp_path: Path) -> None:
    book = RateBook(tmp_path)
    task = asyncio.ensure_future(book.wait_change(30))
    for _ in range(3):
        await asyncio.sleep(0)  # it waits on the condition
    async with book._changed:
        book._changed.notify_all()
    task.cancel()
    await ends_when_canceled(task, "wait_change")
