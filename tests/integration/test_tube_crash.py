"""Issue 6 acceptance: the agent is killed with SIGKILL at every journaled step of a tube
deposit and of a tube withdrawal — every step enumerated, not sampled — and restarted.

The failpoints are real (``BRANCHLINE_FAILPOINTS`` in the agent's environment, see
agent/failpoints.py): ``<kind>.after=N`` kills the agent right after step N of the transaction
is durable and before anything acts on it; ``<kind>.acted=N`` once step N's action is done and
before step N+1 is journaled; ``outbox.answered=SEQ`` right after the server
applied a message and before the terminal stored its answer (the answer is lost, the effect
is not). The step lists come from a clean run of each flow, read from the agent's journal.

After each kill the agent is started again, the customer (a script that reacts to what the
terminal shows, signing in again when its session went with the crash) and the back office
carry on, and then: the ledger holds exactly one posting for the transaction (or none plus a
released hold), balances moved by exactly the amount, the outbox is empty and the electronic
journal verifies.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from branchline.agent.journal.store import Store
from branchline.v1 import tube_pb2 as pb
from tests.integration.stack import Stack, wait_for
from tests.integration.tube_support import (
    PAN,
    S,
    asset,
    balances,
    desk,
    lookup,
    sign_in,
    start_agent,
    start_branch,
    station_loaded,
    tidy_tube,
    tube,
)

DEPOSIT_STEPS = [
    "open",
    "awaiting_carrier",
    "sending",
    "sent",
    "counted",
    "confirming",
    "posted",
    "completed",
]
WITHDRAWAL_STEPS = [
    "open",
    "awaiting_delivery",
    "arrived",
    "taken",
    "capturing",
    "posted",
    "completed",
]
# The outbox messages each flow sends, in order (for the answer-lost cases).
DEPOSIT_MESSAGES = ["open", "carrier_sent", "confirm"]
WITHDRAWAL_MESSAGES = ["open", "arrived", "taken", "confirm"]
AMOUNT = {"tube_deposit": Decimal("120.00"), "tube_withdrawal": Decimal("-80.00")}


class AgentDied(Exception):
    pass


@dataclass
class Run:
    stack: Stack
    kind: str
    carrier: int
    session: str = ""
    txn_id: str = ""
    restarts: int = 0

    def alive(self) -> bool:
        return self.stack.procs["agent"].popen.poll() is None

    def restart_if_dead(self) -> None:
        if self.alive():
            return
        self.restarts += 1
        assert self.restarts == 1, "the agent died twice"
        start_agent(self.stack)
        self.session = ""

    def customer(self, call: str, request: object) -> pb.TubeView | None:
        """One customer call; signs in again when the session went with a crash."""
        for _ in range(2):
            if not self.session:
                self.session = sign_in(self.stack)
            request.session_id = self.session  # type: ignore[attr-defined]
            try:
                view: pb.TubeView = getattr(tube(self.stack), call)(request, timeout=30)
                return view
            except grpc.RpcError as exc:
                code = exc.code()  # type: ignore[attr-defined]
                if code == grpc.StatusCode.NOT_FOUND and "session" in (exc.details() or ""):  # type: ignore[attr-defined]
                    self.session = ""
                    continue
                if code == grpc.StatusCode.UNAVAILABLE or not self.alive():
                    return None  # the agent died under the call
                if code == grpc.StatusCode.FAILED_PRECONDITION:
                    return None  # the stage moved on meanwhile
                raise
        return None

    def view(self) -> pb.TubeView | None:
        try:
            if not self.txn_id:
                views = tube(self.stack).ListOpen(pb.ListOpenRequest(), timeout=5).views
                if not views:
                    return None
                self.txn_id = views[0].txn_id
            return tube(self.stack).GetTransaction(pb.TubeAction(txn_id=self.txn_id), timeout=5)
        except grpc.RpcError:
            return None


def sim_tube(stack: Stack) -> dict[str, str]:
    return stack.sim_act("tube_station", "status")


def server_state_of(stack: Stack, txn_id: str) -> int:
    try:
        return desk(stack).GetTransaction(pb.TubeRef(txn_id=txn_id), timeout=5).state
    except grpc.RpcError:
        return S.TUBE_STATE_UNSPECIFIED


def step_deposit(run: Run, view: pb.TubeView) -> None:
    stack = run.stack
    if view.stage == "awaiting_carrier":
        if sim_tube(stack)["terminal_state"] != "loaded":
            stack.sim_act("tube_station", "load", carrier_id=str(run.carrier))
            wait_for(lambda: station_loaded(stack), 10, "the agent to see the carrier")
        run.customer("SendCarrier", pb.TubeAction(txn_id=run.txn_id))
    elif view.stage in ("sending", "sent"):
        state = server_state_of(stack, run.txn_id)
        office = sim_tube(stack)
        if state == S.TUBE_STATE_IN_TRANSIT and office["backoffice_state"] == "arrived":
            desk(stack).ReceiveCarrier(
                pb.CarrierRequest(txn_id=run.txn_id, carrier_id=run.carrier), timeout=10
            )
            state = S.TUBE_STATE_RECEIVED
        if state == S.TUBE_STATE_RECEIVED:
            if sim_tube(stack)["backoffice_state"] == "arrived":
                stack.sim_act("tube_station", "backoffice_remove")
            desk(stack).EnterCount(
                pb.CountRequest(txn_id=run.txn_id, counted=asset("cash", "CNY", "120.00")),
                timeout=10,
            )
    elif view.stage == "counted":
        run.customer("Decide", pb.DecideRequest(txn_id=run.txn_id, decision=pb.DECISION_CONFIRM))


def step_withdrawal(run: Run, view: pb.TubeView) -> None:
    stack = run.stack
    if view.stage == "awaiting_delivery":
        if server_state_of(stack, run.txn_id) == S.TUBE_STATE_OPEN:
            desk(stack).SendCarrier(
                pb.CarrierRequest(txn_id=run.txn_id, carrier_id=run.carrier), timeout=10
            )
            stack.sim_act("tube_station", "backoffice_send", carrier_id=str(run.carrier))
    elif view.stage == "arrived":
        line = sim_tube(stack)
        if line["terminal_door"] == "open" and line["terminal_carrier_id"] != "0":
            stack.sim_act("tube_station", "remove")
    elif view.stage == "taken":
        run.customer("ConfirmReceipt", pb.TubeAction(txn_id=run.txn_id))


def drive(run: Run, timeout: float = 120) -> pb.TubeView:
    """Customer and back office do whatever the transaction waits for, until it ends."""
    deadline = time.monotonic() + timeout
    step = step_deposit if run.kind == "tube_deposit" else step_withdrawal
    while time.monotonic() < deadline:
        run.restart_if_dead()
        view = run.view()
        if view is not None and view.finished:
            return view
        if view is not None:
            try:
                step(run, view)
            except grpc.RpcError as exc:
                if run.alive():
                    raise
                del exc
        time.sleep(0.2)
    raise AssertionError(f"{run.kind} {run.txn_id} did not end within {timeout} s")


def start_transaction(run: Run) -> None:
    run.session = sign_in(run.stack)
    if run.kind == "tube_deposit":
        request = pb.StartTubeRequest(account_id="C1-CNY", asset=asset("cash", "CNY", "120.00"))
        started = run.customer("StartDeposit", request)
    else:
        request = pb.StartTubeRequest(account_id="C1-CNY", asset=asset("cash", "CNY", "80.00"))
        started = run.customer("StartWithdrawal", request)
    if started is not None:
        run.txn_id = started.txn_id


def journal_steps(stack: Stack, txn_id: str) -> list[str]:
    """The transaction's journaled steps, as the names of the states they went to."""
    db = sqlite3.connect(f"file:{stack.state_dir / 'journal.db'}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT name, data FROM txn_step WHERE txn_id = ? ORDER BY step", (txn_id,)
        ).fetchall()
    finally:
        db.close()
    return [name if name != "state" else json.loads(data)["to"] for name, data in rows]


