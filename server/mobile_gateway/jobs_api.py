"""The gateway's job endpoints: sign in at the bank, quote, submit a job, follow it.

Every POST is state-changing: same origin and ``X-CSRF-Token`` required, rate limited per
phone and per terminal. The server validates (refusals name the field); this module only
bounds and forwards. The customer's password and code pass through, never kept or logged.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from branchline.server.mobile_gateway import security
from branchline.server.mobile_gateway.app import (
    BACKEND_KEY,
    _json_error,
    _limit_phone,
    _limit_terminal,
    _refused,
    _session,
    _state_changing,
)
from branchline.server.mobile_gateway.backend import Refusal, session_request
from branchline.v1 import mobile_pb2 as pb

MAX_TEXT = 256
JOB_FIELDS = (
    "idempotency_key",
    "service",
    "auth",
    "account_id",
    "asset_kind",
    "currency",
    "amount",
    "period_from",
    "period_to",
    "business_type",
)


async def _checked(request: web.Request) -> tuple[str, str, dict[str, Any]]:
    """(token, terminal, JSON body) of a state-changing request, or refused."""
    _limit_phone(request)
    _state_changing(request)
    token, terminal_id = _session(request)
    if not security.csrf_ok(request, token):
        raise _json_error(
            403, "csrf", security.CSRF_HEADER, f"{security.CSRF_HEADER}: missing or wrong"
        )
    _limit_terminal(request, terminal_id)
    try:
        body = await request.json()
    except ValueError:
        raise _json_error(400, "invalid_json", "", "the body must be JSON") from None
    if not isinstance(body, dict):
        raise _json_error(400, "invalid_json", "", "the body must be a JSON object")
    return token, terminal_id, body


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise _json_error(400, "invalid", name, f"{name}: a string of at most {MAX_TEXT}")
    return value


def _int(body: dict[str, Any], name: str) -> int:
    value = body.get(name, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise _json_error(400, "invalid", name, f"{name}: a whole number")
    return value


def _accounts(accounts: Any) -> list[dict[str, str]]:
    return [
        {
            "account_id": a.account_id,
            "kind": a.kind,
            "currency": a.currency,
            "available": a.available,
        }
        for a in accounts
    ]


def job_json(job: pb.PhoneJob) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "service": job.service,
        "auth": job.auth,
        "state": job.state,
        "reason": job.reason,
        "receipt_reference": job.receipt_reference,
        "queue_position": job.queue_position,
        "summary": job.summary,
        "needs_presence": job.needs_presence,
        "statement": [
            {"date": s.date, "description": s.description, "amount": s.amount, "balance": s.balance}
            for s in job.statement
        ],
    }


async def _call(request: web.Request, method: str, message: Any) -> Any:
    try:
        return await request.app[BACKEND_KEY].call(method, message)
    except Refusal as exc:
        raise _refused(exc) from None


async def api_login(request: web.Request) -> web.Response:
    token, terminal_id, body = await _checked(request)
    message = pb.LoginRequest(
        session=session_request(token, terminal_id),
        customer_id=_text(body, "customer_id"),
        password=_text(body, "password"),
        totp=_text(body, "totp"),
    )
    result = await _call(request, "Login", message)
    return web.json_response(
        {"customer_id": result.customer_id, "accounts": _accounts(result.accounts)}
    )


async def api_quote(request: web.Request) -> web.Response:
    token, terminal_id, body = await _checked(request)
    message = pb.QuoteRequest(
        session=session_request(token, terminal_id),
        account_id=_text(body, "account_id"),
        currency=_text(body, "currency"),
        amount=_text(body, "amount"),
    )
    quote = await _call(request, "Quote", message)
    return web.json_response(
        {
            "account_id": quote.account_id,
            "currency": quote.currency,
            "amount": quote.amount,
            "rate": quote.rate,
            "rate_version": quote.rate_version,
            "equivalent": quote.equivalent,
            "account_currency": quote.account_currency,
        }
    )


async def api_submit(request: web.Request) -> web.Response:
    token, terminal_id, body = await _checked(request)
    message = pb.SubmitJobRequest(
        session=session_request(token, terminal_id),
        rate_version=_int(body, "rate_version"),
        cheque_leaves=_int(body, "cheque_leaves"),
        **{name: _text(body, name) for name in JOB_FIELDS},
    )
    job = await _call(request, "SubmitJob", message)
    return web.json_response(job_json(job), status=201)


async def api_job(request: web.Request) -> web.Response:
    _limit_phone(request)
    token, terminal_id = _session(request)
    _limit_terminal(request, terminal_id)
    job_id = request.match_info["job_id"]
    if len(job_id) > 64:
        raise _json_error(400, "invalid", "job_id", "job_id: at most 64 characters")
    message = pb.JobRequest(session=session_request(token, terminal_id), job_id=job_id)
    return web.json_response(job_json(await _call(request, "GetJob", message)))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/login", api_login)
    app.router.add_post("/api/quote", api_quote)
    app.router.add_post("/api/jobs", api_submit)
    app.router.add_get("/api/jobs/{job_id}", api_job)
