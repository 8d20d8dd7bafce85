"""One-time purchase codes: issued by staff for an account, stored as a salted scrypt hash,
single use, expiring. A wrong code counts against the account; at the bank's limit the
method is locked for that account until staff issue a new code."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import Connection, Row, select, update

from branchline.common.errors import InvalidArgument, PermissionDenied
from branchline.common.ids import random_hex
from branchline.server.cheques.schema import cheque_accounts, cheque_purchase_codes

CODE_DIGITS = 8


def _hash(code: str, salt: str) -> str:
    return hashlib.scrypt(code.encode(), salt=bytes.fromhex(salt), n=2**12, r=8, p=1).hex()


def issue_code(
    conn: Connection, account_id: str, actor: str, now: datetime, ttl: timedelta
) -> tuple[str, str, datetime]:
    """A new code for the account: (code_id, the code — shown once, never stored, expiry).
    Issuing resets the account's wrong-code count."""
    code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
    salt = secrets.token_hex(16)
    code_id = random_hex()
    conn.execute(
        cheque_purchase_codes.insert().values(
            code_id=code_id,
            account_id=account_id,
            salt=salt,
            code_hash=_hash(code, salt),
            issued_by=actor,
            issued_at=now,
            expires_at=now + ttl,
        )
    )
    conn.execute(
        update(cheque_accounts)
        .where(cheque_accounts.c.account_id == account_id)
        .values(code_failures=0)
    )
    return code_id, code, now + ttl


class CodeRefused(PermissionDenied):
    """A refused code; ``count_failure`` when it counts against the account."""

    def __init__(self, message: str, rule: str, count_failure: bool) -> None:
        super().__init__(message, rule=rule, field="purchase_code.purchase_code")
        self.count_failure = count_failure


def redeem_code(
    conn: Connection,
    account: Row,  # type: ignore[type-arg]
    code: str,
    purchase_id: str,
    now: datetime,
    max_failures: int,
) -> str:
    """Use ``code`` for ``purchase_id``: its code_id, or CodeRefused by rule."""
    if not code.isascii() or not code.isdigit() or len(code) != CODE_DIGITS:
        raise InvalidArgument("purchase_code.purchase_code", f"{CODE_DIGITS} digits")
    if account.code_failures >= max_failures:
        raise CodeRefused(
            f"{account.code_failures} wrong purchase codes: ask the bank for a new code",
            "purchase_code_locked",
            False,
        )
    rows = conn.execute(
        select(cheque_purchase_codes).where(
            cheque_purchase_codes.c.account_id == account.account_id
        )
    ).all()
    for row in rows:
        if not hmac.compare_digest(_hash(code, row.salt), row.code_hash):
            continue
        if row.used_at is not None:
            raise CodeRefused("this purchase code was already used", "purchase_code_used", False)
        if row.expires_at <= now:
            raise CodeRefused(
                f"this purchase code expired at {row.expires_at:%Y-%m-%d %H:%M} UTC",
                "purchase_code_expired",
                False,
            )
        conn.execute(
            update(cheque_purchase_codes)
            .where(cheque_purchase_codes.c.code_id == row.code_id)
            .values(used_at=now, used_by_purchase=purchase_id)
        )
        conn.execute(
            update(cheque_accounts)
            .where(cheque_accounts.c.account_id == account.account_id)
            .values(code_failures=0)
        )
        return str(row.code_id)
    raise CodeRefused(
        "the purchase code is not valid for this account", "purchase_code_invalid", True
    )
