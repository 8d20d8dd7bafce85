"""Legs on the bank's internal accounts, posted when the transaction commits.

Every withdrawal and deposit at a branch posts against the branch's vault (and a converted
one against its FX positions). Locked where the posting is made, the vault's row stayed
locked until the posting's transaction committed — for the group-commit applier, its whole
batch of up to 200 messages — so the batches of every replica posting at that branch took
turns on that one row (issue 17: 55 of 56 lock waits sampled with two replicas were
``SELECT … FROM accounts … FOR UPDATE``).

So a posting (``postings.write_entry``) locks, checks and writes only its customer accounts;
its legs on internal accounts (ids ``int:…``; they may go negative, so there is nothing to
check) are kept with the transaction (``storage.commit_order``, a log without an advisory
lock) and, just before it commits, ``_settle`` locks those accounts (in id order), inserts
the legs in the order they were posted, each with its running balance, and writes each
account's new balance in one UPDATE. The row is locked from there to the end of the commit,
before and outside the event logs' locks. A unit of work rolled back to its savepoint takes
its legs with it.

After the commit every invariant holds as before: entries balance, cached balances equal
their legs, running balances chain in leg id order (an account's legs are inserted under its
row lock; a customer account's legs are inserted at the posting under its lock, held to
the commit). Inside the posting transaction, until its commit, the entry's internal legs
and the internal accounts' new balances are not in the tables: ``pending`` gives an
entry's (``postings.entry_legs`` reads both), and a freshly posted ``Posting``'s internal
legs have no balance after (None). A failure here fails the commit: every message of the
batch is answered ``unavailable``, as for any failed commit.

Lock order: a transaction locks customer accounts while it works and internal ones only
here, in id order, and nothing locks an internal account first and then waits for a
customer's — so two transactions cannot deadlock on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

from sqlalchemy import Connection

from branchline.server.ledger import accounts as acc
from branchline.server.ledger.schema import accounts, journal_legs
from branchline.server.storage import commit_order
from branchline.server.storage.fastpath import execute
from branchline.server.storage.prebuilt import key, update_by_key

_INSERT_LEGS = journal_legs.insert()


def post_at_commit(conn: Connection, rows: Sequence[dict[str, object]]) -> None:
    """Insert these legs (``entry_id``, ``account_id``, ``currency``, ``amount_minor``; the
    accounts internal ones) when ``conn``'s transaction commits."""
    commit_order.append(conn, LEGS, rows)


def pending(conn: Connection, entry_id: int) -> list[SimpleNamespace]:
    """The legs of ``entry_id`` still waiting for the commit (``balance_after_minor`` None)."""
    return [
        SimpleNamespace(**row, balance_after_minor=None)
        for row in commit_order.appended(conn, LEGS)
        if row["entry_id"] == entry_id
    ]


def _settle(conn: Connection, rows: commit_order.Rows) -> None:
    """At commit: lock the accounts, insert the legs with running balances, write balances."""
    locked = acc.lock_accounts(conn, (row["account_id"] for row in rows))
    balance = {account_id: int(row.balance_minor) for account_id, row in locked.items()}
    legs = []
    for row in rows:
        balance[row["account_id"]] += int(row["amount_minor"])
        legs.append({**row, "balance_after_minor": balance[row["account_id"]]})
    execute(conn, _INSERT_LEGS, legs)
    for account_id, minor in balance.items():
        execute(
            conn,
            update_by_key(accounts, "account_id"),
            {"balance_minor": minor, key("account_id"): account_id},
        )


LEGS = commit_order.EventLog("journal_legs (internal accounts)", None, _settle)
