"""Tables of tube transactions, on the server's one metadata (migration ``0006_tube``).

The server's record of each transaction is the business truth; the terminal's journal is
only how it gets its own part to an end. Amounts are integers of the asset's smallest unit
(as in the ledger), so neither backend rounds.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from branchline.server.storage.schema import UtcDateTime, metadata

ID = 64
SERIAL = BigInteger().with_variant(Integer(), "sqlite")

tube_transactions = Table(
    "tube_transactions",
    metadata,
    # The terminal's UUID: unique across terminals (a second terminal cannot take it).
    Column("txn_id", String(ID), primary_key=True),
    Column("terminal_id", String(128), nullable=False),
    Column("branch", String(ID), nullable=False),
    # deposit, withdrawal
    Column("kind", String(16), nullable=False),
    # open, in_transit, received, counted, dispatched, delivered, disputed, returning;
    # final: posted, returned, reversed, canceled, handed_to_teller
    Column("state", String(24), nullable=False),
    # A terminal event whose ledger call is under way (confirm, cancel, reverse): other
    # changes wait for it, so a hold is never released while the back office sends goods.
    Column("pending", String(16), nullable=True),
    Column("customer_id", String(ID), nullable=False),
    Column("account_id", String(ID), nullable=False),
    # SHA-256 of what was opened (kind, account, asset, rate version): a txn_id reused
    # for anything else is refused.
    Column("open_hash", String(64), nullable=False),
    # What the customer declared (deposit) or asked for (withdrawal): cash, metal, bill.
    Column("requested_kind", String(8), nullable=False),
    Column("requested_currency", String(3), nullable=False),
    Column("requested_minor", BigInteger, nullable=False),
    Column("requested_bill_id", String(ID), nullable=True),
    Column("requested_instrument", String(32), nullable=True),
    Column("requested_maturity", String(10), nullable=True),
    # What the back office counted (deposit, from COUNTED on).
    Column("counted_kind", String(8), nullable=True),
    Column("counted_currency", String(3), nullable=True),
    Column("counted_minor", BigInteger, nullable=True),
    Column("counted_bill_id", String(ID), nullable=True),
    Column("counted_instrument", String(32), nullable=True),
    Column("counted_maturity", String(10), nullable=True),
    # The quote fixed at open (recomputed for the counted amount at the same version).
    Column("rate_version", BigInteger, nullable=True),
    Column("rate", String(32), nullable=False),
    Column("account_currency", String(3), nullable=False),
    Column("account_minor", BigInteger, nullable=False),
    # uint32 on the wire: BigInteger, as Integer is signed 32-bit on PostgreSQL.
    Column("carrier_id", BigInteger, nullable=True),
    Column("hold_id", String(32), nullable=True),
    Column("entry_id", BigInteger, nullable=True),
    # In the account's currency, smallest units.
    Column("balance_after_minor", BigInteger, nullable=True),
    Column("available_after_minor", BigInteger, nullable=True),
    Column("note", Text, nullable=False),
    Column("reason", String(ID), nullable=False),
    Column("incident_id", BigInteger, nullable=True),
    Column("pan_masked", String(32), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # terminal:<id>, teller:<id>, server
    Column("updated_by", String(200), nullable=False),
)
# The back office's list: a branch's transactions in a state, oldest first.
Index(
    "ix_tube_transactions_branch_state_created_at",
    tube_transactions.c.branch,
    tube_transactions.c.state,
    tube_transactions.c.created_at,
)
# A terminal's unfinished transactions (tube_query with no txn_id).
Index(
    "ix_tube_transactions_terminal_id_state",
    tube_transactions.c.terminal_id,
    tube_transactions.c.state,
)
# The stale sweep: unfinished transactions by their last change.
Index(
    "ix_tube_transactions_state_updated_at",
    tube_transactions.c.state,
    tube_transactions.c.updated_at,
)

# Append-only: TubeDesk.Watch on every replica tails it by id.
tube_events = Table(
    "tube_events",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("txn_id", String(ID), nullable=False),
    Column("terminal_id", String(128), nullable=False),
    Column("branch", String(ID), nullable=False),
    # The state the transaction went to (or stayed in).
    Column("state", String(24), nullable=False),
    Column("event", String(32), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("detail", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    sqlite_autoincrement=True,
)
Index("ix_tube_events_branch_id", tube_events.c.branch, tube_events.c.id)
Index("ix_tube_events_txn_id_id", tube_events.c.txn_id, tube_events.c.id)

# Problems for people: a lost carrier, a reversal, a dispute, a stale transaction.
tube_incidents = Table(
    "tube_incidents",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("branch", String(ID), nullable=False),
    Column("terminal_id", String(128), nullable=False),
    Column("txn_id", String(ID), nullable=False),
    Column("kind", String(ID), nullable=False),
    Column("detail", Text, nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime, nullable=True),
    Column("resolved_by", String(200), nullable=True),
    Column("resolution", Text, nullable=True),
    sqlite_autoincrement=True,
)
# A branch's open incidents (resolved_at IS NULL), in order.
Index(
    "ix_tube_incidents_branch_resolved_at_id",
    tube_incidents.c.branch,
    tube_incidents.c.resolved_at,
    tube_incidents.c.id,
)
Index("ix_tube_incidents_txn_id_kind", tube_incidents.c.txn_id, tube_incidents.c.kind)

# The back office's video on the customer's screen (migration ``0011_calls_media``): the
# desk's and the terminal's WebRTC signalling for a transaction, relayed, never read.
tube_desk_signals = Table(
    "tube_desk_signals",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("txn_id", String(ID), nullable=False),
    Column("terminal_id", String(128), nullable=False),
    # desk or terminal
    Column("sender", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("payload", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    sqlite_autoincrement=True,
)
Index("ix_tube_desk_signals_txn_id_id", tube_desk_signals.c.txn_id, tube_desk_signals.c.id)
Index(
    "ix_tube_desk_signals_terminal_id_id",
    tube_desk_signals.c.terminal_id,
    tube_desk_signals.c.id,
)
