"""The mobile capability end to end inside one server: the terminal (the agent's real Uplink)
gets its QR pushed, a phone gateway (the Mobile API) pairs, the terminal sees the matching
code, the phone watches the service list change with device status, either side cancels.
Also: the gateway's role in certificates and in the Authorizer."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from branchline.agent.service_state import ServiceState
from branchline.agent.uplink import Uplink
from branchline.common.grpc_errors import error_details
from branchline.drivers.base import DeviceStatus
from branchline.server.app import DispatchServer
from branchline.server.auth import MOBILE, principal_from_cert
from branchline.server.mobile import pairing
from branchline.server.mobile_gateway.backend import Backend, BackendSettings, Refusal
from branchline.server.pki import init_pki
from branchline.v1 import mobile_pb2 as mpb
from branchline.v1 import mobile_pb2_grpc as mpb_grpc
from branchline.v1 import terminal_link_pb2 as pb
from tests.unit.link_support import DEVICES, loopback_terminal, snapshot, until
from tests.unit.mobile_support import GATEWAY, server_settings

pytestmark = pytest.mark.timeout(90)


# long: one scenario from QR to cancel, each step depending on the state the last one left
def test_qr_pairing_service_list_and_cancel(tmp_path: Path) -> None:
    # long: the scenario itself, steps in order
    async def scenario() -> None:
        server = DispatchServer(server_settings(tmp_path))
        running = asyncio.create_task(server.run())
        await until(lambda: server.port and server.hub and server.hub._running, "the server")
        assert "branchline.v1.Mobile" in server.hub.service_names  # type: ignore[union-attr]
        config = loopback_terminal("T-QR", server.port, tmp_path)
        uplink = Uplink(
            config, lambda: [snapshot(n) for n in DEVICES], lambda: ServiceState.IN_SERVICE
        )
        updates: list[mpb.PairingUpdate] = []

        async def on_update(message: pb.ServerMessage) -> None:
            updates.append(message.pairing_update)

        uplink.on_push("pairing_update", on_update)
        link_task = asyncio.create_task(uplink.run())
        await until(lambda: updates, "the first QR")
        offer = updates[-1]
        assert offer.state == "offering"
        assert offer.url == f"{GATEWAY}/p/{offer.handle}"
        assert len(offer.short_code) == 9 and offer.short_code[4] == "-"

        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            phone = mpb_grpc.MobileStub(channel)
            opened = await phone.OpenHandle(mpb.OpenHandleRequest(handle=offer.handle))
            code = opened.pairing.matching_code
            assert opened.pairing.terminal_id == "T-QR" and len(code) == 4
            await until(lambda: updates[-1].state == "paired", "the terminal's matching code")
            assert updates[-1].matching_code == code
            assert opened.session_token not in str(updates[-1])

            with pytest.raises(grpc.aio.AioRpcError) as again:
                await phone.OpenHandle(mpb.OpenHandleRequest(handle=offer.handle))
            assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert error_details(again.value).reason == "handle_used"

            session = mpb.SessionRequest(session_token=opened.session_token)
            watch = phone.WatchServices(session)
            first = await watch.read()
            assert "tube_deposit" in first.services and first.auth_methods == ["terminal"]
            uplink.device_changed(snapshot("tube_station", DeviceStatus.USER_ERROR))
            jammed = await asyncio.wait_for(watch.read(), 5)
            assert "tube_deposit" not in jammed.services
            assert "tube_withdrawal" not in jammed.services
            assert "statement_print" in jammed.services

            other = mpb.SessionRequest(session_token=opened.session_token, terminal_id="T-OTHER")
            with pytest.raises(grpc.aio.AioRpcError) as bound:
                await phone.GetServices(other)
            assert bound.value.code() == grpc.StatusCode.PERMISSION_DENIED

            # The customer at the terminal cancels: the phone's watch ends, a new QR shows.
            reply = await uplink.request(pairing_cancel=mpb.PairingCancel())
            assert reply.pairing_update.state == "offering"
            assert reply.pairing_update.handle != offer.handle
            assert reply.pairing_update.last_end_reason == pairing.CANCELED_BY_TERMINAL
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                await asyncio.wait_for(watch.read(), 5)
            assert error_details(ended.value).reason == "pairing_ended"

            # The phone cancels a second pairing; the terminal is told.
            fresh = reply.pairing_update
            second = await phone.OpenHandle(mpb.OpenHandleRequest(short_code=fresh.short_code))
            await until(lambda: updates[-1].state == "paired", "the second pairing")
            done = await phone.Cancel(mpb.SessionRequest(session_token=second.session_token))
            assert done.state == "ended" and done.end_reason == pairing.CANCELED_BY_PHONE
            await until(lambda: updates[-1].state == "offering", "a QR after the phone left")
            assert updates[-1].last_end_reason == pairing.CANCELED_BY_PHONE

            with pytest.raises(grpc.aio.AioRpcError) as neither:
                await phone.OpenHandle(mpb.OpenHandleRequest())
            assert error_details(neither.value).field == "handle"

        link_task.cancel()
        await asyncio.gather(link_task, return_exceptions=True)
        server.request_stop()
        assert await running == 0

    asyncio.run(scenario())


def test_the_gateway_certificate_names_the_mobile_role(tmp_path: Path) -> None:
    layout = init_pki(tmp_path / "pki", ["T1"], mobile_gateways=["gw1"])
    pem = layout.user_cert("mobile", "gw1").read_bytes()
    principal = principal_from_cert(pem)
    assert principal is not None and (principal.role, principal.name) == (MOBILE, "gw1")
    cert = x509.load_pem_x509_certificate(pem)
    assert "gw1" in cert.subject.rfc4514_string()


def test_only_the_gateway_role_may_call_the_mobile_api(tmp_path: Path) -> None:
    """Over mTLS: the gateway's certificate gets through to the refusal of a made-up handle
    (NOT_FOUND); an operator's certificate is refused before that."""
    layout = init_pki(tmp_path / "pki", ["T1"], mobile_gateways=["gw1"])
    settings = dataclasses.replace(
        server_settings(tmp_path),
        tls_ca=layout.ca_cert,
        tls_cert=layout.server_cert,
        tls_key=layout.server_key,
        insecure_loopback=False,
    )

    async def call_as(port: int, role: str, name: str) -> grpc.StatusCode:
        backend = Backend(
            BackendSettings(
                f"127.0.0.1:{port}",
                ca=layout.ca_cert,
                cert=layout.user_cert(role, name),
                key=layout.user_key(role, name),
            )
        )
        try:
            await backend.open_handle(handle="made-up-handle")
        except Refusal as exc:
            return {404: grpc.StatusCode.NOT_FOUND, 403: grpc.StatusCode.PERMISSION_DENIED}.get(
                exc.status, grpc.StatusCode.UNKNOWN
            )
        finally:
            await backend.close()
        return grpc.StatusCode.OK

    async def scenario() -> None:
        server = DispatchServer(settings)
        running = asyncio.create_task(server.run())
        await until(lambda: server.port and server.hub and server.hub._running, "the server")
        try:
            assert await call_as(server.port, "mobile", "gw1") == grpc.StatusCode.NOT_FOUND
            assert (
                await call_as(server.port, "operator", "ops") == grpc.StatusCode.PERMISSION_DENIED
            )
        finally:
            server.request_stop()
            await running

    asyncio.run(scenario())
