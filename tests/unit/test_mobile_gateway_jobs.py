"""The gateway's job endpoints over real HTTPS against a real server and terminal link: a
job needs same origin and the CSRF token, is validated with the field named (400), is
forwarded (201) and followed, a repeat with the same key is the same job; the job
endpoints are rate limited (429); a job for a service the terminal lost is refused (409);
the recordings of a job that has none are refused naming why, bad input naming the field;
the OpenAPI document describes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from branchline.drivers.base import DeviceStatus
from branchline.server.mobile_gateway.app import Limits
from branchline.server.mobile_gateway.openapi import document
from tests.unit.link_support import snapshot, until
from tests.unit.mobile_support import same_origin, stack

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]
JOB = {"idempotency_key": "gw-job-0001", "service": "video_teller", "auth": "terminal"}


# long: one phone's requests in order, each depending on the last
async def test_jobs_need_csrf_are_validated_forwarded_and_followed(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        offer = await s.offer()
        async with s.phone() as phone:
            async with phone.get(s.base + "/p/" + offer.handle) as opened:
                assert opened.status == 200
            async with phone.get(s.base + "/api/pairing") as got:
                csrf = (await got.json())["csrf_token"]
            body = {**JOB, "business_type": "loan"}
            async with phone.post(
                s.base + "/api/jobs", json=body, headers=same_origin(s.base)
            ) as bare:
                assert bare.status == 403 and (await bare.json())["error"] == "csrf"
            cross = {"Origin": "https://evil.example", "X-CSRF-Token": csrf}
            async with phone.post(s.base + "/api/jobs", json=body, headers=cross) as forged:
                assert forged.status == 403 and (await forged.json())["error"] == "cross_site"
            ok = same_origin(s.base, csrf)
            bad = {**JOB, "business_type": "heist"}
            async with phone.post(s.base + "/api/jobs", json=bad, headers=ok) as invalid:
                assert invalid.status == 400
                assert (await invalid.json())["field"] == "business_type"
            wrong = {**JOB, "cheque_leaves": "ten"}
            async with phone.post(s.base + "/api/jobs", json=wrong, headers=ok) as typed:
                assert typed.status == 400 and (await typed.json())["field"] == "cheque_leaves"
            async with phone.post(s.base + "/api/jobs", json=body, headers=ok) as made:
                assert made.status == 201
                job = await made.json()
            assert job["state"] == "submitted" and job["service"] == "video_teller"
            async with phone.post(s.base + "/api/jobs", json=body, headers=ok) as repeat:
                assert (await repeat.json())["job_id"] == job["job_id"]
            async with phone.get(s.base + f"/api/jobs/{job['job_id']}") as seen:
                assert seen.status == 200 and (await seen.json())["job_id"] == job["job_id"]
            async with phone.get(s.base + "/api/jobs/pj-not-mine") as unknown:
                assert unknown.status == 404
            # Recordings: only a finished tube job has them; bad input is named.
            recs = s.base + f"/api/jobs/{job['job_id']}/recordings"
            async with phone.get(recs) as early:
                assert early.status == 409, await early.text()
                assert (await early.json())["error"] == "no_recorded_transaction"
            async with phone.get(s.base + "/api/jobs/pj-not-mine/recordings") as stranger:
                assert stranger.status == 404
            async with phone.get(recs + "/not-a-sha") as bad_sha:
                assert bad_sha.status == 400 and (await bad_sha.json())["field"] == "sha256"
            ranged = {"Range": "bytes=5-9"}
            async with phone.get(recs + "/" + "a" * 64, headers=ranged) as bad_range:
                assert bad_range.status == 400 and (await bad_range.json())["field"] == "Range"
            async with phone.get(recs + "/" + "a" * 64) as not_yet:
                assert not_yet.status == 409
            login = {"customer_id": "nobody", "password": "whatever-it-is", "totp": "123456"}
            async with phone.post(s.base + "/api/login", json=login, headers=ok) as refused:
                assert refused.status == 403, await refused.text()
                assert (await refused.json())["error"] == "login_failed"

            s.uplink.device_changed(snapshot("tube_station", DeviceStatus.USER_ERROR))

            async def tube_gone() -> bool:
                async with phone.get(s.base + "/api/services") as listed:
                    return "tube_deposit" not in (await listed.json())["services"]

            gone = False

            async def check() -> None:
                nonlocal gone
                gone = await tube_gone()

            for _ in range(100):
                await check()
                if gone:
                    break
                await until(lambda: True, "a pause", 0.1)
            assert gone
            deposit = {
                "idempotency_key": "gw-job-0002", "service": "tube_deposit", "auth": "terminal",
                "asset_kind": "cash", "currency": "CNY", "amount": "10",
            }  # fmt: skip
            async with phone.post(s.base + "/api/jobs", json=deposit, headers=ok) as lost:
                assert lost.status == 409
                assert (await lost.json())["error"] in ("service_unavailable", "job_in_progress")


async def test_job_endpoints_are_rate_limited(tmp_path: Path) -> None:
    limits = Limits(phone_rate=0.1, phone_burst=4, terminal_rate=100, terminal_burst=100)
    async with stack(tmp_path, limits) as s:
        offer = await s.offer()
        async with s.phone() as phone:
            async with phone.get(s.base + "/p/" + offer.handle) as opened:
                assert opened.status == 200
            statuses = []
            for _ in range(6):
                async with phone.get(s.base + "/api/jobs/pj-x") as answer:
                    statuses.append(answer.status)
                    retry = answer.headers.get("Retry-After")
            assert statuses[-1] == 429 and retry is not None


async def test_the_openapi_document_lists_the_job_endpoints() -> None:
    paths = document()["paths"]
    assert {
        "/api/login",
        "/api/quote",
        "/api/jobs",
        "/api/jobs/{job_id}",
        "/api/jobs/{job_id}/recordings",
        "/api/jobs/{job_id}/recordings/{sha256}",
    } <= set(paths)
    assert any(p["name"] == "X-CSRF-Token" for p in paths["/api/jobs"]["post"]["parameters"])
