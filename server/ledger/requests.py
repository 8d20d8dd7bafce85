"""The requests that move money, as frozen dataclasses.

One object per call, passed unchanged through ``CoreBanking`` (the protocol),
``EmbeddedLedger`` (the adapter) and the operation's module (``deposits``, ``holds``,
``reversals``), instead of the same keyword list written at every layer. Nothing is checked
here: the operation checks each field and refuses naming it (``deposit.amount``,
``withdrawal.bill_id`` ...), so a bank's own core behind the same protocol gets the same
objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from branchline.server.ledger.postings import Reference


@dataclass(frozen=True)
class BillDeposit:
    bill_id: str
    instrument: str  # e.g. bank_acceptance, commercial_acceptance
    maturity: date


@dataclass(frozen=True)
class DepositRequest:
    """Credit what arrived (cash, grams of metal, or a bill's face value) to an account.

    Into an account of another currency it is converted at ``rate_version``; ``quoted_at``
    is when the customer was shown that quote (default: ``now``).
    """

    reference: Reference
    account_id: str
    branch: str
    currency: str
    amount: object  # a decimal string, int or Decimal; floats are refused
    now: datetime
    rate_version: int | None = None
    bill: BillDeposit | None = None
    customer_id: str | None = None  # given: the account must be this customer's
    quoted_at: datetime | None = None


@dataclass(frozen=True)
class WithdrawalRequest:
    """Reserve (hold) a withdrawal of ``amount`` ``currency``: what the customer receives.

    From an account of another currency the debit is converted at ``rate_version``; from a
    bills account ``bill_id`` names the bill.
    """

    reference: Reference
    account_id: str
    branch: str
    currency: str
    amount: object
    now: datetime
    rate_version: int | None = None
    bill_id: str | None = None
    customer_id: str | None = None


@dataclass(frozen=True)
class ReversalRequest:
    """Post the opposite of entry ``entry_id``, once.

    With ``same_terminal`` only the terminal that posted the entry may reverse it.
    """

    reference: Reference
    entry_id: int
    reason: str
    now: datetime
    same_terminal: bool = False