def _journal(stack: Stack) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{stack.state_dir / 'journal.db'}?mode=ro", uri=True)


def unfinished_txns(stack: Stack) -> list[str]:
    if not (stack.state_dir / "journal.db").exists():
        return []
    db = _journal(stack)
    try:
        return [r[0] for r in db.execute("SELECT id FROM txn WHERE finished = 0")]
    finally:
        db.close()


def kind_of(stack: Stack, txn_id: str) -> str:
    db = _journal(stack)
    try:
        return str(db.execute("SELECT kind FROM txn WHERE id = ?", (txn_id,)).fetchone()[0])
    finally:
        db.close()


def last_outbox_seq(stack: Stack) -> int:
    """The outbox counter, read from the stopped agent's journal."""
    db = sqlite3.connect(f"file:{stack.state_dir / 'journal.db'}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM counters WHERE name = 'outbox'").fetchone()
    finally:
        db.close()
    return int(row[0]) if row else 0


@pytest.fixture(scope="module")
def branch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(prefix="bl-", dir="/tmp"))
    stack = Stack(root)
    stack.init_pki()
    try:
        start_branch(stack, customer_timeout=60, take_timeout=30)
        stack.procs["agent"].stop()
        yield stack
    finally:
        stack.stop_all()
        logs = tmp_path_factory.mktemp("crash-logs")
        for proc in stack.procs.values():
            (logs / proc.log_path.name).write_text(proc.log())
            assert PAN not in proc.log()
        shutil.rmtree(root, ignore_errors=True)


