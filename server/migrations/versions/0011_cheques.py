"""Cheque-book sale: the bank's rules (book types, account types, accounts, purchasers,
purchase codes), cassette stock, purchases with their books and leaves, face decisions,
incidents and the staff audit. See docs/flows/cheques.md.

Revision ID: 0011_cheques
Revises: 0010_device_history
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011_cheques"
down_revision: str | None = "0010_device_history"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


# long: one create_table per table, as the migration tool wrote them
def upgrade() -> None:
    op.create_table(
        "cheque_accounts",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("account_number", sa.String(length=32), nullable=False),
        sa.Column("company_name", sa.String(length=60), nullable=False),
        sa.Column("account_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stop_sale", sa.Boolean(), nullable=False),
        sa.Column("branch", sa.String(length=64), nullable=False),
        sa.Column("contact_name", sa.String(length=60), nullable=False),
        sa.Column("contact_phone", sa.String(length=32), nullable=False),
        sa.Column("code_failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_cheque_accounts")),
        sa.UniqueConstraint("account_number", name=op.f("uq_cheque_accounts_account_number")),
    )
    op.create_table(
        "cheque_audit",
        sa.Column(
            "audit_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("audit_id", name=op.f("pk_cheque_audit")),
    )
    op.create_table(
        "cheque_book_types",
        sa.Column("book_type", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("prefix", sa.String(length=6), nullable=False),
        sa.Column("leaves_per_book", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("printing_cost_minor", sa.BigInteger(), nullable=False),
        sa.Column("handling_fee_minor", sa.BigInteger(), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("period_limit", sa.Integer(), nullable=False),
        sa.Column("on_sale", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "leaves_per_book BETWEEN 1 AND 100", name=op.f("ck_cheque_book_types_leaves")
        ),
        sa.CheckConstraint("period_limit >= 0", name=op.f("ck_cheque_book_types_limit")),
        sa.PrimaryKeyConstraint("book_type", name=op.f("pk_cheque_book_types")),
    )
    op.create_table(
        "cheque_books",
        sa.Column(
            "book_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("purchase_id", sa.String(length=64), nullable=False),
        sa.Column("book_type", sa.String(length=32), nullable=False),
        sa.Column("prefix", sa.String(length=6), nullable=False),
        sa.Column("first_serial", sa.BigInteger(), nullable=False),
        sa.Column("last_serial", sa.BigInteger(), nullable=False),
        sa.Column("fee_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("book_id", name=op.f("pk_cheque_books")),
    )
    op.create_index(
        op.f("ix_cheque_books_purchase_id"), "cheque_books", ["purchase_id"], unique=False
    )
    op.create_table(
        "cheque_config",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_cheque_config")),
    )
    op.create_table(
        "cheque_face_decisions",
        sa.Column(
            "decision_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("purchase_id", sa.String(length=64), nullable=False),
        sa.Column("purchaser_id", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("distance", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("liveness", sa.String(length=16), nullable=False),
        sa.Column("liveness_score", sa.Float(), nullable=True),
        sa.Column("capture_sha256", sa.String(length=64), nullable=False),
        sa.Column("enrolled_sha256", sa.String(length=64), nullable=False),
        sa.Column("backend", sa.String(length=32), nullable=False),
        sa.Column("driver", sa.String(length=32), nullable=False),
        sa.Column("decided_at", _time(), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=True),
        sa.Column("image_purged_at", _time(), nullable=True),
        sa.PrimaryKeyConstraint("decision_id", name=op.f("pk_cheque_face_decisions")),
    )
    op.create_index(
        op.f("ix_cheque_face_decisions_purchase_id"),
        "cheque_face_decisions",
        ["purchase_id"],
        unique=False,
    )
    op.create_table(
        "cheque_incidents",
        sa.Column(
            "incident_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("branch", sa.String(length=64), nullable=False),
        sa.Column("terminal_id", sa.String(length=128), nullable=False),
        sa.Column("purchase_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("opened_at", _time(), nullable=False),
        sa.Column("resolved_at", _time(), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_cheque_incidents")),
    )
    op.create_index(
        "ix_cheque_incidents_branch_resolved",
        "cheque_incidents",
        ["branch", "resolved_at"],
        unique=False,
    )
    op.create_table(
        "cheque_leaves",
        sa.Column(
            "leaf_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("purchase_id", sa.String(length=64), nullable=False),
        sa.Column("book_id", sa.BigInteger(), nullable=False),
        sa.Column("prefix", sa.String(length=6), nullable=False),
        sa.Column("serial", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("void_reason", sa.String(length=16), nullable=True),
        sa.Column("ocr_serial", sa.String(length=8), nullable=True),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", _time(), nullable=False),
        sa.CheckConstraint(
            "(state = 'voided' AND void_reason IS NOT NULL AND void_reason IN ('spoiled', 'retained', 'wrong_stock')) OR (state <> 'voided' AND void_reason IS NULL)",
            name=op.f("ck_cheque_leaves_void_reason"),
        ),
        sa.CheckConstraint(
            "state IN ('allocated', 'printed', 'issued', 'voided', 'returned')",
            name=op.f("ck_cheque_leaves_state"),
        ),
        sa.PrimaryKeyConstraint("leaf_id", name=op.f("pk_cheque_leaves")),
    )
    op.create_index(
        op.f("ix_cheque_leaves_purchase_id"), "cheque_leaves", ["purchase_id"], unique=False
    )
    op.create_index(
        "ux_cheque_leaves_live_serial",
        "cheque_leaves",
        ["prefix", "serial"],
        unique=True,
        sqlite_where=sa.text("state <> 'returned'"),
        postgresql_where=sa.text("state <> 'returned'"),
    )
    op.create_table(
        "cheque_purchase_codes",
        sa.Column("code_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("salt", sa.String(length=32), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("issued_by", sa.String(length=200), nullable=False),
        sa.Column("issued_at", _time(), nullable=False),
        sa.Column("expires_at", _time(), nullable=False),
        sa.Column("used_at", _time(), nullable=True),
        sa.Column("used_by_purchase", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("code_id", name=op.f("pk_cheque_purchase_codes")),
    )
    op.create_index(
        op.f("ix_cheque_purchase_codes_account_id"),
        "cheque_purchase_codes",
        ["account_id"],
        unique=False,
    )
    op.create_table(
        "cheque_purchasers",
        sa.Column("purchaser_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("id_number", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("face_image", sa.LargeBinary(), nullable=True),
        sa.Column("face_descriptor", sa.Text(), nullable=True),
        sa.Column("face_sha256", sa.String(length=64), nullable=True),
        sa.Column("face_backend", sa.String(length=32), nullable=True),
        sa.Column("enrolled_at", _time(), nullable=True),
        sa.Column("enrolled_by", sa.String(length=200), nullable=True),
        sa.Column("failed_faces", sa.Integer(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("locked_at", _time(), nullable=True),
        sa.PrimaryKeyConstraint("purchaser_id", name=op.f("pk_cheque_purchasers")),
    )
    op.create_index(
        "ux_cheque_purchasers_account_id_number",
        "cheque_purchasers",
        ["account_id", "id_number"],
        unique=True,
    )
    op.create_table(
        "cheque_purchases",
        sa.Column("purchase_id", sa.String(length=64), nullable=False),
        sa.Column("terminal_id", sa.String(length=128), nullable=False),
        sa.Column("branch", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("purchaser_id", sa.String(length=64), nullable=True),
        sa.Column("buyer_name", sa.String(length=60), nullable=True),
        sa.Column("id_number", sa.String(length=18), nullable=True),
        sa.Column("id_photo", sa.LargeBinary(), nullable=True),
        sa.Column("id_photo_format", sa.String(length=8), nullable=True),
        sa.Column("face_outcome", sa.String(length=16), nullable=False),
        sa.Column("face_reason", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("fee_total_minor", sa.BigInteger(), nullable=False),
        sa.Column("fee_entry_id", sa.BigInteger(), nullable=True),
        sa.Column("refund_minor", sa.BigInteger(), nullable=False),
        sa.Column("refund_entry_id", sa.BigInteger(), nullable=True),
        sa.Column("balance_after_minor", sa.BigInteger(), nullable=True),
        sa.Column("available_after_minor", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("purchase_id", name=op.f("pk_cheque_purchases")),
    )
    op.create_index(
        "ix_cheque_purchases_account_created",
        "cheque_purchases",
        ["account_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_cheque_purchases_branch_updated",
        "cheque_purchases",
        ["branch", "updated_at"],
        unique=False,
    )
    op.create_index(
        "ix_cheque_purchases_terminal_state",
        "cheque_purchases",
        ["terminal_id", "state"],
        unique=False,
    )
    op.create_table(
        "cheque_stock_ranges",
        sa.Column(
            "range_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("terminal_id", sa.String(length=128), nullable=False),
        sa.Column("book_type", sa.String(length=32), nullable=False),
        sa.Column("first_serial", sa.BigInteger(), nullable=False),
        sa.Column("last_serial", sa.BigInteger(), nullable=False),
        sa.Column("loaded_by", sa.String(length=200), nullable=False),
        sa.Column("loaded_at", _time(), nullable=False),
        sa.Column("unloaded_at", _time(), nullable=True),
        sa.CheckConstraint(
            "first_serial >= 1 AND last_serial <= 99999999 AND first_serial <= last_serial",
            name=op.f("ck_cheque_stock_ranges_serials"),
        ),
        sa.PrimaryKeyConstraint("range_id", name=op.f("pk_cheque_stock_ranges")),
    )
    op.create_index(
        op.f("ix_cheque_stock_ranges_terminal_id"),
        "cheque_stock_ranges",
        ["terminal_id"],
        unique=False,
    )
    op.create_table(
        "cheque_type_rules",
        sa.Column("account_type", sa.String(length=32), nullable=False),
        sa.Column("book_type", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("account_type", "book_type", name=op.f("pk_cheque_type_rules")),
    )


def downgrade() -> None:
    op.drop_table("cheque_type_rules")
    op.drop_index(op.f("ix_cheque_stock_ranges_terminal_id"), table_name="cheque_stock_ranges")
    op.drop_table("cheque_stock_ranges")
    op.drop_index("ix_cheque_purchases_terminal_state", table_name="cheque_purchases")
    op.drop_index("ix_cheque_purchases_branch_updated", table_name="cheque_purchases")
    op.drop_index("ix_cheque_purchases_account_created", table_name="cheque_purchases")
    op.drop_table("cheque_purchases")
    op.drop_index("ux_cheque_purchasers_account_id_number", table_name="cheque_purchasers")
    op.drop_table("cheque_purchasers")
    op.drop_index(op.f("ix_cheque_purchase_codes_account_id"), table_name="cheque_purchase_codes")
    op.drop_table("cheque_purchase_codes")
    op.drop_index(
        "ux_cheque_leaves_live_serial",
        table_name="cheque_leaves",
        sqlite_where=sa.text("state <> 'returned'"),
        postgresql_where=sa.text("state <> 'returned'"),
    )
    op.drop_index(op.f("ix_cheque_leaves_purchase_id"), table_name="cheque_leaves")
    op.drop_table("cheque_leaves")
    op.drop_index("ix_cheque_incidents_branch_resolved", table_name="cheque_incidents")
    op.drop_table("cheque_incidents")
    op.drop_index(op.f("ix_cheque_face_decisions_purchase_id"), table_name="cheque_face_decisions")
    op.drop_table("cheque_face_decisions")
    op.drop_table("cheque_config")
    op.drop_index(op.f("ix_cheque_books_purchase_id"), table_name="cheque_books")
    op.drop_table("cheque_books")
    op.drop_table("cheque_book_types")
    op.drop_table("cheque_audit")
    op.drop_table("cheque_accounts")
