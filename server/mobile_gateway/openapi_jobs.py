"""The job endpoints' part of the OpenAPI document (``openapi.py`` merges it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SESSION: list[dict[str, list[str]]] = [{"session": []}]
CSRF = {
    "name": "X-CSRF-Token",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "maxLength": 128},
}
JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "maxLength": 64},
}
SERVICES = [
    "tube_deposit",
    "tube_withdrawal",
    "statement_view",
    "statement_print",
    "cheque_book",
    "video_teller",
]


def _post(
    summary: str, op: str, schema: str, answer: dict[str, Any], errors: dict[str, Any]
) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "operationId": op,
            "security": SESSION,
            "parameters": [CSRF],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}
                },
            },
            "responses": {**answer, **errors},
        }
    }


def job_paths(
    ok: Callable[[str], dict[str, Any]], errors: Callable[..., dict[str, Any]]
) -> dict[str, Any]:
    refused = errors(400, 401, 403, 404, 409, 410, 429, 503)
    created = {"201": {**ok("Job"), "description": "the job, forwarded to the terminal"}}
    return {
        "/api/login": _post(
            "Sign in at the bank (customer id, password, TOTP code); locks after failures",
            "login",
            "LoginRequest",
            {"200": ok("Login")},
            refused,
        ),
        "/api/quote": _post(
            "The live quote of a withdrawal in another currency",
            "quote",
            "QuoteRequest",
            {"200": ok("Quote")},
            refused,
        ),
        "/api/jobs": _post(
            "Submit a job for the paired terminal (the idempotency key makes it once)",
            "submitJob",
            "JobRequest",
            created,
            refused,
        ),
        "/api/jobs/{job_id}": {
            "get": {
                "summary": "The job's progress on the terminal",
                "operationId": "getJob",
                "security": SESSION,
                "parameters": [JOB_ID],
                "responses": {"200": ok("Job"), **errors(400, 401, 403, 404, 410, 429, 503)},
            }
        },
        **_recording_paths(ok, errors),
    }


def _recording_paths(
    ok: Callable[[str], dict[str, Any]], errors: Callable[..., dict[str, Any]]
) -> dict[str, Any]:
    """The recordings of a finished job (the job's customer only)."""
    return {
        "/api/jobs/{job_id}/recordings": {
            "get": {
                "summary": "The recordings of the job's transaction (the job's customer only)",
                "operationId": "jobRecordings",
                "security": SESSION,
                "parameters": [JOB_ID],
                "responses": {
                    "200": ok("Recordings"),
                    **errors(400, 401, 403, 404, 409, 410, 429, 503),
                },
            }
        },
        "/api/jobs/{job_id}/recordings/{sha256}": {
            "get": {
                "summary": "One recording as WebM; Range: bytes=N- answers 206 from byte N",
                "operationId": "jobRecording",
                "security": SESSION,
                "parameters": [
                    JOB_ID,
                    {
                        "name": "sha256",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    },
                    {
                        "name": "Range",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "maxLength": 40},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "the recording",
                        "content": {
                            "video/webm": {"schema": {"type": "string", "format": "binary"}}
                        },
                    },
                    "206": {
                        "description": "the recording from the Range's start",
                        "content": {
                            "video/webm": {"schema": {"type": "string", "format": "binary"}}
                        },
                    },
                    **errors(400, 401, 403, 404, 409, 410, 429, 503),
                },
            }
        },
    }


def _strings(*names: str) -> dict[str, Any]:
    return {name: {"type": "string", "maxLength": 256} for name in names}


# long: one literal table of schemas
def job_schemas() -> dict[str, Any]:
    account = {
        "type": "object",
        "properties": _strings("account_id", "kind", "currency", "available"),
    }
    return {
        "LoginRequest": {
            "type": "object",
            "required": ["customer_id", "password", "totp"],
            "properties": _strings("customer_id", "password", "totp"),
        },
        "Login": {
            "type": "object",
            "required": ["customer_id", "accounts"],
            "properties": {
                "customer_id": {"type": "string"},
                "accounts": {"type": "array", "items": account},
            },
        },
        "QuoteRequest": {
            "type": "object",
            "required": ["currency", "amount"],
            "properties": _strings("account_id", "currency", "amount"),
        },
        "Quote": {
            "type": "object",
            "properties": {
                **_strings("account_id", "currency", "amount", "rate", "equivalent"),
                "account_currency": {"type": "string"},
                "rate_version": {"type": "integer"},
            },
        },
        "JobRequest": {
            "type": "object",
            "required": ["idempotency_key", "service", "auth"],
            "properties": {
                **_strings(
                    "idempotency_key",
                    "account_id",
                    "asset_kind",
                    "currency",
                    "amount",
                    "period_from",
                    "period_to",
                    "business_type",
                ),
                "service": {"type": "string", "enum": SERVICES},
                "auth": {"type": "string", "enum": ["terminal", "bank"]},
                "rate_version": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
                "cheque_leaves": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
            },
        },
        "Recordings": {
            "type": "object",
            "required": ["recordings"],
            "properties": {
                "recordings": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            **_strings("sha256", "txn_ref", "kind", "source", "media_type", "url"),
                            "size": {"type": "integer"},
                            "duration_seconds": {"type": "number"},
                        },
                    },
                }
            },
        },
        "Job": {
            "type": "object",
            "required": ["job_id", "service", "state"],
            "properties": {
                **_strings("job_id", "service", "auth", "state", "reason"),
                "receipt_reference": {"type": "string"},
                "summary": {"type": "string"},
                "queue_position": {"type": "integer"},
                "needs_presence": {"type": "boolean"},
                "statement": {"type": "array", "items": {"type": "object"}},
            },
        },
    }
