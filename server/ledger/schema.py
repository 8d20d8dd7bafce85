"""Tables of the embedded core banking (ledger) and the idempotency record.

No table holds a PAN: cards are keyed by a keyed hash of the PAN (``card_token``) and keep
only the masked PAN for people to read.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
)

from branchline.server.storage.schema import UtcDateTime, metadata

customers = Table(
    "customers",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

cards = Table(
    "cards",
    metadata,
    Column("card_token", String(64), primary_key=True),
    Column("pan_masked", String(32), nullable=False),
    Column("customer_id", String(64), ForeignKey("customers.customer_id"), nullable=False),
    # visa_pvv or ibm3624_offset
    Column("verification_method", String(32), nullable=False),
    Column("pvki", Integer, nullable=False),
    # The PVV or the IBM 3624 offset: derived from the PIN under the PVK, not the PIN.
    Column("verification_value", String(16), nullable=False),
    Column("pvk_name", String(64), nullable=False),
    Column("failed_attempts", Integer, nullable=False),
    Column("locked", Boolean, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Every request a terminal makes carries an idempotency key; the first answer is kept and
# returned for repeats, so a retry after a lost reply never acts twice.
request_results = Table(
    "request_results",
    metadata,
    Column("terminal_id", String(128), primary_key=True),
    Column("request_id", String(128), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("response", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)


# --- The money side (accounts, journal, holds, FX, bills): see ledger/money.py for units.
# Every amount is a signed integer of the asset's smallest unit (cents, yen, milligrams).

# SQLite autoincrements only an INTEGER primary key.
_SERIAL = BigInteger().with_variant(Integer(), "sqlite")

# Customer accounts (cash, metal, bills) belong to a customer; the bank's internal accounts
# (vault_cash, vault_metal, bills_custody, fx_position) to a branch. Balances are cached
# here and kept equal to the sum of the account's legs by every posting, under a row lock.
accounts = Table(
    "accounts",
    metadata,
    Column("account_id", String(64), primary_key=True),
    Column("customer_id", String(64), ForeignKey("customers.customer_id"), nullable=True),
    Column("branch", String(64), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("balance_minor", BigInteger, nullable=False),
    # Reserved by active withdrawal holds; available = balance - held.
    Column("held_minor", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)
Index("ix_accounts_customer_id", accounts.c.customer_id)

# The card's account for each (kind, currency): what a terminal posts to after card + PIN.
card_accounts = Table(
    "card_accounts",
    metadata,
    Column("card_token", String(64), ForeignKey("cards.card_token"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("account_id", String(64), ForeignKey("accounts.account_id"), nullable=False),
    Column("linked_at", UtcDateTime, nullable=False),
)

# One row per set_rates call; the rates of a version never change once written.
fx_rate_versions = Table(
    "fx_rate_versions",
    metadata,
    Column("version_id", _SERIAL, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    Column("effective_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # When the next version replaced this one; quotes on it expire a validity period later.
    Column("superseded_at", UtcDateTime, nullable=True),
    sqlite_autoincrement=True,
)

# Rates against the base currency (CNY per unit; per gram for metals), 8 decimals as
# integers (rate * 10^8) so neither backend rounds through a float.
fx_rates = Table(
    "fx_rates",
    metadata,
    Column(
        "version_id",
        BigInteger,
        ForeignKey("fx_rate_versions.version_id"),
        primary_key=True,
    ),
    Column("currency", String(3), primary_key=True),
    Column("bid_e8", BigInteger, nullable=False),
    Column("ask_e8", BigInteger, nullable=False),
)

# A journal entry: legs summing to zero per currency. (terminal_id, request_id) is the
# idempotency reference: the same transaction is never posted twice, even across replicas.
journal_entries = Table(
    "journal_entries",
    metadata,
    Column("entry_id", _SERIAL, primary_key=True, autoincrement=True),
    Column("terminal_id", String(128), nullable=False),
    Column("request_id", String(128), nullable=False),
    # SHA-256 of the request, so a reference reused for a different request is refused.
    Column("request_hash", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("description", String(200), nullable=False),
    # UNIQUE: an entry can be reversed once only, whatever races.
    Column(
        "reverses_entry_id",
        BigInteger,
        ForeignKey("journal_entries.entry_id"),
        nullable=True,
        unique=True,
    ),
    Column("rate_version_id", BigInteger, ForeignKey("fx_rate_versions.version_id"), nullable=True),
    Column("hold_id", String(32), nullable=True),
    Column("posted_at", UtcDateTime, nullable=False),
    UniqueConstraint("terminal_id", "request_id"),
    sqlite_autoincrement=True,
)

journal_legs = Table(
    "journal_legs",
    metadata,
    Column("leg_id", _SERIAL, primary_key=True, autoincrement=True),
    Column("entry_id", BigInteger, ForeignKey("journal_entries.entry_id"), nullable=False),
    Column("account_id", String(64), ForeignKey("accounts.account_id"), nullable=False),
    Column("currency", String(3), nullable=False),
    # Credit positive: a customer's deposit is +, the vault's matching leg is -.
    Column("amount_minor", BigInteger, nullable=False),
    # The account's balance right after this leg: the statement's running balance.
    Column("balance_after_minor", BigInteger, nullable=False),
    sqlite_autoincrement=True,
)
Index("ix_journal_legs_account_id_leg_id", journal_legs.c.account_id, journal_legs.c.leg_id)
Index("ix_journal_legs_entry_id", journal_legs.c.entry_id)

# Authorised withdrawals: the amount is reserved until captured (posted), released or
# expired. The dispensed side and the rate version are fixed here, so the capture posts
# exactly what the customer was shown.
holds = Table(
    "holds",
    metadata,
    Column("hold_id", String(32), primary_key=True),
    Column("terminal_id", String(128), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("account_id", String(64), ForeignKey("accounts.account_id"), nullable=False),
    Column("branch", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("dispensed_currency", String(3), nullable=False),
    Column("dispensed_minor", BigInteger, nullable=False),
    Column("rate_version_id", BigInteger, ForeignKey("fx_rate_versions.version_id"), nullable=True),
    Column("bill_id", String(64), nullable=True),
    # active, captured, released, expired
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("closed_at", UtcDateTime, nullable=True),
    Column("entry_id", BigInteger, ForeignKey("journal_entries.entry_id"), nullable=True),
    Column("reason", String(200), nullable=True),
    UniqueConstraint("terminal_id", "request_id"),
)
Index("ix_holds_account_id_status", holds.c.account_id, holds.c.status)
Index("ix_holds_status_expires_at", holds.c.status, holds.c.expires_at)

# Negotiable instruments held in custody for customers; their face value is also the
# balance of the customer's bills account in that currency.
bill_holdings = Table(
    "bill_holdings",
    metadata,
    Column("bill_id", String(64), primary_key=True),
    Column("instrument", String(32), nullable=False),
    Column("customer_id", String(64), ForeignKey("customers.customer_id"), nullable=False),
    Column("account_id", String(64), ForeignKey("accounts.account_id"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("face_minor", BigInteger, nullable=False),
    Column("maturity", Date, nullable=False),
    # held, withdrawn
    Column("status", String(16), nullable=False),
    # The active withdrawal hold reserving it, if any.
    Column("hold_id", String(32), nullable=True),
    Column("deposit_entry_id", BigInteger, ForeignKey("journal_entries.entry_id"), nullable=False),
    Column(
        "withdrawal_entry_id", BigInteger, ForeignKey("journal_entries.entry_id"), nullable=True
    ),
    Column("updated_at", UtcDateTime, nullable=False),
)
Index("ix_bill_holdings_customer_id", bill_holdings.c.customer_id)
