"""FX rates: versions of bid/ask against the base currency (CNY), and quotes on them.

Conventions:
- A rate is the price of one unit (one gram for XAU/XAG) in CNY, 8 decimals at most.
- The customer SELLS to the bank at the bid and BUYS from the bank at the ask: what the
  customer gives is valued at its bid, what the customer receives at its ask (CNY is 1/1).
  A cross (USD → EUR) goes through CNY: to = from * bid(USD) / ask(EUR).
- The one conversion is computed exactly and rounded once, half-up, to the minor unit of
  the side not given. Both sides are reproducible from the rate version and the amount.
- ``set_rates`` records a new version: the previous rates overlaid with the given ones.
  A version is usable for posting while current, and for ``rate_validity`` (60 s by
  default) after a newer one replaced it; later than that the posting is refused and the
  terminal quotes again. A posting names the version, so the rate shown is the rate posted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Literal

from sqlalchemy import Connection, Engine, select, text, update

from branchline.common.errors import FailedPrecondition, InvalidArgument, NotFound
from branchline.server.delivery.bus import TOPIC_RATES, signal_in_transaction
from branchline.server.ledger.accounts import check_identifier
from branchline.server.ledger.money import (
    BASE_CURRENCY,
    Asset,
    LedgerSettings,
    asset,
    format_amount,
    parse_amount,
    round_half_up,
    to_decimal,
)
from branchline.server.ledger.schema import fx_rate_versions, fx_rates
from branchline.server.storage import write_transaction
from branchline.server.storage.engine import connect

RATE_DECIMALS = 8
RATE_SCALE = 10**RATE_DECIMALS
MAX_RATE = Decimal("1000000")
# Arbitrary constant naming the "FX rates" advisory lock on PostgreSQL ("brlnfxrt").
RATES_LOCK_KEY = 0x6272_6C6E_6678_7274

# Which side of the exchange ``amount`` is on: what the customer gives, or receives.
Side = Literal["from", "to"]
SIDES: tuple[Side, ...] = ("from", "to")

RateInput = tuple[Decimal | str | int, Decimal | str | int]


@dataclass(frozen=True)
class Rate:
    currency: str
    bid: Decimal  # the bank buys one unit for this many CNY
    ask: Decimal  # the bank sells one unit for this many CNY


@dataclass(frozen=True)
class RateTable:
    version_id: int
    source: str
    effective_at: datetime
    created_at: datetime
    superseded_at: datetime | None
    rates: Mapping[str, Rate]
    base: str = BASE_CURRENCY


@dataclass(frozen=True)
class Quote:
    rate_version: int
    from_currency: str  # what the customer gives
    to_currency: str  # what the customer receives
    side: Side  # which of the two amounts the caller fixed
    from_rate: Decimal  # bid of from_currency in CNY (1 for CNY)
    to_rate: Decimal  # ask of to_currency in CNY (1 for CNY)
    rate: Decimal  # to per from, for display (8 decimals, half-up)
    from_amount: Decimal
    to_amount: Decimal
    quoted_at: datetime


def _parse_rate(value: object, field_name: str) -> Decimal:
    rate = to_decimal(value, field_name)
    if rate <= 0:
        raise InvalidArgument(field_name, f"{rate} must be more than zero", reason="invalid_rate")
    if rate > MAX_RATE:
        raise InvalidArgument(field_name, f"{rate} is over {MAX_RATE}", reason="invalid_rate")
    if rate.quantize(Decimal(1).scaleb(-RATE_DECIMALS)) != rate:
        raise InvalidArgument(
            field_name, f"{rate} has more than {RATE_DECIMALS} decimals", reason="invalid_rate"
        )
    return rate


def _e8(rate: Decimal) -> int:
    return int(rate.scaleb(RATE_DECIMALS))


def _from_e8(value: int) -> Decimal:
    rate = Decimal(value).scaleb(-RATE_DECIMALS).normalize()
    # normalize() writes 100 as 1E+2; keep plain digits for people and JSON.
    return rate.quantize(Decimal(1)) if rate == rate.to_integral_value() else rate


def validate_rates(rates: Mapping[str, RateInput]) -> dict[str, Rate]:
    if not rates:
        raise InvalidArgument("rates", "at least one currency is required")
    checked: dict[str, Rate] = {}
    for code, pair in rates.items():
        of = asset(code, f"rates[{code!r}]")
        if of.code == BASE_CURRENCY:
            raise InvalidArgument(
                f"rates[{code!r}]",
                f"the base currency {BASE_CURRENCY} is 1 by definition",
                reason="invalid_rate",
            )
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise InvalidArgument(f"rates[{code!r}]", "expected (bid, ask)", reason="invalid_rate")
        bid = _parse_rate(pair[0], f"rates[{of.code}].bid")
        ask = _parse_rate(pair[1], f"rates[{of.code}].ask")
        if bid > ask:
            raise InvalidArgument(
                f"rates[{of.code}]", f"bid {bid} is above ask {ask}", reason="invalid_rate"
            )
        checked[of.code] = Rate(of.code, bid, ask)
    return checked


def set_rates(
    engine: Engine,
    rates: Mapping[str, RateInput],
    source: str,
    now: datetime,
    effective_at: datetime | None = None,
) -> RateTable:
    """Record a new version: the current rates with ``rates`` (code → (bid, ask)) replaced."""
    checked = validate_rates(rates)
    check_identifier(source, "rates.source")
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            # Versions are made one at a time, so each supersedes exactly the one before.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RATES_LOCK_KEY})
        previous = _latest(conn)
        merged = dict(previous.rates) if previous is not None else {}
        merged.update(checked)
        version_id = conn.execute(
            fx_rate_versions.insert().values(
                source=source,
                effective_at=effective_at or now,
                created_at=now,
                superseded_at=None,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        conn.execute(
            fx_rates.insert(),
            [
                {
                    "version_id": version_id,
                    "currency": r.currency,
                    "bid_e8": _e8(r.bid),
                    "ask_e8": _e8(r.ask),
                }
                for r in merged.values()
            ],
        )
        if previous is not None:
            conn.execute(
                update(fx_rate_versions)
                .where(fx_rate_versions.c.version_id == previous.version_id)
                .values(superseded_at=now)
            )
        table = load_rate_table(conn, int(version_id))
        # Every replica's rate feed pushes it at once (whichever process set it).
        signal_in_transaction(conn, TOPIC_RATES)
    assert table is not None
    return table


def _latest(conn: Connection) -> RateTable | None:
    latest = conn.execute(
        select(fx_rate_versions.c.version_id)
        .order_by(fx_rate_versions.c.version_id.desc())
        .limit(1)
    ).scalar()
    return load_rate_table(conn, int(latest)) if latest is not None else None


def load_rate_table(conn: Connection, version_id: int) -> RateTable | None:
    head = conn.execute(
        select(fx_rate_versions).where(fx_rate_versions.c.version_id == version_id)
    ).first()
    if head is None:
        return None
    rows = conn.execute(
        select(fx_rates).where(fx_rates.c.version_id == version_id).order_by(fx_rates.c.currency)
    ).all()
    return RateTable(
        version_id=int(head.version_id),
        source=head.source,
        effective_at=head.effective_at,
        created_at=head.created_at,
        superseded_at=head.superseded_at,
        rates={r.currency: Rate(r.currency, _from_e8(r.bid_e8), _from_e8(r.ask_e8)) for r in rows},
    )


def current_rates(engine: Engine) -> RateTable | None:
    with connect(engine) as conn:
        return _latest(conn)


def rates_changed_since(engine: Engine, version_id: int) -> RateTable | None:
    """The current table when it is newer than ``version_id`` (what a terminal has), else None."""
    with connect(engine) as conn:
        latest = _latest(conn)
    if latest is None or latest.version_id <= version_id:
        return None
    return latest


def usable_rate_table(
    conn: Connection, version_id: object, now: datetime, settings: LedgerSettings
) -> RateTable:
    """The version a quote was made on, refused once it has been replaced for too long."""
    if isinstance(version_id, bool) or not isinstance(version_id, int) or version_id <= 0:
        raise InvalidArgument("rate_version", "a positive version id is required")
    table = load_rate_table(conn, version_id)
    if table is None:
        raise NotFound(
            f"rate version {version_id} does not exist",
            field="rate_version",
            reason="unknown_rate_version",
        )
    if table.superseded_at is not None and now - table.superseded_at > settings.rate_validity:
        raise FailedPrecondition(
            f"rate version {version_id} was replaced at {table.superseded_at.isoformat()}, more "
            f"than {int(settings.rate_validity.total_seconds())} s ago; quote again",
            field="rate_version",
            reason="rate_expired",
        )
    return table


def _rate(table: RateTable, of: Asset, which: Literal["bid", "ask"], field_name: str) -> Decimal:
    if of.code == table.base:
        return Decimal(1)
    found = table.rates.get(of.code)
    if found is None:
        raise FailedPrecondition(
            f"{field_name}: rate version {table.version_id} has no rate for {of.code}",
            field=field_name,
            reason="no_rate",
        )
    return found.bid if which == "bid" else found.ask


def convert(
    table: RateTable,
    from_currency: str,
    to_currency: str,
    amount: object,
    side: Side,
    now: datetime,
    settings: LedgerSettings,
    field_name: str = "quote",
) -> Quote:
    """Pure: the quote on ``table`` for ``amount`` given (side "from") or received ("to")."""
    if side not in SIDES:
        raise InvalidArgument(f"{field_name}.side", f"{side!r} is not 'from' or 'to'")
    source = asset(from_currency, f"{field_name}.from_currency")
    target = asset(to_currency, f"{field_name}.to_currency")
    if source.code == target.code:
        raise InvalidArgument(field_name, f"from and to are both {source.code}; nothing to convert")
    from_rate = _rate(table, source, "bid", field_name)
    to_rate = _rate(table, target, "ask", field_name)
    fixed = source if side == "from" else target
    given = parse_amount(amount, fixed, f"{field_name}.amount", settings)
    with localcontext() as ctx:
        ctx.prec = 50
        if side == "from":
            from_amount = given
            to_amount = round_half_up(given * from_rate / to_rate, target)
        else:
            to_amount = given
            from_amount = round_half_up(given * to_rate / from_rate, source)
        rate = (from_rate / to_rate).quantize(Decimal(1).scaleb(-RATE_DECIMALS))
    other, other_amount = (target, to_amount) if side == "from" else (source, from_amount)
    if other_amount <= 0:
        raise InvalidArgument(
            f"{field_name}.amount",
            f"{given} converts to less than the smallest unit of {other.code}",
            reason="amount_too_small",
        )
    if other_amount > settings.ceiling(other.code):
        raise InvalidArgument(
            f"{field_name}.amount",
            f"converts to {format_amount(other_amount, other)}, over the per-transaction limit of "
            f"{format_amount(settings.ceiling(other.code), other)}",
            reason="amount_over_limit",
        )
    return Quote(
        rate_version=table.version_id,
        from_currency=source.code,
        to_currency=target.code,
        side=side,
        from_rate=from_rate,
        to_rate=to_rate,
        rate=rate,
        from_amount=from_amount,
        to_amount=to_amount,
        quoted_at=now,
    )


def quote(
    engine: Engine,
    from_currency: str,
    to_currency: str,
    amount: object,
    side: Side,
    now: datetime,
    settings: LedgerSettings,
    rate_version: int | None = None,
) -> Quote:
    """A quote on the current rates (or on ``rate_version``, if still usable)."""
    with connect(engine) as conn:
        if rate_version is None:
            table = _latest(conn)
            if table is None:
                raise FailedPrecondition("quote: no FX rates have been set", reason="no_rate")
        else:
            table = usable_rate_table(conn, rate_version, now, settings)
    return convert(table, from_currency, to_currency, amount, side, now, settings)
