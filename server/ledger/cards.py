"""Cards and their wrong-PIN counters: plain functions over an Engine.

Counting is a conditional UPDATE in the same transaction that reads the card, so two
replicas verifying the same card at once cannot both spend the last attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, select, update

from branchline.server.ledger.schema import cards, customers
from branchline.server.storage import write_transaction
from branchline.server.storage.engine import connect


@dataclass(frozen=True)
class CardRecord:
    card_token: str
    pan_masked: str
    customer_id: str
    verification_method: str
    pvki: int
    verification_value: str
    pvk_name: str
    failed_attempts: int
    locked: bool


@dataclass(frozen=True)
class PinOutcome:
    verified: bool
    attempts_left: int
    locked: bool


def add_customer(engine: Engine, customer_id: str, name: str, now: datetime) -> None:
    with write_transaction(engine) as conn:
        exists = conn.execute(
            select(customers.c.customer_id).where(customers.c.customer_id == customer_id)
        ).first()
        if exists is None:
            conn.execute(
                customers.insert().values(customer_id=customer_id, name=name, created_at=now)
            )


def enroll_card(
    engine: Engine,
    *,
    card_token: str,
    pan_masked: str,
    customer_id: str,
    verification_method: str,
    pvki: int,
    verification_value: str,
    pvk_name: str,
    now: datetime,
) -> None:
    """Add or replace a card's verification data (a reissued PIN resets the counter)."""
    values = dict(
        pan_masked=pan_masked,
        customer_id=customer_id,
        verification_method=verification_method,
        pvki=pvki,
        verification_value=verification_value,
        pvk_name=pvk_name,
        failed_attempts=0,
        locked=False,
        updated_at=now,
    )
    with write_transaction(engine) as conn:
        found = conn.execute(
            select(cards.c.card_token).where(cards.c.card_token == card_token)
        ).first()
        if found is None:
            conn.execute(cards.insert().values(card_token=card_token, **values))
        else:
            conn.execute(update(cards).where(cards.c.card_token == card_token).values(**values))


def get_card(engine: Engine, card_token: str) -> CardRecord | None:
    with connect(engine) as conn:
        row = conn.execute(select(cards).where(cards.c.card_token == card_token)).first()
    if row is None:
        return None
    return CardRecord(
        card_token=row.card_token,
        pan_masked=row.pan_masked,
        customer_id=row.customer_id,
        verification_method=row.verification_method,
        pvki=row.pvki,
        verification_value=row.verification_value,
        pvk_name=row.pvk_name,
        failed_attempts=row.failed_attempts,
        locked=row.locked,
    )


def record_pin_result(
    conn: Connection, card_token: str, verified: bool, try_limit: int, now: datetime
) -> PinOutcome:
    """Apply one verification result to the card's counter, inside the caller's transaction.

    The card row is locked first: whoever comes second waits, then sees the first's result.
    """
    row = conn.execute(
        select(cards.c.failed_attempts, cards.c.locked)
        .where(cards.c.card_token == card_token)
        .with_for_update()
    ).one()
    if row.locked:
        return PinOutcome(False, 0, True)
    failed = 0 if verified else row.failed_attempts + 1
    locked = failed >= try_limit
    conn.execute(
        update(cards)
        .where(cards.c.card_token == card_token)
        .values(failed_attempts=failed, locked=locked, updated_at=now)
    )
    return PinOutcome(verified, max(try_limit - failed, 0), locked)


def lock_card_row(conn: Connection, card_token: str) -> None:
    conn.execute(
        select(cards.c.card_token).where(cards.c.card_token == card_token).with_for_update()
    )
