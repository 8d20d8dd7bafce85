# long-module: the ingest benchmark: load generator, bare-stream ceiling and correctness audit run together in one process
"""Tube ingest: withdrawals/s from 500 terminal streams, durable on SQLite, vs a bare gRPC stream.

What is measured. A real ``branchline-server`` process (``python -m branchline.server.main``,
``--insecure-loopback``, soft HSM, default log level, its log in a file) on a fresh SQLite
file, with the storage settings the server ships with (``server/storage/engine.py``: WAL,
``synchronous=FULL`` — every commit is on disk before the terminal hears "applied" —
and WAL checkpoints in a background thread); the bench changes none of them. Before it
starts, the bench prepares the bank with the ledger modules themselves: branch ``BR-001``
and back-office clerk ``BO-1`` (skill ``back_office``), and per terminal a customer with a
card (a synthetic PAN: only its token and masked form are stored), a CNY cash account
linked to the card and a 10,000.00 CNY opening deposit. Each terminal ``T-0001`` ... gets a
customer session token minted with the key the server derives from its ``--pan-token-key``
(``CustomerSessions(tokenizer.derive_key(sessions.LABEL))``), as a verified PIN would:
PIN verification is the HSM's business and not part of this figure.

The terminals are spread over 4 client processes (``multiprocessing``, spawn), each an
asyncio loop with one gRPC channel (its own TCP connection) per terminal, as real terminals
have. Each terminal opens ``TerminalLink.Connect``, registers, and runs tube withdrawals back
to back as the agent does, but with no customer or carrier time: ``tube_open`` (10.00 CNY,
request_id ``<terminal>:<n>``) -> the back office's ``TubeDesk.SendCarrier`` (played by the
bench as teller BO-1 through ``branchline-principal`` metadata, one channel per client
process) -> ``tube_event`` CARRIER_ARRIVED -> CARRIER_TAKEN -> CONFIRM (customer_confirmed).
Each message waits for its ``tube_reply`` (matched on ``ack_seq``) before the next; a reply
with code ``unavailable`` or ``server_busy`` (a saturated server's refusal, after its
``retry_after_ms``) is sent again under the same request_id, as the agent's outbox does. ``tube_update`` pushes (the back office's change) are counted, not waited for.
Heartbeats follow the agent's uplink rule: one after a heartbeat interval (5 s, from the
RegisterAck) in which the terminal sent nothing, its answer not waited for.

Phases: connect and register every terminal; ``solo``: one terminal runs SOLO_TXNS
withdrawals while the others are idle (and so heartbeat: 100 writes a second from 500
terminals), which gives the per-message service time without queueing; 5 s of full load
(warm-up); the measured 20 s window; then every terminal finishes the transaction it is in
(drain). Then (the real server only) the ``half`` phase: the same terminals think between
messages (exponential, mean ``terminals / (capacity / 2)`` s) so that together they offer
half the messages/s just measured, with a warm-up and a 20 s window of its own; then every
terminal closes its stream. Only replies received inside the window count towards rates
and percentiles. With no think time the load is a closed loop of 500 outstanding messages,
so under load the ack latency is mostly queueing (Little's law: about 500 / messages per
second); the solo figures are the service time.

Figures:

* ``tube_txn_per_s``: withdrawals completed (CONFIRM answered POSTED) per second in the
  window; ``tube_msgs_per_s``: terminal tube messages acknowledged per second;
  ``tube_ack_p50/p99_ms``: their ack latency (all four kinds); ``tube_open_*``: the open (a
  ledger hold), ``tube_confirm_*``: the confirm (the posting: claim, capture, apply);
  ``tube_desk_send_*``: the back office's SendCarrier; ``tube_solo_ack_p50_ms`` and
  ``tube_solo_txn_p50_ms`` (a whole withdrawal, SendCarrier included) from the solo phase;
  ``tube_heartbeats_per_s``; ``tube_pushes_per_txn`` (1: every SendCarrier was pushed).
* ``tube_half_*``: the half phase — what was offered (``_offered_msgs_per_s``), what was
  acknowledged, and the ack p50/p99: the latency of a server at half its capacity.
* ``tube_sql_per_txn``: SQL statements the server executed (its
  ``branchline_sql_statements_total`` counter on ``--metrics-listen``: every statement,
  BEGIN, COMMIT and savepoint) during the window divided by the withdrawals completed in
  it (SendCarrier included; under saturation the terminals send no heartbeats);
  ``tube_sql_per_txn_solo`` the same over the solo phase (with the idle terminals'
  heartbeats in it).
* ``*_server_cpu_ms_per_msg``: CPU time the server process used (all threads, from
  ``/proc``) during the window per message acknowledged, for the real and the bare server;
  ``*_msgs_per_cpu_s`` its inverse (what one core of its own would carry: both are
  CPU-bound), ``cpu_per_msg_over_bare`` the ratio. On a machine shared with other work the
  rates wander with the CPU the server gets; CPU per message does much less.
* The ceiling, measured the same way in the same run: a bare grpc.aio server (this module
  with ``--bare-server``, a process of its own like the real server) whose
  TerminalLink.Connect answers every message at once — a ``tube_reply`` carrying the request
  id and a canned transaction record of the real reply's size (``*_reply_bytes`` shows
  both), a register or heartbeat ack: no database. Same terminals, same client processes,
  same messages; the one difference is that its terminals do not wait for SendCarrier
  between open and arrival. On a grpc.aio server a new unary call waits behind busy streams
  (in a probe, one client calling SendCarrier beside 250 busy streams: ~90 ms, not ~1 ms), so with
  that call in each transaction the ceiling would measure call set-up, not the stream.
  Instead each client process calls the bare SendCarrier one at a time through the window:
  ``bare_desk_send_*`` is that latency beside the bare streams' load. ``msgs_over_bare`` is
  tube messages/s / bare messages/s; ``ack_*_over_bare`` the latency ratios.
* Correctness, over every phase (solo, warm-up, window, drain), read from the database after
  the server stopped: ``postings_minus_completed`` (ledger entries made by the terminals
  minus withdrawals the client saw POSTED), ``posted_minus_completed`` (tube records),
  ``active_holds_of_posted``, ``unfinished_txns``, ``*_failed_steps`` (a refusal or an
  error: the transaction is abandoned), ``ledger_audit_problems`` (the ledger's own audit),
  ``balance_error_cny`` (opening deposits - 10.00 x completed - the customers' balances) and
  ``server_log_errors`` (error lines in the server's log): each should be 0.
  ``heartbeat_timeouts`` counts the fleet's ``heartbeat_timeout`` events: terminals the
  server marked offline although their streams were busy (a terminal that always has
  something to send sends no heartbeat, and only heartbeats count as liveness).

With ``BRANCHLINE_BENCH_SMOKE=1``: 20 terminals on 2 client processes, a 1 s warm-up and a
3 s window (for the unit test; its figures mean nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import select
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from branchline.v1 import common_pb2
from branchline.v1 import terminal_link_pb2 as link_pb
from branchline.v1 import terminal_link_pb2_grpc as link_grpc
from branchline.v1 import tube_pb2 as pb
from branchline.v1 import tube_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent
BRANCH = "BR-001"
CLERK = "BO-1"
SETUP_TERMINAL = "bench-setup"
OPENING = Decimal("10000.00")
AMOUNT = Decimal("10.00")
SOLO_TXNS = 20
REPLY_TIMEOUT = 90.0
UNAVAILABLE_RETRIES = 5
PRINCIPAL = (("branchline-principal", f"teller:{CLERK}"),)
# One TCP connection per terminal: channels to one target otherwise share a subchannel.
TERMINAL_CHANNEL = [("grpc.use_local_subchannel_pool", 1)]
TUBE_KINDS = ("open", "arrived", "taken", "confirm")
S = pb.TubeState
SMOKE_VARIABLE = "BRANCHLINE_BENCH_SMOKE"


@dataclass(frozen=True)
class Plan:
    terminals: int
    workers: int
    warmup: float
    window: float


FULL = Plan(terminals=500, workers=4, warmup=5.0, window=20.0)
SMOKE = Plan(terminals=20, workers=2, warmup=1.0, window=3.0)


def current_plan() -> Plan:
    return SMOKE if os.environ.get(SMOKE_VARIABLE) == "1" else FULL


@dataclass(frozen=True)
class TerminalSpec:
    terminal_id: str
    account_id: str
    session_token: str


@dataclass(frozen=True)
class Window:
    start: float
    opens: float
    closes: float

    def __contains__(self, at: float) -> bool:
        return self.opens <= at < self.closes


@dataclass
class Stats:
    """What one client process saw; merged across processes by ``merge``."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in TUBE_KINDS})
    desk: list[float] = field(default_factory=list)
    msgs_in_window: int = 0
    txns_in_window: int = 0
    heartbeats_in_window: int = 0
    completed: int = 0
    opened: int = 0
    pushes: int = 0
    retries: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    reply_bytes: int = 0
    replies: int = 0

    def merge(self, other: Stats) -> None:
        for kind, values in other.latencies.items():
            self.latencies[kind].extend(values)
        self.desk.extend(other.desk)
        self.msgs_in_window += other.msgs_in_window
        self.txns_in_window += other.txns_in_window
        self.heartbeats_in_window += other.heartbeats_in_window
        self.completed += other.completed
        self.opened += other.opened
        self.pushes += other.pushes
        self.retries += other.retries
        self.failures.update(other.failures)
        self.reply_bytes += other.reply_bytes
        self.replies += other.replies

    def all_acks(self) -> list[float]:
        return [v for kind in TUBE_KINDS for v in self.latencies[kind]]


