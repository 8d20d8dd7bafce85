"""The bank enrols customers for mobile banking (``branchline-server mobile``): a password
(kept as an argon2id hash, ``bank_auth``) and a TOTP secret the customer loads into an
authenticator app from a provisioning URI (``otpauth://``, shown once), and later resets or
unlocks them. Every change is audited in ``mobile_audit`` with the actor; neither the
password nor the secret is ever stored in the audit or shown again.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import Connection, Engine, delete, insert, select, update

from branchline.common.errors import AlreadyExists, InvalidArgument, NotFound, check_text
from branchline.server.ledger.schema import customers
from branchline.server.mobile import bank_auth
from branchline.server.mobile.schema import mobile_audit, mobile_credentials, mobile_logins
from branchline.server.storage.engine import write_transaction

# RFC 4226 recommends a 160-bit shared secret.
SECRET_BYTES = 20
MIN_PASSWORD = 8
ISSUER = "Branchline"


@dataclass(frozen=True)
class Enrolment:
    """What an authenticator app needs (``secret`` and its ``uri``), shown once."""

    customer_id: str
    secret: str
    uri: str


def new_secret() -> str:
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")


def provisioning_uri(customer_id: str, secret: str, issuer: str = ISSUER) -> str:
    """The ``otpauth://totp/`` URI authenticator apps read (Google Authenticator's Key Uri
    Format): SHA-1, 6 digits, 30 s, as ``bank_auth`` checks them."""
    label = quote(f"{issuer}:{customer_id}", safe=":")
    query = urlencode(
        {
            "secret": secret,
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": bank_auth.DIGITS,
            "period": bank_auth.STEP_SECONDS,
        }
    )
    return f"otpauth://totp/{label}?{query}"


def check_password(password: str) -> str:
    if not password:
        raise InvalidArgument("password", "is required (read from stdin)", reason="required")
    if len(password) < MIN_PASSWORD:
        raise InvalidArgument(
            "password", f"at least {MIN_PASSWORD} characters, got {len(password)}",
            reason="too_short",
        )  # fmt: skip
    if len(password) > bank_auth.MAX_PASSWORD:
        raise InvalidArgument(
            "password", f"at most {bank_auth.MAX_PASSWORD} characters", reason="too_long"
        )
    return password


def check_issuer(issuer: str) -> str:
    check_text("issuer", issuer, max_len=64)
    if ":" in issuer:
        raise InvalidArgument("issuer", "must not contain ':' (it separates the label)")
    return issuer


def _audit(
    conn: Connection, actor: str, action: str, customer_id: str, detail: Any, now: datetime
) -> None:
    conn.execute(
        insert(mobile_audit).values(
            actor=actor[:200],
            action=action,
            customer_id=customer_id,
            detail=json.dumps(detail, sort_keys=True, default=str),
            at=now,
        )
    )


def _not_enrolled(customer_id: str) -> NotFound:
    return NotFound(
        f"{customer_id!r} is not enrolled for mobile banking (enrol first)",
        field="customer",
        reason="not_enrolled",
    )


def _credentials(conn: Connection, customer_id: str) -> Any:
    row = conn.execute(
        select(mobile_credentials)
        .where(mobile_credentials.c.customer_id == customer_id)
        .with_for_update()
    ).first()
    if row is None:
        raise _not_enrolled(customer_id)
    return row


def enrol(
    engine: Engine,
    customer_id: str,
    password: str,
    actor: str,
    now: datetime,
    issuer: str = ISSUER,
) -> Enrolment:
    """Enrol a customer of the bank's ledger; refused when already enrolled (reset then)."""
    check_text("customer", customer_id, max_len=64)
    check_password(password)
    check_issuer(issuer)
    secret = new_secret()
    password_hash = bank_auth.hash_password(password)  # slow: outside the transaction
    with write_transaction(engine) as conn:
        known = conn.execute(
            select(customers.c.customer_id).where(customers.c.customer_id == customer_id)
        ).first()
        if known is None:
            raise NotFound(
                f"{customer_id!r} is not a customer of the bank (ledger customers)",
                field="customer",
                reason="unknown_customer",
            )
        enrolled = conn.execute(
            select(mobile_credentials.c.customer_id).where(
                mobile_credentials.c.customer_id == customer_id
            )
        ).first()
        if enrolled is not None:
            raise AlreadyExists(
                f"{customer_id!r} is already enrolled (use reset)",
                field="customer",
                reason="already_enrolled",
            )
        conn.execute(
            insert(mobile_credentials).values(
                customer_id=customer_id,
                password_hash=password_hash,
                totp_secret=secret,
                failed_attempts=0,
                locked_until=None,
                last_totp_step=0,
            )
        )
        _audit(conn, actor, "enrol", customer_id, {"issuer": issuer}, now)
    return Enrolment(customer_id, secret, provisioning_uri(customer_id, secret, issuer))


