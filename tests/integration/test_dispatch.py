"""Issue 5 acceptance, cross-branch tasks: the server and ``branchline-teller ... watch`` as
real processes, the teller's other commands through ``branchline-teller``'s own ``main`` in
the test's process (cli_support), a mobile counter as a gRPC client with its own terminal
certificate.

The idle-teller and lobby-manager paths, accept / wait / reject / reassign / designate,
materials, success and failure results, offer expiry, a server restart in the middle of a
task, concurrent clients, two replicas on one PostgreSQL, and refusals that name the rule
(PERMISSION_DENIED) or the field (INVALID_ARGUMENT).
"""
# long-module: the scenarios of one service, sharing its fixtures; split by topic would repeat them

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import grpc
import pytest

from branchline.common.grpc_errors import error_details
from branchline.server import pki
from branchline.server.main import main as server_main
from branchline.server.storage.testing import TEST_PG_DSN_VARIABLE, temporary_postgres_schema
from branchline.v1 import common_pb2
from branchline.v1 import dispatch_pb2 as pb
from branchline.v1 import dispatch_pb2_grpc as pb_grpc
from tests.integration.cli_support import run_main
from tests.integration.dispatch_support import (
    channel,
    cli,
    origin,
    register_terminal,
    staff,
)
from tests.integration.launch import free_port
from tests.integration.stack import PY, Proc, Stack, wait_for

PHOTO = bytes(range(256)) * 40
ID_DATA = json.dumps({"name": "Li Lei", "id_number": "11010519491231002X"}).encode()


# -- clients -------------------------------------------------------------------------------


def cli_ok(stack: Stack, who: str, *args: str) -> dict[str, Any]:
    result = cli(stack, who, *args, "--json")
    assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
    return cast(dict[str, Any], json.loads(result.stdout))


def code_of(exc: pytest.ExceptionInfo[grpc.RpcError]) -> tuple[grpc.StatusCode, str]:
    call = cast(grpc.Call, exc.value)
    return call.code(), call.details() or ""


