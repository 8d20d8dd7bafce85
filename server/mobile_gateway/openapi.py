"""The JSON API's OpenAPI 3.1 document, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*statuses: int) -> dict[str, Any]:
    texts = {
        400: "malformed request; `field` names what was wrong",
        401: "no session: scan the terminal's QR code first",
        403: "cross-site request, missing CSRF token, or another terminal's session",
        404: "unknown code",
        409: "the terminal is busy with another phone",
        410: "the pairing has ended, or the code was already used or expired",
        429: "rate limited; see Retry-After",
        503: "the bank cannot be reached",
    }
    return {
        str(status): {
            "description": texts[status],
            "content": {"application/json": {"schema": _ERROR}},
        }
        for status in statuses
    }


def _ok(schema: str) -> dict[str, Any]:
    return {
        "description": "OK",
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def document() -> dict[str, Any]:
    from branchline.server.mobile_gateway.openapi_jobs import job_paths, job_schemas

    doc = _pairing_document()
    doc["paths"].update(job_paths(_ok, _errors))
    doc["components"]["schemas"].update(job_schemas())
    return doc


# long: one literal document, read top to bottom like the API it describes
def _pairing_document() -> dict[str, Any]:
    session: list[dict[str, list[str]]] = [{"session": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Branchline phone gateway",
            "version": "1.0.0",
            "description": "Pair a phone with a terminal from its QR code (single-use, "
            "short-lived handles) and see the services the terminal can do now.",
        },
        "paths": {
            "/p/{handle}": {
                "get": {
                    "summary": "Open the QR's URL: the first opening pairs (HTML page)",
                    "operationId": "openHandle",
                    "parameters": [
                        {
                            "name": "handle",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "maxLength": 64},
                        }
                    ],
                    "responses": {
                        str(status): {
                            "description": description,
                            "content": {"text/html": {"schema": {"type": "string"}}},
                        }
                        for status, description in (
                            (200, "paired: the phone page, with the session cookie"),
                            (400, "malformed handle"),
                            (404, "not a handle any terminal showed"),
                            (409, "the terminal is busy with another phone"),
                            (410, "already used, or expired"),
                            (429, "rate limited"),
                            (503, "the bank cannot be reached"),
                        )
                    },
                }
            },
            "/api/pair": {
                "post": {
                    "summary": "Pair with the terminal showing this short code",
                    "operationId": "pair",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/PairRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": _ok("Pairing"),
                        **_errors(400, 403, 404, 409, 410, 429, 503),
                    },
                }
            },
            "/api/pairing": {
                "get": {
                    "summary": "This phone's pairing and its CSRF token",
                    "operationId": "getPairing",
                    "security": session,
                    "responses": {"200": _ok("Pairing"), **_errors(400, 401, 403, 410, 429, 503)},
                }
            },
            "/api/services": {
                "get": {
                    "summary": "The services the paired terminal can do now",
                    "operationId": "getServices",
                    "security": session,
                    "responses": {
                        "200": _ok("ServiceList"),
                        **_errors(400, 401, 403, 410, 429, 503),
                    },
                }
            },
            "/api/cancel": {
                "post": {
                    "summary": "End the pairing from the phone",
                    "operationId": "cancel",
                    "security": session,
                    "parameters": [
                        {
                            "name": "X-CSRF-Token",
                            "in": "header",
                            "required": True,
                            "schema": {"type": "string", "maxLength": 128},
                        }
                    ],
                    "responses": {"200": _ok("Pairing"), **_errors(400, 401, 403, 410, 429, 503)},
                }
            },
        },
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "bl_session"}
            },
            "schemas": {
                "PairRequest": {
                    "type": "object",
                    "required": ["short_code"],
                    "properties": {"short_code": {"type": "string", "maxLength": 64}},
                },
                "Pairing": {
                    "type": "object",
                    "required": ["pairing_id", "terminal_id", "state", "matching_code"],
                    "properties": {
                        "pairing_id": {"type": "string"},
                        "terminal_id": {"type": "string"},
                        "state": {"type": "string", "enum": ["paired", "ended"]},
                        "matching_code": {"type": "string", "pattern": "^[0-9]{4}$"},
                        "end_reason": {"type": "string"},
                        "csrf_token": {"type": "string"},
                    },
                },
                "ServiceList": {
                    "type": "object",
                    "required": ["terminal_id", "services", "auth_methods"],
                    "properties": {
                        "terminal_id": {"type": "string"},
                        "unavailable_reason": {
                            "type": "string",
                            "enum": ["", "offline", "out_of_service", "maintenance"],
                        },
                        "services": {
                            "type": "array",
                            "items": {
                                "type": "string",
                                "enum": [
                                    "tube_deposit",
                                    "tube_withdrawal",
                                    "statement_view",
                                    "statement_print",
                                    "cheque_book",
                                    "video_teller",
                                ],
                            },
                        },
                        "auth_methods": {"type": "array", "items": {"type": "string"}},
                        "pairing_state": {"type": "string"},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string"},
                        "field": {"type": "string"},
                        "message": {"type": "string"},
                    },
                },
            },
        },
    }
