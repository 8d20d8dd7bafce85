"""Server pushes and pluggable handlers on the TerminalLink stream, against the real Uplink.

A grpc.aio server on a loopback port and the agent's Uplink talk over a real socket; the
server queues unsolicited messages (ack_seq 0) beside its replies and the agent routes
them by body to the handler installed for it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from branchline.agent.uplink import UplinkUnavailable
from branchline.server.auth import Authorizer
from branchline.server.ledger.pan_token import PanTokenizer
from branchline.server.ledger.pin_service import PinSettings, PinVerifier
from branchline.server.link import PushRefused, TerminalLinkServicer
from branchline.server.pin.link import pin_verify_handler
from branchline.server.storage import open_database
from branchline.v1 import common_pb2
from branchline.v1 import terminal_link_pb2 as pb
from branchline.v1 import terminal_link_pb2_grpc as pb_grpc
from tests.unit.link_support import IN_SERVICE, link_stack, until
from tests.unit.sqlite_template import migrated_sqlite

pytestmark = pytest.mark.timeout(60)


def test_pushes_reach_the_agent_handler_and_connect_hooks_run(tmp_path: Path) -> None:
    async def scenario() -> None:
        stack = link_stack(tmp_path)
        servicer, uplink = await anext(stack)
        hooked: list[tuple[str, str]] = []
        received: list[pb.ServerMessage] = []
        reconnected = asyncio.Event()

        async def hook(terminal_id: str, branch: str) -> None:
            hooked.append((terminal_id, branch))
            # A hook may push at once: the registration's acknowledgement goes first.
            servicer.push(terminal_id, pb.ServerMessage(status_ack=pb.StatusAck()))

        async def on_status_ack(message: pb.ServerMessage) -> None:
            received.append(message)

        async def on_connected() -> None:
            reconnected.set()

        servicer.on_connect(hook)
        uplink.on_push("status_ack", on_status_ack)
        uplink.on_connected(on_connected)
        with pytest.raises(PushRefused, match="T-PUSH.*not connected"):
            servicer.push("T-PUSH", pb.ServerMessage(status_ack=pb.StatusAck()))
        with pytest.raises(UplinkUnavailable, match="not connected"):
            uplink.send(heartbeat=pb.Heartbeat())

        runner = asyncio.create_task(uplink.run())
        await until(lambda: uplink.connected and received, "the hook's push")
        await asyncio.wait_for(reconnected.wait(), 5)
        assert hooked == [("T-PUSH", "B1")]
        assert servicer.connected_terminals() == ["T-PUSH"]
        assert servicer.broadcast(pb.ServerMessage(status_ack=pb.StatusAck())) == 1
        await until(lambda: len(received) == 2, "the broadcast")
        assert all(m.ack_seq == 0 for m in received)
        # Requests still get their own answers while pushes flow.
        answer = await uplink.request(heartbeat=pb.Heartbeat(service_state=IN_SERVICE))
        assert answer.HasField("heartbeat_ack") and answer.ack_seq > 0
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await until(lambda: servicer.connected_terminals() == [], "the disconnect")
        await anext(stack, None)

    asyncio.run(scenario())


def test_installed_handlers_answer_and_built_ins_cannot_be_replaced(tmp_path: Path) -> None:
    engine = open_database(migrated_sqlite(tmp_path / "fleet.db"))
    servicer = TerminalLinkServicer(engine, "r1", 5.0, Authorizer(insecure=True))

    async def handler(terminal_id: str, message: pb.TerminalMessage) -> pb.ServerMessage | None:
        return None

    with pytest.raises(ValueError, match="heartbeat"):
        servicer.add_handler("heartbeat", handler)
    servicer.add_handler("something_new", handler)
    with pytest.raises(ValueError, match="something_new"):
        servicer.add_handler("something_new", handler)
    engine.dispose()


def test_a_push_with_no_handler_is_logged_and_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        stack = link_stack(tmp_path)
        servicer, uplink = await anext(stack)
        runner = asyncio.create_task(uplink.run())
        await until(lambda: servicer.connected_terminals() == ["T-PUSH"], "registration")
        servicer.push("T-PUSH", pb.ServerMessage(status_ack=pb.StatusAck()))
        await until(lambda: "push_ignored" in caplog.text, "the log line")
        assert uplink.connected
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await anext(stack, None)

    asyncio.run(scenario())


def _violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """The BadRequest field violations in a refused call's status details."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # an AioRpcError is a Call
    assert status is not None, "the status carries no details"
    found: list[tuple[str, str]] = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.extend((v.field, v.reason) for v in bad.field_violations)
    return found


def _register(terminal_id: str = "T-BAD", branch: str = "B1") -> pb.TerminalMessage:
    return pb.TerminalMessage(
        seq=1,
        register=pb.Register(
            terminal_id=terminal_id, branch=branch, kind=common_pb2.TERMINAL_KIND_SELF_SERVICE
        ),
    )


