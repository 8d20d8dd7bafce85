"""Tables of the cheque-book sale (migration ``0011_cheques``), on the server's one metadata.

The bank's rules are data (book types, which account types may buy them, accounts,
purchasers, methods); the sale's records are purchases, their books and leaves. The serial
invariant lives in the database: a leaf's state and void reason are checked together, and at
most one leaf of a (prefix, serial) is not ``returned`` (a partial unique index), so a serial
is never issued twice nor both issued and voided.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    text,
)

from branchline.server.storage.schema import UtcDateTime, metadata

ID = 64
SERIAL = BigInteger().with_variant(Integer(), "sqlite")

LEAF_STATES = ("allocated", "printed", "issued", "voided", "returned")
VOID_REASONS = ("spoiled", "retained", "wrong_stock")

# Bank-wide settings: bank_name, bank_code, stop_sale, method.card_pin, method.purchase_code,
# code_ttl_hours, image_retention_days, face_max_attempts.
cheque_config = Table(
    "cheque_config",
    metadata,
    Column("key", String(ID), primary_key=True),
    Column("value", String(200), nullable=False),
)

cheque_book_types = Table(
    "cheque_book_types",
    metadata,
    Column("book_type", String(32), primary_key=True),
    Column("name", String(80), nullable=False),
    # The type/bank prefix of the numbers (0-6 digits or capital letters).
    Column("prefix", String(6), nullable=False),
    Column("leaves_per_book", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("printing_cost_minor", BigInteger, nullable=False),
    Column("handling_fee_minor", BigInteger, nullable=False),
    # day, week, month, year
    Column("period", String(8), nullable=False),
    Column("period_limit", Integer, nullable=False),
    # False: the bank stopped selling this type.
    Column("on_sale", Boolean, nullable=False),
    CheckConstraint("leaves_per_book BETWEEN 1 AND 100", name="leaves"),
    CheckConstraint("period_limit >= 0", name="limit"),
)

# Which account types may buy which book types (a row = allowed).
cheque_type_rules = Table(
    "cheque_type_rules",
    metadata,
    Column("account_type", String(32), primary_key=True),
    Column("book_type", String(32), primary_key=True),
)

cheque_accounts = Table(
    "cheque_accounts",
    metadata,
    # The ledger account the fee is paid from.
    Column("account_id", String(ID), primary_key=True),
    # Digits, as printed on the cheques and typed with a purchase code.
    Column("account_number", String(32), nullable=False, unique=True),
    Column("company_name", String(60), nullable=False),
    # basic, general, special, temporary
    Column("account_type", String(32), nullable=False),
    # active, frozen, dormant, closed
    Column("status", String(16), nullable=False),
    Column("stop_sale", Boolean, nullable=False),
    Column("branch", String(ID), nullable=False),
    Column("contact_name", String(60), nullable=False),
    Column("contact_phone", String(32), nullable=False),
    # Wrong purchase codes in a row; at the limit the method is locked for the account.
    Column("code_failures", Integer, nullable=False),
)

cheque_purchasers = Table(
    "cheque_purchasers",
    metadata,
    Column("purchaser_id", String(ID), primary_key=True),
    Column("account_id", String(ID), nullable=False),
    Column("id_number", String(18), nullable=False),
    Column("name", String(60), nullable=False),
    # The enrolled face (staff upload), its descriptor (JSON list of floats) and backend.
    Column("face_image", LargeBinary, nullable=True),
    Column("face_descriptor", Text, nullable=True),
    Column("face_sha256", String(64), nullable=True),
    Column("face_backend", String(32), nullable=True),
    Column("enrolled_at", UtcDateTime, nullable=True),
    Column("enrolled_by", String(200), nullable=True),
    # Failed face attempts since the last match (across purchases); locked at the limit.
    Column("failed_faces", Integer, nullable=False),
    Column("locked", Boolean, nullable=False),
    Column("locked_at", UtcDateTime, nullable=True),
    Index("ux_cheque_purchasers_account_id_number", "account_id", "id_number", unique=True),
)

cheque_purchase_codes = Table(
    "cheque_purchase_codes",
    metadata,
    Column("code_id", String(ID), primary_key=True),
    Column("account_id", String(ID), nullable=False, index=True),
    # scrypt(code, salt): the code itself is never stored.
    Column("salt", String(32), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("issued_by", String(200), nullable=False),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
    Column("used_by_purchase", String(ID), nullable=True),
)

cheque_stock_ranges = Table(
    "cheque_stock_ranges",
    metadata,
    Column("range_id", SERIAL, primary_key=True, autoincrement=True),
    Column("terminal_id", String(128), nullable=False, index=True),
    Column("book_type", String(32), nullable=False),
    Column("first_serial", BigInteger, nullable=False),
    Column("last_serial", BigInteger, nullable=False),
    Column("loaded_by", String(200), nullable=False),
    Column("loaded_at", UtcDateTime, nullable=False),
    Column("unloaded_at", UtcDateTime, nullable=True),
    CheckConstraint(
        "first_serial >= 1 AND last_serial <= 99999999 AND first_serial <= last_serial",
        name="serials",
    ),
)

cheque_purchases = Table(
    "cheque_purchases",
    metadata,
    Column("purchase_id", String(ID), primary_key=True),
    Column("terminal_id", String(128), nullable=False),
    Column("branch", String(ID), nullable=False),
    # started, id_checked, identified, ordered, printing; final: completed, canceled,
    # failed, locked
    Column("state", String(16), nullable=False),
    Column("method", String(16), nullable=False),
    Column("account_id", String(ID), nullable=False),
    Column("purchaser_id", String(ID), nullable=True),
    Column("buyer_name", String(60), nullable=True),
    Column("id_number", String(18), nullable=True),
    Column("id_photo", LargeBinary, nullable=True),
    Column("id_photo_format", String(8), nullable=True),
    Column("face_outcome", String(16), nullable=False),
    Column("face_reason", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("fee_total_minor", BigInteger, nullable=False),
    Column("fee_entry_id", BigInteger, nullable=True),
    Column("refund_minor", BigInteger, nullable=False),
    Column("refund_entry_id", BigInteger, nullable=True),
    Column("balance_after_minor", BigInteger, nullable=True),
    Column("available_after_minor", BigInteger, nullable=True),
    Column("reason", String(ID), nullable=False),
    Column("incident_id", BigInteger, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("updated_by", String(200), nullable=False),
    Index("ix_cheque_purchases_branch_updated", "branch", "updated_at"),
    Index("ix_cheque_purchases_terminal_state", "terminal_id", "state"),
    Index("ix_cheque_purchases_account_created", "account_id", "created_at"),
)

cheque_books = Table(
    "cheque_books",
    metadata,
    Column("book_id", SERIAL, primary_key=True, autoincrement=True),
    Column("purchase_id", String(ID), nullable=False, index=True),
    Column("book_type", String(32), nullable=False),
    Column("prefix", String(6), nullable=False),
    Column("first_serial", BigInteger, nullable=False),
    Column("last_serial", BigInteger, nullable=False),
    Column("fee_minor", BigInteger, nullable=False),
    # The fee of this book was given back (not issued complete).
    Column("refunded", Boolean, nullable=False),
)

cheque_leaves = Table(
    "cheque_leaves",
    metadata,
    Column("leaf_id", SERIAL, primary_key=True, autoincrement=True),
    Column("purchase_id", String(ID), nullable=False, index=True),
    Column("book_id", BigInteger, nullable=False),
    Column("prefix", String(6), nullable=False),
    Column("serial", BigInteger, nullable=False),
    Column("state", String(12), nullable=False),
    Column("void_reason", String(16), nullable=True),
    Column("ocr_serial", String(8), nullable=True),
    Column("job_id", BigInteger, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint(
        "state IN ('allocated', 'printed', 'issued', 'voided', 'returned')", name="state"
    ),
    CheckConstraint(
        "(state = 'voided' AND void_reason IS NOT NULL AND void_reason IN ('spoiled', 'retained', 'wrong_stock'))"
        " OR (state <> 'voided' AND void_reason IS NULL)",
        name="void_reason",
    ),
    # One live leaf per serial: a serial back in stock may be allocated again (new row).
    Index(
        "ux_cheque_leaves_live_serial",
        "prefix",
        "serial",
        unique=True,
        sqlite_where=text("state <> 'returned'"),
        postgresql_where=text("state <> 'returned'"),
    ),
)

cheque_face_decisions = Table(
    "cheque_face_decisions",
    metadata,
    Column("decision_id", SERIAL, primary_key=True, autoincrement=True),
    Column("purchase_id", String(ID), nullable=False, index=True),
    Column("purchaser_id", String(ID), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("distance", Float, nullable=True),
    Column("threshold", Float, nullable=False),
    Column("liveness", String(16), nullable=False),
    Column("liveness_score", Float, nullable=True),
    Column("capture_sha256", String(64), nullable=False),
    Column("enrolled_sha256", String(64), nullable=False),
    Column("backend", String(32), nullable=False),
    Column("driver", String(32), nullable=False),
    Column("decided_at", UtcDateTime, nullable=False),
    # The capture, kept only for the configured retention; then swept (NULL).
    Column("image", LargeBinary, nullable=True),
    Column("image_purged_at", UtcDateTime, nullable=True),
)

cheque_incidents = Table(
    "cheque_incidents",
    metadata,
    Column("incident_id", SERIAL, primary_key=True, autoincrement=True),
    Column("branch", String(ID), nullable=False),
    Column("terminal_id", String(128), nullable=False),
    Column("purchase_id", String(ID), nullable=False),
    # face_locked, media_jam, wrong_stock, not_taken, leaves_unaccounted, ...
    Column("kind", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime, nullable=True),
    Column("resolved_by", String(200), nullable=True),
    Column("resolution", Text, nullable=True),
    Index("ix_cheque_incidents_branch_resolved", "branch", "resolved_at"),
)

# Staff actions on the sale's data: enrol, stock, codes, unlock, rule edits.
cheque_audit = Table(
    "cheque_audit",
    metadata,
    Column("audit_id", SERIAL, primary_key=True, autoincrement=True),
    Column("actor", String(200), nullable=False),
    Column("action", String(32), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("detail", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
)