def crash_run(stack: Stack, kind: str, failpoint: str, carrier: int) -> pb.TubeView:
    """One flow with the agent killed at ``failpoint``; returns the transaction's end."""
    before = balances(stack)
    line = stack.sim_act("tube_station", "status")
    leftovers = unfinished_txns(stack)
    if leftovers or line["terminal_carrier_id"] != "0" or "arrived" in line["backoffice_state"]:
        # A case before this one failed: end what it left, clear the stations, start clean.
        start_agent(stack)
        for txn_id in leftovers:
            drive(Run(stack, kind_of(stack, txn_id), 4000, txn_id=txn_id))
        tidy_tube(stack)
        stack.procs["agent"].stop()
    start_agent(stack, {"BRANCHLINE_FAILPOINTS": failpoint} if failpoint else None)
    run = Run(stack, kind, carrier)
    try:
        start_transaction(run)
        done = drive(run)
    finally:
        stack.procs["agent"].stop()
    if failpoint:
        assert run.restarts == 1, f"the failpoint {failpoint} never fired"
    # Exactly one posting, the balance moved by exactly the amount, nothing left to send,
    # and the electronic journal verifies.
    assert done.outcome == "completed", done
    record = lookup(stack, done.receipt_reference)
    assert len(record["entries"]) == 1, record
    assert balances(stack)["C1-CNY"] - before["C1-CNY"] == AMOUNT[kind]
    if kind == "tube_withdrawal":
        assert [h["status"] for h in record["holds"]] == ["captured"]
    server = desk(stack).GetTransaction(pb.TubeRef(txn_id=done.txn_id), timeout=10)
    assert (
        server.state == S.TUBE_STATE_POSTED and server.entry_id == record["entries"][0]["entry_id"]
    )
    # Read from the stopped agent's own files, as a technician's diag would show them.
    store = Store(stack.state_dir, stack.terminal_id)
    try:
        assert store.outbox.stats().pending == 0
        # What the outbox keeps is evidence, not a credential: no session token after the ack.
        opens = [
            pb.TubeOpen.FromString(message.payload)
            for message in map(store.outbox.get, range(1, store.outbox.stats().last_seq + 1))
            if message.kind == "tube_open"
        ]
        assert opens and not any(o.session_token for o in opens)
        report = store.ejournal.verify()
        assert report.ok, report
        printed = [
            e.fields() for e in store.ejournal.find("receipt_printed", done.receipt_reference)
        ]
    finally:
        store.close()
    # One receipt; two only when the agent died between printing and the last step, and then
    # the reprint says it is a duplicate.
    steps = DEPOSIT_STEPS if kind == "tube_deposit" else WITHDRAWAL_STEPS
    reprinted = failpoint == f"{kind}.acted={steps.index('posted') + 1}"
    assert [bool(p.get("duplicate")) for p in printed] == ([False, True] if reprinted else [False])
    return done


CARRIER_BASE = {"tube_deposit": 5000, "tube_withdrawal": 6000}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", ["tube_deposit", "tube_withdrawal"])
def test_clean_run_journals_the_enumerated_steps(branch: Stack, kind: str) -> None:
    """The step lists the crash cases enumerate are exactly what a clean run journals."""
    done = crash_run(branch, kind, "", CARRIER_BASE[kind])
    expected = DEPOSIT_STEPS if kind == "tube_deposit" else WITHDRAWAL_STEPS
    assert journal_steps(branch, done.txn_id) == expected


CASES = [
    (kind, number, name)
    for kind, steps in (("tube_deposit", DEPOSIT_STEPS), ("tube_withdrawal", WITHDRAWAL_STEPS))
    for number, name in enumerate(steps, start=1)
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("kind", "number", "name"), CASES, ids=[f"{k}-{n}-{s}" for k, n, s in CASES]
)
def test_sigkill_after_each_journaled_step(
    branch: Stack, kind: str, number: int, name: str
) -> None:
    done = crash_run(branch, kind, f"{kind}.after={number}", CARRIER_BASE[kind] + number)
    steps = journal_steps(branch, done.txn_id)
    # The crash happened where it was meant to: that step is journaled once, as named.
    assert steps[number - 1] == name
    assert steps[-1] == "completed"


ACTED_CASES = [case for case in CASES if case[2] != "completed"]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("kind", "number", "name"), ACTED_CASES, ids=[f"{k}-{n}-{s}" for k, n, s in ACTED_CASES]
)
def test_sigkill_after_each_steps_action(branch: Stack, kind: str, number: int, name: str) -> None:
    """Killed once stage N's action is done (the carrier sent, the answer heard, the door
    opened...) but before the next step is journaled: recovery runs the action again."""
    done = crash_run(branch, kind, f"{kind}.acted={number}", CARRIER_BASE[kind] + 20 + number)
    assert journal_steps(branch, done.txn_id)[number - 1] == name


ANSWER_CASES = [
    (kind, index, name)
    for kind, names in (
        ("tube_deposit", DEPOSIT_MESSAGES),
        ("tube_withdrawal", WITHDRAWAL_MESSAGES),
    )
    for index, name in enumerate(names)
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("kind", "index", "name"), ANSWER_CASES, ids=[f"{k}-{n}" for k, _, n in ANSWER_CASES]
)
def test_sigkill_after_the_server_applied_a_message(
    branch: Stack, kind: str, index: int, name: str
) -> None:
    seq = last_outbox_seq(branch) + 1 + index
    crash_run(branch, kind, f"outbox.answered={seq}", CARRIER_BASE[kind] + 50 + index)
