"""Dispatch service: cross-branch tasks end to end on SQLite and (when configured) PostgreSQL.

No gRPC here: the rules live in the service, so these tests show them directly.
"""
# long-module: the scenarios of one service, sharing its fixtures; split by topic would repeat them

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from branchline.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from branchline.server.dispatch.model import LOBBY, Actor
from branchline.server.dispatch.schema import material_blobs
from branchline.server.dispatch.tasks import DispatchService, EventScope
from branchline.server.storage import open_database
from tests.unit.dispatch_invariants import check_invariants
from tests.unit.dispatch_support import L1, MC, T1, T2, T3, Clock, populate, teller

OPS = Actor("operator", "ops")
OTHER_MC = Actor("terminal", "MC-2")


@pytest.fixture
def engine(engine: Engine) -> Iterator[Engine]:
    # The shared store (conftest), checked after each test.
    yield engine
    assert check_invariants(engine) == []


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(engine: Engine, clock: Clock) -> DispatchService:
    service = DispatchService(engine, offer_timeout=30, clock=clock)
    populate(service, clock)
    return service


def on_duty(service: DispatchService, clock: Clock, *actors: Actor) -> None:
    for actor in actors:
        service.set_duty(actor, True)
        clock.advance(1)


def send(service: DispatchService, request_id: str = "r1", **kw: str) -> str:
    task = service.send_task(
        MC,
        "A",
        request_id,
        kw.pop("target_branch", "B"),
        kw.pop("business_type", "loan"),
        kw.pop("title", "Loan application"),
        {"amount": "5000"},
        **kw,
    )
    return task.task_id


def origin_kinds(service: DispatchService, task_id: str) -> list[tuple[str, str | None, str]]:
    return [
        (e.kind, e.teller_id, e.state)
        for e in service.events_after(EventScope(origin_terminal=MC.id, task_id=task_id), 0)
    ]


# -- the idle-teller path ------------------------------------------------------------------


def test_task_goes_to_the_longest_idle_teller_and_back_with_a_result(
    svc: DispatchService, clock: Clock
) -> None:
    on_duty(svc, clock, T1, T2)
    task_id = send(svc)
    task = svc.get_task(MC, task_id)
    assert (task.state, task.teller_id) == ("offered", "T1")
    assert task.offer_expires_at == clock.now + timedelta(seconds=30)
    assert task.fields == {"amount": "5000"}

    accepted = svc.answer_offer(T1, task_id, "accept")
    assert accepted.state == "accepted"
    assert svc.staff(T1).presence == "busy"  # type: ignore[union-attr]
    # T2 is still idle: the next task goes there.
    second = send(svc, "r2")
    assert svc.get_task(MC, second).teller_id == "T2"

    done = svc.complete(T1, task_id, True, "account opened")
    assert (done.state, done.result_outcome, done.result_reason) == (
        "done",
        "success",
        "account opened",
    )
    assert origin_kinds(svc, task_id) == [
        ("created", None, "offered"),
        ("offered", "T1", "offered"),
        ("accepted", "T1", "accepted"),
        ("completed", "T1", "done"),
    ]
    t1 = svc.staff(T1)
    assert (t1.presence, t1.handled, t1.idle_since) == ("idle", 1, clock.now)  # type: ignore[union-attr]
    events = svc.get_task(MC, task_id).events
    assert all(e.at.tzinfo is not None for e in events)


def test_wait_tells_the_origin_the_estimate_then_accept(svc: DispatchService, clock: Clock) -> None:
    on_duty(svc, clock, T1)
    task_id = send(svc)
    waiting = svc.answer_offer(T1, task_id, "wait", estimate_seconds=600, reason="with a customer")
    assert (waiting.state, waiting.wait_estimate_seconds, waiting.offer_expires_at) == (
        "waiting",
        600,
        None,
    )
    last = svc.events_after(EventScope(origin_terminal=MC.id), 0)[-1]
    assert last.kind == "waiting" and "600 s" in last.detail and "with a customer" in last.detail
    # A waiting task does not expire.
    clock.advance(3600)
    assert svc.expire_offers() == []
    assert svc.answer_offer(T1, task_id, "accept").state == "accepted"
    with pytest.raises(FailedPrecondition, match="already accepted"):
        svc.answer_offer(T1, task_id, "accept")


