"""Concurrency: one task is never offered to two tellers, one offer is answered once, a
reassigned task cannot be answered by the teller it left. Threads share one engine; the
replica tests run separate processes (each with its own engine) on one database.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Engine

from branchline.common.errors import DomainError, FailedPrecondition, PermissionDenied
from branchline.server.dispatch.tasks import DispatchService
from tests.unit.dispatch_invariants import check_invariants
from tests.unit.dispatch_support import L1, MC, T1, T2, populate, teller


@pytest.fixture
def svc(engine: Engine) -> DispatchService:
    service = DispatchService(engine, offer_timeout=300)
    populate(service)
    return service


def race(actions: list[Callable[[], Any]]) -> list[Any]:
    """Run every action at the same instant, each on its own thread; results or errors."""
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = actions[i]()
        except DomainError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def wins(results: list[Any]) -> int:
    return sum(not isinstance(r, Exception) for r in results)


def test_many_clients_accepting_one_offer_exactly_one_wins(svc: DispatchService) -> None:
    svc.set_duty(T1, True)
    task_id = svc.send_task(MC, "A", "r1", "B", "loan", "Loan").task_id
    results = race([lambda: svc.answer_offer(T1, task_id, "accept") for _ in range(8)])
    assert wins(results) == 1
    assert all(isinstance(r, FailedPrecondition) for r in results if isinstance(r, Exception))
    assert check_invariants(svc.engine) == []


def test_accept_and_reject_racing_exactly_one_wins(svc: DispatchService) -> None:
    svc.set_duty(T1, True)
    svc.set_duty(T2, True)
    for round_ in range(5):
        task_id = svc.send_task(MC, "A", f"r{round_}", "B", "loan", "Loan").task_id
        holder = svc.get_task(MC, task_id).teller_id
        assert holder is not None
        answers = ["accept", "reject"] * 4
        results = race([partial(svc.answer_offer, teller(holder), task_id, a) for a in answers])
        assert wins(results) == 1, results
        task = svc.get_task(Actor_ops(), task_id)
        winner = answers[[not isinstance(r, Exception) for r in results].index(True)]
        if winner == "accept":
            assert (task.state, task.teller_id) == ("accepted", holder)
            svc.complete(teller(holder), task_id, True)
        else:
            assert task.teller_id != holder
        assert check_invariants(svc.engine) == []


def Actor_ops() -> Any:
    from branchline.server.dispatch.model import Actor

    return Actor("operator", "ops")


def test_other_tellers_cannot_answer_an_offer_that_is_not_theirs(svc: DispatchService) -> None:
    svc.set_duty(T1, True)
    task_id = svc.send_task(MC, "A", "r1", "B", "loan", "Loan").task_id
    actors = [teller(t) for t in ("T1", "T2", "T3", "T9")] * 2
    results = race([lambda a=a: svc.answer_offer(a, task_id, "accept") for a in actors])  # type: ignore[misc]
    assert wins(results) == 1
    refused = [r for r, a in zip(results, actors, strict=True) if a.id != "T1"]
    assert all(isinstance(r, PermissionDenied) for r in refused)


def test_reassignment_race_the_previous_teller_is_locked_out(svc: DispatchService) -> None:
    svc.set_duty(L1, True)
    svc.set_duty(T2, True)
    svc.set_duty(T1, True)
    for round_ in range(6):
        task_id = svc.send_task(MC, "A", f"r{round_}", "B", "loan", "Loan").task_id
        holder = svc.get_task(Actor_ops(), task_id).teller_id
        assert holder is not None
        other = "T2" if holder == "T1" else "T1"
        race(
            [
                partial(svc.answer_offer, teller(holder), task_id, "accept"),
                partial(svc.reassign, L1, task_id, other, "lobby moves it"),
            ]
        )
        task = svc.get_task(Actor_ops(), task_id)
        # Whatever the order, the reassignment happened and the task is the other teller's.
        assert (task.state, task.teller_id) == ("offered", other)
        with pytest.raises(PermissionDenied, match="no longer teller"):
            svc.answer_offer(teller(holder), task_id, "accept")
        svc.answer_offer(teller(other), task_id, "accept")
        svc.complete(teller(other), task_id, True)
        assert check_invariants(svc.engine) == []


def test_concurrent_tasks_never_give_a_teller_two_routed_offers(svc: DispatchService) -> None:
    for i in range(6):
        svc.add_teller(f"R{i}", f"R{i}", "B", ["fx"])
        svc.set_duty(teller(f"R{i}"), True)
    svc.set_duty(L1, True)

    def send_three(worker: int) -> list[str]:
        return [
            svc.send_task(MC, "A", f"w{worker}-{i}", "B", "fx", "FX order").task_id
            for i in range(3)
        ]

    results = race([lambda w=w: send_three(w) for w in range(8)])  # type: ignore[misc]
    task_ids = [t for r in results for t in r]
    assert len(task_ids) == 24
    tasks = [svc.get_task(Actor_ops(), t) for t in task_ids]
    offered = [str(t.teller_id) for t in tasks if t.state == "offered"]
    assert sorted(offered) == [f"R{i}" for i in range(6)]
    assert sum(t.state == "at_lobby" for t in tasks) == 18
    assert check_invariants(svc.engine) == []


# -- replicas: separate processes on one database ------------------------------------------

_REPLICA = """
import json, sys, time
from branchline.common.errors import DomainError
from branchline.server.dispatch.model import Actor
from branchline.server.dispatch.tasks import DispatchService
from branchline.server.storage import open_database
url, start_at, action, arg = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
svc = DispatchService(open_database(url), offer_timeout=300)
time.sleep(max(0.0, start_at - time.time()))
out = []
try:
    if action == "accept":
        out.append(svc.answer_offer(Actor("teller", "T1"), arg, "accept").state)
    elif action == "send":
        for i in range(4):
            task = svc.send_task(Actor("terminal", "MC-1"), "A", f"{arg}-{i}", "B", "fx", "FX")
            out.append(task.task_id)
except DomainError as exc:
    out.append("refused: " + exc.message)
print(json.dumps(out))
svc.engine.dispose()
"""


def replicas(url: str, action: str, args: list[str]) -> list[list[str]]:
    start_at = str(time.time() + 3.0)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _REPLICA, url, start_at, action, arg],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for arg in args
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err.decode()
        outputs.append(json.loads(out.decode().strip().splitlines()[-1]))
    return outputs


def test_replicas_accepting_one_offer_exactly_one_wins(db_url: str, svc: DispatchService) -> None:
    svc.set_duty(T1, True)
    task_id = svc.send_task(MC, "A", "r1", "B", "loan", "Loan").task_id
    outputs = replicas(db_url, "accept", [task_id] * 5)
    assert sorted(o[0] for o in outputs).count("accepted") == 1, outputs
    assert svc.get_task(Actor_ops(), task_id).state == "accepted"
    assert check_invariants(svc.engine) == []


def test_replicas_routing_at_once_never_double_offer(db_url: str, svc: DispatchService) -> None:
    for i in range(5):
        svc.add_teller(f"R{i}", f"R{i}", "B", ["fx"])
        svc.set_duty(teller(f"R{i}"), True)
    outputs = replicas(db_url, "send", [f"p{i}" for i in range(5)])
    task_ids = [t for o in outputs for t in o]
    assert len(task_ids) == 20, outputs
    tasks = [svc.get_task(Actor_ops(), t) for t in task_ids]
    offered = sorted(str(t.teller_id) for t in tasks if t.state == "offered")
    assert offered == [f"R{i}" for i in range(5)]
    assert check_invariants(svc.engine) == []
