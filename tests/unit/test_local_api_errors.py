"""The agent's local gRPC API refuses a malformed request in the one error model: for each
service on the socket (AgentLocal, TubeCustomer, CustomerInfo, and the journal calls) the
status carries a ``google.rpc.BadRequest`` whose field violation names the field, read
through ``grpc_status.rpc_status.from_call``; an over-long id is refused as invalid with a
truncated echo, never written back whole."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from branchline.agent import diag
from branchline.agent.config import AgentConfig
from branchline.agent.customer.call import CallRefused
from branchline.agent.daemon import Agent
from branchline.agent.local_api import socket_path, start_local_api
from branchline.agent.refusal import domain_error
from branchline.v1 import agent_local_pb2 as local_pb
from branchline.v1 import agent_local_pb2_grpc as local_grpc
from branchline.v1 import customer_info_pb2 as info_pb
from branchline.v1 import customer_info_pb2_grpc as info_grpc
from branchline.v1 import tube_pb2 as tube_pb
from branchline.v1 import tube_pb2_grpc as tube_grpc
from tests.unit.link_support import loopback_terminal

pytestmark = pytest.mark.timeout(60)
LONG = "x" * 5000


def violation(error: grpc.RpcError) -> tuple[grpc.StatusCode, str, str, str]:
    """(status, the violation's field, its reason, the message) from the call's details."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # an RpcError is a Call
    assert status is not None, "no rich status in the trailers"
    bad = [d for d in status.details if d.Is(error_details_pb2.BadRequest.DESCRIPTOR)]
    assert len(bad) == 1, status
    request = error_details_pb2.BadRequest()
    bad[0].Unpack(request)
    field = request.field_violations[0]
    return error.code(), field.field, field.reason, status.message  # type: ignore[attr-defined]


Call = Callable[[grpc.aio.Channel], Awaitable[Any]]

CASES: list[tuple[str, Call, grpc.StatusCode, str, str]] = [
    (
        "AgentLocal.RunCommand unknown device",
        lambda ch: local_grpc.AgentLocalStub(ch).RunCommand(
            local_pb.DeviceCommandRequest(device="card_reader", command="eject")
        ),
        grpc.StatusCode.NOT_FOUND,
        "device",
        "no_such_device",
    ),
    (
        "AgentLocal.RunCommand over-long device",
        lambda ch: local_grpc.AgentLocalStub(ch).RunCommand(
            local_pb.DeviceCommandRequest(device=LONG, command="eject")
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "device",
        "too_long",
    ),
    (
        "AgentLocal.AuthenticateCustomer timeout",
        lambda ch: local_grpc.AgentLocalStub(ch).AuthenticateCustomer(
            local_pb.AuthenticateRequest(card_timeout_seconds=9999)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "card_timeout_seconds",
        "out_of_range",
    ),
    (
        "AgentLocal.RequestTeller mode",
        lambda ch: local_grpc.AgentLocalStub(ch).RequestTeller(
            local_pb.RequestTellerRequest(business_type="fx")
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "mode",
        "required",
    ),
    (
        "journal ShowJournal limit",
        lambda ch: local_grpc.AgentLocalStub(ch).ShowJournal(
            local_pb.ShowJournalRequest(limit=5000)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "limit",
        "out_of_range",
    ),
    (
        "journal ListOutbox limit",
        lambda ch: local_grpc.AgentLocalStub(ch).ListOutbox(local_pb.ListOutboxRequest(limit=5000)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "limit",
        "out_of_range",
    ),
    (
        "TubeCustomer.StartDeposit session",
        lambda ch: tube_grpc.TubeCustomerStub(ch).StartDeposit(
            tube_pb.StartTubeRequest(account_id="C1-CNY")
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "session_id",
        "invalid_argument",
    ),
    (
        "TubeCustomer.GetTransaction over-long txn_id",
        lambda ch: tube_grpc.TubeCustomerStub(ch).GetTransaction(tube_pb.TubeAction(txn_id=LONG)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "txn_id",
        "too_long",
    ),
    (
        "TubeCustomer.GetTransaction unknown",
        lambda ch: tube_grpc.TubeCustomerStub(ch).GetTransaction(tube_pb.TubeAction(txn_id="nope")),
        grpc.StatusCode.NOT_FOUND,
        "txn_id",
        "unknown_transaction",
    ),
    (
        "CustomerInfo.GetStatement account",
        lambda ch: info_grpc.CustomerInfoStub(ch).GetStatement(
            info_pb.StatementQuery(session_id="s")
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "account_id",
        "invalid_argument",
    ),
    (
        "CustomerInfo.GetStatement unknown session",
        lambda ch: info_grpc.CustomerInfoStub(ch).GetStatement(
            info_pb.StatementQuery(session_id="s", account_id="A-1")
        ),
        grpc.StatusCode.NOT_FOUND,
        "session_id",
        "session_unknown",
    ),
    (
        "CustomerInfo.PrintStatement over-long session",
        lambda ch: info_grpc.CustomerInfoStub(ch).PrintStatement(
            info_pb.StatementQuery(session_id=LONG, account_id="A-1")
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "session_id",
        "too_long",
    ),
]


def test_each_local_service_names_the_field_of_a_malformed_request() -> None:
    # A short directory: a Unix socket path is limited to about 100 bytes.
    state = Path(tempfile.mkdtemp(prefix="bl-api-", dir="/tmp"))
    try:
        asyncio.run(refusals(state))
    finally:
        shutil.rmtree(state, ignore_errors=True)


async def refusals(state: Path) -> None:
    terminal = loopback_terminal("T-API", 1, state)  # nothing listens: refusals only
    agent = Agent(AgentConfig(file=state / "agent.toml", terminal=terminal, devices=()))
    path = socket_path(state)
    server = await start_local_api(agent, path)
    try:
        async with grpc.aio.insecure_channel(f"unix:{path}") as channel:
            seen = []
            for name, call, status, field, reason in CASES:
                with pytest.raises(grpc.RpcError) as refused:
                    await call(channel)
                got = violation(refused.value)
                assert got[:3] == (status, field, reason), (name, got)
                assert LONG not in got[3] and len(got[3]) < 300, (name, got[3])
                seen.append(name.split(".")[0].split()[0])
            assert set(seen) == {"AgentLocal", "journal", "TubeCustomer", "CustomerInfo"}
        # branchline-diag shows the field from the details (sync client: off the loop).
        await asyncio.to_thread(diag_shows_the_field, path)
    finally:
        await server.stop(0)
        if agent._store is not None:
            agent._store.close()


def diag_shows_the_field(path: Path) -> None:
    argv = ["--socket", str(path), "journal", "show", "--limit", "5000"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert diag.main(argv) == diag.EXIT_AGENT_DOWN
        assert diag.main([*argv, "--json"]) == diag.EXIT_AGENT_DOWN
    assert "INVALID_ARGUMENT (field limit): limit: at most 1000" in err.getvalue()
    error = json.loads(out.getvalue())["error"]
    assert (error["status"], error["field"], error["reason"]) == (
        "INVALID_ARGUMENT",
        "limit",
        "out_of_range",
    )


def test_a_refusal_keeps_its_code_first_in_the_text_and_the_field_as_data() -> None:
    error = domain_error(
        "invalid", "negative_amount", "asset.amount: -5 is negative", "asset.amount"
    )
    assert (error.status, error.field, error.reason) == (
        "INVALID_ARGUMENT",
        "asset.amount",
        "negative_amount",
    )
    assert error.message == "negative_amount: asset.amount: -5 is negative"
    assert domain_error("refused", "not_your_account", "no").status == "PERMISSION_DENIED"
    # The server's codes: a status name picks that status; another reason with a field is
    # invalid, without one a failed precondition.
    missing = CallRefused("not_found", "call_id: no call", "call_id").as_domain()
    assert (missing.status, missing.message) == ("NOT_FOUND", "call_id: no call")
    named = CallRefused("too_many_calls", "call_id: busy", "call_id").as_domain()
    assert (named.status, named.field, named.reason) == (
        "INVALID_ARGUMENT",
        "call_id",
        "too_many_calls",
    )
    assert CallRefused("queue_closed", "closed").as_domain().status == "FAILED_PRECONDITION"