def test_reject_moves_on_to_the_next_teller_then_the_lobby(
    svc: DispatchService, clock: Clock
) -> None:
    on_duty(svc, clock, T1, T2, L1)
    task_id = send(svc)
    assert svc.get_task(MC, task_id).teller_id == "T1"
    after_reject = svc.answer_offer(T1, task_id, "reject", reason="not my area")
    assert (after_reject.state, after_reject.teller_id) == ("offered", "T2")
    # T1 is free again but never gets the task it rejected.
    assert svc.staff(T1).presence == "idle"  # type: ignore[union-attr]
    at_lobby = svc.answer_offer(T2, task_id, "reject")
    assert (at_lobby.state, at_lobby.teller_id, at_lobby.lobby_manager_id) == (
        "at_lobby",
        None,
        "L1",
    )
    kinds = [k for k, _, _ in origin_kinds(svc, task_id)]
    assert kinds == ["created", "offered", "rejected", "offered", "rejected", "at_lobby"]
    rejected = [e for e in svc.get_task(MC, task_id).events if e.kind == "rejected"]
    assert rejected[0].state == "offered" and "not my area" in rejected[0].detail
    assert rejected[1].state == "at_lobby"
    # The lobby manager may still designate someone who rejected.
    designated = svc.designate(L1, task_id, "T1")
    assert (designated.state, designated.teller_id) == ("offered", "T1")
    assert svc.get_task(L1, task_id).offers[-1].via == "designated"


# -- the lobby-manager path ----------------------------------------------------------------


def test_no_idle_teller_the_lobby_manager_designates(svc: DispatchService, clock: Clock) -> None:
    on_duty(svc, clock, T1, L1)
    busy = send(svc, "r1")
    svc.answer_offer(T1, busy, "accept")
    task_id = send(svc, "r2")
    task = svc.get_task(L1, task_id)
    assert (task.state, task.lobby_manager_id) == ("at_lobby", "L1")
    lobby_events = svc.events_after(EventScope(branch="B"), 0)
    assert lobby_events[-1].kind == "at_lobby" and "no idle teller" in lobby_events[-1].detail
    # The lobby manager designates the busy T1; T1 asks the origin to wait.
    designated = svc.designate(L1, task_id, "T1", "she knows the customer")
    assert (designated.state, designated.teller_id) == ("offered", "T1")
    assert svc.staff(T1).load == 2  # type: ignore[union-attr]
    svc.answer_offer(T1, task_id, "wait", estimate_seconds=300)
    svc.complete(T1, busy, True)
    svc.answer_offer(T1, task_id, "accept")
    done = svc.complete(T1, task_id, False, "signature does not match")
    assert (done.result_outcome, done.result_reason) == ("failure", "signature does not match")
    last = svc.events_after(EventScope(origin_terminal=MC.id, task_id=task_id), 0)[-1]
    assert (last.kind, last.detail) == ("completed", "failure: signature does not match")


def test_without_lobby_manager_tasks_queue_and_a_free_teller_takes_the_oldest(
    svc: DispatchService, clock: Clock
) -> None:
    first = send(svc, "r1")
    clock.advance(1)
    second = send(svc, "r2", business_type="account_opening")
    assert svc.get_task(MC, first).state == "queued"
    # A lobby manager coming on duty gets the queue.
    on_duty(svc, clock, L1)
    assert svc.get_task(MC, second).lobby_manager_id == "L1"
    # A teller coming on duty takes the oldest task at once.
    on_duty(svc, clock, T2)
    assert svc.get_task(MC, first).teller_id == "T2"
    assert svc.get_task(MC, second).state == "at_lobby"
    svc.answer_offer(T2, first, "accept")
    svc.complete(T2, first, True)
    assert svc.get_task(MC, second).teller_id == "T2"
    # Lobby manager off duty: nothing left at the lobby to move; tasks queue again.
    svc.set_duty(L1, False)
    third = send(svc, "r3")
    assert svc.get_task(MC, third).state == "queued"


