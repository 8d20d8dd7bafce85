"""Phones' jobs through one real server: the Mobile API (as the gateway calls it) submits,
the terminal (the agent's real Uplink) gets the job pushed until it reports it received,
the job moves forward with the terminal's reports, the phone sees the receipt reference;
a job the terminal can no longer do is refused and never sent; sign-in at the bank."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import grpc
import pytest

from branchline.agent.service_state import ServiceState
from branchline.agent.uplink import Uplink
from branchline.common.grpc_errors import error_details
from branchline.drivers.base import DeviceStatus
from branchline.server.app import DispatchServer
from branchline.server.ledger.accounts import open_account
from branchline.server.ledger.cards import add_customer
from branchline.server.mobile import bank_auth
from branchline.v1 import mobile_pb2 as mpb
from branchline.v1 import mobile_pb2_grpc as mpb_grpc
from branchline.v1 import terminal_link_pb2 as pb
from tests.unit.link_support import DEVICES, loopback_terminal, snapshot, until
from tests.unit.mobile_support import server_settings

pytestmark = pytest.mark.timeout(120)
SECRET = base64.b32encode(b"phone-job-secret-123").decode()


# long: one scenario in order, each step depending on the state the last one left
def test_job_forwarded_once_followed_and_refused_when_device_lost(tmp_path: Path) -> None:
    # long: the scenario itself
    async def scenario() -> None:
        server = DispatchServer(server_settings(tmp_path))
        running = asyncio.create_task(server.run())
        await until(lambda: server.port and server.hub and server.hub._running, "the server")
        config = loopback_terminal("T-JOB", server.port, tmp_path)
        uplink = Uplink(
            config, lambda: [snapshot(n) for n in DEVICES], lambda: ServiceState.IN_SERVICE
        )
        offers: list[mpb.PairingUpdate] = []
        pushed: list[mpb.PhoneJobOffer] = []

        async def on_pairing(message: pb.ServerMessage) -> None:
            offers.append(message.pairing_update)

        async def on_job(message: pb.ServerMessage) -> None:
            pushed.append(message.phone_job)

        uplink.on_push("pairing_update", on_pairing)
        uplink.on_push("phone_job", on_job)
        link_task = asyncio.create_task(uplink.run())
        await until(lambda: offers and offers[-1].state == "offering", "the QR")
        engine = server.hub.engine  # type: ignore[union-attr]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            phone = mpb_grpc.MobileStub(channel)
            opened = await phone.OpenHandle(mpb.OpenHandleRequest(handle=offers[-1].handle))
            session = mpb.SessionRequest(session_token=opened.session_token)
            deposit = mpb.SubmitJobRequest(
                session=session, idempotency_key="deposit-0001", service="tube_deposit",
                auth="terminal", asset_kind="cash", currency="CNY", amount="200",
            )  # fmt: skip
            with pytest.raises(grpc.aio.AioRpcError) as bad:
                await phone.SubmitJob(
                    mpb.SubmitJobRequest(
                        session=session,
                        idempotency_key="deposit-0002",
                        service="tube_deposit",
                        auth="terminal",
                        asset_kind="cash",
                        currency="CNY",
                        amount="-1",
                    )  # fmt: skip
                )
            assert error_details(bad.value).field == "amount"
            job = await phone.SubmitJob(deposit)
            again = await phone.SubmitJob(deposit)
            assert again.job_id == job.job_id and job.state == "submitted"
            await until(lambda: pushed, "the job pushed to the terminal")
            offer = pushed[0]
            assert (offer.job_id, offer.amount, offer.auth) == (job.job_id, "200", "terminal")
            assert offer.matching_code == opened.pairing.matching_code
            assert not offer.session_token  # card + PIN at the terminal: no session sent
            # Not yet received: pushed again (the terminal dedups on job_id).
            await until(lambda: len(pushed) >= 2, "the job pushed again", timeout=6)
            assert {p.job_id for p in pushed} == {job.job_id}

            async def report(state: str, **fields: object) -> pb.ServerMessage:
                update = mpb.PhoneJobUpdate(job_id=job.job_id, state=state, **fields)  # type: ignore[arg-type]
                return await uplink.request(phone_job_update=update)

            assert (await report("received")).phone_job_ack.state == "received"
            count = len(pushed)
            await asyncio.sleep(2.5)
            assert len(pushed) == count  # received: never pushed again
            await report("ready")
            await report("authenticating", customer_id="cust-1")
            await report("running")
            await report("done", receipt_reference="TUBE-42")
            seen = await phone.GetJob(mpb.JobRequest(session=session, job_id=job.job_id))
            assert (seen.state, seen.receipt_reference) == ("done", "TUBE-42")
            refused = await uplink.request(
                phone_job_update=mpb.PhoneJobUpdate(job_id="pj-not-mine", state="running")
            )
            assert refused.error.field == "phone_job_update.job_id"

            # The tube jams after a withdrawal was submitted: refused, never sent.
            await phone.SubmitJob(
                mpb.SubmitJobRequest(
                    session=session,
                    idempotency_key="withdraw-001",
                    service="video_teller",
                    auth="terminal",
                    business_type="loan",
                )  # fmt: skip
            )
            await until(lambda: len(pushed) > count, "the video job pushed")
            video = pushed[-1]
            await uplink.request(
                phone_job_update=mpb.PhoneJobUpdate(job_id=video.job_id, state="failed")
            )
            uplink.device_changed(snapshot("tube_station", DeviceStatus.USER_ERROR))
            listed = phone.WatchServices(session)
            await _until_async(listed, lambda s: "tube_withdrawal" not in s.services)
            listed.cancel()
            with pytest.raises(grpc.aio.AioRpcError) as jammed:
                await phone.SubmitJob(
                    mpb.SubmitJobRequest(
                        session=session,
                        idempotency_key="withdraw-002",
                        service="tube_withdrawal",
                        auth="terminal",
                        currency="CNY",
                        amount="5",
                    )  # fmt: skip
                )
            assert error_details(jammed.value).reason == "service_unavailable"

            # Sign-in at the bank: password + TOTP; the accounts come back; lockout.
            add_customer(engine, "cust-1", "Ada", _now())
            open_account(engine, "cust-1", "cash", "CNY", _now(), account_id="acc-cny")
            await asyncio.to_thread(bank_auth.enroll, engine, "cust-1", "correct horse", SECRET)
            code = bank_auth.totp(bank_auth.secret_bytes(SECRET), _now().timestamp())
            login = mpb.LoginRequest(
                session=session, customer_id="cust-1", password="correct horse", totp=code
            )
            result = await phone.Login(login)
            assert [a.account_id for a in result.accounts] == ["acc-cny"]
            with pytest.raises(grpc.aio.AioRpcError) as wrong:
                await phone.Login(login)  # the same code twice
            assert error_details(wrong.value).reason == "login_failed"

        link_task.cancel()
        await asyncio.gather(link_task, return_exceptions=True)
        server.request_stop()
        assert await running == 0

    asyncio.run(scenario())


async def _until_async(stream: object, check: object) -> None:
    async def read() -> None:
        while True:
            item = await stream.read()  # type: ignore[attr-defined]
            if check(item):  # type: ignore[operator]
                return

    await asyncio.wait_for(read(), 5)


def _now():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC)