class Refused(Exception):
    """A step of a withdrawal was refused or failed: the transaction is abandoned."""


def percentiles(samples: Iterable[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    if not ordered:
        return float("nan"), float("nan")
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


# -- one simulated terminal -----------------------------------------------------------------


class Terminal:
    def __init__(self, spec: TerminalSpec, target: str, stats: Stats) -> None:
        self.spec = spec
        self.stats = stats
        self.channel = grpc.aio.insecure_channel(target, options=TERMINAL_CHANNEL)
        self.stub = link_grpc.TerminalLinkStub(self.channel)
        self.call: Any = None
        self.reader: asyncio.Task[None] | None = None
        self.seq = 0
        self.outbox = 0
        self.waiting: dict[int, asyncio.Future[link_pb.ServerMessage]] = {}
        self.write_lock = asyncio.Lock()
        self.heartbeat_interval = 5.0
        self.last_write = time.monotonic()
        # Set during the solo phase: every ack latency goes here instead.
        self.solo: list[float] | None = None
        # The paced phase: mean think time (exponential) before each tube message.
        self.think = 0.0

    async def connect(self) -> None:
        self.call = self.stub.Connect()
        self.reader = asyncio.create_task(self._read())
        devices = [
            common_pb2.Device(name=name, driver=driver, status=common_pb2.DEVICE_STATUS_ONLINE)
            for name, driver in (
                ("card_reader", "crt591_card_reader"),
                ("pin_pad", "branchline_epp"),
                ("printer", "escpos_printer"),
                ("tube_station", "modbus_tube_station"),
            )
        ]
        ack, _ = await self.request(
            register=link_pb.Register(
                terminal_id=self.spec.terminal_id,
                branch=BRANCH,
                kind=common_pb2.TERMINAL_KIND_SELF_SERVICE,
                agent_version="bench",
                service_state=common_pb2.SERVICE_STATE_IN_SERVICE,
                devices=devices,
            )
        )
        if not ack.HasField("register_ack"):
            raise RuntimeError(f"{self.spec.terminal_id}: register answered {ack}")
        self.heartbeat_interval = ack.register_ack.heartbeat_interval or 5.0

    async def _read(self) -> None:
        problem: BaseException = ConnectionError("stream ended")
        try:
            async for message in self.call:
                if message.ack_seq == 0:
                    self.stats.pushes += 1
                    continue
                if message.HasField("tube_reply"):
                    self.stats.reply_bytes += message.ByteSize()
                    self.stats.replies += 1
                waiter = self.waiting.pop(message.ack_seq, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(message)
        except grpc.RpcError as exc:
            problem = exc
        finally:
            for waiter in self.waiting.values():
                if not waiter.done():
                    waiter.set_exception(ConnectionError(f"stream ended: {problem!r}"))
            self.waiting.clear()

    async def request(self, **body: Any) -> tuple[link_pb.ServerMessage, float]:
        self.seq += 1
        seq = self.seq
        waiter: asyncio.Future[link_pb.ServerMessage] = asyncio.get_running_loop().create_future()
        self.waiting[seq] = waiter
        started = time.monotonic()
        await self.write(link_pb.TerminalMessage(seq=seq, **body))
        reply = await asyncio.wait_for(waiter, REPLY_TIMEOUT)
        return reply, time.monotonic() - started

    async def write(self, message: link_pb.TerminalMessage) -> None:
        async with self.write_lock:
            await self.call.write(message)
            self.last_write = time.monotonic()

    def next_request_id(self) -> str:
        self.outbox += 1
        return f"{self.spec.terminal_id}:{self.outbox}"

    async def tube(self, kind: str, window: Window, expect: int, **body: Any) -> pb.TubeReply:
        """Send one tube message (again under the same request_id while ``unavailable``)."""
        if self.think:  # until the window closes; the drain goes as fast as it can
            left = window.closes - time.monotonic()
            if left > 0:
                await asyncio.sleep(min(random.expovariate(1 / self.think), left))
        for _ in range(UNAVAILABLE_RETRIES):
            message, took = await self.request(**body)
            done = time.monotonic()
            reply = message.tube_reply
            if reply.code in ("unavailable", "server_busy"):
                # As the agent's sender: again under the same request_id, after a wait.
                self.stats.retries += 1
                await asyncio.sleep(max(0.2, reply.retry_after_ms / 1000))
                continue
            if self.solo is not None:
                self.solo.append(took)
            elif done in window:
                self.stats.latencies[kind].append(took)
                self.stats.msgs_in_window += 1
            if reply.code or reply.txn.state != expect:
                raise Refused(f"{kind}:{reply.code or S.Name(reply.txn.state)}")
            return reply
        raise Refused(f"{kind}:unavailable")

    async def withdrawal(self, desk: pb_grpc.TubeDeskStub | None, window: Window) -> float:
        """One withdrawal end to end; returns when it was posted (monotonic).

        ``desk`` None (the bare ceiling): the back office's SendCarrier is left out.
        """
        txn_id = uuid.uuid4().hex
        await self.tube(
            "open",
            window,
            S.TUBE_STATE_OPEN,
            tube_open=pb.TubeOpen(
                request_id=self.next_request_id(),
                txn_id=txn_id,
                kind=pb.TUBE_KIND_WITHDRAWAL,
                session_token=self.spec.session_token,
                account_id=self.spec.account_id,
                asset=pb.TubeAsset(kind=pb.ASSET_KIND_CASH, currency="CNY", amount=str(AMOUNT)),
            ),
        )
        self.stats.opened += 1
        carrier = random.randrange(1, 2**32)
        if desk is not None:
            took = await send_carrier(desk, txn_id, carrier)
            if self.solo is None and time.monotonic() in window:
                self.stats.desk.append(took)
        for kind, event, expect in (
            ("arrived", pb.TUBE_EVENT_CARRIER_ARRIVED, S.TUBE_STATE_DISPATCHED),
            ("taken", pb.TUBE_EVENT_CARRIER_TAKEN, S.TUBE_STATE_DELIVERED),
            ("confirm", pb.TUBE_EVENT_CONFIRM, S.TUBE_STATE_POSTED),
        ):
            await self.tube(
                kind,
                window,
                expect,
                tube_event=pb.TubeEvent(
                    request_id=self.next_request_id(),
                    txn_id=txn_id,
                    kind=event,
                    carrier_id=carrier if event == pb.TUBE_EVENT_CARRIER_ARRIVED else 0,
                    customer_confirmed=event == pb.TUBE_EVENT_CONFIRM,
                ),
            )
        self.stats.completed += 1
        return time.monotonic()

    async def run(self, desk: pb_grpc.TubeDeskStub | None, window: Window) -> None:
        await asyncio.sleep(max(0.0, window.start - time.monotonic()) + random.uniform(0, 0.2))
        while time.monotonic() < window.closes:
            try:
                posted = await self.withdrawal(desk, window)
            except Refused as exc:
                self.stats.failures[str(exc)] += 1
                await asyncio.sleep(0.1)
                continue
            except (ConnectionError, TimeoutError, grpc.RpcError) as exc:
                self.stats.failures[type(exc).__name__] += 1
                return
            if posted in window:
                self.stats.txns_in_window += 1

    async def heartbeats(self, stop: asyncio.Event, window: list[Window]) -> None:
        """As the agent's uplink does: a heartbeat after an interval with nothing sent."""
        self.last_write -= random.uniform(0, self.heartbeat_interval)
        while not stop.is_set():
            due = self.last_write + self.heartbeat_interval - time.monotonic()
            if due > 0:
                try:
                    await asyncio.wait_for(stop.wait(), due)
                except TimeoutError:
                    pass
                continue
            sent = Timestamp()
            sent.GetCurrentTime()
            self.seq += 1
            beat = link_pb.Heartbeat(
                service_state=common_pb2.SERVICE_STATE_IN_SERVICE, sent_at=sent
            )
            try:  # the answer is not waited for (nor is it by the agent)
                await self.write(link_pb.TerminalMessage(seq=self.seq, heartbeat=beat))
            except (grpc.RpcError, asyncio.InvalidStateError) as exc:
                self.stats.failures[f"heartbeat:{type(exc).__name__}"] += 1
                return
            if window and time.monotonic() in window[0]:
                self.stats.heartbeats_in_window += 1

    async def close(self) -> None:
        try:
            async with self.write_lock:
                await self.call.done_writing()
            if self.reader is not None:
                await asyncio.wait_for(self.reader, 30)
        except (grpc.RpcError, TimeoutError):
            pass
        await self.channel.close(None)


async def send_carrier(desk: pb_grpc.TubeDeskStub, txn_id: str, carrier: int) -> float:
    """The back office loads and sends the carrier; returns how long the call took."""
    started = time.monotonic()
    try:
        await desk.SendCarrier(
            pb.CarrierRequest(txn_id=txn_id, carrier_id=carrier),
            metadata=PRINCIPAL,
            timeout=REPLY_TIMEOUT,
        )
    except grpc.RpcError as exc:
        raise Refused(f"send_carrier:{exc.code().name}") from None
    return time.monotonic() - started


async def desk_probe(desk: pb_grpc.TubeDeskStub, window: Window, stats: Stats) -> None:
    """Bare run: one SendCarrier after another through the window (none of them needed)."""
    await asyncio.sleep(max(0.0, window.opens - time.monotonic()))
    while time.monotonic() < window.closes:
        took = await send_carrier(desk, uuid.uuid4().hex, 1)
        if time.monotonic() in window:
            stats.desk.append(took)
        await asyncio.sleep(0.05)


# -- a client process -----------------------------------------------------------------------


def _worker(target: str, specs: list[TerminalSpec], bare: bool, pipe: Connection) -> None:
    try:
        asyncio.run(_worker_main(target, specs, bare, pipe))
    except BaseException:
        pipe.send(("error", traceback.format_exc()))
        raise


async def _worker_main(
    target: str, specs: list[TerminalSpec], bare: bool, pipe: Connection
) -> None:
    stats = Stats()
    desk_channel = grpc.aio.insecure_channel(target)
    desk = pb_grpc.TubeDeskStub(desk_channel)
    back_office = None if bare else desk
    terminals = [Terminal(spec, target, stats) for spec in specs]
    stop = asyncio.Event()
    windows: list[Window] = []
    beats: list[asyncio.Task[None]] = []

    async def connect(terminal: Terminal) -> None:
        # Heartbeats from its registration on, as the agent: not once the whole worker has
        # registered (its first terminals were silent past the timeout while the rest did).
        await terminal.connect()
        beats.append(asyncio.create_task(terminal.heartbeats(stop, windows)))

    await asyncio.gather(*(connect(t) for t in terminals))
    loop = asyncio.get_running_loop()
    pipe.send(("ready", len(terminals)))
    while True:
        command = await loop.run_in_executor(None, pipe.recv)
        if command[0] == "solo":
            alone = terminals[0]
            alone.solo = []
            txn_times = []
            for _ in range(SOLO_TXNS):
                started = time.monotonic()
                await alone.withdrawal(back_office, Window(0.0, 0.0, 0.0))
                txn_times.append(time.monotonic() - started)
            pipe.send(("solo", alone.solo, txn_times))
            alone.solo = None
        elif command[0] == "go":
            windows.append(command[1])
            break
    window = windows[0]
    probe = [desk_probe(desk, window, stats)] if bare else []
    await asyncio.gather(*(t.run(back_office, window) for t in terminals), *probe)
    pipe.send(("done", stats))
    command = await loop.run_in_executor(None, pipe.recv)
    if command[0] == "paced":  # the same terminals at a fraction of the capacity
        paced = Stats()
        windows[0] = command[1]
        for t in terminals:
            t.stats, t.think = paced, command[2]
        await asyncio.gather(*(t.run(back_office, command[1]) for t in terminals))
        pipe.send(("paced", paced))
    stop.set()
    await asyncio.gather(*beats)
    await asyncio.gather(*(t.close() for t in terminals))
    await desk_channel.close(None)
    pipe.send(("closed",))


@dataclass
class LoadResult:
    stats: Stats
    window: float
    solo_acks: list[float]
    solo_txns: list[float]
    # Probes (sql, cpu) read at: solo start, solo end, window open, window close.
    samples: dict[str, list[float]] = field(default_factory=dict)
    paced: PacedResult | None = None


@dataclass
class PacedResult:
    stats: Stats
    window: float
    offered: float  # messages/s the terminals offered together


def _receive(pipe: Connection, process: Any, timeout: float, expect: str) -> tuple[Any, ...]:
    deadline = time.monotonic() + timeout
    while not pipe.poll(0.5):
        if not process.is_alive():
            raise RuntimeError(f"a client process died (exit code {process.exitcode})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"a client process sent no {expect!r} within {timeout:.0f} s")
    message: tuple[Any, ...] = pipe.recv()
    if message[0] == "error":
        raise RuntimeError(f"a client process failed:\n{message[1]}")
    if message[0] != expect:
        raise RuntimeError(f"a client process sent {message[0]!r}, not {expect!r}")
    return message


def apply_load(
    target: str,
    specs: list[TerminalSpec],
    plan: Plan,
    bare: bool,
    probes: dict[str, Callable[[], float]] | None = None,
    paced: bool = False,
) -> LoadResult:
    """Connect every terminal from ``plan.workers`` processes, run the phases, merge.

    ``probes``: counters read at the start and end of the solo phase and of the window (the
    server's SQL statements, its CPU seconds). ``paced``: then a phase at half the measured capacity."""
    context = multiprocessing.get_context("spawn")
    pipes: list[Connection] = []
    processes = []
    for i in range(plan.workers):
        mine, theirs = context.Pipe()
        process = context.Process(
            target=_worker, args=(target, specs[i :: plan.workers], bare, theirs), daemon=True
        )
        process.start()
        theirs.close()
        pipes.append(mine)
        processes.append(process)
    try:
        for pipe, process in zip(pipes, processes, strict=True):
            _receive(pipe, process, 180, "ready")
        probes = probes or {}
        samples: dict[str, list[float]] = {name: [read()] for name, read in probes.items()}
        pipes[0].send(("solo",))
        _, solo_acks, solo_txns = _receive(pipes[0], processes[0], 120, "solo")
        for name, read in probes.items():
            samples[name].append(read())
        start = time.monotonic() + 0.5
        window = Window(start, start + plan.warmup, start + plan.warmup + plan.window)
        for pipe in pipes:
            pipe.send(("go", window))
        if probes:
            for at in (window.opens, window.closes):
                time.sleep(max(0.0, at - time.monotonic()))
                for name, read in probes.items():
                    samples[name].append(read())
        total = Stats()
        for pipe, process in zip(pipes, processes, strict=True):
            total.merge(_receive(pipe, process, plan.warmup + plan.window + 180, "done")[1])
        half = _paced_phase(pipes, processes, plan, total) if paced else None
        if half is None:
            for pipe in pipes:
                pipe.send(("close",))
        for pipe, process in zip(pipes, processes, strict=True):
            _receive(pipe, process, 120, "closed")
        for process in processes:
            process.join(30)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(10)
    return LoadResult(total, plan.window, solo_acks, solo_txns, samples, half)


def _paced_phase(
    pipes: list[Connection], processes: list[Any], plan: Plan, saturated: Stats
) -> PacedResult:
    """Every terminal again, thinking between messages so that together they offer half of
    the messages/s just measured at saturation; their acks in a window of their own."""
    capacity = saturated.msgs_in_window / plan.window
    offered = capacity / 2
    think = plan.terminals / max(offered, 0.1)
    start = time.monotonic() + 0.5
    window = Window(start, start + plan.warmup + think, start + plan.warmup + think + plan.window)
    for pipe in pipes:
        pipe.send(("paced", window, think))
    half = Stats()
    timeout = window.closes - time.monotonic() + REPLY_TIMEOUT + 60
    for pipe, process in zip(pipes, processes, strict=True):
        half.merge(_receive(pipe, process, timeout, "paced")[1])
    saturated.completed += half.completed
    saturated.opened += half.opened
    return PacedResult(half, plan.window, offered)


# -- servers --------------------------------------------------------------------------------


def _wait_listening(
    proc: subprocess.Popen[str], log: Path, timeout: float = 60, metrics: bool = False
) -> str:
    """The ``HOST:PORT`` a server printed as ``... listening on HOST:PORT`` (with
    ``metrics``: ``HOST:PORT metrics-URL`` once it printed ``... metrics on URL`` too)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    found: dict[str, str] = {}
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if "listening on" in line:
                found["target"] = line.rsplit(" ", 1)[1].strip()
            elif " metrics on " in line:
                found["metrics"] = line.rsplit(" ", 1)[1].strip()
            if "target" in found and (not metrics or "metrics" in found):
                return " ".join(found[k] for k in ("target", "metrics") if k in found)
            if not line and proc.poll() is not None:
                break
        elif proc.poll() is not None:
            break
    raise RuntimeError(f"the server did not start; its log:\n{log.read_text()[-3000:]}")


def sql_statements(metrics_url: str) -> float:
    """The server's ``branchline_sql_statements_total`` counter, read from its endpoint."""
    import urllib.request

    with urllib.request.urlopen(metrics_url, timeout=30) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith("branchline_sql_statements_total "):
                return float(line.split()[1])
    raise RuntimeError(f"{metrics_url} has no branchline_sql_statements_total")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def start_server(root: Path, db_url: str) -> tuple[subprocess.Popen[str], str, str]:
    """The server process, its TerminalLink target and its metrics URL."""
    log = root / "server.log"
    hsm = f"soft://{root / 'keystore.json'}?master_key_file={root / 'hsm-master.key'}"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "branchline.server.main",
                "--listen", "127.0.0.1:0", "--insecure-loopback", "--db", db_url,
                "--hsm", hsm, "--pan-token-key", str(root / "pan-token.key"),
                "--shutdown-drain", "0", "--replica", "bench",
                "--metrics-listen", "127.0.0.1:0",
            ],
            stdout=subprocess.PIPE, stderr=err, text=True, cwd=root,
        )  # fmt: skip
    try:
        target, metrics = _wait_listening(proc, log, metrics=True).split(" ")
        return proc, target, metrics
    except BaseException:
        _stop(proc)
        raise


def start_bare_server(root: Path) -> tuple[subprocess.Popen[str], str]:
    log = root / "bare.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.tube_ingest", "--bare-server"],
            stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT, env=env,
        )  # fmt: skip
    try:
        return proc, _wait_listening(proc, log)
    except BaseException:
        _stop(proc)
        raise