def test_reassign_to_a_named_teller_and_the_previous_one_is_locked_out(
    svc: DispatchService, clock: Clock
) -> None:
    on_duty(svc, clock, T1, T2, L1)
    task_id = send(svc)
    svc.answer_offer(T1, task_id, "accept")
    moved = svc.reassign(T1, task_id, "T2", "needs a second signature")
    assert (moved.state, moved.teller_id) == ("offered", "T2")
    for attempt in (
        lambda: svc.answer_offer(T1, task_id, "accept"),
        lambda: svc.complete(T1, task_id, True),
        lambda: svc.reassign(T1, task_id, "T3"),
        lambda: svc.get_task(T1, task_id),
    ):
        with pytest.raises(PermissionDenied, match="a teller acts only on their own offers"):
            attempt()
    assert svc.staff(T1).presence == "idle"  # type: ignore[union-attr]
    events = svc.events_after(EventScope(teller_id="T1"), 0)
    assert [e.kind for e in events if e.task_id == task_id][-1] == "reassigned"
    # A lobby manager may reassign too.
    on_duty(svc, clock, T3)
    again = svc.reassign(L1, task_id, "T3")
    assert again.teller_id == "T3"
    with pytest.raises(PermissionDenied):
        svc.answer_offer(T2, task_id, "accept")
    assert svc.answer_offer(T3, task_id, "accept").state == "accepted"


def test_reassign_checks_the_target(svc: DispatchService, clock: Clock) -> None:
    on_duty(svc, clock, T1, teller("T9"))
    task_id = send(svc)
    with pytest.raises(PermissionDenied, match="a task stays in its target branch"):
        svc.reassign(T1, task_id, "T9")
    with pytest.raises(FailedPrecondition, match="teller T2 is off duty"):
        svc.reassign(T1, task_id, "T2")
    svc.add_teller("T3", "Teller T3", "B", ["fx"])
    on_duty(svc, clock, T3)
    with pytest.raises(FailedPrecondition, match="lacks skill 'loan'"):
        svc.reassign(T1, task_id, "T3")
    with pytest.raises(NotFound, match="to_teller_id: no teller 'T7'"):
        svc.reassign(T1, task_id, "T7")
    with pytest.raises(FailedPrecondition, match="already holds"):
        svc.reassign(T1, task_id, "T1")


# -- materials -----------------------------------------------------------------------------


def test_materials_are_size_limited_hashed_and_stored_once(
    engine: Engine, svc: DispatchService, clock: Clock
) -> None:
    import hashlib

    svc.max_material_bytes = 1000
    on_duty(svc, clock, T1, T2)
    task_id = send(svc)
    photo = bytes(range(256)) * 3
    digest = hashlib.sha256(photo).hexdigest()
    material = svc.upload_material(MC, task_id, "id_front.jpg", "image/jpeg", photo, digest)
    assert (material.sha256, material.size) == (digest, len(photo))
    # Retrying the same upload is harmless; other content under the same name is not.
    assert svc.upload_material(MC, task_id, "id_front.jpg", "image/jpeg", photo).sha256 == digest
    with pytest.raises(AlreadyExists, match="name: task .* already has a material 'id_front.jpg'"):
        svc.upload_material(MC, task_id, "id_front.jpg", "image/jpeg", b"other")
    # The same photo for a second task is stored once.
    other = send(svc, "r2")
    svc.upload_material(MC, other, "photo.jpg", "image/jpeg", photo)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(material_blobs)).scalar_one() == 1
    with pytest.raises(InvalidArgument, match="data: 1001 bytes is more than the 1000-byte limit"):
        svc.upload_material(MC, task_id, "big.png", "image/png", b"x" * 1001)
    with pytest.raises(InvalidArgument, match="sha256: does not match the data"):
        svc.upload_material(MC, task_id, "scan.png", "image/png", b"abc", "0" * 64)
    with pytest.raises(InvalidArgument, match="content_type"):
        svc.upload_material(MC, task_id, "scan.png", "jpeg", b"abc")
    with pytest.raises(InvalidArgument, match="name: .* plain file name"):
        svc.upload_material(MC, task_id, "../etc/passwd", "text/plain", b"abc")
    with pytest.raises(PermissionDenied, match="a terminal acts only on the tasks it sent"):
        svc.upload_material(OTHER_MC, task_id, "x.png", "image/png", b"abc")

    # The teller holding the task sees the materials; nobody else does.
    clock.advance(1)
    svc.upload_material(MC, task_id, "id_data.json", "application/json", b'{"name": "Li Lei"}')
    task = svc.get_task(T1, task_id)
    assert [m.name for m in task.materials] == ["id_front.jpg", "id_data.json"]
    got, data = svc.get_material(T1, task_id, digest)
    assert data == photo and got.name == "id_front.jpg"
    with pytest.raises(PermissionDenied):
        svc.get_material(T2, task_id, digest)
    added = [
        e for e in svc.events_after(EventScope(teller_id="T1"), 0) if e.kind == "material_added"
    ]
    assert len(added) == 2 and digest in added[0].detail
    svc.answer_offer(T1, task_id, "accept")
    svc.complete(T1, task_id, True)
    with pytest.raises(FailedPrecondition, match="is done: no more materials"):
        svc.upload_material(MC, task_id, "late.png", "image/png", b"abc")


