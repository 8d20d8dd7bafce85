"""Authentication at the bank: the mobile-banking sign-in a phone may use instead of card +
PIN at the terminal.

- Password: kept only as an argon2id hash (argon2-cffi, its RFC 9106 low-memory profile).
- Second factor: TOTP (RFC 6238: HMAC over the 30-second time step, dynamic truncation,
  6 digits, SHA-1 by default as authenticator apps use), one step of clock drift either way,
  and a code (time step) is accepted once only.
- Lockout: ``MAX_FAILURES`` wrong passwords or codes in a row lock the customer for
  ``LOCKOUT``; a locked customer is refused without checking anything (no oracle).

Every refusal is the same ``PermissionDenied(rule="login_failed")`` whatever was wrong, so a
caller cannot tell an unknown customer from a wrong password or code.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY
from sqlalchemy import Engine, insert, select, update

from branchline.common.errors import InvalidArgument, PermissionDenied

# The codes themselves are shared with the simulated authenticator app; bank_auth's names
# stay, re-exported for its callers (``name as name``).
from branchline.common.totp import DIGITS as DIGITS
from branchline.common.totp import STEP_SECONDS as STEP_SECONDS
from branchline.common.totp import hotp as hotp
from branchline.common.totp import secret_bytes as secret_bytes
from branchline.common.totp import totp as totp
from branchline.server.mobile.schema import mobile_credentials
from branchline.server.storage.engine import write_transaction

DRIFT_STEPS = 1
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
MAX_PASSWORD = 256

_HASHER = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def enroll(engine: Engine, customer_id: str, password: str, totp_secret_b32: str) -> None:
    """Enrol (or re-enrol) a customer for mobile banking."""
    if len(password) < 8:
        raise InvalidArgument("password", "at least 8 characters", reason="too_short")
    secret_bytes(totp_secret_b32)  # refuses a secret that is not base32
    row = {
        "customer_id": customer_id,
        "password_hash": hash_password(password),
        "totp_secret": totp_secret_b32.strip().upper(),
        "failed_attempts": 0,
        "locked_until": None,
        "last_totp_step": 0,
    }
    with write_transaction(engine) as conn:
        found = conn.execute(
            select(mobile_credentials.c.customer_id).where(
                mobile_credentials.c.customer_id == customer_id
            )
        ).first()
        if found is None:
            conn.execute(insert(mobile_credentials).values(**row))
        else:
            conn.execute(
                update(mobile_credentials)
                .where(mobile_credentials.c.customer_id == customer_id)
                .values(**row)
            )


@dataclass(frozen=True)
class LoginCheck:
    customer_id: str
    password: str
    code: str


def _refused(detail: str) -> PermissionDenied:
    return PermissionDenied(
        f"login: customer id, password or code not accepted{detail}", rule="login_failed"
    )


def _matching_step(secret: bytes, code: str, now: datetime, last_step: int) -> int | None:
    step = int(now.timestamp()) // STEP_SECONDS
    for candidate in range(step - DRIFT_STEPS, step + DRIFT_STEPS + 1):
        if candidate > last_step and hmac.compare_digest(hotp(secret, candidate), code):
            return candidate
    return None


# long: one sign-in in order (lock, password, code, counters), under one row lock
def login(engine: Engine, check: LoginCheck, now: datetime) -> str:
    """The customer id when the password and the TOTP code are right; else ``login_failed``
    (``login_locked`` while locked out)."""
    if not check.customer_id or len(check.customer_id) > 64:
        raise InvalidArgument("customer_id", "enter your customer id", reason="required")
    if not check.password or len(check.password) > MAX_PASSWORD:
        raise InvalidArgument("password", "enter your password", reason="required")
    if not (len(check.code) == DIGITS and check.code.isdigit()):
        raise InvalidArgument("totp", f"enter the {DIGITS} digits of your authenticator")
    table = mobile_credentials
    with write_transaction(engine) as conn:
        row = conn.execute(
            select(table).where(table.c.customer_id == check.customer_id).with_for_update()
        ).first()
        if row is None:
            _HASHER.hash(check.password)  # as slow as a real check: no timing oracle
            raise _refused("")
        if row.locked_until is not None and now < row.locked_until:
            raise PermissionDenied(
                "login: too many failed attempts; try again later", rule="login_locked"
            )
        password_ok: bool
        try:
            password_ok = _HASHER.verify(row.password_hash, check.password)
        except (VerificationError, InvalidHashError):
            password_ok = False
        step = _matching_step(secret_bytes(row.totp_secret), check.code, now, row.last_totp_step)
        if password_ok and step is not None:
            conn.execute(
                update(table)
                .where(table.c.customer_id == check.customer_id)
                .values(failed_attempts=0, locked_until=None, last_totp_step=step)
            )
            return str(row.customer_id)
        failures = row.failed_attempts + 1
        locked = failures >= MAX_FAILURES
        conn.execute(
            update(table)
            .where(table.c.customer_id == check.customer_id)
            .values(
                failed_attempts=0 if locked else failures,
                locked_until=now + LOCKOUT if locked else None,
            )
        )
    if locked:
        raise PermissionDenied(
            "login: too many failed attempts; try again later", rule="login_locked"
        )
    raise _refused("")
