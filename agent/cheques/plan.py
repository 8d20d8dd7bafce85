"""The print plan of an order (what the server allocated) and the leaf reports of its end.

The plan is journaled with every printing step, so recovery needs nothing but the journal:
``{"header": {company, account, bank_name, bank_code}, "books": [{book_type, prefix, first,
last}]}``. A position in it is (book index, leaf index).
"""

from __future__ import annotations

from typing import Any

from branchline.v1 import cheques_pb2 as pb

LEAF = pb.LeafOutcome


def plan_from_purchase(purchase: pb.ChequePurchase) -> dict[str, Any]:
    header = purchase.header
    return {
        "header": {
            "company": header.company_name,
            "account": header.account_number,
            "bank_name": header.bank_name,
            "bank_code": header.bank_code,
        },
        "books": [
            {
                "book_type": book.book_type,
                "prefix": book.prefix,
                "first": int(book.first_serial),
                "last": int(book.last_serial),
            }
            for book in purchase.books
        ],
    }


def number(book: dict[str, Any], serial: int) -> str:
    return f"{book['prefix']}{serial:08d}"


def book_size(book: dict[str, Any]) -> int:
    return int(book["last"]) - int(book["first"]) + 1


def leaf_params(
    plan: dict[str, Any], book: dict[str, Any], serial: int, job: str
) -> dict[str, Any]:
    return {**plan["header"], "prefix": book["prefix"], "serial": serial, "job_name": job}


def report(
    book: dict[str, Any], serial: int, outcome: int, reason: str = "", **extra: Any
) -> pb.LeafReport:
    return pb.LeafReport(
        number=number(book, serial),
        outcome=outcome,  # type: ignore[arg-type]
        void_reason=reason,
        **extra,
    )


# Faults after which the blank leaves not yet fed are still in the cassette (RETURNED);
# after the others (paper out, wrong stock, an unknown device error) the server voids them.
STOCK_INTACT = frozenset({"media_jam", "cover_open", "not_taken"})


def fault_reports(plan: dict[str, Any], b: int, j: int, code: str) -> list[pb.LeafReport]:
    """The outcome of every leaf the terminal can vouch for, after a fault at book ``b``,
    leaf ``j`` (j = the leaf being printed; the book's size when the book was presented)."""
    books = plan["books"]
    book = books[b]
    first = int(book["first"])
    out = [report(book, first + i, LEAF.LEAF_OUTCOME_VOIDED, "retained") for i in range(j)]
    rest_from = j
    if j < book_size(book):
        if code == "media_jam":
            out.append(
                report(book, first + j, LEAF.LEAF_OUTCOME_VOIDED, "spoiled", detail="jammed")
            )
            rest_from = j + 1
        elif code == "ocr_mismatch":
            out.append(report(book, first + j, LEAF.LEAF_OUTCOME_VOIDED, "wrong_stock"))
            rest_from = j + 1
    if code in STOCK_INTACT:
        out += [
            report(book, first + i, LEAF.LEAF_OUTCOME_RETURNED)
            for i in range(rest_from, book_size(book))
        ]
        for later in books[b + 1 :]:
            out += [
                report(later, s, LEAF.LEAF_OUTCOME_RETURNED)
                for s in range(int(later["first"]), int(later["last"]) + 1)
            ]
    return out
