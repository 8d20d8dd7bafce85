"""The gateway's aiohttp application: pages, the JSON API, the OpenAPI document.

Every handler is thin: rate limit, read the cookie, call the server's Mobile API
(``backend``), answer. A refusal from the server keeps its reason and field.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from branchline.server.mobile_gateway import pages, security
from branchline.server.mobile_gateway.backend import Backend, Refusal
from branchline.server.mobile_gateway.openapi import document
from branchline.v1 import mobile_pb2 as pb

TERMINAL_COOKIE = "bl_terminal"
MAX_BODY = 16 * 1024


@dataclass(frozen=True)
class Limits:
    """Requests a second (and burst) per phone address and per paired terminal."""

    phone_rate: float = 2.0
    phone_burst: int = 20
    terminal_rate: float = 5.0
    terminal_burst: int = 50


BACKEND_KEY: web.AppKey[Backend] = web.AppKey("backend", Backend)
PHONE_LIMIT: web.AppKey[security.RateLimiter] = web.AppKey("phone_limit", security.RateLimiter)
TERMINAL_LIMIT: web.AppKey[security.RateLimiter] = web.AppKey(
    "terminal_limit", security.RateLimiter
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def static_dir() -> Path:
    return Path(str(resources.files("branchline.server.mobile_gateway").joinpath("static")))


def _phone_key(request: web.Request) -> str:
    return request.remote or "unknown"


def _limit_phone(request: web.Request) -> None:
    wait = request.app[PHONE_LIMIT].take(_phone_key(request))
    if wait:
        raise security.too_many(wait, "from this phone")


def _limit_terminal(request: web.Request, terminal_id: str) -> None:
    wait = request.app[TERMINAL_LIMIT].take(terminal_id or "unknown")
    if wait:
        raise security.too_many(wait, "for this terminal")


def _session(request: web.Request) -> tuple[str, str]:
    """(session token, terminal id) from the cookies; 401 without a session."""
    token = request.cookies.get(security.SESSION_COOKIE, "")
    if not token:
        raise _json_error(401, "no_session", "", "scan the terminal's QR code first")
    return token, request.cookies.get(TERMINAL_COOKIE, "")


def _json_error(status: int, reason: str, field: str, message: str) -> web.HTTPException:
    body = json.dumps({"error": reason, "field": field, "message": message})
    return _status_exception(status)(text=body, content_type="application/json")


def _status_exception(status: int) -> type[web.HTTPException]:
    classes: dict[int, type[web.HTTPException]] = {
        400: web.HTTPBadRequest,
        401: web.HTTPUnauthorized,
        403: web.HTTPForbidden,
        404: web.HTTPNotFound,
        409: web.HTTPConflict,
        410: web.HTTPGone,
        429: web.HTTPTooManyRequests,
        503: web.HTTPServiceUnavailable,
    }
    return classes.get(status, web.HTTPServiceUnavailable)


def _refused(exc: Refusal) -> web.HTTPException:
    return _json_error(exc.status, exc.reason, exc.field, exc.message)


def _pairing_json(pairing: pb.PhonePairing, token: str) -> dict[str, Any]:
    return {
        "pairing_id": pairing.pairing_id,
        "terminal_id": pairing.terminal_id,
        "state": pairing.state,
        "matching_code": pairing.matching_code,
        "end_reason": pairing.end_reason,
        "csrf_token": security.csrf_token(token) if pairing.state == "paired" else "",
    }


def _services_json(listed: pb.PhoneServiceList) -> dict[str, Any]:
    return {
        "terminal_id": listed.terminal_id,
        "unavailable_reason": listed.unavailable_reason,
        "services": list(listed.services),
        "auth_methods": list(listed.auth_methods),
        "pairing_state": listed.pairing.state,
    }


def _paired(response: web.StreamResponse, opened: pb.OpenedPairing) -> None:
    security.set_session_cookie(response, opened.session_token)
    response.set_cookie(
        TERMINAL_COOKIE,
        opened.pairing.terminal_id,
        max_age=security.SESSION_MAX_AGE,
        path="/",
        secure=True,
        httponly=True,
        samesite="Lax",
    )


def _forget(response: web.StreamResponse) -> None:
    security.clear_session_cookie(response)
    response.del_cookie(TERMINAL_COOKIE, path="/")


def _state_changing(request: web.Request) -> None:
    if not security.same_origin(request):
        raise _json_error(403, "cross_site", "", "state-changing requests come from this site only")


# -- pages ----------------------------------------------------------------------------------


async def home(request: web.Request) -> web.Response:
    _limit_phone(request)
    lang = pages.language(request)
    if request.cookies.get(security.SESSION_COOKIE):
        return pages.paired_page(lang)
    return pages.code_form(lang)


async def open_from_qr(request: web.Request) -> web.Response:
    """``/p/<handle>``: the first opening pairs; a later one is 410 with a page saying so."""
    _limit_phone(request)
    lang = pages.language(request)
    backend = request.app[BACKEND_KEY]
    try:
        opened = await backend.open_handle(handle=request.match_info["handle"])
    except Refusal as exc:
        return pages.refusal_page(lang, exc.status, exc.reason)
    # The list in the page itself: shown as soon as it arrives, not after the scripts and
    # two more round trips (the script refreshes it). Paired already: the list may wait.
    try:
        listed = await backend.services(opened.session_token, opened.pairing.terminal_id)
    except Refusal:
        response = pages.paired_page(lang)
    else:
        response = pages.paired_page(
            lang,
            tuple(listed.services),
            opened.pairing.matching_code,
            "terminal" in listed.auth_methods,
        )
    _paired(response, opened)
    return response


# -- JSON API -------------------------------------------------------------------------------


async def api_pair(request: web.Request) -> web.Response:
    _limit_phone(request)
    _state_changing(request)
    try:
        body = await request.json()
    except ValueError:
        raise _json_error(400, "invalid_json", "", "the body must be JSON") from None
    code = body.get("short_code") if isinstance(body, dict) else None
    if not isinstance(code, str) or not code:
        raise _json_error(400, "required", "short_code", "short_code: is required")
    try:
        opened = await request.app[BACKEND_KEY].open_handle(short_code=code)
    except Refusal as exc:
        raise _refused(exc) from None
    response = web.json_response(_pairing_json(opened.pairing, opened.session_token))
    _paired(response, opened)
    return response


async def api_pairing(request: web.Request) -> web.Response:
    _limit_phone(request)
    token, terminal_id = _session(request)
    _limit_terminal(request, terminal_id)
    try:
        pairing = await request.app[BACKEND_KEY].pairing(token, terminal_id)
    except Refusal as exc:
        raise _refused(exc) from None
    return web.json_response(_pairing_json(pairing, token))


async def api_services(request: web.Request) -> web.Response:
    _limit_phone(request)
    token, terminal_id = _session(request)
    _limit_terminal(request, terminal_id)
    try:
        listed = await request.app[BACKEND_KEY].services(token, terminal_id)
    except Refusal as exc:
        raise _refused(exc) from None
    return web.json_response(_services_json(listed))


async def api_service_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the service list now and on every change; ``ended`` at the end."""
    _limit_phone(request)
    token, terminal_id = _session(request)
    _limit_terminal(request, terminal_id)
    backend = request.app[BACKEND_KEY]
    stream = backend.watch(token, terminal_id)
    try:
        first = await anext(stream)
    except Refusal as exc:
        raise _refused(exc) from None
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(_event("services", _services_json(first)))
    try:
        async for listed in stream:
            await response.write(_event("services", _services_json(listed)))
    except Refusal as exc:
        await response.write(_event("ended", exc.as_json()))
    except ConnectionResetError:
        pass
    finally:
        await stream.aclose()
    return response


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


