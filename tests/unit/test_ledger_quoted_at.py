"""post_deposit(quoted_at=...): a deposit quoted at one time and posted later, after newer
rates, is posted at the quoted rate version as long as that version was usable when quoted."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from branchline.common.errors import FailedPrecondition, InvalidArgument
from branchline.server.ledger.adapter import EmbeddedLedger
from branchline.server.ledger.requests import DepositRequest
from tests.unit import ledger_support
from tests.unit.ledger_support import BRANCH, T0, open_account, ref

ledger = ledger_support.ledger

RATES = {"USD": ("7.1000", "7.2000")}


def test_the_quoted_version_posts_long_after_it_was_replaced(ledger: EmbeddedLedger) -> None:
    account = open_account(ledger.engine)
    v1 = ledger.set_rates(RATES, "feed", T0).version_id
    quoted_at = T0 + timedelta(seconds=10)
    ledger.set_rates({"USD": ("6.9", "7.0")}, "feed", T0 + timedelta(minutes=1))
    later = T0 + timedelta(minutes=40)  # far past rate_validity after the change
    common = dict(account_id=account.account_id, branch=BRANCH, currency="USD", amount="100")
    with pytest.raises(FailedPrecondition) as stale:
        ledger.post_deposit(DepositRequest(ref(1), now=later, rate_version=v1, **common))  # type: ignore[arg-type]
    assert stale.value.code == "rate_expired"
    posted = ledger.post_deposit(
        DepositRequest(
            ref(2),
            now=later,
            rate_version=v1,
            quoted_at=quoted_at,
            **common,  # type: ignore[arg-type]
        )
    )
    assert posted.rate_version == v1 and posted.posted_at == later
    assert posted.leg(account.account_id).amount == Decimal("710.00")
    # A repeat under the same reference replays it, quoted_at or not.
    again = ledger.post_deposit(
        DepositRequest(ref(2), now=later, rate_version=v1, quoted_at=quoted_at, **common)  # type: ignore[arg-type]
    )
    assert again.replayed and again.entry_id == posted.entry_id


def test_quoted_at_does_not_revive_a_version_stale_when_quoted(ledger: EmbeddedLedger) -> None:
    account = open_account(ledger.engine)
    v1 = ledger.set_rates(RATES, "feed", T0).version_id
    ledger.set_rates({"USD": ("6.9", "7.0")}, "feed", T0 + timedelta(minutes=1))
    with pytest.raises(FailedPrecondition) as caught:
        ledger.post_deposit(
            DepositRequest(
                ref(1),
                account_id=account.account_id,
                branch=BRANCH,
                currency="USD",
                amount="100",
                now=T0 + timedelta(minutes=10),
                rate_version=v1,
                quoted_at=T0 + timedelta(minutes=5),  # 4 minutes after v1 was replaced
            )
        )
    assert caught.value.code == "rate_expired"


def test_quoted_at_after_the_posting_or_naive_is_refused(ledger: EmbeddedLedger) -> None:
    account = open_account(ledger.engine)
    v1 = ledger.set_rates(RATES, "feed", T0).version_id
    for quoted_at in (T0 + timedelta(minutes=1), T0.replace(tzinfo=None)):
        with pytest.raises(InvalidArgument, match=r"deposit\.quoted_at"):
            ledger.post_deposit(
                DepositRequest(
                    ref(1),
                    account_id=account.account_id,
                    branch=BRANCH,
                    currency="USD",
                    amount="100",
                    now=T0,
                    rate_version=v1,
                    quoted_at=quoted_at,
                )
            )