# -- expiry, duty, presence ----------------------------------------------------------------


def test_unanswered_offer_expires_and_moves_on(svc: DispatchService, clock: Clock) -> None:
    on_duty(svc, clock, T1, T2)
    task_id = send(svc)
    clock.advance(29)
    assert svc.expire_offers() == []
    clock.advance(2)
    assert svc.expire_offers() == [task_id]
    task = svc.get_task(MC, task_id)
    assert (task.state, task.teller_id) == ("offered", "T2")
    assert svc.staff(T1).presence == "away"  # type: ignore[union-attr]
    expired = [e for e in task.events if e.kind == "expired"][0]
    assert expired.teller_id == "T1" and "within 30 s" in expired.detail
    assert task.offers[0].answer == "expired"
    with pytest.raises(PermissionDenied):
        svc.answer_offer(T1, task_id, "accept")
    # Back from away, T1 is idle again and gets the next task.
    svc.set_presence(T1, False)
    assert svc.get_task(MC, send(svc, "r2")).teller_id == "T1"


def test_off_duty_withdraws_offers_but_not_accepted_tasks(
    svc: DispatchService, clock: Clock
) -> None:
    on_duty(svc, clock, T1, T2)
    task_id = send(svc)
    svc.set_duty(T1, False)
    task = svc.get_task(MC, task_id)
    assert (task.state, task.teller_id) == ("offered", "T2")
    svc.answer_offer(T2, task_id, "accept")
    with pytest.raises(FailedPrecondition, match="on_duty: teller T2 still holds"):
        svc.set_duty(T2, False)
    # The lobby manager keeps the roster of branch B.
    svc.set_duty(L1, True, teller_id="T1")
    assert svc.staff(T1).on_duty  # type: ignore[union-attr]
    tellers_, managers = svc.roster(L1)
    assert [t.teller_id for t in tellers_] == ["T1", "T2", "T3"]
    assert [m.manager_id for m in managers] == ["L1"]


def test_branch_routing_strategy_least_handled(svc: DispatchService, clock: Clock) -> None:
    svc.add_branch("B", "South", "least_handled")
    on_duty(svc, clock, T1, T2)
    first = send(svc, "r1")
    assert svc.get_task(MC, first).teller_id == "T1"
    svc.answer_offer(T1, first, "accept")
    svc.complete(T1, first, True)
    # T1 is now the longest idle... no: T2 has been idle longer; and T1 handled one.
    clock.advance(60)
    second = send(svc, "r2")
    assert svc.get_task(MC, second).teller_id == "T2"
    svc.answer_offer(T2, second, "reject")
    # Only T1 is left, with one handled task.
    assert svc.get_task(MC, second).teller_id == "T1"