def reset(
    engine: Engine,
    customer_id: str,
    actor: str,
    now: datetime,
    password: str | None = None,
    new_totp: bool = False,
    issuer: str = ISSUER,
) -> Enrolment | None:
    """A new password and/or a new TOTP secret (returned, to show once); either also lifts
    a lockout, since the customer proved who they are to the bank's staff."""
    if password is None and not new_totp:
        raise InvalidArgument(
            "reset", "say what to reset: --password and/or --totp", reason="nothing_to_reset"
        )
    if password is not None:
        check_password(password)
    check_issuer(issuer)
    values: dict[str, Any] = {"failed_attempts": 0, "locked_until": None}
    if password is not None:
        values["password_hash"] = bank_auth.hash_password(password)
    secret = new_secret() if new_totp else ""
    if new_totp:
        values.update(totp_secret=secret, last_totp_step=0)
    with write_transaction(engine) as conn:
        _credentials(conn, customer_id)
        conn.execute(
            update(mobile_credentials)
            .where(mobile_credentials.c.customer_id == customer_id)
            .values(**values)
        )
        detail = {"password": password is not None, "totp": new_totp}
        _audit(conn, actor, "reset", customer_id, detail, now)
    if not new_totp:
        return None
    return Enrolment(customer_id, secret, provisioning_uri(customer_id, secret, issuer))


def unlock(engine: Engine, customer_id: str, actor: str, now: datetime) -> bool:
    """Lift a lockout after failed sign-ins; True when the customer was locked."""
    with write_transaction(engine) as conn:
        row = _credentials(conn, customer_id)
        was_locked = row.locked_until is not None and now < row.locked_until
        conn.execute(
            update(mobile_credentials)
            .where(mobile_credentials.c.customer_id == customer_id)
            .values(failed_attempts=0, locked_until=None)
        )
        _audit(conn, actor, "unlock", customer_id, {"was_locked": was_locked}, now)
    return was_locked


def unenrol(engine: Engine, customer_id: str, actor: str, now: datetime) -> int:
    """End the customer's mobile banking: their credentials (password hash, TOTP secret) are
    deleted and every phone signed in as them is signed out (its next job that needs the
    bank asks for a sign-in, which now fails). The audit stays. The phones signed out."""
    with write_transaction(engine) as conn:
        _credentials(conn, customer_id)  # NotFound naming the customer when not enrolled
        conn.execute(
            delete(mobile_credentials).where(mobile_credentials.c.customer_id == customer_id)
        )
        ended = conn.execute(
            delete(mobile_logins).where(mobile_logins.c.customer_id == customer_id)
        ).rowcount
        _audit(conn, actor, "unenrol", customer_id, {"phones_signed_out": ended}, now)
    return int(ended)


def status(engine: Engine, now: datetime, customer_id: str = "") -> list[dict[str, Any]]:
    """Each enrolled customer's sign-in state, or one's with its audit trail; never a hash
    or a secret."""
    table = mobile_credentials
    query = select(table.c.customer_id, table.c.failed_attempts, table.c.locked_until)
    if customer_id:
        query = query.where(table.c.customer_id == customer_id)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(table.c.customer_id)).all()
        if customer_id and not rows:
            raise _not_enrolled(customer_id)
        trail = (
            conn.execute(
                select(mobile_audit.c.action, mobile_audit.c.actor, mobile_audit.c.at)
                .where(mobile_audit.c.customer_id == customer_id)
                .order_by(mobile_audit.c.audit_id)
            ).all()
            if customer_id
            else []
        )
    found = [
        {
            "customer_id": r.customer_id,
            "failed_attempts": r.failed_attempts,
            "locked": r.locked_until is not None and now < r.locked_until,
            "locked_until": r.locked_until.isoformat() if r.locked_until else None,
        }
        for r in rows
    ]
    if customer_id:
        found[0]["audit"] = [
            {"action": a.action, "actor": a.actor, "at": a.at.isoformat()} for a in trail
        ]
    return found
