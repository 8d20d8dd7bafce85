"""Free transfers: legs given by the caller (adjustments, opening balances, tests).

The legs (account, currency, signed amount) must balance in every currency; each leg's
account must hold that currency. Idempotent on the reference like every posting.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, Engine

from branchline.common.errors import InvalidArgument
from branchline.server.ledger import accounts as acc
from branchline.server.ledger.money import LedgerSettings, asset, parse_amount, to_decimal, to_minor
from branchline.server.ledger.postings import (
    MAX_DESCRIPTION,
    TRANSFER,
    LegSpec,
    Posting,
    Reference,
    check_reference,
    lock_for_posting,
    replay,
    request_hash,
    run_write,
    write_entry,
)


# long: one transaction's legs, balances and entry under one lock; splitting would spread the lock
def post_transfer(
    engine: Engine,
    reference: Reference,
    legs: Sequence[tuple[str, str, object]],
    description: str,
    now: datetime,
    settings: LedgerSettings,
) -> Posting:
    """Post legs (account, currency, signed amount) that must balance in every currency."""
    check_reference(reference, "transfer")
    acc.check_identifier(description, "transfer.description", MAX_DESCRIPTION)
    if len(legs) < 2:
        raise InvalidArgument("transfer.legs", "at least two legs are required")
    specs: list[LegSpec] = []
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for i, (account_id, currency, amount) in enumerate(legs):
        field_name = f"transfer.legs[{i}]"
        acc.check_identifier(account_id, f"{field_name}.account_id")
        of = asset(currency, f"{field_name}.currency")
        signed = to_decimal(amount, f"{field_name}.amount")
        value = parse_amount(abs(signed), of, f"{field_name}.amount", settings)
        minor = to_minor(value, of) * (1 if signed > 0 else -1)
        specs.append(LegSpec(account_id, of.code, minor))
        sums[of.code] += signed
    unbalanced = {c: s for c, s in sums.items() if s != 0}
    if unbalanced:
        shown = ", ".join(f"{c} {s:+}" for c, s in sorted(unbalanced.items()))
        raise InvalidArgument("transfer.legs", f"do not sum to zero ({shown})", reason="unbalanced")
    digest = request_hash(
        {"op": "transfer", "legs": [[s.account_id, s.currency, s.amount_minor] for s in specs]}
    )

    def op(conn: Connection) -> Posting:
        first = replay(conn, reference, digest)
        if first is not None:
            return first
        locked = lock_for_posting(conn, [s.account_id for s in specs], now)
        for i, spec in enumerate(specs):
            if locked[spec.account_id].currency != spec.currency:
                raise InvalidArgument(
                    f"transfer.legs[{i}].currency",
                    f"account {spec.account_id} holds {locked[spec.account_id].currency}, not "
                    f"{spec.currency}",
                    reason="currency_mismatch",
                )
        first = replay(conn, reference, digest)
        if first is not None:
            return first
        return write_entry(
            conn,
            locked,
            reference,
            digest,
            TRANSFER,
            description,
            specs,
            now,
            field_name="transfer.amount",
        )

    return run_write(engine, op)
