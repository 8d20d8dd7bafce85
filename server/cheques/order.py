"""Linkage processing (``cheque_order``): the rules again for the order, the books taken
from the terminal's cassette and the fee posted — one database transaction, keyed by the
terminal's outbox key, so a retry gets the same serials and the same fee entry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from branchline.common.errors import InvalidArgument, check_text
from branchline.server.cheques import rules, stock, view
from branchline.server.cheques.core import ChequeCore, Outcome
from branchline.server.cheques.identify import MAX_ID, _set, _want_state
from branchline.server.cheques.schema import cheque_accounts, cheque_books, cheque_leaves
from branchline.server.ledger import accounts as acc
from branchline.server.ledger.postings import (
    LegSpec,
    Posting,
    Reference,
    lock_for_posting,
    request_hash,
    write_entry,
)
from branchline.server.ledger.schema import accounts
from branchline.v1 import cheques_pb2 as pb

FEE_INCOME = "fee_income"
FEE_KIND = "cheque_fee"
MAX_BOOKS_PER_LINE = 50


def _lines(
    msg: pb.ChequeOrder, kinds: dict[str, rules.BookType]
) -> list[tuple[rules.BookType, int]]:
    if not msg.lines:
        raise InvalidArgument("lines", "at least one line is required")
    seen: set[str] = set()
    out = []
    for i, line in enumerate(msg.lines):
        field = f"lines[{i}]"
        if line.book_type not in kinds:
            raise InvalidArgument(
                f"{field}.book_type",
                f"no book type {line.book_type[:32]!r}",
                reason="unknown_book_type",
            )
        if line.book_type in seen:
            raise InvalidArgument(f"{field}.book_type", "one line per book type")
        if not 1 <= line.books <= MAX_BOOKS_PER_LINE:
            raise InvalidArgument(f"{field}.books", f"1 to {MAX_BOOKS_PER_LINE}")
        seen.add(line.book_type)
        out.append((kinds[line.book_type], line.books))
    return out


def post_fee(
    conn: Connection,
    reference: Reference,
    account_id: str,
    branch: str,
    currency: str,
    amount_minor: int,
    description: str,
    now: datetime,
    *,
    refund: bool = False,
) -> Posting:
    """Account -> the branch's fee income (or back, for a refund), inside the caller's
    transaction; refused ``insufficient_funds`` when the account cannot pay."""
    income = acc.ensure_internal_account(conn, FEE_INCOME, branch, currency, now)
    sign = -1 if refund else 1
    legs = [
        LegSpec(account_id, currency, -amount_minor * sign),
        LegSpec(income, currency, amount_minor * sign),
    ]
    locked = lock_for_posting(conn, [account_id, income], now)
    digest = request_hash(
        {"op": FEE_KIND, "refund": refund, "account": account_id, "amount": amount_minor}
    )
    return write_entry(
        conn, locked, reference, digest, FEE_KIND, description, legs, now, field_name="fee"
    )


# long: rules, allocation and fee posting in one step (see step)
def order(core: ChequeCore, terminal_id: str, msg: pb.ChequeOrder) -> pb.ChequeReply:
    check_text("request_id", msg.request_id, max_len=128)
    check_text("purchase_id", msg.purchase_id, max_len=MAX_ID)

    # long: rules, allocation and the fee posting are one transaction by design
    def step(conn: Connection, now: datetime) -> Outcome:
        row = core.purchase_row(conn, terminal_id, msg.purchase_id)
        _want_state(row, "identified")
        settings = rules.config(conn)
        account = conn.execute(
            select(cheque_accounts).where(cheque_accounts.c.account_id == row.account_id)
        ).one()
        rules.check_account(account, settings)
        lines = _lines(msg, rules.book_types(conn))
        for kind, books in lines:
            refusal = rules.refusal_for_type(conn, account, kind, books, now)
            if refusal is not None:
                raise refusal
            if kind.currency != row.currency:
                raise InvalidArgument(
                    "lines",
                    f"{kind.name} is priced in {kind.currency}, the account is {row.currency}",
                    reason="currency_mismatch",
                )
        total = 0
        for kind, books in lines:
            for first in stock.take_books(conn, terminal_id, kind, books):
                last = first + kind.leaves_per_book - 1
                book_id = conn.execute(
                    cheque_books.insert().values(
                        purchase_id=row.purchase_id,
                        book_type=kind.book_type,
                        prefix=kind.prefix,
                        first_serial=first,
                        last_serial=last,
                        fee_minor=kind.fee_minor,
                        refunded=False,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
                conn.execute(
                    cheque_leaves.insert(),
                    [
                        {
                            "purchase_id": row.purchase_id,
                            "book_id": book_id,
                            "prefix": kind.prefix,
                            "serial": s,
                            "state": "allocated",
                            "updated_at": now,
                        }
                        for s in range(first, last + 1)
                    ],
                )
                total += kind.fee_minor
        try:
            posting = post_fee(
                conn,
                Reference(terminal_id, msg.request_id),
                row.account_id,
                row.branch,
                row.currency,
                total,
                f"cheque books {row.purchase_id}",
                now,
            )
        except Exception as exc:
            if getattr(exc, "reason", "") == "insufficient_funds":
                raise rules.insufficient_funds(
                    view.money(total, row.currency), _available(conn, row.account_id)
                ) from exc
            raise
        balance, available = _balances(conn, row.account_id)
        _set(
            conn,
            row.purchase_id,
            now,
            f"terminal:{terminal_id}",
            state="ordered",
            fee_total_minor=total,
            fee_entry_id=posting.entry_id,
            balance_after_minor=balance,
            available_after_minor=available,
        )
        return Outcome(row.purchase_id)

    return core.apply(terminal_id, "cheque_order", msg.request_id, msg.purchase_id, step)


def _balances(conn: Connection, account_id: str) -> tuple[int, int]:
    """The account's balance and available amount, in minor units."""
    row = conn.execute(
        select(accounts.c.balance_minor, accounts.c.held_minor).where(
            accounts.c.account_id == account_id
        )
    ).one()
    return int(row.balance_minor), int(row.balance_minor) - int(row.held_minor)


def _available(conn: Connection, account_id: str) -> str:
    row = conn.execute(select(accounts.c.currency).where(accounts.c.account_id == account_id)).one()
    return view.money(_balances(conn, account_id)[1], row.currency)
