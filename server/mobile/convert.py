"""Pairings, service lists and phones' jobs as their protobuf messages (mobile.proto)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from branchline.server.convert import timestamp
from branchline.server.ledger.accounts import account_from_row
from branchline.server.mobile.jobs import Job
from branchline.server.mobile.pairing import Pairing
from branchline.server.mobile.services import ServiceList
from branchline.v1 import mobile_pb2 as pb


def pairing_to_pb(pairing: Pairing) -> pb.PhonePairing:
    return pb.PhonePairing(
        pairing_id=pairing.pairing_id,
        terminal_id=pairing.terminal_id,
        branch=pairing.branch,
        state=pairing.state,
        matching_code=pairing.matching_code,
        paired_at=timestamp(pairing.paired_at),
        session_expires_at=timestamp(pairing.session_expires_at),
        end_reason=pairing.end_reason,
    )


def services_to_pb(services: ServiceList, pairing: Pairing) -> pb.PhoneServiceList:
    return pb.PhoneServiceList(
        terminal_id=services.terminal_id,
        unavailable_reason=services.unavailable_reason,
        services=list(services.services),
        auth_methods=list(services.auth_methods),
        pairing=pairing_to_pb(pairing),
    )


def phone_account(row: Row[Any]) -> pb.PhoneAccount:
    """An account (a ``ledger.accounts`` row) as the phone and the terminal see it."""
    account = account_from_row(row)
    return pb.PhoneAccount(
        account_id=account.account_id,
        kind=account.kind,
        currency=account.currency,
        available=str(account.available),
    )


def job_to_pb(job: Job) -> pb.PhoneJob:
    message = pb.PhoneJob(
        job_id=job.job_id,
        service=job.service,
        auth=job.auth,
        state=job.state,
        reason=job.reason,
        receipt_reference=job.receipt_reference,
        queue_position=job.queue_position,
        terminal_id=job.terminal_id,
        needs_presence=job.needs_presence,
        summary=summary(job),
    )
    for line in job.result.get("statement", ()):
        message.statement.add(**line)
    return message


def summary(job: Job) -> str:
    """What the job is, in a line without secrets (shown on both screens)."""
    body = job.body
    if body.get("amount"):
        return f"{job.service} {body['amount']} {body.get('currency', '')}".strip()
    if body.get("period_from"):
        return f"{job.service} {body['period_from']}..{body['period_to']}"
    if body.get("cheque_leaves"):
        return f"{job.service} {body['cheque_leaves']}"
    return f"{job.service} {body.get('business_type', '')}".strip()
