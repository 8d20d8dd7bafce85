"""Video-teller calls in the service, on SQLite and (when configured) PostgreSQL: queue
positions and waits, routing by skill, one call per teller under concurrency, leave,
restart, signalling, device commands with the PIN translated to the teller ZPK (decrypted
here, in the test only), signatures, and refusals naming the rule or the field.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import Engine, select

from branchline.common import paycrypto
from branchline.common.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from branchline.common.paycrypto import tdes_dukpt
from branchline.server.dispatch.call_schema import call_commands, call_signatures
from branchline.server.dispatch.calls import CallService, Outcome, TranslationFailed
from branchline.server.dispatch.model import Actor
from branchline.server.dispatch.tasks import DispatchService
from branchline.server.hsm import Algorithm, HsmError, KeyType, MasterKey, SoftHsm
from branchline.sim.devices.signature import draw_signature
from tests.unit.dispatch_invariants import check_invariants
from tests.unit.dispatch_support import (
    MC,
    T1,
    T2,
    T3,
    Clock,
    populate,
    teller,
)

K1, K2, K3 = Actor("terminal", "K-1"), Actor("terminal", "K-2"), Actor("terminal", "K-3")
PAN = "4761739001010010"
BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
KSN0 = bytes.fromhex("FFFF9876543210E00000")


@pytest.fixture
def engine(engine: Engine) -> Iterator[Engine]:
    # The shared store (conftest), checked after each test.
    yield engine
    assert check_invariants(engine) == []


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hsm(tmp_path: Path) -> SoftHsm:
    soft = SoftHsm.open(tmp_path / "keystore.json", MasterKey(os.urandom(32)))
    soft.import_key("BDK", KeyType.BDK, Algorithm.TDES, BDK)
    soft.create_key("TELLER-ZPK", KeyType.ZPK, Algorithm.TDES)
    return soft


def translator(hsm: SoftHsm) -> Callable[[str, bytes, bytes, int], tuple[bytes, int, str]]:
    def translate(pan: str, block: bytes, ksn: bytes, fmt: int) -> tuple[bytes, int, str]:
        try:
            return (
                hsm.translate_pin_dukpt_to_zpk("BDK", ksn, block, pan, "TELLER-ZPK"),
                0,
                "TELLER-ZPK",
            )
        except HsmError as exc:
            raise TranslationFailed(exc.code, str(exc)) from None

    return translate


@pytest.fixture
def calls(engine: Engine, clock: Clock, hsm: SoftHsm) -> CallService:
    dispatch = DispatchService(engine, offer_timeout=30, clock=clock)
    populate(dispatch, clock)
    return CallService(dispatch, translate_pin=translator(hsm), clock=clock)


def ask(calls: CallService, who: Actor, request_id: str = "r1", skill: str = "loan") -> str:
    clock = calls.clock
    assert isinstance(clock, Clock)
    clock.advance(1)  # one after the other, as customers arrive
    return calls.request_call(who, "B", request_id, skill, "video_teller").call_id


def positions(calls: CallService, *who: Actor) -> list[int]:
    views = calls.open_calls_of([w.id for w in who])
    return [views[w.id].position for w in who]


def test_three_terminals_queue_for_one_teller_and_move_up(calls: CallService, clock: Clock) -> None:
    first, second, third = (ask(calls, k) for k in (K1, K2, K3))
    assert positions(calls, K1, K2, K3) == [1, 2, 3]
    waits = [calls.open_calls_of([k.id])[k.id].estimated_wait_seconds for k in (K1, K2, K3)]
    assert waits == [180, 360, 540]  # no tellers on duty: one default handle time each
    calls.dispatch.set_duty(T1, True)  # a teller with the skill: the first call rings
    ringing = calls.current(T1)
    assert (ringing.call_id, ringing.state) == (first, "ringing")
    assert positions(calls, K2, K3) == [1, 2]
    calls.answer(T1, first)
    clock.advance(120)
    ended = calls.end(T1, first)
    assert ended.state == "ended"
    assert calls.current(T1).call_id == second  # the next one rings at once
    view = calls.open_calls_of([K3.id])[K3.id]
    assert (view.position, view.estimated_wait_seconds) == (1, 120)  # learnt from the call
    calls.leave(K2, second)  # hung up while ringing: the teller takes the next
    assert calls.current(T1).call_id == third
    assert calls.dispatch.staff(T1).load == 1  # type: ignore[union-attr]


def test_routing_by_skill_and_calls_before_tasks(calls: CallService) -> None:
    calls.dispatch.add_teller("T4", "Teller T4", "B", ["fx"])
    calls.dispatch.set_duty(teller("T4"), True)
    call_id = ask(calls, K1, skill="loan")
    assert calls.open_calls_of([K1.id])[K1.id].state == "queued"  # T4 cannot do loans
    fx = ask(calls, K2, skill="fx")
    assert calls.current(teller("T4")).call_id == fx
    # A queued task and a queued call: the teller coming on duty gets the call.
    calls.dispatch.send_task(MC, "A", "t1", "B", "loan", "Loan", {})
    calls.dispatch.set_duty(T1, True)
    assert calls.current(T1).call_id == call_id
    assert calls.dispatch.list_tasks(T1) == []


def test_a_teller_never_holds_two_calls_under_concurrent_requests(calls: CallService) -> None:
    calls.dispatch.set_duty(T1, True)
    terminals = [Actor("terminal", f"K-{i}") for i in range(8)]
    barrier = threading.Barrier(len(terminals))
    errors: list[BaseException] = []

    def run(who: Actor) -> None:
        barrier.wait()
        try:
            ask(calls, who)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in terminals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    views = calls.open_calls_of([k.id for k in terminals])
    states = sorted(v.state for v in views.values())
    assert states.count("ringing") == 1 and states.count("queued") == 7
    assert sorted(v.position for v in views.values() if v.state == "queued") == list(range(1, 8))


def test_a_restart_loses_nothing(engine: Engine, calls: CallService, clock: Clock) -> None:
    first, second = ask(calls, K1), ask(calls, K2)
    again = CallService(DispatchService(engine, clock=clock), clock=clock)
    assert positions(again, K1, K2) == [1, 2]
    assert again.request_call(K1, "B", "r1", "loan", "video_teller").call_id == first  # idempotent
    again.dispatch.set_duty(T2, True)
    assert again.current(T2).call_id == first and positions(again, K2) == [1]
    assert second


def active_call(calls: CallService) -> str:
    calls.dispatch.set_duty(T1, True)
    call_id = ask(calls, K1)
    calls.answer(T1)
    return call_id


def pin_outcome(command_id: int, call_id: str, pin: str = "1234") -> Outcome:
    ksn = tdes_dukpt.ksn_with_counter(KSN0, 1)
    key = tdes_dukpt.derive_working_key(BDK, ksn)
    block = paycrypto.encrypt_pin_block_tdes(key, paycrypto.encode_format0(pin, PAN))
    return Outcome(
        command_id, call_id, "success", pin_block=block, ksn=ksn, pan=PAN, pin_block_format=0
    )


def test_pin_is_translated_to_the_teller_zpk(
    calls: CallService, hsm: SoftHsm, engine: Engine
) -> None:
    call_id = active_call(calls)
    card = calls.send_command(T1, call_id, "read_card")
    careless = calls.send_command(T1, call_id, "read_card")
    shown = calls.record_outcome(
        K1, Outcome(careless.command_id, call_id, "success", fields={"pan": PAN}, detail=PAN)
    )
    assert shown.fields == {"pan": "476173******0010"} and shown.detail == "476173******0010"
    calls.record_outcome(
        K1, Outcome(card.command_id, call_id, "success", fields={"pan_masked": "476173******0010"})
    )
    pin = calls.send_command(T1, call_id, "pin")
    assert [c.command_id for c in calls.pending_commands(K1.id)] == [pin.command_id]
    done = calls.record_outcome(K1, pin_outcome(pin.command_id, call_id))
    assert done.completion == "success" and done.zpk_name == "TELLER-ZPK"
    assert done.pin_block is not None and len(done.pin_block) == 8
    # Only here, in the test: the teller side's ZPK opens the block.
    zpk = hsm.keystore.records()["TELLER-ZPK"].value
    clear = paycrypto.decrypt_pin_block_tdes(zpk, done.pin_block)
    assert paycrypto.decode_format0(clear, PAN) == "1234"
    # The device's block, its KSN and the PAN are kept nowhere.
    with engine.connect() as conn:
        row = conn.execute(select(call_commands).where(call_commands.c.id == pin.command_id)).one()
    assert PAN not in repr(row) and pin_outcome(pin.command_id, call_id).pin_block != row.pin_block
    # A second report does not change the first.
    again = calls.record_outcome(K1, Outcome(pin.command_id, call_id, "canceled"))
    assert again.completion == "success"
    assert [c.kind for c in calls.commands_after(T1, call_id, 0)] == [
        "read_card",
        "read_card",
        "pin",
    ]


def test_signature_is_stored_content_hashed(calls: CallService, engine: Engine) -> None:
    call_id = active_call(calls)
    ask_sign = calls.send_command(T1, call_id, "signature", "Transfer 500.00 EUR", ["to DE89 ..."])
    png = draw_signature("Li Lei")
    with pytest.raises(InvalidArgument, match="signature_sha256"):
        calls.record_outcome(
            K1,
            Outcome(
                ask_sign.command_id,
                call_id,
                "success",
                signature_png=png,
                signature_sha256="0" * 64,
            ),
        )
    with pytest.raises(InvalidArgument, match="signature_png: not a PNG"):
        calls.record_outcome(
            K1, Outcome(ask_sign.command_id, call_id, "success", signature_png=b"GIF89a")
        )
    digest = hashlib.sha256(png).hexdigest()
    done = calls.record_outcome(
        K1,
        Outcome(
            ask_sign.command_id, call_id, "success", signature_png=png, signature_sha256=digest
        ),
    )
    assert (done.signature_sha256, done.signature_size) == (digest, len(png))
    stored = calls.signature(digest)
    assert stored is not None and stored[0] == call_id and stored[1] == png
    assert Image.open(io.BytesIO(stored[1])).format == "PNG"
    with engine.connect() as conn:
        row = conn.execute(select(call_signatures)).one()
    assert "Transfer 500.00 EUR" in row.confirmed


def test_only_the_teller_holding_the_call_gets_its_signature(calls: CallService) -> None:
    call_id = active_call(calls)
    ask_sign = calls.send_command(T1, call_id, "signature", "Transfer 500.00 EUR")
    read = calls.send_command(T1, call_id, "read_card")
    png = draw_signature("Li Lei")
    done = calls.record_outcome(
        K1, Outcome(ask_sign.command_id, call_id, "success", signature_png=png)
    )
    stored = calls.signature_of(T1, call_id, ask_sign.command_id)
    assert stored.png == png and stored.content_type == "image/png"
    assert stored.sha256 == done.signature_sha256 == hashlib.sha256(stored.png).hexdigest()
    calls.dispatch.set_duty(T2, True)
    error = refusal(lambda: calls.signature_of(T2, call_id, ask_sign.command_id))
    assert isinstance(error, PermissionDenied) and error.rule == "own_call_only"
    error = refusal(lambda: calls.signature_of(T1, call_id, read.command_id))
    assert isinstance(error, NotFound) and error.field == "command_id"
    assert "stored no signature" in error.message
    error = refusal(lambda: calls.signature_of(T1, call_id, 0))
    assert isinstance(error, InvalidArgument) and error.field == "command_id"
    error = refusal(lambda: calls.signature_of(T1, "C-nope", ask_sign.command_id))
    assert isinstance(error, NotFound) and error.field == "call_id"
    calls.end(T1, call_id)  # the teller still sees it after the call ended
    assert calls.signature_of(T1, call_id, ask_sign.command_id).png == png


def test_signalling_is_relayed_each_way(calls: CallService) -> None:
    call_id = active_call(calls)
    offer = calls.add_signal(T1, call_id, "offer", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n")
    assert [s.signal_id for s in calls.terminal_signals(K1.id, 0)] == [offer.signal_id]
    answer = calls.add_signal(K1, call_id, "answer", "v=0\r\n")
    candidate = calls.add_signal(
        K1, call_id, "candidate", "candidate:1 1 UDP 2122 10.0.0.5 5000 typ host"
    )
    seen = calls.signals_after(T1, call_id, 0)
    assert [(s.sender, s.kind) for s in seen] == [("terminal", "answer"), ("terminal", "candidate")]
    assert calls.signals_after(T1, call_id, answer.signal_id)[0].signal_id == candidate.signal_id


def refusal(action: Callable[[], Any]) -> DomainError:
    with pytest.raises(DomainError) as info:
        action()
    return info.value


def test_role_violations_name_the_rule_and_bad_fields_name_the_field(calls: CallService) -> None:
    call_id = active_call(calls)
    calls.dispatch.set_duty(T2, True)
    for action in (
        lambda: calls.send_command(T2, call_id, "read_card"),
        lambda: calls.add_signal(T2, call_id, "offer", "v=0"),
        lambda: calls.end(T2, call_id),
        lambda: calls.signals_after(T2, call_id, 0),
    ):
        error = refusal(action)
        assert isinstance(error, PermissionDenied)
        assert "a teller drives only the terminal of their own call" in error.message
        assert error.rule == "own_call_only"
    for action in (
        lambda: calls.leave(K2, call_id),
        lambda: calls.add_signal(K2, call_id, "answer", "v=0"),
    ):
        error = refusal(action)
        assert isinstance(error, PermissionDenied)
        assert "a terminal acts only as itself" in error.message
        assert error.rule == "terminal_as_itself"
    command = calls.send_command(T1, call_id, "read_card")
    error = refusal(
        lambda: calls.record_outcome(K2, Outcome(command.command_id, call_id, "success"))
    )
    assert isinstance(error, PermissionDenied) and "acts only as itself" in error.message
    assert (
        "not by teller T1"
        in refusal(lambda: calls.request_call(T1, "B", "r", "loan", "video_teller")).message
    )
    bad: list[tuple[Callable[[], Any], str]] = [
        (lambda: calls.request_call(K3, "B", "r1", "Loan!", "video_teller"), "business_type"),
        (lambda: calls.request_call(K3, "B", "r1", "loan", "hologram"), "mode"),
        (lambda: calls.request_call(K3, "B", "", "loan", "video_teller"), "request_id"),
        (lambda: calls.add_signal(T1, call_id, "offer", "x" * 20_000), "payload"),
        (lambda: calls.add_signal(T1, call_id, "candidate", "x" * 2000), "payload"),
        (lambda: calls.add_signal(T1, call_id, "bye", "x"), "kind"),
        (lambda: calls.send_command(T1, call_id, "format_disk"), "kind"),
        (lambda: calls.send_command(T1, call_id, "print"), "lines"),
        (lambda: calls.send_command(T1, "bad id!", "read_card"), "call_id"),
        (
            lambda: calls.record_outcome(K1, Outcome(command.command_id, call_id, "fine")),
            "completion",
        ),
    ]
    for action, field in bad:
        error = refusal(action)
        assert isinstance(error, InvalidArgument), (field, error)
        assert error.message.startswith(f"{field}:"), error.message
        assert error.field == field, error
    queued = ask(calls, K2)
    error = refusal(lambda: calls.send_command(T3, queued, "read_card"))
    assert isinstance(error, PermissionDenied)
    error = refusal(lambda: ask(calls, K2, "r2"))
    assert isinstance(error, FailedPrecondition) and "already has call" in error.message


def test_an_unanswered_call_goes_back_to_the_head_of_the_queue(
    calls: CallService, clock: Clock
) -> None:
    calls.ring_timeout = 30
    calls.dispatch.set_duty(T1, True)
    first, second = ask(calls, K1), ask(calls, K2)
    assert calls.current(T1).call_id == first
    clock.advance(10)
    assert calls.expire_ringing() == []
    calls.dispatch.set_duty(T2, True)  # free, but the queue's head is second
    assert calls.current(T2).call_id == second
    clock.advance(25)
    assert calls.expire_ringing() == [first]  # T1 missed it; T2 is busy: first queues at 1
    assert calls.dispatch.staff(T1).presence == "away"  # type: ignore[union-attr]
    assert positions(calls, K1) == [1]
    calls.end(T2, second)  # T2 free again: takes the call T1 missed
    assert calls.current(T2).call_id == first
    error = refusal(lambda: calls.dispatch.set_duty(T2, False))
    assert isinstance(error, FailedPrecondition) and f"is on call {first}" in error.message