async def api_cancel(request: web.Request) -> web.Response:
    _limit_phone(request)
    _state_changing(request)
    token, terminal_id = _session(request)
    if not security.csrf_ok(request, token):
        raise _json_error(
            403, "csrf", security.CSRF_HEADER, f"{security.CSRF_HEADER}: missing or wrong"
        )
    _limit_terminal(request, terminal_id)
    try:
        ended = await request.app[BACKEND_KEY].cancel(token, terminal_id)
    except Refusal as exc:
        raise _refused(exc) from None
    response = web.json_response(_pairing_json(ended, token))
    _forget(response)
    return response


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document())


async def manifest(request: web.Request) -> web.Response:
    body = {
        "name": "Branchline",
        "short_name": "Branchline",
        "start_url": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#0b4f8a",
        "icons": [{"src": "/static/icon.svg", "sizes": "any", "type": "image/svg+xml"}],
    }
    return web.json_response(body, content_type="application/manifest+json")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def make_app(backend: Backend, limits: Limits = Limits()) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[BACKEND_KEY] = backend
    app[PHONE_LIMIT] = security.RateLimiter(limits.phone_rate, limits.phone_burst)
    app[TERMINAL_LIMIT] = security.RateLimiter(limits.terminal_rate, limits.terminal_burst)
    app.router.add_get("/", home)
    app.router.add_get("/p/{handle}", open_from_qr)
    app.router.add_post("/api/pair", api_pair)
    app.router.add_get("/api/pairing", api_pairing)
    app.router.add_get("/api/services", api_services)
    app.router.add_get("/api/services/events", api_service_events)
    app.router.add_post("/api/cancel", api_cancel)
    from branchline.server.mobile_gateway import jobs_api, recordings_api

    jobs_api.add_routes(app)
    recordings_api.add_routes(app)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/manifest.webmanifest", manifest)
    app.router.add_get("/healthz", healthz)
    app.router.add_static("/static/", static_dir(), append_version=False)
    app.on_response_prepare.append(security.add_headers)
    return app
