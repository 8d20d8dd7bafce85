"""The cheque sale refuses by rule name: the purchase method, the account, the ID card, the
face (real photographs through dlib), the order. SQLite; the serial invariants run on both
backends in test_cheques_serials.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from branchline.common.errors import NotFound
from branchline.server.cheques import admin
from branchline.server.cheques.schema import (
    cheque_audit,
    cheque_face_decisions,
    cheque_incidents,
    cheque_purchasers,
    cheque_purchases,
)
from branchline.server.storage import open_database
from branchline.v1 import cheques_pb2 as pb
from tests.unit.cheque_support import BASIC, BIDEN_ID, GENERAL, World, make_world, new_pid
from tests.unit.sqlite_template import migrated_sqlite

STAFF = "teller:S1"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    engine = open_database(migrated_sqlite(tmp_path / "server.db"))
    yield make_world(engine)
    engine.dispose()


def refused(reply: pb.ChequeReply, kind: str, code: str) -> pb.ChequeReply:
    assert (reply.kind, reply.code) == (kind, code), reply
    assert reply.message
    return reply


def checked(world: World) -> str:
    pid = new_pid()
    assert not world.start_card(BASIC.account_id, pid).code
    assert not world.id_card(pid).code
    return pid


# --- the account and the method ---


@pytest.mark.parametrize("status", ["frozen", "dormant", "closed"])
def test_an_account_that_is_not_active_is_refused_by_its_state(world: World, status: str) -> None:
    admin.set_account_status(world.engine, BASIC.account_id, status, None, STAFF, world.clock())
    refused(world.start_card(), "permission_denied", f"account_{status}")


def test_stop_sale_on_the_account_or_bank_wide(world: World) -> None:
    admin.set_account_status(world.engine, BASIC.account_id, "active", True, STAFF, world.clock())
    refused(world.start_card(), "permission_denied", "stop_sale")
    admin.set_account_status(world.engine, BASIC.account_id, "active", False, STAFF, world.clock())
    admin.set_config(world.engine, "stop_sale", "yes", STAFF, world.clock())
    refused(world.start_card(), "permission_denied", "stop_sale")


def test_a_switched_off_method_is_refused(world: World) -> None:
    admin.set_config(world.engine, "method.card_pin", "off", STAFF, world.clock())
    refused(world.start_card(), "permission_denied", "method_disabled")


def test_the_card_session_must_own_the_account(world: World) -> None:
    reply = refused(world.start_card(GENERAL.account_id), "permission_denied", "not_your_account")
    assert reply.field == "card_pin.account_id"


def test_a_purchase_code_is_single_use(world: World) -> None:
    code, _ = admin.issue_code(world.engine, BASIC.account_id, STAFF, world.clock())
    first = world.start_code(BASIC.account_number, code)
    assert not first.code and first.purchase.method == pb.CHEQUE_METHOD_PURCHASE_CODE
    refused(world.start_code(BASIC.account_number, code), "permission_denied", "purchase_code_used")


def test_an_expired_purchase_code_is_refused(world: World) -> None:
    code, expires = admin.issue_code(world.engine, BASIC.account_id, STAFF, world.clock())
    world.clock.now = expires + timedelta(seconds=1)
    refused(
        world.start_code(BASIC.account_number, code), "permission_denied", "purchase_code_expired"
    )


def test_wrong_codes_count_and_lock_the_method_for_the_account(world: World) -> None:
    code, _ = admin.issue_code(world.engine, BASIC.account_id, STAFF, world.clock())
    wrong = "00000000" if code != "00000000" else "11111111"
    for _ in range(5):
        refused(
            world.start_code(BASIC.account_number, wrong),
            "permission_denied",
            "purchase_code_invalid",
        )
    refused(
        world.start_code(BASIC.account_number, code), "permission_denied", "purchase_code_locked"
    )
    fresh, _ = admin.issue_code(world.engine, BASIC.account_id, STAFF, world.clock())
    assert not world.start_code(BASIC.account_number, fresh).code


def test_a_code_is_not_stored_in_clear(world: World) -> None:
    from branchline.server.cheques.schema import cheque_purchase_codes

    code, _ = admin.issue_code(world.engine, BASIC.account_id, STAFF, world.clock())
    with world.engine.connect() as conn:
        row = conn.execute(select(cheque_purchase_codes)).one()
    assert code not in repr(tuple(row))


# --- the ID card ---


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"valid_from": "20100101", "valid_to": "20200101"}, "id_expired", "id_card.valid_to"),
        (
            {
                "id_number": BASIC.purchaser_id_number[:17]
                + ("0" if BASIC.purchaser_id_number[17] != "0" else "1")
            },
            "id_bad_check_digit",
            "id_card.id_number",
        ),
        ({"id_number": "12345"}, "id_bad_format", "id_card.id_number"),
        ({"valid_from": "20300101"}, "id_not_yet_valid", "id_card.valid_from"),
        ({"sam_status": "no_reply"}, "reader_sam_fault", "id_card.sam_status"),
    ],
)
def test_an_id_card_that_is_not_genuine_or_valid_is_refused(
    world: World, changes: dict[str, str], code: str, field: str
) -> None:
    pid = new_pid()
    world.start_card(BASIC.account_id, pid)
    reply = refused(world.id_card(pid, **changes), "permission_denied", code)
    assert reply.field == field
    assert reply.purchase.state == pb.CHEQUE_STATE_STARTED


def test_a_card_holder_who_is_not_a_registered_purchaser_is_refused(world: World) -> None:
    pid = new_pid()
    world.start_card(BASIC.account_id, pid)
    refused(
        world.id_card(pid, id_number=BIDEN_ID, birth_date="19421120", name="Joe Biden"),
        "permission_denied",
        "not_authorised_purchaser",
    )


def test_a_removed_purchaser_is_refused_and_their_face_is_gone(world: World) -> None:
    """The bank removes a purchaser who left the company: the enrolled face goes with the
    row; a purchase already past the ID card is refused at the face, a new one at the card;
    the audit names who was removed and the face's SHA-256, never the face."""
    pid = checked(world)  # the ID card read before the removal
    assert admin.remove_purchaser(world.engine, BASIC.purchaser_id, STAFF, world.clock())
    with world.engine.connect() as conn:
        left = {r.purchaser_id for r in conn.execute(select(cheque_purchasers))}
        entry = conn.execute(
            select(cheque_audit).where(cheque_audit.c.action == "remove_purchaser")
        ).one()
    assert BASIC.purchaser_id not in left
    assert (entry.actor, entry.subject) == (STAFF, BASIC.purchaser_id)
    detail = json.loads(entry.detail)
    assert detail["name"] == "Barack Obama" and len(detail["face_sha256"]) == 64
    refused(world.face(pid), "permission_denied", "not_authorised_purchaser")
    later = new_pid()
    assert not world.start_card(BASIC.account_id, later).code
    refused(world.id_card(later), "permission_denied", "not_authorised_purchaser")
    # The purchase keeps its own copy of who bought.
    with world.engine.connect() as conn:
        purchase = conn.execute(
            select(cheque_purchases).where(cheque_purchases.c.purchase_id == pid)
        ).one()
    assert purchase.buyer_name == "Barack Obama"