@pytest.mark.parametrize(
    ("messages", "status", "field", "reason"),
    [
        (
            [_register(terminal_id="T" * 5000)],
            "INVALID_ARGUMENT",
            "register.terminal_id",
            "too_long",
        ),
        ([_register(branch="")], "INVALID_ARGUMENT", "register.branch", "required"),
        (
            [pb.TerminalMessage(seq=1, heartbeat=pb.Heartbeat(service_state=IN_SERVICE))],
            "FAILED_PRECONDITION",
            "register",
            "register_first",
        ),
        (
            [
                _register(),
                pb.TerminalMessage(seq=2, heartbeat=pb.Heartbeat(service_state=cast(Any, 99))),
            ],
            "INVALID_ARGUMENT",
            "heartbeat.service_state",
            "invalid_argument",
        ),
        (
            [
                _register(),
                pb.TerminalMessage(
                    seq=2,
                    device_status=pb.DeviceStatusReport(
                        device=common_pb2.Device(name="printer", detail="x" * 5000)
                    ),
                ),
            ],
            "INVALID_ARGUMENT",
            "device_status.device.detail",
            "too_long",
        ),
        ([_register(), _register()], "FAILED_PRECONDITION", "register", "already_registered"),
    ],
)
def test_a_malformed_stream_ends_with_the_field_in_the_status_details(
    tmp_path: Path, messages: list[pb.TerminalMessage], status: str, field: str, reason: str
) -> None:
    async def scenario() -> grpc.aio.AioRpcError:
        engine = open_database(migrated_sqlite(tmp_path / "fleet.db"))
        server = grpc.aio.server()
        servicer = TerminalLinkServicer(engine, "r1", 5.0, Authorizer(insecure=True))
        pb_grpc.add_TerminalLinkServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = pb_grpc.TerminalLinkStub(channel).Connect(iter(messages))
                try:
                    async for _ in call:
                        pass
                except grpc.aio.AioRpcError as exc:
                    return exc
                raise AssertionError("the stream was not refused")
        finally:
            await server.stop(None)
            engine.dispose()

    refused = asyncio.run(scenario())
    assert refused.code().name == status
    assert _violations(refused) == [(field, reason)]
    assert len(refused.details() or "") < 200


def test_a_refused_request_is_answered_with_the_field_as_data(tmp_path: Path) -> None:
    """PIN verification's refusals reach the terminal as a RequestError whose field is
    data; the stream stays up."""

    async def scenario() -> None:
        stack = link_stack(tmp_path)
        servicer, uplink = await anext(stack)
        engine = servicer._engine
        verifier = PinVerifier(engine, PanTokenizer(b"k" * 32), lambda *a: False, PinSettings(3))
        servicer.add_handler("pin_verify", pin_verify_handler(verifier))
        runner = asyncio.create_task(uplink.run())
        await until(lambda: uplink.connected, "registration")
        good = pb.PinVerifyRequest(
            request_id="pin-1",
            pan="4761739001010010",
            pin_block=bytes(8),
            ksn=bytes(10),
            pin_block_format=0,
        )
        cases: list[tuple[dict[str, Any], str, str]] = [
            ({"pan": "12"}, "invalid_argument", "pin_verify.pan"),
            ({"ksn": bytes(9)}, "invalid_argument", "pin_verify.ksn"),
            ({"pin_block_format": 3}, "invalid_argument", "pin_verify.pin_block_format"),
            ({"request_id": "r" * 5000}, "invalid_argument", "pin_verify.request_id"),
            ({}, "unknown_card", "pin_verify.pan"),
        ]
        for change, code, field in cases:
            request = pb.PinVerifyRequest()
            request.CopyFrom(good)
            for name, value in change.items():
                setattr(request, name, value)
            reply = await uplink.request(pin_verify=request)
            assert (reply.error.code, reply.error.field) == (code, field), change
            assert len(reply.error.message) < 200
            assert "4761739001010010" not in reply.error.message  # the PAN stays masked
        assert uplink.connected
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await anext(stack, None)

    asyncio.run(scenario())


def test_pin_verify_without_an_hsm_is_unavailable(tmp_path: Path) -> None:
    async def scenario() -> None:
        stack = link_stack(tmp_path)
        servicer, uplink = await anext(stack)
        servicer.add_handler("pin_verify", pin_verify_handler(None))
        runner = asyncio.create_task(uplink.run())
        await until(lambda: uplink.connected, "registration")
        reply = await uplink.request(pin_verify=pb.PinVerifyRequest(request_id="pin-1"))
        assert (reply.error.code, reply.error.field) == ("hsm_unavailable", "")
        assert reply.error.message == "this server has no HSM configured"
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await anext(stack, None)

    asyncio.run(scenario())
