"""Jobs filled in on a phone: validated here, stored, forwarded to the paired terminal once.

A job names one service of the terminal's live list (``services.py``) and how the customer
authenticates: ``terminal`` (card + PIN on the terminal's own devices; the job is bound to
that card's customer when the terminal reports it) or ``bank`` (the phone signed in with
``bank_auth.login`` first; the job carries that customer and its accounts). Value out
(withdrawal, cheque book) also needs the customer's confirmation on the terminal's screen
(``needs_presence``): the terminal releases nothing before it.

States: submitted (stored; pushed to the terminal until it reports ``received``), received,
ready (shown on the terminal), authenticating, confirming, running, then done / failed /
canceled / abandoned (the terminal left it unfinished: restarted, timed out, out of service,
or gone offline; ``job_sweep.py`` for the server's side). Only the terminal the job is for
moves it, forward only; the first end is the one kept.

Exactly once: a repeat of (pairing, idempotency key) returns the stored job; the server
pushes a job until its terminal reports it received, and the terminal dedups on job_id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Engine, Row, bindparam, insert, select, update

from branchline.common.errors import FailedPrecondition, InvalidArgument, NotFound
from branchline.common.ids import random_hex
from branchline.server.delivery.bus import TOPIC_JOBS, signal_in_transaction
from branchline.server.ledger.schema import accounts
from branchline.server.mobile.schema import mobile_jobs, mobile_logins
from branchline.server.mobile.services import AUTH_AT_TERMINAL, ServiceList
from branchline.server.storage.engine import write_transaction

AUTH_AT_BANK = "bank"
AUTHS = (AUTH_AT_TERMINAL, AUTH_AT_BANK)
VALUE_OUT = frozenset({"tube_withdrawal", "cheque_book"})
ASSET_KINDS = ("cash", "metal", "bill")
ACCOUNT_KIND = {"cash": "cash", "metal": "metal", "bill": "bills"}
CHEQUE_LEAVES = (10, 25, 50)
# As the terminal's video-teller flow offers them.
BUSINESS_TYPES = ("account_opening", "loan", "card_services", "foreign_exchange", "other")
MAX_PERIOD_DAYS = 366
_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")

SUBMITTED = "submitted"
ABANDONED = "abandoned"
FINISHED = frozenset({"done", "failed", "canceled", ABANDONED})
# The order a job moves in on the terminal (forward only; finished from anywhere).
ORDER = ("submitted", "received", "ready", "authenticating", "confirming", "running")


@dataclass(frozen=True)
class JobForm:
    """What the phone filled in (the SubmitJob request's fields)."""

    idempotency_key: str
    service: str
    auth: str
    account_id: str = ""
    asset_kind: str = ""
    currency: str = ""
    amount: str = ""
    rate_version: int = 0
    period_from: str = ""
    period_to: str = ""
    cheque_leaves: int = 0
    business_type: str = ""


@dataclass(frozen=True)
class Job:
    job_id: str
    pairing_id: str
    terminal_id: str
    service: str
    auth: str
    state: str
    reason: str
    body: dict[str, Any]
    customer_id: str
    receipt_reference: str
    queue_position: int
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def needs_presence(self) -> bool:
        return self.service in VALUE_OUT


def _amount(value: str) -> str:
    text = value.strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise InvalidArgument(
            "amount", "enter an amount such as 100", reason="invalid_amount"
        ) from None
    if not amount.is_finite() or amount <= 0 or len(text) > 24:
        raise InvalidArgument("amount", "must be more than zero", reason="invalid_amount")
    if amount.as_tuple().exponent < -3:  # type: ignore[operator]
        raise InvalidArgument("amount", "at most 3 decimal places", reason="invalid_amount")
    return text


def _currency(value: str) -> str:
    code = value.strip().upper()
    if not _CURRENCY.match(code):
        raise InvalidArgument("currency", "a three-letter code such as CNY", reason="invalid")
    return code


def _day(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidArgument(name, "a date such as 2026-01-31", reason="invalid_date") from None


def _account(form: JobForm, owned: dict[str, str] | None, wanted_kind: str = "") -> str:
    """The account: for auth at the bank it must be one of the customer's; for auth at the
    terminal the customer is not known yet (empty: the terminal picks after card + PIN)."""
    account_id = form.account_id.strip()
    if owned is None:
        if len(account_id) > 64:
            raise InvalidArgument("account_id", "at most 64 characters")
        return account_id
    if not account_id:
        raise InvalidArgument("account_id", "choose one of your accounts", reason="required")
    kind = owned.get(account_id)
    if kind is None:
        raise InvalidArgument(
            "account_id", "choose one of your accounts", reason="not_your_account"
        )
    if wanted_kind and kind != wanted_kind:
        raise InvalidArgument(
            "account_id", f"choose a {wanted_kind} account", reason="wrong_account_kind"
        )
    return account_id


# long: one table of per-service checks, each naming the field it refuses
def validate(form: JobForm, owned: dict[str, str] | None) -> dict[str, Any]:
    """The job's body from ``form``; refusals name the field. ``owned``: the signed-in
    customer's accounts (id -> kind) for auth at the bank, None for auth at the terminal."""
    if not _KEY.match(form.idempotency_key):
        raise InvalidArgument("idempotency_key", "8-64 letters, digits, - or _")
    if form.auth not in AUTHS:
        raise InvalidArgument("auth", "terminal or bank", reason="invalid_auth")
    body: dict[str, Any] = {"service": form.service}
    if form.service == "tube_deposit":
        if form.asset_kind not in ASSET_KINDS:
            raise InvalidArgument("asset_kind", "cash, metal or bill", reason="invalid_kind")
        body["asset_kind"] = form.asset_kind
        body["account_id"] = _account(form, owned, ACCOUNT_KIND[form.asset_kind])
        body["currency"] = _currency(form.currency)
        body["amount"] = _amount(form.amount)
    elif form.service == "tube_withdrawal":
        body["asset_kind"] = "cash"
        body["account_id"] = _account(form, owned, "cash")
        body["currency"] = _currency(form.currency)
        body["amount"] = _amount(form.amount)
        if form.rate_version < 0:
            raise InvalidArgument("rate_version", "must not be negative")
        body["rate_version"] = form.rate_version
    elif form.service in ("statement_view", "statement_print"):
        body["account_id"] = _account(form, owned)
        start, end = _day("period_from", form.period_from), _day("period_to", form.period_to)
        if end < start:
            raise InvalidArgument("period_to", "must not be before period_from")
        if (end - start).days > MAX_PERIOD_DAYS:
            raise InvalidArgument("period_to", f"at most {MAX_PERIOD_DAYS} days after the start")
        body["period_from"], body["period_to"] = start.isoformat(), end.isoformat()
    elif form.service == "cheque_book":
        body["account_id"] = _account(form, owned, "cash")
        if form.cheque_leaves not in CHEQUE_LEAVES:
            raise InvalidArgument("cheque_leaves", "10, 25 or 50 leaves")
        body["cheque_leaves"] = form.cheque_leaves
    elif form.service == "video_teller":
        if form.business_type not in BUSINESS_TYPES:
            raise InvalidArgument("business_type", ", ".join(BUSINESS_TYPES))
        body["business_type"] = form.business_type
    else:
        raise InvalidArgument("service", "not a service of this terminal", reason="unknown")
    return body


def check_offered(form: JobForm, listed: ServiceList) -> None:
    """The terminal must offer the service (and card + PIN for auth at the terminal) now."""
    if listed.unavailable_reason:
        raise FailedPrecondition(
            f"service: the terminal cannot serve now ({listed.unavailable_reason})",
            field="service",
            reason="terminal_unavailable",
        )
    if form.service not in listed.services:
        raise FailedPrecondition(
            f"service: the terminal cannot do {form.service} now (a device it needs is out "
            "of order)",
            field="service",
            reason="service_unavailable",
        )
    if form.auth == AUTH_AT_TERMINAL and AUTH_AT_TERMINAL not in listed.auth_methods:
        raise FailedPrecondition(
            "auth: the terminal cannot read cards now; sign in with mobile banking",
            field="auth",
            reason="auth_unavailable",
        )


def record_login(engine: Engine, pairing_id: str, customer_id: str, now: datetime) -> None:
    with write_transaction(engine) as conn:
        conn.execute(mobile_logins.delete().where(mobile_logins.c.pairing_id == pairing_id))
        conn.execute(
            insert(mobile_logins).values(
                pairing_id=pairing_id, customer_id=customer_id, logged_in_at=now
            )
        )


def logged_in(engine: Engine, pairing_id: str) -> str:
    with engine.connect() as conn:
        found = conn.execute(
            select(mobile_logins.c.customer_id).where(mobile_logins.c.pairing_id == pairing_id)
        ).scalar()
    return str(found) if found else ""


def customer_accounts(engine: Engine, customer_id: str) -> list[Row[Any]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(accounts)
                .where(accounts.c.customer_id == customer_id)
                .order_by(accounts.c.kind, accounts.c.currency, accounts.c.account_id)
            ).all()
        )


def _job(row: Row[Any]) -> Job:
    return Job(
        job_id=row.job_id,
        pairing_id=row.pairing_id,
        terminal_id=row.terminal_id,
        service=row.service,
        auth=row.auth,
        state=row.state,
        reason=row.reason,
        body=json.loads(row.body),
        customer_id=row.customer_id or "",
        receipt_reference=row.receipt_reference,
        queue_position=row.queue_position,
        result=json.loads(row.result) if row.result else {},
    )


def submit(
    engine: Engine,
    pairing_id: str,
    terminal_id: str,
    form: JobForm,
    body: dict[str, Any],
    customer_id: str,
    now: datetime,
) -> Job:
    """Store the job (or return the one this idempotency key already made). One unfinished
    job per pairing at a time."""
    with write_transaction(engine) as conn:
        same = conn.execute(
            select(mobile_jobs).where(
                mobile_jobs.c.pairing_id == pairing_id,
                mobile_jobs.c.idempotency_key == form.idempotency_key,
            )
        ).first()
        if same is not None:
            if json.loads(same.body) != body or same.auth != form.auth:
                raise FailedPrecondition(
                    "idempotency_key: already used for another job",
                    field="idempotency_key",
                    reason="idempotency_key_reused",
                )
            return _job(same)
        busy = conn.execute(
            select(mobile_jobs.c.job_id).where(
                mobile_jobs.c.pairing_id == pairing_id, mobile_jobs.c.state.not_in(FINISHED)
            )
        ).first()
        if busy is not None:
            raise FailedPrecondition(
                "service: a job from this phone is still under way on the terminal",
                field="service",
                reason="job_in_progress",
            )
        job_id = f"pj-{random_hex(12)}"
        conn.execute(
            insert(mobile_jobs).values(
                job_id=job_id,
                pairing_id=pairing_id,
                terminal_id=terminal_id,
                idempotency_key=form.idempotency_key,
                service=form.service,
                auth=form.auth,
                state=SUBMITTED,
                reason="",
                body=json.dumps(body, sort_keys=True),
                customer_id=customer_id or None,
                receipt_reference="",
                queue_position=0,
                result="",
                created_at=now,
                updated_at=now,
            )
        )
        row = conn.execute(select(mobile_jobs).where(mobile_jobs.c.job_id == job_id)).one()
        signal_in_transaction(conn, TOPIC_JOBS)  # the stream's replica pushes it at once
    return _job(row)


def get(engine: Engine, job_id: str, pairing_id: str) -> Job:
    with engine.connect() as conn:
        row = conn.execute(
            select(mobile_jobs).where(
                mobile_jobs.c.job_id == job_id, mobile_jobs.c.pairing_id == pairing_id
            )
        ).first()
    if row is None:
        raise NotFound(f"job_id: no job {job_id[:40]!r} from this phone", field="job_id")
    return _job(row)


def waiting(engine: Engine, terminal_id: str) -> list[Job]:
    """The terminal's jobs not yet received (pushed again until they are)."""
    return waiting_for(engine, [terminal_id]).get(terminal_id, [])


# Built once; the pusher's round binds the connected terminals (at most _CHUNK a statement).
_WAITING = (
    select(mobile_jobs)
    .where(
        mobile_jobs.c.terminal_id.in_(bindparam("ids", expanding=True)),
        mobile_jobs.c.state == SUBMITTED,
    )
    .order_by(mobile_jobs.c.created_at)
)
_CHUNK = 500


def waiting_for(engine: Engine, terminal_ids: Sequence[str]) -> dict[str, list[Job]]:
    """The jobs not yet received of each of these terminals that has any, oldest first: one
    statement for the pusher's whole round (it runs ten times a second for every connected
    terminal: a query and a thread each were most of the server's event loop under load)."""
    found: dict[str, list[Job]] = {}
    with engine.connect() as conn:
        for i in range(0, len(terminal_ids), _CHUNK):
            ids = list(terminal_ids[i : i + _CHUNK])
            for row in conn.execute(_WAITING, {"ids": ids}):
                found.setdefault(row.terminal_id, []).append(_job(row))
    return found


@dataclass(frozen=True)
class Progress:
    state: str
    reason: str = ""
    receipt_reference: str = ""
    queue_position: int = 0
    customer_id: str = ""
    result: dict[str, Any] = field(default_factory=dict)


# long: one guarded transition (owner, order, binding) under one row lock
def advance(
    engine: Engine, terminal_id: str, job_id: str, progress: Progress, now: datetime
) -> Job:
    """The terminal reports ``progress``; refused for another terminal's job, an unknown
    state or a step back. A finished job stays finished (a repeat is answered as it is)."""
    if progress.state not in ORDER and progress.state not in FINISHED:
        raise InvalidArgument("phone_job_update.state", f"unknown state {progress.state[:24]!r}")
    with write_transaction(engine) as conn:
        row = conn.execute(
            select(mobile_jobs).where(mobile_jobs.c.job_id == job_id).with_for_update()
        ).first()
        if row is None or row.terminal_id != terminal_id:
            raise NotFound(
                f"phone_job_update.job_id: no job {job_id[:40]!r} for this terminal",
                field="phone_job_update.job_id",
            )
        if progress.customer_id and row.customer_id and row.customer_id != progress.customer_id:
            raise FailedPrecondition(
                "phone_job_update.customer_id: the job belongs to another customer",
                field="phone_job_update.customer_id",
                reason="other_customer",
            )
        if row.state in FINISHED:
            return _job(row)
        if row.state == progress.state:
            # The same step again: news only when it binds the customer (card + PIN read
            # while authenticating) or moves the video teller's queue position.
            again: dict[str, Any] = {}
            if progress.customer_id and not row.customer_id:
                again["customer_id"] = progress.customer_id
            if progress.queue_position and progress.queue_position != row.queue_position:
                again["queue_position"] = progress.queue_position
            if again:
                conn.execute(
                    update(mobile_jobs)
                    .where(mobile_jobs.c.job_id == job_id)
                    .values(**again, updated_at=now)
                )
                row = conn.execute(select(mobile_jobs).where(mobile_jobs.c.job_id == job_id)).one()
            return _job(row)
        if progress.state not in FINISHED and ORDER.index(progress.state) < ORDER.index(row.state):
            raise FailedPrecondition(
                f"phone_job_update.state: the job is {row.state}, not back to {progress.state}",
                field="phone_job_update.state",
                reason="job_state_order",
            )
        values: dict[str, Any] = {"state": progress.state, "updated_at": now}
        if progress.reason:
            values["reason"] = progress.reason[:64]
        if progress.receipt_reference:
            values["receipt_reference"] = progress.receipt_reference[:64]
        if progress.queue_position or progress.state in FINISHED:
            values["queue_position"] = progress.queue_position
        if progress.customer_id:
            values["customer_id"] = progress.customer_id
        if progress.result:
            values["result"] = json.dumps(progress.result)
        conn.execute(update(mobile_jobs).where(mobile_jobs.c.job_id == job_id).values(**values))
        row = conn.execute(select(mobile_jobs).where(mobile_jobs.c.job_id == job_id)).one()
    return _job(row)


def fail_waiting(engine: Engine, job_id: str, reason: str, now: datetime) -> None:
    """A job the terminal never received, refused before it was sent (never half-run)."""
    with write_transaction(engine) as conn:
        conn.execute(
            update(mobile_jobs)
            .where(mobile_jobs.c.job_id == job_id, mobile_jobs.c.state == SUBMITTED)
            .values(state="failed", reason=reason, updated_at=now)
        )