def test_origin_cancels_and_the_teller_is_freed(svc: DispatchService, clock: Clock) -> None:
    on_duty(svc, clock, T1)
    task_id = send(svc)
    svc.answer_offer(T1, task_id, "accept")
    with pytest.raises(PermissionDenied):
        svc.cancel_task(OTHER_MC, task_id)
    cancelled = svc.cancel_task(MC, task_id, "customer left")
    assert cancelled.state == "cancelled"
    assert svc.staff(T1).presence == "idle"  # type: ignore[union-attr]
    assert svc.events_after(EventScope(teller_id="T1"), 0)[-1].kind == "cancelled"
    with pytest.raises(FailedPrecondition, match="is cancelled"):
        svc.complete(T1, task_id, True)


# -- restart, idempotency, roles, validation ------------------------------------------------


def test_a_restart_loses_nothing(db_url: str, clock: Clock) -> None:
    first = DispatchService(open_database(db_url), offer_timeout=30, clock=clock)
    populate(first)
    on_duty(first, clock, T1)
    task_id = send(first)
    first.upload_material(MC, task_id, "a.txt", "text/plain", b"hello")
    first.answer_offer(T1, task_id, "wait", estimate_seconds=120)
    last_seen = first.latest_event_id()
    first.engine.dispose()

    again = DispatchService(open_database(db_url), offer_timeout=30, clock=clock)
    try:
        task = again.get_task(T1, task_id)
        assert (task.state, task.teller_id, task.wait_estimate_seconds) == ("waiting", "T1", 120)
        assert [m.name for m in task.materials] == ["a.txt"]
        again.answer_offer(T1, task_id, "accept")
        again.complete(T1, task_id, True)
        resumed = again.events_after(EventScope(origin_terminal=MC.id), last_seen)
        assert [e.kind for e in resumed] == ["accepted", "completed"]
        assert check_invariants(again.engine) == []
    finally:
        again.engine.dispose()


def test_send_task_is_idempotent_per_request_id(svc: DispatchService, clock: Clock) -> None:
    task_id = send(svc, "same")
    assert send(svc, "same") == task_id
    with pytest.raises(AlreadyExists, match="request_id: 'same' was already used"):
        send(svc, "same", title="Something else")
    # Another terminal's request ids are its own.
    other = svc.send_task(OTHER_MC, "A", "same", "B", "loan", "Loan application")
    assert other.task_id != task_id


def test_scope_rules_name_the_rule(svc: DispatchService, clock: Clock) -> None:
    on_duty(svc, clock, T1)
    task_id = send(svc)
    with pytest.raises(PermissionDenied, match="a terminal acts only on the tasks it sent"):
        svc.get_task(OTHER_MC, task_id)
    with pytest.raises(PermissionDenied, match="never offered to teller T2"):
        svc.answer_offer(T2, task_id, "accept")
    with pytest.raises(PermissionDenied, match="a lobby manager acts only within their branch"):
        svc.designate(Actor(LOBBY, "L9"), task_id, "T9")
    with pytest.raises(PermissionDenied, match="a lobby manager acts only within their branch"):
        svc.list_tasks(L1, branch="A")
    with pytest.raises(PermissionDenied, match="a teller sets only their own duty"):
        svc.set_duty(T1, True, teller_id="T2")
    with pytest.raises(PermissionDenied, match="keeps the roster of their own branch only"):
        svc.set_duty(Actor(LOBBY, "L9"), True, teller_id="T1")
    with pytest.raises(PermissionDenied, match="has no staff record"):
        svc.staff(teller("T404"))
    with pytest.raises(PermissionDenied, match="designating a teller is for lobby managers"):
        svc.designate(T1, task_id, "T2")
    assert [t.task_id for t in svc.list_tasks(MC)] == [task_id]
    assert svc.list_tasks(OTHER_MC) == []
    assert [t.task_id for t in svc.list_tasks(T1)] == [task_id]
    assert [t.task_id for t in svc.list_tasks(L1, states=["offered"])] == [task_id]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"business_type": "Loan!"}, "business_type"),
        ({"target_branch": ""}, "target_branch"),
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"request_id": ""}, "request_id"),
    ],
)
def test_malformed_tasks_name_the_field(
    svc: DispatchService, change: dict[str, str], field: str
) -> None:
    args: dict[str, Any] = {
        "request_id": "r1",
        "target_branch": "B",
        "business_type": "loan",
        "title": "Loan",
        **change,
    }
    with pytest.raises(InvalidArgument, match=f"^{field}: ") as info:
        svc.send_task(MC, "A", **args)
    assert info.value.field == field