def canned_record() -> pb.TubeTransaction:
    """What the real server answers a withdrawal with, field for field, of the same size."""
    record = pb.TubeTransaction(
        txn_id=uuid.uuid4().hex,
        terminal_id="T-0001",
        branch=BRANCH,
        kind=pb.TUBE_KIND_WITHDRAWAL,
        state=S.TUBE_STATE_OPEN,
        customer_id="C-0001",
        account_id="C-0001-CNY",
        requested=pb.TubeAsset(kind=pb.ASSET_KIND_CASH, currency="CNY", amount="10.00"),
        quote=pb.TubeQuote(account_currency="CNY", account_amount="10.00"),
        carrier_id=3_000_000_000,
        hold_id=uuid.uuid4().hex,
        balance_after="9990.00",
        available_after="9980.00",
        updated_by="terminal:T-0001",
        pan_masked="622200******0001",
    )
    record.created_at.GetCurrentTime()
    record.updated_at.GetCurrentTime()
    return record


class BareLink(link_grpc.TerminalLinkServicer):
    def __init__(self) -> None:
        self.record = canned_record()

    async def Connect(  # type: ignore[override]
        self, request_iterator: AsyncIterator[link_pb.TerminalMessage], context: Any
    ) -> AsyncIterator[link_pb.ServerMessage]:
        async for message in request_iterator:
            body = message.WhichOneof("body")
            if body == "register":
                yield link_pb.ServerMessage(
                    ack_seq=message.seq,
                    register_ack=link_pb.RegisterAck(
                        terminal_id=message.register.terminal_id,
                        heartbeat_interval=5.0,
                        server_replica="bare",
                    ),
                )
            elif body == "heartbeat":
                ack = link_pb.HeartbeatAck()
                ack.server_time.GetCurrentTime()
                yield link_pb.ServerMessage(ack_seq=message.seq, heartbeat_ack=ack)
            else:
                request_id = (
                    message.tube_open.request_id
                    if body == "tube_open"
                    else message.tube_event.request_id
                )
                state = (
                    S.TUBE_STATE_OPEN
                    if body == "tube_open"
                    else BARE_STATES[message.tube_event.kind]
                )
                reply = pb.TubeReply(request_id=request_id, txn=self.record)
                reply.txn.state = state
                yield link_pb.ServerMessage(ack_seq=message.seq, tube_reply=reply)


