"""Ledger money side: accounts, card links, FX rates, journal entries and legs, holds, bills.

Revision ID: 0004_ledger_money
Revises: 0003_ledger
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004_ledger_money"
down_revision: str | None = "0003_ledger"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("branch", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("held_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.customer_id"], name="fk_accounts_customer_id_customers"
        ),
        sa.PrimaryKeyConstraint("account_id", name="pk_accounts"),
    )
    op.create_index("ix_accounts_customer_id", "accounts", ["customer_id"])

    op.create_table(
        "card_accounts",
        sa.Column("card_token", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_token"], ["cards.card_token"], name="fk_card_accounts_card_token_cards"
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name="fk_card_accounts_account_id_accounts"
        ),
        sa.PrimaryKeyConstraint("card_token", "kind", "currency", name="pk_card_accounts"),
    )

    op.create_table(
        "fx_rate_versions",
        sa.Column("version_id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("version_id", name="pk_fx_rate_versions"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "fx_rates",
        sa.Column("version_id", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("bid_e8", sa.BigInteger(), nullable=False),
        sa.Column("ask_e8", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["fx_rate_versions.version_id"],
            name="fk_fx_rates_version_id_fx_rate_versions",
        ),
        sa.PrimaryKeyConstraint("version_id", "currency", name="pk_fx_rates"),
    )

    op.create_table(
        "journal_entries",
        sa.Column("entry_id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("terminal_id", sa.String(128), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("reverses_entry_id", sa.BigInteger(), nullable=True),
        sa.Column("rate_version_id", sa.BigInteger(), nullable=True),
        sa.Column("hold_id", sa.String(32), nullable=True),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["reverses_entry_id"],
            ["journal_entries.entry_id"],
            name="fk_journal_entries_reverses_entry_id_journal_entries",
        ),
        sa.ForeignKeyConstraint(
            ["rate_version_id"],
            ["fx_rate_versions.version_id"],
            name="fk_journal_entries_rate_version_id_fx_rate_versions",
        ),
        sa.PrimaryKeyConstraint("entry_id", name="pk_journal_entries"),
        sa.UniqueConstraint(
            "terminal_id", "request_id", name="uq_journal_entries_terminal_id_request_id"
        ),
        sa.UniqueConstraint("reverses_entry_id", name="uq_journal_entries_reverses_entry_id"),
        sqlite_autoincrement=True,
    )

    op.create_table(
        "journal_legs",
        sa.Column("leg_id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("balance_after_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["journal_entries.entry_id"],
            name="fk_journal_legs_entry_id_journal_entries",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name="fk_journal_legs_account_id_accounts"
        ),
        sa.PrimaryKeyConstraint("leg_id", name="pk_journal_legs"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_journal_legs_account_id_leg_id", "journal_legs", ["account_id", "leg_id"])
    op.create_index("ix_journal_legs_entry_id", "journal_legs", ["entry_id"])

    op.create_table(
        "holds",
        sa.Column("hold_id", sa.String(32), nullable=False),
        sa.Column("terminal_id", sa.String(128), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("branch", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("dispensed_currency", sa.String(3), nullable=False),
        sa.Column("dispensed_minor", sa.BigInteger(), nullable=False),
        sa.Column("rate_version_id", sa.BigInteger(), nullable=True),
        sa.Column("bill_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("entry_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name="fk_holds_account_id_accounts"
        ),
        sa.ForeignKeyConstraint(
            ["rate_version_id"],
            ["fx_rate_versions.version_id"],
            name="fk_holds_rate_version_id_fx_rate_versions",
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["journal_entries.entry_id"], name="fk_holds_entry_id_journal_entries"
        ),
        sa.PrimaryKeyConstraint("hold_id", name="pk_holds"),
        sa.UniqueConstraint("terminal_id", "request_id", name="uq_holds_terminal_id_request_id"),
    )
    op.create_index("ix_holds_account_id_status", "holds", ["account_id", "status"])
    op.create_index("ix_holds_status_expires_at", "holds", ["status", "expires_at"])

    op.create_table(
        "bill_holdings",
        sa.Column("bill_id", sa.String(64), nullable=False),
        sa.Column("instrument", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("face_minor", sa.BigInteger(), nullable=False),
        sa.Column("maturity", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("hold_id", sa.String(32), nullable=True),
        sa.Column("deposit_entry_id", sa.BigInteger(), nullable=False),
        sa.Column("withdrawal_entry_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name="fk_bill_holdings_customer_id_customers",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name="fk_bill_holdings_account_id_accounts"
        ),
        sa.ForeignKeyConstraint(
            ["deposit_entry_id"],
            ["journal_entries.entry_id"],
            name="fk_bill_holdings_deposit_entry_id_journal_entries",
        ),
        sa.ForeignKeyConstraint(
            ["withdrawal_entry_id"],
            ["journal_entries.entry_id"],
            name="fk_bill_holdings_withdrawal_entry_id_journal_entries",
        ),
        sa.PrimaryKeyConstraint("bill_id", name="pk_bill_holdings"),
    )
    op.create_index("ix_bill_holdings_customer_id", "bill_holdings", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_bill_holdings_customer_id", table_name="bill_holdings")
    op.drop_table("bill_holdings")
    op.drop_index("ix_holds_status_expires_at", table_name="holds")
    op.drop_index("ix_holds_account_id_status", table_name="holds")
    op.drop_table("holds")
    op.drop_index("ix_journal_legs_entry_id", table_name="journal_legs")
    op.drop_index("ix_journal_legs_account_id_leg_id", table_name="journal_legs")
    op.drop_table("journal_legs")
    op.drop_table("journal_entries")
    op.drop_table("fx_rates")
    op.drop_table("fx_rate_versions")
    op.drop_table("card_accounts")
    op.drop_index("ix_accounts_customer_id", table_name="accounts")
    op.drop_table("accounts")
