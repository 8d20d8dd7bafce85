"""The Mobile API's job methods: sign in at the bank, quote, submit a job, follow it.

Mixed into ``MobileServicer`` (which holds ``_engine``, ``_auth``, ``_clock`` and
``_withheld``). Every method first checks the phone's paired session; the job is checked
against the terminal's live service list and validated (refusals name the field).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

import grpc
from sqlalchemy import Engine

from branchline.common.errors import FailedPrecondition, InvalidArgument
from branchline.common.grpc_errors import refusals
from branchline.common.logs import log_event
from branchline.server import fleet_registry as registry
from branchline.server.applier import Applier
from branchline.server.auth import MOBILE, Authorizer
from branchline.server.ledger.accounts import account_from_row
from branchline.server.ledger.fx import current_rates
from branchline.server.mobile import bank_auth, jobs, pairing
from branchline.server.mobile.convert import job_to_pb, phone_account
from branchline.server.mobile.services import ServiceList, service_list
from branchline.server.writes import apply_write
from branchline.v1 import mobile_pb2 as pb

log = logging.getLogger("branchline.server.mobile")


def _paired(engine: Engine, request: pb.SessionRequest, now: datetime) -> pairing.Pairing:
    return pairing.session(
        engine, request.session_token, now, terminal_id=request.terminal_id, renew=True
    )


def _owned(engine: Engine, customer_id: str) -> dict[str, str]:
    return {row.account_id: row.kind for row in jobs.customer_accounts(engine, customer_id)}


def form_of(request: pb.SubmitJobRequest) -> jobs.JobForm:
    return jobs.JobForm(
        idempotency_key=request.idempotency_key,
        service=request.service,
        auth=request.auth,
        account_id=request.account_id,
        asset_kind=request.asset_kind,
        currency=request.currency,
        amount=request.amount,
        rate_version=request.rate_version,
        period_from=request.period_from,
        period_to=request.period_to,
        cheque_leaves=request.cheque_leaves,
        business_type=request.business_type,
    )


def submit_job(
    engine: Engine, request: pb.SubmitJobRequest, now: datetime, withheld: frozenset[str]
) -> jobs.Job:
    paired = _paired(engine, request.session, now)
    form = form_of(request)
    customer_id = ""
    owned = None
    if form.auth == jobs.AUTH_AT_BANK:
        customer_id = jobs.logged_in(engine, paired.pairing_id)
        if not customer_id:
            raise FailedPrecondition(
                "auth: sign in with mobile banking first", field="auth", reason="login_required"
            )
        owned = _owned(engine, customer_id)
    body = jobs.validate(form, owned)
    terminal = registry.get_terminal(engine, paired.terminal_id)
    listed = (
        service_list(terminal, withheld)
        if terminal is not None
        else ServiceList(paired.terminal_id, "offline", (), ())
    )
    jobs.check_offered(form, listed)
    return jobs.submit(engine, paired.pairing_id, paired.terminal_id, form, body, customer_id, now)


def quote(engine: Engine, request: pb.QuoteRequest, now: datetime) -> pb.QuoteResult:
    """The withdrawal's live quote: the customer receives ``currency`` at its ask and the
    account pays at its bid (as the terminal quotes it)."""
    paired = _paired(engine, request.session, now)
    customer_id = jobs.logged_in(engine, paired.pairing_id)
    table = current_rates(engine)
    if table is None:
        raise FailedPrecondition(
            "currency: the bank has no rates right now", field="currency", reason="no_rates"
        )
    account_currency = table.base
    if request.account_id:
        rows = [r for r in jobs.customer_accounts(engine, customer_id)] if customer_id else []
        row = next((r for r in rows if r.account_id == request.account_id), None)
        if row is None:
            raise InvalidArgument("account_id", "choose one of your accounts")
        account_currency = row.currency
    form = jobs.JobForm(
        "x" * 8, "tube_withdrawal", "terminal", currency=request.currency, amount=request.amount
    )
    body = jobs.validate(form, None)
    currency, amount = body["currency"], Decimal(body["amount"])

    def side(code: str, which: str) -> Decimal:
        if code == table.base:
            return Decimal(1)
        rate = table.rates.get(code)
        if rate is None:
            raise InvalidArgument("currency", f"the bank quotes no rate for {code}")
        return Decimal(rate.ask if which == "ask" else rate.bid)

    result = pb.QuoteResult(
        account_id=request.account_id,
        currency=currency,
        amount=body["amount"],
        account_currency=account_currency,
        equivalent=body["amount"],
    )
    if currency != account_currency:
        rate = side(currency, "ask") / side(account_currency, "bid")
        result.rate = format(rate.quantize(Decimal("0.00000001")).normalize(), "f")
        result.rate_version = table.version_id
        result.equivalent = str((amount * rate).quantize(Decimal("0.01"), ROUND_HALF_UP))
    return result


def login(engine: Engine, request: pb.LoginRequest, now: datetime) -> pb.LoginResult:
    paired = _paired(engine, request.session, now)
    check = bank_auth.LoginCheck(request.customer_id, request.password, request.totp)
    customer_id = bank_auth.login(engine, check, now)
    jobs.record_login(engine, paired.pairing_id, customer_id, now)
    result = pb.LoginResult(customer_id=customer_id)
    for row in jobs.customer_accounts(engine, customer_id):
        if account_from_row(row).kind in ("cash", "metal", "bills"):
            result.accounts.append(phone_account(row))
    return result


class JobMethods:
    _engine: Engine
    _clock: Callable[[], datetime]
    _withheld: frozenset[str]
    _auth: Authorizer
    _applier: Applier | None
    _on_job: Callable[[], None]

    def _now(self) -> datetime:
        return self._clock()

    @refusals
    async def Login(
        self, request: pb.LoginRequest, context: grpc.aio.ServicerContext
    ) -> pb.LoginResult:
        await self._auth.require(context, MOBILE, "Mobile.Login")
        # Not through the applier: the password hash check (argon2, tens of ms) would stall
        # every terminal's batch behind it.
        result = await asyncio.to_thread(login, self._engine, request, self._now())
        log_event(log, "phone_login", customer_id=result.customer_id)
        return result

    @refusals
    async def Quote(
        self, request: pb.QuoteRequest, context: grpc.aio.ServicerContext
    ) -> pb.QuoteResult:
        await self._auth.require(context, MOBILE, "Mobile.Quote")
        return await apply_write(self._applier, quote, self._engine, request, self._now())

    @refusals
    async def SubmitJob(
        self, request: pb.SubmitJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.PhoneJob:
        await self._auth.require(context, MOBILE, "Mobile.SubmitJob")
        job = await apply_write(
            self._applier, submit_job, self._engine, request, self._now(), self._withheld
        )
        self._on_job()
        log_event(log, "phone_job_submitted", job_id=job.job_id, service=job.service)
        return job_to_pb(job)

    @refusals
    async def GetJob(
        self, request: pb.JobRequest, context: grpc.aio.ServicerContext
    ) -> pb.PhoneJob:
        await self._auth.require(context, MOBILE, "Mobile.GetJob")

        def get() -> jobs.Job:
            paired = _paired(self._engine, request.session, self._now())
            return jobs.get(self._engine, request.job_id[:64], paired.pairing_id)

        return job_to_pb(await apply_write(self._applier, get))
