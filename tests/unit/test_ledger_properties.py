"""Property: any sequence of postings — accepted or refused — leaves the books consistent.

Every entry's legs sum to zero per currency, every cached balance equals the sum of its
legs and its last running balance, held equals the active holds, and no customer account
is overdrawn (``statements.audit``); and the totals over all accounts are zero per asset.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from branchline.common.errors import DomainError
from branchline.server.ledger import accounts as acc
from branchline.server.ledger.adapter import EmbeddedLedger
from branchline.server.ledger.money import ASSETS, Asset, from_minor, round_half_up
from branchline.server.ledger.requests import DepositRequest, ReversalRequest, WithdrawalRequest
from branchline.server.ledger.schema import accounts
from branchline.server.ledger.statements import audit
from branchline.server.ledger.transfers import post_transfer
from tests.unit.ledger_support import BRANCH, T0, open_account, ref

ASSET_CODES = ("CNY", "USD", "XAU")
_counter = itertools.count()

amount_minor = st.integers(min_value=1, max_value=50_000_000)
percent = st.integers(min_value=1, max_value=110)
operation = st.one_of(
    st.tuples(st.just("deposit"), st.integers(0, 3), st.sampled_from(ASSET_CODES), amount_minor),
    # Withdrawals and transfers take a percentage of what is available, so that both
    # successes and overdraft refusals are common.
    st.tuples(
        st.just("withdraw"),
        st.integers(0, 3),
        st.sampled_from(ASSET_CODES),
        percent,
        st.sampled_from(("capture", "release", "leave")),
    ),
    st.tuples(st.just("reverse"), st.integers(0, 1000)),
    st.tuples(st.just("transfer"), st.booleans(), percent),
    st.tuples(st.just("rates"), st.integers(650, 800)),
)


def _setup(engine: Engine) -> tuple[EmbeddedLedger, list[str]]:
    core = EmbeddedLedger(engine)
    ids = [
        open_account(engine, "c1", "cash", "CNY").account_id,
        open_account(engine, "c1", "cash", "USD").account_id,
        open_account(engine, "c1", "metal", "XAU").account_id,
        open_account(engine, "c2", "cash", "CNY").account_id,
    ]
    core.set_rates({"USD": ("7.10", "7.20"), "XAU": ("560", "566")}, "test", T0)
    # Start with money everywhere, so withdrawals and transfers often succeed.
    for account_id, (code, amount) in zip(
        ids, [("CNY", "5000"), ("USD", "800"), ("XAU", "20"), ("CNY", "3000")], strict=True
    ):
        core.post_deposit(
            DepositRequest(
                ref(f"seed-{account_id}"),
                account_id=account_id,
                branch=BRANCH,
                currency=code,
                amount=amount,
                now=T0,
            )
        )
    return core, ids


def _apply(core: EmbeddedLedger, ids: list[str], op: tuple, entries: list[int]) -> None:  # type: ignore[type-arg]
    n = next(_counter)
    rates = core.current_rates()
    assert rates is not None
    kind = op[0]
    if kind == "deposit":
        _, idx, code, minor = op
        posting = core.post_deposit(
            DepositRequest(
                ref(f"d{n}"),
                account_id=ids[idx],
                branch=BRANCH,
                currency=code,
                amount=from_minor(minor, ASSETS[code]),
                rate_version=rates.version_id,
                now=T0,
            )
        )
        entries.append(posting.entry_id)
    elif kind == "withdraw":
        _, idx, code, pct, end = op
        account = acc.get_account(core.engine, ids[idx])
        assert account is not None
        wanted = _share(account.available, pct, ASSETS[account.currency])
        if code != account.currency:
            wanted = core.quote(account.currency, code, wanted, "from", T0).to_amount
        hold = core.authorise_withdrawal(
            WithdrawalRequest(
                ref(f"w{n}"),
                account_id=ids[idx],
                branch=BRANCH,
                currency=code,
                amount=wanted,
                rate_version=rates.version_id,
                now=T0,
            )
        )
        if end == "capture":
            entries.append(core.post_withdrawal(ref(f"c{n}"), hold.hold_id, T0).entry_id)
        elif end == "release":
            core.release_hold(hold.hold_id, "walked away", T0)
    elif kind == "reverse" and entries:
        core.reverse(ReversalRequest(ref(f"r{n}"), entries[op[1] % len(entries)], "test", T0))
    elif kind == "transfer":
        _, forward, pct = op
        a, b = (ids[0], ids[3]) if forward else (ids[3], ids[0])
        source = acc.get_account(core.engine, a)
        assert source is not None
        amount = _share(source.available, pct, ASSETS["CNY"])
        post_transfer(
            core.engine,
            ref(f"t{n}"),
            [(a, "CNY", -amount), (b, "CNY", amount)],
            "move",
            T0,
            core.settings,
        )
    elif kind == "rates":
        bid = Decimal(op[1]) / 100
        core.set_rates({"USD": (bid, bid + Decimal("0.1"))}, "test", T0)


def _share(available: Decimal, pct: int, of: Asset) -> Decimal:
    return max(round_half_up(available * pct / 100, of), of.quantum)


def _check(engine: Engine) -> None:
    assert audit(engine) == []
    totals: dict[str, int] = defaultdict(int)
    with engine.connect() as conn:
        for row in conn.execute(select(accounts.c.currency, accounts.c.balance_minor)):
            totals[row.currency] += int(row.balance_minor)
    assert {c: t for c, t in totals.items() if t} == {}


def _run(engine: Engine, ops: list[tuple]) -> None:  # type: ignore[type-arg]
    core, ids = _setup(engine)
    entries: list[int] = []
    for op in ops:
        try:
            _apply(core, ids, op, entries)
        except DomainError:
            pass  # refused (overdraft, too small, reversal of a moved entry): must change nothing
        _check(engine)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operation, min_size=2, max_size=14))
def test_random_postings_keep_the_books_balanced(engine: Engine, ops: list[tuple]) -> None:  # type: ignore[type-arg]
    _run(engine, ops)


def test_internal_accounts_mirror_customer_ones(engine: Engine) -> None:
    """A fixed sequence, checked by hand: the vault holds what the customers deposited."""
    _run(engine, [("deposit", 0, "CNY", 10_000), ("deposit", 0, "USD", 10_000)])
    vault = acc.get_account(engine, acc.internal_account_id(acc.VAULT_CASH, BRANCH, "USD"))
    assert vault is not None and vault.balance == Decimal("-900.00")  # 800 seeded + 100