def test_removing_an_unknown_purchaser_names_it_and_a_removed_one_can_be_added_again(
    world: World,
) -> None:
    with pytest.raises(NotFound) as unknown:
        admin.remove_purchaser(world.engine, "P-NOBODY", STAFF, world.clock())
    assert (unknown.value.reason, unknown.value.field) == ("unknown_purchaser", "id")
    admin.remove_purchaser(world.engine, BASIC.purchaser_id, STAFF, world.clock())
    admin.add_purchaser(
        world.engine,
        BASIC.purchaser_id,
        BASIC.account_id,
        BASIC.purchaser_id_number,
        "Barack Obama",
        STAFF,
        world.clock(),
    )
    pid = new_pid()
    assert not world.start_card(BASIC.account_id, pid).code
    # Registered again but not enrolled: the face must be enrolled before a purchase.
    refused(world.id_card(pid), "permission_denied", "no_enrolled_face")


# --- the face ---


@pytest.mark.parametrize(
    ("scene", "person", "changes", "code"),
    [
        ("live", "biden", {}, "no_match"),
        ("photo", "obama", {}, "not_live"),
        ("two_faces", "obama", {}, "several_faces"),
        (
            "live",
            "obama",
            {
                "liveness": "unavailable",
                "liveness_score": None,
                "face_count": None,
                "driver": "uvc_face_camera",
            },
            "liveness_unavailable",
        ),
    ],
)
def test_a_face_that_is_not_the_live_purchaser_is_refused(
    world: World, scene: str, person: str, changes: dict[str, object], code: str
) -> None:
    pid = checked(world)
    reply = refused(world.face(pid, scene, person, 0, **changes), "permission_denied", code)  # type: ignore[arg-type]
    assert reply.purchase.face_attempts_left == 2
    assert reply.purchase.state == pb.CHEQUE_STATE_ID_CHECKED