class Watcher:
    """``branchline-teller ... watch --json`` in the background, its events collected."""

    def __init__(self, stack: Stack, who: str, *extra: str, port: int | None = None) -> None:
        self.stderr_path = stack.root / f"watch-{who.replace(':', '-')}.err"
        self.proc = subprocess.Popen(
            [
                PY,
                "-m",
                "branchline.server.teller",
                "--target",
                f"127.0.0.1:{port or stack.server_port}",
                "--tls-dir",
                str(stack.pki),
                "--as",
                who,
                *extra,
                "watch",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=open(self.stderr_path, "wb"),  # noqa: SIM115 - the child writes to it
            text=True,
        )
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait("the watch to go live", lambda e: e.get("kind") == "live")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                self.events.append(json.loads(line))

    def wait(
        self, what: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10
    ) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            wait_for(
                lambda: next((e for e in list(self.events) if predicate(e)), None),
                timeout,
                f"{what}; stderr: {self.stderr_path.read_text(errors='replace')[-500:]}",
                interval=0.05,
            ),
        )

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def event(kind: str, task_id: str, **fields: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: (
        e.get("kind") == kind
        and e.get("task_id") == task_id
        and all(e.get(k) == v for k, v in fields.items())
    )


class Feed:
    """The mobile counter's events: WatchTasks from a cursor, reopened for every wait, so
    each wait also shows that resuming after the last event id seen misses nothing."""

    def __init__(self, stub: pb_grpc.TasksStub) -> None:
        self.stub = stub
        self.last = 0
        self.events: list[pb.DispatchEvent] = []
        self._read(lambda e: e.kind == "live", 10)

    def until(
        self, kind: str, task_id: str, timeout: float = 10, **fields: str
    ) -> pb.DispatchEvent:
        def match(e: pb.DispatchEvent) -> bool:
            return (
                e.kind == kind
                and e.task_id == task_id
                and all(getattr(e, k) == v for k, v in fields.items())
            )

        return next((e for e in self.events if match(e)), None) or self._read(match, timeout)

    def kinds(self, task_id: str) -> list[str]:
        return [e.kind for e in self.events if e.task_id == task_id]

    def _read(self, match: Callable[[pb.DispatchEvent], bool], timeout: float) -> pb.DispatchEvent:
        call = self.stub.WatchTasks(
            pb.WatchTasksRequest(after_event_id=self.last), timeout=timeout, wait_for_ready=True
        )
        try:
            for ev in call:
                if ev.kind not in ("snapshot", "live"):
                    self.events.append(ev)
                self.last = max(self.last, ev.event_id)
                if match(ev):
                    return ev
        except grpc.RpcError as exc:
            seen = [(e.kind, e.task_id) for e in self.events]
            raise AssertionError(f"counter's watch ended ({exc}); seen {seen}") from None
        finally:
            call.cancel()
        raise AssertionError("counter's watch ended")


# -- setup ---------------------------------------------------------------------------------


def issue_certificates(stack: Stack) -> None:
    for terminal in ("MC-1", "MC-2"):
        pki.issue_terminal_cert(stack.pki, terminal)
    for teller in ("T1", "T2"):
        pki.issue_user_cert(stack.pki, "teller", teller)
    for manager in ("L1", "LA"):
        pki.issue_user_cert(stack.pki, "lobby", manager)
    # One through the command, as an administrator would.
    result = run_main(
        server_main,
        ["pki", "issue-user", str(stack.pki), "--role", "teller", "--id", "T3", "--json"],
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cert"].endswith("tellers/T3.pem")


def populate(stack: Stack, port: int | None = None) -> None:
    admin = pb_grpc.DispatchAdminStub(channel(stack, "operator:ops", port))
    admin.AddBranch(pb.AddBranchRequest(branch_id="A", name="North"), timeout=10)
    admin.AddBranch(pb.AddBranchRequest(branch_id="B", name="South"), timeout=10)
    for teller in ("T1", "T2", "T3"):
        admin.AddTeller(
            pb.AddTellerRequest(
                teller_id=teller,
                name=f"Teller {teller}",
                branch="B",
                skills=["loan", "account_opening"],
            ),
            timeout=10,
        )
    admin.AddLobbyManager(
        pb.AddLobbyManagerRequest(manager_id="L1", name="Lobby B", branch="B"), timeout=10
    )
    admin.AddLobbyManager(
        pb.AddLobbyManagerRequest(manager_id="LA", name="Lobby A", branch="A"), timeout=10
    )
    for terminal in ("MC-1", "MC-2"):
        register_terminal(stack, terminal, "A", common_pb2.TERMINAL_KIND_MOBILE_COUNTER, port)
    register_terminal(stack, "T-0001", "A", common_pb2.TERMINAL_KIND_SELF_SERVICE, port)


@pytest.fixture
def dstack(stack: Stack) -> Iterator[Stack]:
    issue_certificates(stack)
    yield stack


def start(stack: Stack, *extra: str) -> None:
    # No drain period: nothing balances load in front of these servers.
    stack.start_server(extra=["--shutdown-drain", "0", *extra])
    populate(stack)


def send(stub: pb_grpc.TasksStub, request_id: str, title: str = "Loan application") -> pb.Task:
    return stub.SendTask(
        pb.SendTaskRequest(
            request_id=request_id,
            target_branch="B",
            business_type="loan",
            title=title,
            fields={"amount": "5000", "term_months": "24"},
            customer_ref="C-778",
        ),
        timeout=10,
    )


# -- the cross-branch flow -------------------------------------------------------------------


# long: one end-to-end scenario, step by step, over one stack of processes
def test_cross_branch_flow_end_to_end(dstack: Stack, tmp_path: Path) -> None:
    stack = dstack
    start(stack)
    assert cli_ok(stack, "teller:T1", "whoami")["presence"] == "PRESENCE_OFF_DUTY"
    cli_ok(stack, "teller:T1", "duty", "on")
    # The lobby manager keeps the roster: T2 goes on duty through L1.
    cli_ok(stack, "lobby:L1", "duty", "on", "--teller", "T2")
    cli_ok(stack, "lobby:L1", "duty", "on")
    roster = cli_ok(stack, "lobby:L1", "roster")
    assert [(t["id"], t["presence"]) for t in roster["tellers"]] == [
        ("T1", "PRESENCE_IDLE"),
        ("T2", "PRESENCE_IDLE"),
        ("T3", "PRESENCE_OFF_DUTY"),
    ]
    t1 = Watcher(stack, "teller:T1")
    lobby = Watcher(stack, "lobby:L1")
    counter = origin(stack)
    feed = Feed(counter)
    try:
        # Idle-teller path: T1 has been idle longest.
        task1 = send(counter, "r1")
        assert (task1.state, task1.teller_id) == (pb.TASK_STATE_OFFERED, "T1")
        t1.wait("T1 sees the offer", event("offered", task1.task_id, teller_id="T1"))
        # Materials: a document photo and the ID data read at the counter.
        photo = counter.UploadMaterial(
            pb.UploadMaterialRequest(
                task_id=task1.task_id,
                name="id_front.jpg",
                content_type="image/jpeg",
                data=PHOTO,
                sha256=hashlib.sha256(PHOTO).hexdigest(),
            ),
            timeout=10,
        )
        assert photo.sha256 == hashlib.sha256(PHOTO).hexdigest()
        counter.UploadMaterial(
            pb.UploadMaterialRequest(
                task_id=task1.task_id,
                name="id_data.json",
                content_type="application/json",
                data=ID_DATA,
            ),
            timeout=10,
        )
        t1.wait("T1 told of the material", event("material_added", task1.task_id))
        # Wait, with an estimate the origin is told; then accept.
        waiting = cli_ok(
            stack,
            "teller:T1",
            "wait",
            task1.task_id,
            "--minutes",
            "5",
            "--reason",
            "with a customer",
        )
        assert (waiting["state"], waiting["wait_estimate_seconds"]) == ("TASK_STATE_WAITING", 300)
        told = feed.until("waiting", task1.task_id)
        assert "300 s" in told.detail and told.task.wait_estimate_seconds == 300
        assert cli_ok(stack, "teller:T1", "accept", task1.task_id)["state"] == "TASK_STATE_ACCEPTED"
        feed.until("accepted", task1.task_id)

        # Reject moves on; with T1 busy nobody is idle: the lobby manager gets it.
        task2 = send(counter, "r2", "Account opening for a minor")
        assert task2.teller_id == "T2"
        rejected = cli_ok(stack, "teller:T2", "reject", task2.task_id, "--reason", "not my area")
        assert (rejected["state"], rejected["lobby_manager_id"]) == ("TASK_STATE_AT_LOBBY", "L1")
        lobby.wait("L1 asked to designate", event("at_lobby", task2.task_id))
        # L1 designates the busy T1; T1 passes it on to T3, whom L1 puts on duty.
        designated = cli_ok(stack, "lobby:L1", "designate", task2.task_id, "T1")
        assert (designated["state"], designated["teller_id"]) == ("TASK_STATE_OFFERED", "T1")
        t1.wait("T1 sees the designation", event("offered", task2.task_id, teller_id="T1"))
        cli_ok(stack, "lobby:L1", "duty", "on", "--teller", "T3")
        moved = cli_ok(
            stack, "teller:T1", "reassign", task2.task_id, "T3", "--reason", "T3 does minors"
        )
        assert moved["teller_id"] == "T3"
        t1.wait("T1 sees it leave", event("reassigned", task2.task_id, teller_id="T1"))
        late = cli(stack, "teller:T1", "accept", task2.task_id)
        assert late.returncode == 1
        assert (
            "PERMISSION_DENIED" in late.stderr
            and "a teller acts only on their own offers" in late.stderr
        )
        cli_ok(stack, "teller:T3", "accept", task2.task_id)
        failed = cli_ok(
            stack,
            "teller:T3",
            "result",
            task2.task_id,
            "failure",
            "--reason",
            "guardian must be present",
        )
        assert failed["result"] == {
            "outcome": "RESULT_OUTCOME_FAILURE",
            "reason": "guardian must be present",
        }
        result = feed.until("completed", task2.task_id)
        assert (result.task.result.outcome, result.task.result.reason) == (
            pb.RESULT_OUTCOME_FAILURE,
            "guardian must be present",
        )

        # T1 reviews the materials (hash checked on download) and returns success.
        saved = cli_ok(
            stack, "teller:T1", "materials", task1.task_id, "--save", str(tmp_path / "m")
        )
        assert [m["name"] for m in saved["materials"]] == ["id_front.jpg", "id_data.json"]
        assert (tmp_path / "m" / "id_front.jpg").read_bytes() == PHOTO
        assert json.loads((tmp_path / "m" / "id_data.json").read_bytes())["name"] == "Li Lei"
        cli_ok(stack, "teller:T1", "result", task1.task_id, "success", "--reason", "loan approved")
        done = feed.until("completed", task1.task_id)
        assert done.task.result.outcome == pb.RESULT_OUTCOME_SUCCESS
        # Every state change is an event with a timestamp, in order.
        kinds = feed.kinds(task1.task_id)
        assert kinds == [
            "created",
            "offered",
            "material_added",
            "material_added",
            "waiting",
            "accepted",
            "completed",
        ]
        assert all(e.at.seconds > 0 for e in feed.events)
        assert feed.kinds(task2.task_id) == [
            "created",
            "offered",
            "rejected",
            "at_lobby",
            "designated",
            "offered",
            "reassigned",
            "offered",
            "accepted",
            "completed",
        ]
        history = cli_ok(stack, "teller:T1", "show", task1.task_id)["history"]
        assert [h["kind"] for h in history] == kinds
    finally:
        t1.stop()
        lobby.stop()


def test_a_server_restart_in_the_middle_of_a_task_loses_nothing(dstack: Stack) -> None:
    stack = dstack
    port = free_port()
    start(stack, "--listen", f"127.0.0.1:{port}")
    cli_ok(stack, "teller:T1", "duty", "on")
    t1 = Watcher(stack, "teller:T1")
    counter = origin(stack)
    feed = Feed(counter)
    try:
        task = send(counter, "r1")
        t1.wait("offer", event("offered", task.task_id))
        cli_ok(stack, "teller:T1", "accept", task.task_id)
        feed.until("accepted", task.task_id)

        stack.procs["server"].stop()
        stack.start_server(extra=["--shutdown-drain", "0", "--listen", f"127.0.0.1:{port}"])

        # The watcher resumes by itself; the counter's channel reconnects on its own.
        wait_for(
            lambda: "stream lost" in t1.stderr_path.read_text(), 10, "watcher noticed the restart"
        )
        counter.UploadMaterial(
            pb.UploadMaterialRequest(
                task_id=task.task_id, name="scan.png", content_type="image/png", data=b"\x89PNG..."
            ),
            timeout=10,
            wait_for_ready=True,
        )
        t1.wait("material after the restart", event("material_added", task.task_id))
        current = staff(stack, "teller:T1").GetTask(
            pb.GetTaskRequest(task_id=task.task_id), timeout=10
        )
        assert (current.state, current.teller_id) == (pb.TASK_STATE_ACCEPTED, "T1")
        cli_ok(stack, "teller:T1", "result", task.task_id, "success")
        # The counter resumes after the last event it saw and misses nothing.
        feed.until("completed", task.task_id)
        assert feed.kinds(task.task_id) == [
            "created",
            "offered",
            "accepted",
            "material_added",
            "completed",
        ]
        # The teller's watcher resumed too: every event once, none lost.
        t1.wait("result after the restart", event("completed", task.task_id))
        ids = [e["event_id"] for e in t1.events if e["kind"] not in ("snapshot", "live")]
        assert ids == sorted(set(ids))
    finally:
        t1.stop()


def test_an_unanswered_offer_expires_and_moves_on(dstack: Stack) -> None:
    stack = dstack
    start(stack, "--offer-timeout", "1")
    cli_ok(stack, "teller:T1", "duty", "on")
    cli_ok(stack, "teller:T2", "duty", "on")
    counter = origin(stack)
    feed = Feed(counter)
    task = send(counter, "r1")
    assert task.teller_id == "T1"
    feed.until("offered", task.task_id, teller_id="T2")
    expired = feed.until("expired", task.task_id)
    assert expired.teller_id == "T1" and "did not answer within 1 s" in expired.detail
    assert cli_ok(stack, "teller:T1", "whoami")["presence"] == "PRESENCE_AWAY"
    cli_ok(stack, "teller:T1", "back")
    assert cli_ok(stack, "teller:T1", "whoami")["presence"] == "PRESENCE_IDLE"


# -- concurrency -----------------------------------------------------------------------------


def race(actions: list[Callable[[], Any]]) -> list[Any]:
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = actions[i]()
        except grpc.RpcError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_concurrent_clients_one_offer_one_answer(dstack: Stack) -> None:
    stack = dstack
    start(stack)
    cli_ok(stack, "teller:T1", "duty", "on")
    for teller in ("T2", "T3"):
        cli_ok(stack, "lobby:L1", "duty", "on", "--teller", teller)
    counter = origin(stack)
    # Six clients of T1 (each its own channel) accept T1's offer at once: one wins.
    clients = [staff(stack, "teller:T1") for _ in range(6)]
    task = send(counter, "r1")
    assert task.teller_id == "T1"
    answer = pb.AnswerOfferRequest(task_id=task.task_id, answer=pb.OFFER_ANSWER_ACCEPT)
    results = race([lambda c=c: c.AnswerOffer(answer, timeout=10) for c in clients])  # type: ignore[misc]
    assert sum(isinstance(r, pb.Task) for r in results) == 1
    losers = [r for r in results if isinstance(r, grpc.RpcError)]
    assert all(r.code() == grpc.StatusCode.FAILED_PRECONDITION for r in losers)  # type: ignore[attr-defined]
    # A reassignment racing the holder's accept: afterwards the old holder is locked out.
    lobby = staff(stack, "lobby:L1")
    cli_ok(stack, "lobby:L1", "duty", "on")
    task = send(counter, "r2")
    holder = task.teller_id
    other = next(t for t in ("T1", "T2", "T3") if t != holder)
    mine = staff(stack, f"teller:{holder}")
    race(
        [
            lambda: mine.AnswerOffer(
                pb.AnswerOfferRequest(task_id=task.task_id, answer=pb.OFFER_ANSWER_ACCEPT),
                timeout=10,
            ),
            lambda: lobby.Reassign(
                pb.ReassignRequest(task_id=task.task_id, to_teller_id=other), timeout=10
            ),
        ]
    )
    with pytest.raises(grpc.RpcError) as refused:
        mine.AnswerOffer(
            pb.AnswerOfferRequest(task_id=task.task_id, answer=pb.OFFER_ANSWER_ACCEPT), timeout=10
        )
    code, details = code_of(refused)
    assert code == grpc.StatusCode.PERMISSION_DENIED and "no longer teller" in details
    staff(stack, f"teller:{other}").AnswerOffer(
        pb.AnswerOfferRequest(task_id=task.task_id, answer=pb.OFFER_ANSWER_ACCEPT), timeout=10
    )


@pytest.fixture
def pg_url() -> Iterator[str]:
    dsn = os.environ.get(TEST_PG_DSN_VARIABLE)
    if not dsn:
        pytest.skip(f"{TEST_PG_DSN_VARIABLE} is not set")
    with temporary_postgres_schema(dsn) as url:
        yield url


def test_two_replicas_on_one_postgresql(dstack: Stack, pg_url: str) -> None:
    stack = dstack
    stack.start_server(extra=["--db", pg_url, "--replica", "r1", "--shutdown-drain", "0"])
    port_a = stack.server_port
    replica_b: Proc = stack._spawn(
        "server-b",
        [
            "branchline.server.main",
            "--listen",
            "127.0.0.1:0",
            "--db",
            pg_url,
            "--tls-dir",
            str(stack.pki),
            "--replica",
            "r2",
            "--shutdown-drain",
            "0",
        ],
    )
    try:
        port_b = wait_for(
            lambda: next(
                (
                    int(line.rsplit(":", 1)[1])
                    for line in replica_b.log().splitlines()
                    if line.startswith("branchline-server listening on")
                ),
                0,
            ),
            30,
            "replica b listening",
        )
        populate(stack, port_a)
        # The teller works through replica A, the counter through replica B.
        cli_ok(stack, "teller:T1", "duty", "on")
        cli_ok(stack, "teller:T2", "duty", "on")
        t1 = Watcher(stack, "teller:T1", port=port_a)
        try:
            counter = origin(stack, port=port_b)
            feed = Feed(counter)
            task = send(counter, "r1")
            t1.wait("offer across replicas", event("offered", task.task_id, teller_id="T1"))
            # The same teller answering through both replicas at once: one answer wins.
            both = [staff(stack, "teller:T1", port) for port in (port_a, port_b, port_a, port_b)]
            request = pb.AnswerOfferRequest(task_id=task.task_id, answer=pb.OFFER_ANSWER_ACCEPT)
            results = race([lambda s=s: s.AnswerOffer(request, timeout=10) for s in both])  # type: ignore[misc]
            assert sum(isinstance(r, pb.Task) for r in results) == 1
            feed.until("accepted", task.task_id)
            # Tasks sent through both replicas at once never give one teller two offers.
            cli_ok(stack, "teller:T1", "result", task.task_id, "success")
            counters = [origin(stack, port=p) for p in (port_a, port_b, port_a, port_b)]
            sent = race([lambda c=c, i=i: send(c, f"burst-{i}") for i, c in enumerate(counters)])  # type: ignore[misc]
            offered = sorted(t.teller_id for t in sent if t.state == pb.TASK_STATE_OFFERED)
            assert offered == ["T1", "T2"]
        finally:
            t1.stop()
    finally:
        replica_b.stop()
        stack.procs["server"].stop()


# -- roles and malformed requests ------------------------------------------------------------


def refused(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as exc:
        call()
    return code_of(exc)


# long: one end-to-end scenario, step by step, over one stack of processes
def test_role_violations_and_malformed_requests_are_refused_naming_the_rule(dstack: Stack) -> None:
    stack = dstack
    start(stack, "--max-material-bytes", "100000")
    cli_ok(stack, "teller:T1", "duty", "on")
    counter = origin(stack)
    task = send(counter, "r1")
    denied = grpc.StatusCode.PERMISSION_DENIED
    invalid = grpc.StatusCode.INVALID_ARGUMENT

    # Terminals only as themselves, and only mobile counters send tasks.
    assert refused(lambda: send(origin(stack, "T-0001"), "x")) == (
        denied,
        "Tasks.SendTask is for mobile-counter terminals: terminal T-0001 is registered as self_service",
    )
    code, details = refused(
        lambda: origin(stack, "MC-2").GetTask(pb.GetTaskRequest(task_id=task.task_id), timeout=10)
    )
    assert code == denied and details.startswith("a terminal acts only on the tasks it sent")
    # Roles per service.
    code, details = refused(
        lambda: pb_grpc.DispatchAdminStub(channel(stack, "teller:T1")).AddTeller(
            pb.AddTellerRequest(teller_id="T9", name="x", branch="B"), timeout=10
        )
    )
    assert (code, details) == (
        denied,
        "DispatchAdmin.AddTeller is for operators only; the caller is teller T1",
    )
    code, details = refused(
        lambda: staff(stack, "teller:T1").Designate(
            pb.DesignateRequest(task_id=task.task_id, teller_id="T2"), timeout=10
        )
    )
    assert (code, details) == (
        denied,
        "Dispatch.Designate is for lobby managers only; the caller is teller T1",
    )
    code, details = refused(
        lambda: staff(stack, "terminal:MC-1").WhoAmI(pb.WhoAmIRequest(), timeout=10)
    )
    assert code == denied and "is for tellers and lobby managers only" in details
    # Tellers only on their own offers, lobby managers only within their branch.
    code, details = refused(
        lambda: staff(stack, "teller:T2").AnswerOffer(
            pb.AnswerOfferRequest(task_id=task.task_id, answer=pb.OFFER_ANSWER_ACCEPT), timeout=10
        )
    )
    assert code == denied and details.startswith("a teller acts only on their own offers and tasks")
    code, details = refused(
        lambda: staff(stack, "lobby:LA").Designate(
            pb.DesignateRequest(task_id=task.task_id, teller_id="T2"), timeout=10
        )
    )
    assert code == denied and details.startswith("a lobby manager acts only within their branch")
    lobby_cli = cli(stack, "lobby:LA", "duty", "on", "--teller", "T1")
    assert (
        lobby_cli.returncode == 1
        and "keeps the roster of their own branch only" in lobby_cli.stderr
    )

    # Malformed requests name the field.
    def bad_send(**change: Any) -> tuple[grpc.StatusCode, str]:
        request = {
            "request_id": "r9",
            "target_branch": "B",
            "business_type": "loan",
            "title": "t",
            **change,
        }
        return refused(lambda: counter.SendTask(pb.SendTaskRequest(**request), timeout=10))

    for change, field in (
        ({"business_type": "Loan Type"}, "business_type"),
        ({"title": ""}, "title"),
        ({"request_id": ""}, "request_id"),
        ({"target_branch": "not a branch"}, "target_branch"),
    ):
        code, details = bad_send(**change)
        assert code == invalid and details.startswith(f"{field}: "), (change, details)
    # The field travels as data too: a google.rpc.BadRequest in the status details.
    for change, field in (
        ({"business_type": "Loan Type"}, "business_type"),
        ({"target_branch": "not a branch"}, "target_branch"),
    ):
        sent: dict[str, Any] = {
            "request_id": "r9",
            "target_branch": "B",
            "business_type": "loan",
            "title": "t",
            **change,
        }
        request = pb.SendTaskRequest(**sent)
        with pytest.raises(grpc.RpcError) as info:
            counter.SendTask(request, timeout=10)
        assert error_details(info.value).field == field
    # An over-long id is refused before anything reads it, its echo cut short.
    with pytest.raises(grpc.RpcError) as info:
        staff(stack, "teller:T1").GetTask(pb.GetTaskRequest(task_id="x" * 5000), timeout=10)
    long_id = error_details(info.value)
    assert long_id.status == "INVALID_ARGUMENT" and long_id.field == "task_id"
    assert long_id.message.startswith("task_id: is 5000 characters, at most 64 allowed")
    assert len(long_id.message) < 200
    code, details = refused(
        lambda: counter.UploadMaterial(
            pb.UploadMaterialRequest(
                task_id=task.task_id,
                name="big.bin",
                content_type="application/octet-stream",
                data=b"x" * 100001,
            ),
            timeout=10,
        )
    )
    assert code == invalid and details.startswith(
        "data: 100001 bytes is more than the 100000-byte limit"
    )
    code, details = refused(
        lambda: counter.UploadMaterial(
            pb.UploadMaterialRequest(
                task_id=task.task_id,
                name="a.txt",
                content_type="text/plain",
                data=b"abc",
                sha256="0" * 64,
            ),
            timeout=10,
        )
    )
    assert code == invalid and details.startswith("sha256: does not match the data")
    t1 = staff(stack, "teller:T1")
    code, details = refused(
        lambda: t1.AnswerOffer(pb.AnswerOfferRequest(task_id=task.task_id), timeout=10)
    )
    assert code == invalid and details.startswith("answer: ")
    code, details = refused(
        lambda: t1.AnswerOffer(
            pb.AnswerOfferRequest(task_id=task.task_id, answer=pb.OFFER_ANSWER_WAIT), timeout=10
        )
    )
    assert code == invalid and details.startswith("estimate_seconds: ")
    code, details = refused(lambda: t1.GetTask(pb.GetTaskRequest(task_id=""), timeout=10))
    assert code == invalid and details.startswith("task_id: must not be empty")
    bad_cli = cli(stack, "teller:T1", "result", task.task_id, "failure", "--json")
    assert bad_cli.returncode == 1
    error = json.loads(bad_cli.stdout)["error"]
    assert {key: error[key] for key in ("code", "status", "message")} == {
        "code": "INVALID_ARGUMENT",
        "status": "INVALID_ARGUMENT",
        "message": "reason: required when the result is a failure",
    }
    # The field, when the server's details name it, is data (and on stderr).
    assert error.get("field", "reason") == "reason", error
    assert "INVALID_ARGUMENT" in bad_cli.stderr and "reason: required" in bad_cli.stderr
    code, details = refused(lambda: t1.GetTask(pb.GetTaskRequest(task_id="tk-nope"), timeout=10))
    assert code == grpc.StatusCode.NOT_FOUND and details.startswith("task_id: no task")
    # Health and reflection list the dispatch services.
    health = run_main(
        server_main,
        ["health", "--target", f"127.0.0.1:{stack.server_port}", "--tls-dir", str(stack.pki),
         "--json"],
    )  # fmt: skip
    services = json.loads(health.stdout)["services"]
    for name in ("branchline.v1.Dispatch", "branchline.v1.Tasks", "branchline.v1.DispatchAdmin"):
        assert services[name] == "SERVING"