BARE_STATES = {
    pb.TUBE_EVENT_CARRIER_ARRIVED: S.TUBE_STATE_DISPATCHED,
    pb.TUBE_EVENT_CARRIER_TAKEN: S.TUBE_STATE_DELIVERED,
    pb.TUBE_EVENT_CONFIRM: S.TUBE_STATE_POSTED,
}


class BareDesk(pb_grpc.TubeDeskServicer):
    def __init__(self) -> None:
        self.record = canned_record()

    async def SendCarrier(self, request: pb.CarrierRequest, context: Any) -> pb.TubeTransaction:  # type: ignore[override]
        return self.record


async def serve_bare(listen: str) -> None:
    server = grpc.aio.server()
    link_grpc.add_TerminalLinkServicer_to_server(BareLink(), server)
    pb_grpc.add_TubeDeskServicer_to_server(BareDesk(), server)
    port = server.add_insecure_port(listen)
    await server.start()
    print(f"bare server listening on 127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(grace=1.0)


# -- the bank -------------------------------------------------------------------------------


def prepare_bank(root: Path, db_url: str, terminals: int) -> list[TerminalSpec]:
    """Keys, branch, clerk, customers, cards, accounts, opening balances, session tokens."""
    # Server modules only here and in verify(): the client processes do not need them.
    from datetime import UTC, datetime

    from branchline.common.hsm.keystore import MasterKey, write_master_key_file
    from branchline.server.dispatch.service import DispatchService
    from branchline.server.ledger import accounts as acc
    from branchline.server.ledger.adapter import EmbeddedLedger
    from branchline.server.ledger.cards import add_customer, enroll_card
    from branchline.server.ledger.pan_token import PanTokenizer, mask_pan
    from branchline.server.ledger.postings import Reference
    from branchline.server.ledger.requests import DepositRequest
    from branchline.server.ledger.sessions import LABEL, CustomerSessions
    from branchline.server.storage import open_database

    write_master_key_file(root / "hsm-master.key", MasterKey.generate())
    tokenizer = PanTokenizer.from_file(root / "pan-token.key")
    sessions = CustomerSessions(tokenizer.derive_key(LABEL))
    now = datetime.now(UTC)
    engine = open_database(db_url)
    try:
        dispatch = DispatchService(engine)
        dispatch.add_branch(BRANCH, "Bench branch")
        dispatch.add_teller(CLERK, "Back office clerk", BRANCH, ["back_office"])
        ledger = EmbeddedLedger(engine)
        specs = []
        for i in range(1, terminals + 1):
            customer, terminal_id = f"C-{i:04d}", f"T-{i:04d}"
            pan = f"622200{i:010d}"
            card_token = tokenizer.token(pan)
            add_customer(engine, customer, f"Customer {i}", now)
            enroll_card(
                engine,
                card_token=card_token,
                pan_masked=mask_pan(pan),
                customer_id=customer,
                verification_method="visa_pvv",
                pvki=1,
                verification_value="0000",
                pvk_name="PVK",
                now=now,
            )
            account = acc.open_account(engine, customer, acc.CASH, "CNY", now, f"{customer}-CNY")
            acc.link_card(engine, card_token, account.account_id, now)
            ledger.post_deposit(
                DepositRequest(
                    Reference(SETUP_TERMINAL, f"opening-{account.account_id}"),
                    account_id=account.account_id,
                    branch=BRANCH,
                    currency="CNY",
                    amount=OPENING,
                    now=now,
                )
            )
            token = sessions.issue(terminal_id, card_token, customer, now)
            specs.append(TerminalSpec(terminal_id, account.account_id, token))
        return specs
    finally:
        engine.dispose()


def verify(db_url: str, db_file: Path, terminals: int, completed: int) -> dict[str, float]:
    """Ledger and tube records against what the terminals saw (the server has stopped)."""
    from branchline.server.ledger.adapter import EmbeddedLedger
    from branchline.server.storage import open_database

    with sqlite3.connect(db_file) as db:

        def one(query: str, *args: object) -> int:
            return int(db.execute(query, args).fetchone()[0] or 0)

        postings = one(
            "SELECT count(*) FROM journal_entries WHERE terminal_id != ?", SETUP_TERMINAL
        )
        posted = one("SELECT count(*) FROM tube_transactions WHERE state = 'posted'")
        unfinished = one(
            "SELECT count(*) FROM tube_transactions WHERE state NOT IN "
            "('posted', 'returned', 'reversed', 'canceled', 'handed_to_teller')"
        )
        active_holds = one(
            "SELECT count(*) FROM holds h JOIN tube_transactions t ON t.hold_id = h.hold_id "
            "WHERE t.state = 'posted' AND h.status != 'captured'"
        )
        balances = one("SELECT sum(balance_minor) FROM accounts WHERE customer_id IS NOT NULL")
        offline = one("SELECT count(*) FROM fleet_events WHERE kind = 'heartbeat_timeout'")
        for at, terminal, detail in db.execute(
            "SELECT at, terminal_id, detail FROM fleet_events WHERE kind = 'heartbeat_timeout' "
            "ORDER BY id LIMIT 3"
        ):
            print(f"   heartbeat timeout: {terminal} at {at}: {detail}", flush=True)
    engine = open_database(db_url)
    try:
        problems = EmbeddedLedger(engine).audit()
    finally:
        engine.dispose()
    expected = (OPENING * terminals - AMOUNT * completed) * 100
    return {
        "completed_total": float(completed),
        "postings_minus_completed": float(postings - completed),
        "posted_minus_completed": float(posted - completed),
        "active_holds_of_posted": float(active_holds),
        "unfinished_txns": float(unfinished),
        "ledger_audit_problems": float(len(problems)),
        "balance_error_cny": float((expected - balances) / 100),
        "heartbeat_timeouts": float(offline),
    }


def log_errors(log: Path) -> list[str]:
    """Error (and worse) lines in a server's JSON-lines log."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            level = json.loads(line).get("level")
        except (ValueError, AttributeError):
            continue
        if level in ("error", "critical"):
            found.append(line)
    return found


# -- the figures ----------------------------------------------------------------------------


def _load_figures(prefix: str, result: LoadResult) -> dict[str, float]:
    stats = result.stats
    ack_p50, ack_p99 = percentiles(stats.all_acks())
    solo_p50, _ = percentiles(result.solo_acks)
    figures = {
        f"{prefix}_txn_per_s": stats.txns_in_window / result.window,
        f"{prefix}_msgs_per_s": stats.msgs_in_window / result.window,
        f"{prefix}_ack_p50_ms": ack_p50,
        f"{prefix}_ack_p99_ms": ack_p99,
    }
    for kind in ("open", "confirm"):
        p50, p99 = percentiles(stats.latencies[kind])
        figures[f"{prefix}_{kind}_p50_ms"] = p50
        figures[f"{prefix}_{kind}_p99_ms"] = p99
    desk_p50, desk_p99 = percentiles(stats.desk)
    figures[f"{prefix}_desk_send_p50_ms"] = desk_p50
    figures[f"{prefix}_desk_send_p99_ms"] = desk_p99
    figures[f"{prefix}_solo_ack_p50_ms"] = solo_p50
    figures[f"{prefix}_solo_txn_p50_ms"] = statistics.median(result.solo_txns) * 1000
    figures[f"{prefix}_heartbeats_per_s"] = stats.heartbeats_in_window / result.window
    figures[f"{prefix}_pushes_per_txn"] = stats.pushes / max(stats.opened, 1)
    figures[f"{prefix}_reply_bytes"] = stats.reply_bytes / max(stats.replies, 1)
    figures[f"{prefix}_failed_steps"] = float(sum(stats.failures.values()))
    figures[f"{prefix}_unavailable_retries"] = float(stats.retries)
    if result.paced is not None:
        half = result.paced.stats
        half_p50, half_p99 = percentiles(half.all_acks())
        figures[f"{prefix}_half_offered_msgs_per_s"] = result.paced.offered
        figures[f"{prefix}_half_msgs_per_s"] = half.msgs_in_window / result.paced.window
        figures[f"{prefix}_half_ack_p50_ms"] = half_p50
        figures[f"{prefix}_half_ack_p99_ms"] = half_p99
        figures[f"{prefix}_half_failed_steps"] = float(sum(half.failures.values()))
    if "sql" in result.samples:
        solo_start, solo_end, opens, closes = result.samples["sql"]
        figures[f"{prefix}_sql_per_txn_solo"] = (solo_end - solo_start) / len(result.solo_txns)
        figures[f"{prefix}_sql_per_txn"] = (closes - opens) / max(stats.txns_in_window, 1)
    if "cpu" in result.samples:
        _, _, opens, closes = result.samples["cpu"]
        per_msg = (closes - opens) / max(stats.msgs_in_window, 1)
        figures[f"{prefix}_server_cpu_ms_per_msg"] = per_msg * 1000
        # What one core of its own would carry: the server is CPU-bound.
        figures[f"{prefix}_msgs_per_cpu_s"] = 1 / per_msg if per_msg else float("nan")
    return figures


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc), all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(plan: Plan | None = None) -> dict[str, float]:
    plan = plan or current_plan()
    figures: dict[str, float] = {"terminals": float(plan.terminals), "window_s": plan.window}
    with tempfile.TemporaryDirectory(prefix="bench-tube-") as tmp:
        root = Path(tmp)
        db_file = root / "server.db"
        db_url = f"sqlite:///{db_file}"
        specs = prepare_bank(root, db_url, plan.terminals)
        server, target, metrics_url = start_server(root, db_url)
        try:
            probes = {
                "sql": lambda: sql_statements(metrics_url),
                "cpu": lambda: cpu_seconds(server.pid),
            }
            tube = apply_load(target, specs, plan, bare=False, probes=probes, paced=True)
        finally:
            _stop(server)
        failures = tube.stats.failures
        if failures:
            print(f"   tube failures: {dict(failures.most_common(5))}", flush=True)
        bare_server, bare_target = start_bare_server(root)
        try:
            bare_cpu = {"cpu": lambda: cpu_seconds(bare_server.pid)}
            bare = apply_load(bare_target, specs, plan, bare=True, probes=bare_cpu)
        finally:
            _stop(bare_server)
        figures.update(_load_figures("tube", tube))
        figures.update(_load_figures("bare", bare))
        figures["msgs_over_bare"] = figures["tube_msgs_per_s"] / figures["bare_msgs_per_s"]
        figures["ack_p50_over_bare"] = figures["tube_ack_p50_ms"] / figures["bare_ack_p50_ms"]
        figures["ack_p99_over_bare"] = figures["tube_ack_p99_ms"] / figures["bare_ack_p99_ms"]
        figures["cpu_per_msg_over_bare"] = (
            figures["tube_server_cpu_ms_per_msg"] / figures["bare_server_cpu_ms_per_msg"]
        )
        figures["solo_ack_p50_over_bare"] = (
            figures["tube_solo_ack_p50_ms"] / figures["bare_solo_ack_p50_ms"]
        )
        figures.update(verify(db_url, db_file, plan.terminals, tube.stats.completed))
        errors = log_errors(root / "server.log")
        for line in errors[:3]:
            print(f"   server log error: {line[:400]}", flush=True)
        figures["server_log_errors"] = float(len(errors))
    return figures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tube_ingest", description=__doc__)
    parser.add_argument("--bare-server", action="store_true", help="serve the bare ceiling")
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--terminals", type=int, help="terminal streams (default 500)")
    parser.add_argument("--window", type=float, help="measured window, s (default 20)")
    parser.add_argument("--warmup", type=float, help="warm-up before it, s (default 5)")
    args = parser.parse_args(argv)
    if args.bare_server:
        asyncio.run(serve_bare(args.listen))
        return 0
    plan = current_plan()
    plan = Plan(
        terminals=args.terminals or plan.terminals,
        workers=plan.workers,
        warmup=args.warmup if args.warmup is not None else plan.warmup,
        window=args.window or plan.window,
    )
    for name, value in run(plan).items():
        print(f"{name:32} {value:12.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