def test_two_faces_the_module_missed_are_found_by_the_server(world: World) -> None:
    pid = checked(world)
    refused(
        world.face(pid, "two_faces", "obama", 0, face_count=1), "permission_denied", "several_faces"
    )


def test_the_purchaser_s_own_live_face_matches_and_scores_are_kept(world: World) -> None:
    pid = checked(world)
    reply = world.face(pid)
    assert not reply.code and reply.purchase.state == pb.CHEQUE_STATE_IDENTIFIED
    with world.engine.connect() as conn:
        row = conn.execute(select(cheque_face_decisions)).one()
    assert row.outcome == "match" and row.distance < 0.5 and row.threshold == 0.6
    assert row.image is not None and len(row.capture_sha256) == 64


def test_the_third_failed_face_locks_the_purchaser_and_alerts_staff(world: World) -> None:
    pid = checked(world)
    refused(world.face(pid, "live", "biden", 0), "permission_denied", "no_match")
    refused(world.face(pid, "photo", "obama", 0), "permission_denied", "not_live")
    third = refused(world.face(pid, "live", "biden", 0), "permission_denied", "purchaser_locked")
    assert third.purchase.state == pb.CHEQUE_STATE_LOCKED and third.purchase.incident_id
    with world.engine.connect() as conn:
        incident = conn.execute(select(cheque_incidents)).one()
        decisions = conn.execute(select(cheque_face_decisions)).all()
    assert incident.kind == "face_locked" and incident.resolved_at is None
    assert [d.outcome for d in decisions] == ["no_match", "refused", "no_match"]
    # Locked for the next purchase too, until staff unlock.
    pid2 = new_pid()
    world.start_card(BASIC.account_id, pid2)
    refused(world.id_card(pid2), "permission_denied", "purchaser_locked")
    admin.unlock_purchaser(world.engine, BASIC.purchaser_id, STAFF, world.clock())
    assert not world.id_card(pid2).code
    assert world.face(pid2).purchase.state == pb.CHEQUE_STATE_IDENTIFIED


def test_a_repeated_face_message_counts_one_attempt(world: World) -> None:
    pid = checked(world)
    first = world.face(pid, "live", "biden", 0, request_id="T-CQ1:face-1")
    again = world.face(pid, "live", "biden", 0, request_id="T-CQ1:face-1")
    assert first == again and again.purchase.face_attempts_left == 2


def test_capture_images_and_id_photos_are_swept_after_the_retention(world: World) -> None:
    from branchline.server.cheques.identify import sweep_images

    pid = checked(world)
    world.face(pid)
    world.clock.advance(days=29)
    assert sweep_images(world.core) == 0
    with world.engine.connect() as conn:
        assert conn.execute(select(cheque_purchases.c.id_photo)).scalar_one()
    world.clock.advance(days=2)
    # The capture and the ID card's photo: both personal data, both past the 30 days.
    assert sweep_images(world.core) == 2
    with world.engine.connect() as conn:
        row = conn.execute(select(cheque_face_decisions)).one()
        purchase = conn.execute(select(cheque_purchases)).one()
    assert row.image is None and row.image_purged_at is not None and row.distance is not None
    # The purchase and its record stay; only the photo is gone.
    assert purchase.id_photo is None and purchase.buyer_name == "Barack Obama"
    assert purchase.face_outcome == "match" and purchase.state == "identified"
    assert sweep_images(world.core) == 0


