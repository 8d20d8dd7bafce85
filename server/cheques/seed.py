"""Demo and test data for the sale: the bank's default rules (book types, which account
types may buy them) and a company with an account, a contact person and an authorised
purchaser. ``branchline-server cheques seed-demo`` runs it for ``make demo``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from branchline.drivers.id_reader.identity import check_character
from branchline.server.cheques import admin
from branchline.server.cheques.schema import cheque_book_types, cheque_purchasers

SEEDER = "seed"

# book_type, name, prefix, printing cost, handling fee (minor units, CNY), books per month
BOOK_TYPES = (
    ("transfer_cheque", "Transfer cheque", "10", 1000, 500, 10),
    ("cash_cheque", "Cash cheque", "20", 1000, 500, 5),
    ("paying_in", "Paying-in form", "30", 500, 200, 10),
    ("remittance", "Remittance form", "40", 500, 200, 10),
)
# account type -> book types it may buy (cash cheques only for a basic account)
TYPE_RULES = {
    "basic": ("transfer_cheque", "cash_cheque", "paying_in", "remittance"),
    "general": ("transfer_cheque", "paying_in", "remittance"),
    "special": ("transfer_cheque", "paying_in"),
}


def id_number(region: str, birth: str, sequence: str) -> str:
    """A GB 11643 ID number with its check character."""
    body = f"{region}{birth}{sequence}"
    return body + check_character(body)


@dataclass(frozen=True)
class Company:
    account_id: str
    account_number: str
    company_name: str
    account_type: str
    branch: str
    contact_name: str
    contact_phone: str
    purchaser_id: str
    purchaser_name: str
    purchaser_id_number: str


def seed_rules(engine: Engine, now: datetime) -> None:
    """The default book types and account-type rules, unless the bank set its own."""
    with engine.connect() as conn:
        if conn.execute(select(cheque_book_types.c.book_type)).first() is not None:
            return
    for book_type, name, prefix, printing, handling, limit in BOOK_TYPES:
        admin.put_book_type(
            engine,
            {
                "book_type": book_type,
                "name": name,
                "prefix": prefix,
                "leaves_per_book": 25,
                "currency": "CNY",
                "printing_cost_minor": printing,
                "handling_fee_minor": handling,
                "period": "month",
                "period_limit": limit,
            },
            SEEDER,
            now,
        )
    for account_type, kinds in TYPE_RULES.items():
        for kind in kinds:
            admin.allow_type(engine, account_type, kind, True, SEEDER, now)


def seed_company(engine: Engine, company: Company, now: datetime) -> None:
    """Register the company's (existing ledger) account and its purchaser, once."""
    admin.put_account(
        engine,
        {
            "account_id": company.account_id,
            "account_number": company.account_number,
            "company_name": company.company_name,
            "account_type": company.account_type,
            "branch": company.branch,
            "contact_name": company.contact_name,
            "contact_phone": company.contact_phone,
        },
        SEEDER,
        now,
    )
    with engine.connect() as conn:
        known = conn.execute(
            select(cheque_purchasers.c.purchaser_id).where(
                cheque_purchasers.c.purchaser_id == company.purchaser_id
            )
        ).first()
    if known is None:
        admin.add_purchaser(
            engine,
            company.purchaser_id,
            company.account_id,
            company.purchaser_id_number,
            company.purchaser_name,
            SEEDER,
            now,
        )
