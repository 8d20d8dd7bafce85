"""The buyer's identity: the ID card (genuine, valid, a registered purchaser of the account)
and the live face against the purchaser's enrolled image (``server/faces``)."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
from sqlalchemy import Connection, Row, select

from branchline.common.errors import InvalidArgument, PermissionDenied
from branchline.drivers.id_reader.identity import IdentityCard, validate
from branchline.server.cheques.schema import cheque_purchasers
from branchline.server.faces.checks import FaceCapture
from branchline.server.faces.verify import Enrolment
from branchline.v1 import cheques_pb2 as pb

PHOTO_FORMATS = ("jpeg", "png", "bmp", "wlt", "")
MAX_PHOTO = 256 * 1024
MAX_CAPTURE = 4 * 1024 * 1024

# The id_reader's problem codes as the sale names them.
_CODES = {"bad_id_format": "id_bad_format"}
# The field of the card each problem is about.
_FIELDS = {
    "bad_id_format": "id_number",
    "bad_check_digit": "id_number",
    "bad_birth_date": "birth_date",
    "birth_date_mismatch": "birth_date",
    "sex_mismatch": "sex_code",
    "bad_valid_from": "valid_from",
    "not_yet_valid": "valid_from",
    "bad_valid_to": "valid_to",
    "expired": "valid_to",
    "bad_validity": "valid_to",
}


def check_card(card: pb.IdCardRead, today: date) -> IdentityCard:
    """The card as read, refused by rule when the reader's SAM failed or the card is not
    genuine or not valid today."""
    if card.sam_status != "ok":
        raise PermissionDenied(
            f"the ID reader's SAM reported {card.sam_status or 'nothing'!r}: read not trusted",
            rule="reader_sam_fault",
            field="id_card.sam_status",
        )
    for name, limit in (("name", 30), ("id_number", 18), ("issuing_authority", 30)):
        if len(getattr(card, name)) > limit:
            raise InvalidArgument(f"id_card.{name}", f"at most {limit} characters")
    if not card.name.strip():
        raise InvalidArgument("id_card.name", "the card's name is empty")
    if card.photo_format not in PHOTO_FORMATS:
        raise InvalidArgument("id_card.photo_format", f"one of {', '.join(PHOTO_FORMATS[:-1])}")
    if len(card.photo) > MAX_PHOTO:
        raise InvalidArgument("id_card.photo", f"at most {MAX_PHOTO} bytes")
    identity = IdentityCard(
        name=card.name,
        sex_code=card.sex_code,
        ethnicity_code=card.ethnicity_code,
        birth_date=card.birth_date,
        address="",
        id_number=card.id_number,
        issuing_authority=card.issuing_authority,
        valid_from=card.valid_from,
        valid_to=card.valid_to,
    )
    problems = validate(identity, today)
    if problems:
        first = problems[0]
        raise PermissionDenied(
            f"ID card: {first.message}",
            rule=_CODES.get(first.code, f"id_{first.code}"),
            field=f"id_card.{_FIELDS.get(first.code, 'id_number')}",
        )
    return identity


def purchaser_for(conn: Connection, account_id: str, id_number: str) -> Row:  # type: ignore[type-arg]
    row = conn.execute(
        select(cheque_purchasers).where(
            cheque_purchasers.c.account_id == account_id,
            cheque_purchasers.c.id_number == id_number,
        )
    ).first()
    if row is None:
        raise PermissionDenied(
            "the card holder is not a registered purchaser of this account",
            rule="not_authorised_purchaser",
            field="id_card.id_number",
        )
    if row.locked:
        raise PermissionDenied(
            "this purchaser is locked for self-service purchase after failed face checks; "
            "staff can unlock",
            rule="purchaser_locked",
        )
    if row.face_descriptor is None:
        raise PermissionDenied(
            "this purchaser has no enrolled face image: staff enrol it first",
            rule="no_enrolled_face",
        )
    return row


def enrolment_of(row: Row) -> Enrolment:  # type: ignore[type-arg]
    return Enrolment(
        np.array(json.loads(row.face_descriptor), dtype=np.float64),
        row.face_sha256,
        row.face_backend,
    )


def capture_of(report: pb.FaceCaptureReport) -> FaceCapture:
    if not report.jpeg:
        raise InvalidArgument("capture.jpeg", "no image")
    if len(report.jpeg) > MAX_CAPTURE:
        raise InvalidArgument("capture.jpeg", f"at most {MAX_CAPTURE} bytes")
    if report.liveness not in ("live", "not_live", "unavailable"):
        raise InvalidArgument("capture.liveness", "one of live, not_live, unavailable")
    if len(report.driver) > 32:
        raise InvalidArgument("capture.driver", "at most 32 characters")

    def optional(name: str) -> float | None:
        return float(getattr(report, name)) if report.HasField(name) else None

    return FaceCapture(
        jpeg=report.jpeg,
        liveness=report.liveness,
        liveness_score=optional("liveness_score"),
        face_count=report.face_count if report.HasField("face_count") else None,
        sharpness=optional("sharpness"),
        yaw_deg=optional("yaw_deg"),
        pitch_deg=optional("pitch_deg"),
    )