def test_other_malformed_requests_name_the_field(svc: DispatchService, clock: Clock) -> None:
    on_duty(svc, clock, T1)
    task_id = send(svc)
    with pytest.raises(InvalidArgument, match="^answer: expected one of accept, wait, reject"):
        svc.answer_offer(T1, task_id, "maybe")
    with pytest.raises(InvalidArgument, match="^estimate_seconds: "):
        svc.answer_offer(T1, task_id, "wait", estimate_seconds=0)
    with pytest.raises(InvalidArgument, match="^reason: required when the result is a failure"):
        svc.complete(T1, task_id, False)
    with pytest.raises(NotFound, match="^target_branch: no branch 'Z'") as missing:
        svc.send_task(MC, "A", "r9", "Z", "loan", "Loan")
    assert missing.value.field == "target_branch"
    with pytest.raises(InvalidArgument, match=r"^skills\[0\]: ") as skill:
        svc.add_teller("T5", "T5", "B", ["Loans"])
    assert skill.value.field == "skills[0]"
    with pytest.raises(FailedPrecondition, match="^offer_id: offer 999"):
        svc.answer_offer(T1, task_id, "accept", offer_id=999)
    with pytest.raises(InvalidArgument, match="^routing_strategy: "):
        svc.add_branch("B", "South", "fastest")


def test_an_offer_past_its_time_cannot_be_accepted(svc: DispatchService, clock: Clock) -> None:
    on_duty(svc, clock, T1)
    task_id = send(svc)
    clock.advance(31)
    with pytest.raises(FailedPrecondition, match="^offer_id: the offer of task .* expired at"):
        svc.answer_offer(T1, task_id, "accept")


def test_the_sweep_matches_a_free_teller_left_without_a_waiting_task(
    engine: Engine, svc: DispatchService, clock: Clock
) -> None:
    from sqlalchemy import update

    from branchline.server.dispatch.schema import tellers

    task_id = send(svc)
    assert svc.get_task(MC, task_id).state == "queued"
    # As if T1 came free while another transaction held the task: on duty, nothing pulled.
    with engine.begin() as conn:
        conn.execute(update(tellers).where(tellers.c.teller_id == "T1").values(on_duty=True))
    assert svc.match_free_tellers() == 1
    assert svc.get_task(MC, task_id).teller_id == "T1"
    assert svc.match_free_tellers() == 0


def test_refusals_carry_the_rule_and_an_over_long_id_is_cut_short(
    svc: DispatchService, clock: Clock
) -> None:
    on_duty(svc, clock, T1)
    task_id = send(svc)
    for action, rule in (
        (lambda: svc.get_task(OTHER_MC, task_id), "origin_only"),
        (lambda: svc.answer_offer(T2, task_id, "accept"), "own_tasks_only"),
        (lambda: svc.list_tasks(L1, branch="A"), "own_branch_only"),
        (lambda: svc.set_duty(T1, True, teller_id="T2"), "own_duty_only"),
        (lambda: svc.staff(teller("T404")), "staff_record_required"),
        (lambda: svc.designate(T1, task_id, "T2"), "role"),
    ):
        with pytest.raises(PermissionDenied) as denied:
            action()
        assert denied.value.rule == rule and denied.value.reason == rule
    with pytest.raises(InvalidArgument) as invalid:
        svc.get_task(MC, "x" * 5000)
    assert invalid.value.field == "task_id" and invalid.value.reason == "too_long"
    assert invalid.value.message.startswith("task_id: is 5000 characters, at most 64")
    assert len(invalid.value.message) < 150  # a short, truncated echo only
