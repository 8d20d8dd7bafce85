"""The phone gateway over real HTTPS (dev PKI) against a real server and terminal link:
pairing from the QR's URL, 410 on a second opening, expired / tampered / other-terminal
refusals, CSRF, same-origin, rate limits, security headers, live service list, OpenAPI."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openapi_spec_validator import validate
from yarl import URL

from branchline.drivers.base import DeviceStatus
from branchline.server.mobile import pairing
from branchline.server.mobile_gateway.app import Limits
from branchline.server.mobile_gateway.openapi import document
from branchline.server.storage import open_database
from branchline.v1 import mobile_pb2 as mpb
from tests.unit.link_support import snapshot, until
from tests.unit.mobile_support import same_origin, stack

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]


# long: the whole QR path, one phone after another, as a customer meets it
async def test_the_qr_url_pairs_once_then_answers_410(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        offer = await s.offer()
        path = "/p/" + offer.handle
        async with s.phone() as phone:
            async with phone.get(s.base + path) as first:
                assert first.status == 200
                page = await first.text()
                assert 'data-screen="paired"' in page
                cookie = first.cookies["bl_session"]
                assert cookie["httponly"] and cookie["secure"]
                assert cookie["samesite"] == "Lax"
                assert "default-src 'self'" in first.headers["Content-Security-Policy"]
                assert "max-age=" in first.headers["Strict-Transport-Security"]
                assert first.headers["Referrer-Policy"] == "no-referrer"
            async with phone.get(s.base + "/api/pairing") as got:
                pairing_json = await got.json()
            await until(lambda: s.updates[-1].state == "paired", "the terminal's code")
            assert pairing_json["matching_code"] == s.updates[-1].matching_code
            async with phone.get(s.base + "/api/services") as listed:
                services = await listed.json()
                assert "tube_deposit" in services["services"]

        async with s.phone() as thief:
            async with thief.get(s.base + path) as again:
                assert again.status == 410
                text = await again.text()
                assert 'data-reason="handle_used"' in text
                assert "already used" in text or "已被使用" in text
                assert "bl_session" not in again.cookies
            async with thief.get(s.base + path, headers={"Accept-Language": "en"}) as en:
                assert en.status == 410 and "already used" in await en.text()


async def test_expired_tampered_and_malformed_handles_are_refused(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        offer = await s.offer()
        engine = open_database(s.db_url)
        try:
            old = await asyncio.to_thread(
                pairing.issue_handle, engine, "T-GW", datetime.now(UTC) - timedelta(minutes=3)
            )
        finally:
            engine.dispose()
        tampered = offer.handle[:-2] + ("AA" if not offer.handle.endswith("AA") else "BB")
        async with s.phone() as phone:
            async with phone.get(s.base + "/p/" + old.handle) as expired:
                assert expired.status == 410
                assert 'data-reason="handle_expired"' in await expired.text()
            async with phone.get(s.base + "/p/" + tampered) as forged:
                assert forged.status == 404
                assert 'data-reason="unknown_handle"' in await forged.text()
            async with phone.get(s.base + "/p/" + "x" * 300) as huge:
                assert huge.status == 400
            # None of that used up the real one.
            async with phone.get(s.base + "/p/" + offer.handle) as real:
                assert real.status == 200


async def test_another_terminals_session_and_missing_csrf_are_refused(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        offer = await s.offer()
        async with s.phone() as phone:
            async with phone.get(s.base + "/p/" + offer.handle) as opened:
                assert opened.status == 200
            async with phone.get(s.base + "/api/pairing") as got:
                csrf = (await got.json())["csrf_token"]
            phone.cookie_jar.update_cookies({"bl_terminal": "T-OTHER"}, URL(s.base))
            async with phone.get(s.base + "/api/services") as other:
                assert other.status == 403
                assert (await other.json())["error"] == "session_bound_to_terminal"
            phone.cookie_jar.update_cookies({"bl_terminal": "T-GW"}, URL(s.base))

            async with phone.post(s.base + "/api/cancel", headers=same_origin(s.base)) as bare:
                assert bare.status == 403
                body = await bare.json()
                assert (body["error"], body["field"]) == ("csrf", "X-CSRF-Token")
            cross = {"Origin": "https://evil.example", "X-CSRF-Token": csrf}
            async with phone.post(s.base + "/api/cancel", headers=cross) as forged:
                assert forged.status == 403 and (await forged.json())["error"] == "cross_site"
            ok = same_origin(s.base, csrf)
            async with phone.post(s.base + "/api/cancel", headers=ok) as canceled:
                assert canceled.status == 200
                assert (await canceled.json())["end_reason"] == "canceled_by_phone"
        await until(lambda: s.updates[-1].last_end_reason == "canceled_by_phone", "the notice")

        async with s.phone() as later:
            later.cookie_jar.update_cookies({"bl_session": "made-up-token"}, URL(s.base))
            async with later.get(s.base + "/api/services") as unknown:
                assert unknown.status == 403
            async with later.get(s.base + "/openapi.json") as spec:
                assert spec.status == 200


async def test_short_code_pairs_and_the_list_follows_the_tube(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        offer = await s.offer()
        async with s.phone() as phone:
            async with phone.post(
                s.base + "/api/pair",
                data=json.dumps({"short_code": offer.short_code.lower()}),
                headers=same_origin(s.base),
            ) as paired:
                assert paired.status == 200
                assert (await paired.json())["terminal_id"] == "T-GW"
            async with phone.post(
                s.base + "/api/pair", data="{}", headers=same_origin(s.base)
            ) as missing:
                assert missing.status == 400 and (await missing.json())["field"] == "short_code"
            async with phone.get(s.base + "/api/services/events") as events:
                first = await _next_event(events)
                assert first[0] == "services" and "tube_deposit" in first[1]["services"]
                jammed_at = asyncio.get_running_loop().time()
                s.uplink.device_changed(snapshot("tube_station", DeviceStatus.USER_ERROR))
                name, data = await asyncio.wait_for(_next_event(events), 5)
                assert asyncio.get_running_loop().time() - jammed_at < 5
                assert name == "services"
                assert "tube_deposit" not in data["services"]
                assert "tube_withdrawal" not in data["services"]
                await s.uplink.request(pairing_cancel=mpb.PairingCancel())
                name, data = await asyncio.wait_for(_next_event(events), 5)
                assert (name, data["error"]) == ("ended", "pairing_ended")


async def _next_event(response: aiohttp.ClientResponse) -> tuple[str, dict[str, Any]]:
    name, data = "", ""
    while True:
        line = (await response.content.readline()).decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data = line[len("data: ") :]
        elif line == "" and name:
            return name, json.loads(data)


async def test_rate_limits_answer_429(tmp_path: Path) -> None:
    limits = Limits(phone_rate=0.01, phone_burst=3, terminal_rate=0.01, terminal_burst=2)
    async with stack(tmp_path, limits) as s:
        async with s.phone() as phone:
            statuses = []
            for _ in range(4):
                async with phone.get(s.base + "/p/nothing-like-a-handle") as answer:
                    statuses.append(answer.status)
                    retry = answer.headers.get("Retry-After")
            assert statuses == [404, 404, 404, 429]
            assert retry is not None and int(retry) >= 1


async def test_the_openapi_document_validates() -> None:
    validate(document())