def test_the_id_photo_retention_follows_the_setting(world: World) -> None:
    from branchline.server.cheques.identify import sweep_images

    admin.set_config(world.engine, "image_retention_days", "1", STAFF, world.clock())
    checked(world)  # the ID card read, no face yet
    world.clock.advance(hours=23)
    assert sweep_images(world.core) == 0
    world.clock.advance(hours=2)
    assert sweep_images(world.core) == 1
    with world.engine.connect() as conn:
        assert conn.execute(select(cheque_purchases.c.id_photo)).scalar_one() is None


def test_a_capture_that_is_not_an_image_is_bad_input_not_an_attempt(world: World) -> None:
    pid = checked(world)
    reply = refused(world.face(pid, jpeg=b"GIF89a nonsense"), "invalid_argument", "not_an_image")
    assert reply.field.startswith("capture")
    assert reply.purchase.face_attempts_left == 3


# --- the order ---


def test_a_cash_cheque_on_a_non_basic_account_is_refused(world: World) -> None:
    admin.put_account(
        world.engine,
        {
            "account_id": GENERAL.account_id,
            "account_number": GENERAL.account_number,
            "company_name": GENERAL.company_name,
            "account_type": "general",
            "branch": "B01",
        },
        STAFF,
        world.clock(),
    )
    pid = new_pid()
    world.start_card(GENERAL.account_id, pid, customer_id="C-BETA")
    world.id_card(pid)
    world.face(pid)
    reply = refused(world.order(pid, cash_cheque=1), "permission_denied", "instrument_not_allowed")
    cash = next(o for o in reply.purchase.offers if o.book_type == "cash_cheque")
    assert cash.refused_rule == "instrument_not_allowed"


def test_over_the_period_limit_is_refused(world: World) -> None:
    pid = world.identified()
    refused(world.order(pid, transfer_cheque=11), "permission_denied", "period_limit")
    assert not world.order(pid, transfer_cheque=2).code
    world.finish(pid, pb.FINISH_KIND_CANCEL)  # canceled: does not count
    admin.put_book_type(
        world.engine,
        {
            "book_type": "transfer_cheque",
            "name": "Transfer cheque",
            "prefix": "10",
            "printing_cost_minor": 1000,
            "handling_fee_minor": 500,
            "period_limit": 1,
        },
        STAFF,
        world.clock(),
    )
    pid2 = world.identified()
    reply = world.order(pid2, transfer_cheque=1)
    assert not reply.code
    _issue_all(world, pid2, reply)
    pid3 = world.identified()
    refused(world.order(pid3, transfer_cheque=1), "permission_denied", "period_limit")


def test_the_fee_must_be_available_in_the_account(tmp_path: Path) -> None:
    engine = open_database(migrated_sqlite(tmp_path / "poor.db"))
    world = make_world(engine, balance="20.00")
    pid = world.identified()
    reply = refused(
        world.order(pid, transfer_cheque=2), "failed_precondition", "insufficient_funds"
    )
    assert "30.00" in reply.message
    assert reply.purchase.state == pb.CHEQUE_STATE_IDENTIFIED and not reply.purchase.books
    assert not world.order(pid, transfer_cheque=1).code
    engine.dispose()


def test_no_stock_and_unknown_types_are_refused_by_name(world: World) -> None:
    pid = world.identified()
    refused(world.order(pid, cash_cheque=3), "failed_precondition", "no_stock")
    reply = refused(world.order(pid, gift_voucher=1), "invalid_argument", "unknown_book_type")
    assert reply.field == "lines[0].book_type"


def test_an_order_before_the_face_is_refused_by_state(world: World) -> None:
    pid = checked(world)
    refused(world.order(pid, transfer_cheque=1), "failed_precondition", "wrong_state")


def _issue_all(world: World, pid: str, reply: pb.ChequeReply) -> None:
    reports = [
        pb.LeafReport(number=leaf.number, outcome=pb.LEAF_OUTCOME_PRINTED)
        for book in reply.purchase.books
        for leaf in book.leaves
    ]
    assert not world.leaves(pid, reports).code
    assert world.finish(pid, pb.FINISH_KIND_TAKEN).purchase.state == pb.CHEQUE_STATE_COMPLETED
