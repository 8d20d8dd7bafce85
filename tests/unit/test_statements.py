"""Self-service statements: only the signed-in customer's own accounts, only with a live session
issued to this terminal; the answer travels over the real TerminalLink to the agent's side."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import zxingcpp
from sqlalchemy import Engine

from branchline.agent.customer.session import SessionStore
from branchline.agent.customer.statement import StatementError, fetch_statement, statement_job
from branchline.agent.service_state import ServiceState
from branchline.agent.uplink import Uplink
from branchline.common.errors import InvalidArgument, PermissionDenied
from branchline.server.auth import Authorizer
from branchline.server.ledger.adapter import EmbeddedLedger
from branchline.server.ledger.pan_token import PanTokenizer
from branchline.server.ledger.pin_service import PinSettings, PinVerifier
from branchline.server.ledger.requests import DepositRequest
from branchline.server.ledger.sessions import LABEL, CustomerSessions, SessionRefused
from branchline.server.ledger.statement_link import (
    build_statement,
    statement_handler,
)
from branchline.server.link import TerminalLinkServicer
from branchline.sim.printer import parse, render_receipt
from branchline.v1 import customer_info_pb2 as info_pb
from branchline.v1 import terminal_link_pb2_grpc as pb_grpc
from tests.unit.ledger_support import BRANCH, T0, funded, ref
from tests.unit.link_support import loopback_terminal

pytestmark = pytest.mark.timeout(60)
KEY = bytes(range(32))
SESSIONS = CustomerSessions(PanTokenizer(KEY).derive_key(LABEL))


def _books(engine: Engine) -> tuple[str, str]:
    """Customer c1's account with three postings, and customer c2's account."""
    ledger = EmbeddedLedger(engine)
    mine = funded(ledger, "100.00", customer_id="c1")
    for i, amount in enumerate(("20.50", "3.25")):
        ledger.post_deposit(
            DepositRequest(
                ref(f"more-{i}"),
                account_id=mine.account_id,
                branch=BRANCH,
                currency="CNY",
                amount=amount,
                now=T0 + timedelta(minutes=i + 1),
            )
        )
    theirs = funded(ledger, "5.00", customer_id="c2")
    return mine.account_id, theirs.account_id


def _ask(engine: Engine, token: str, account_id: str, terminal: str = "T1", **kw: Any) -> Any:
    request = info_pb.StatementRequest(session_token=token, account_id=account_id, **kw)
    return build_statement(engine, SESSIONS, terminal, request, T0 + timedelta(minutes=5))


def test_the_customer_sees_own_postings_and_balances(engine: Engine) -> None:
    mine, _ = _books(engine)
    token = SESSIONS.issue("T1", "card", "c1", T0)
    statement = _ask(engine, token, mine, limit=2)
    assert statement.customer_id == "c1"
    assert [line.amount for line in statement.lines] == ["20.50", "3.25"]
    assert [line.balance_after for line in statement.lines] == ["120.50", "123.75"]
    assert statement.opening_balance == "100.00"
    assert statement.account.balance == "123.75"
    assert [a.account_id for a in statement.balances] == [mine]

    # It prints: the page's QR code names terminal, account and the last entry shown.
    job, reference = statement_job(statement, "T1", BRANCH, "476173******0010")
    assert reference == f"BLST:T1:{mine}:{statement.lines[-1].entry_id}"
    assert [r.text for r in zxingcpp.read_barcodes(render_receipt(parse(job)))] == [reference]


def test_another_customers_account_is_refused_naming_the_field(engine: Engine) -> None:
    _, theirs = _books(engine)
    token = SESSIONS.issue("T1", "card", "c1", T0)
    with pytest.raises(PermissionDenied, match=r"^statement_request\.account_id: .* not an") as no:
        _ask(engine, token, theirs)
    assert no.value.code == "not_your_account"
    assert no.value.field == "statement_request.account_id"
    # An account that does not exist reads the same: nothing is revealed about other books.
    with pytest.raises(PermissionDenied, match="account_id") as missing:
        _ask(engine, token, "no-such-account")
    assert missing.value.code == "not_your_account"
    with pytest.raises(InvalidArgument, match=r"statement_request\.limit: 500 is over 100") as big:
        _ask(engine, token, "x", limit=500)
    assert big.value.field == "statement_request.limit"
    # An over-long account id is refused as invalid, echoing only a truncated piece of it.
    with pytest.raises(InvalidArgument, match=r"\(5000 characters\)") as long:
        _ask(engine, token, "A" * 5000)
    assert long.value.field == "statement_request.account_id"
    assert len(long.value.message) < 200


@pytest.mark.parametrize(
    ("make_token", "terminal", "code"),
    [
        (lambda: SESSIONS.issue("T1", "card", "c1", T0 - timedelta(minutes=30)), "T1", "expired"),
        (lambda: SESSIONS.issue("T1", "card", "c1", T0)[:-4] + "0000", "T1", "invalid"),
        (
            lambda: CustomerSessions(b"another key of 32 bytes........").issue(
                "T1", "card", "c1", T0
            ),
            "T1",
            "invalid",
        ),
        (lambda: SESSIONS.issue("T1", "card", "c1", T0), "T2", "other_terminal"),
        (lambda: "", "T1", "required"),
    ],
)
def test_expired_forged_foreign_or_missing_sessions_are_refused(
    engine: Engine, make_token: Any, terminal: str, code: str
) -> None:
    mine, _ = _books(engine)
    with pytest.raises(SessionRefused, match=r"^statement_request\.session_token: ") as refused:
        _ask(engine, make_token(), mine, terminal=terminal)
    assert refused.value.code == f"session_{code}"
    assert refused.value.field == "statement_request.session_token"


# long: one real link and uplink for the statement, its refusals and their fields
def test_the_agent_gets_it_over_terminal_link_and_maps_refusals(
    engine: Engine, tmp_path: Path
) -> None:
    mine, theirs = _books(engine)
    verifier = PinVerifier(
        engine, PanTokenizer(KEY), lambda *a: False, PinSettings(3), sessions=SESSIONS
    )

    async def scenario() -> None:
        servicer = TerminalLinkServicer(engine, "r1", 5.0, Authorizer(insecure=True))
        servicer.add_handler("statement_request", statement_handler(engine, verifier))
        server = grpc.aio.server()
        pb_grpc.add_TerminalLinkServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        config = loopback_terminal("T1", port, tmp_path)
        uplink = Uplink(config, lambda: [], lambda: ServiceState.IN_SERVICE)
        sessions = SessionStore()
        agent: Any = SimpleNamespace(uplink=uplink, sessions=sessions)
        connected = asyncio.Event()

        async def on_connected() -> None:
            connected.set()

        uplink.on_connected(on_connected)
        runner = asyncio.create_task(uplink.run())
        await asyncio.wait_for(connected.wait(), 10)
        token = SESSIONS.issue("T1", "card", "c1", datetime.now(UTC))
        session = sessions.open(token, "c1", "476173******0010", ())
        statement, pan_masked = await fetch_statement(agent, session.session_id, mine, 10)
        assert statement.account.balance == "123.75" and len(statement.lines) == 3
        assert pan_masked == "476173******0010"
        with pytest.raises(StatementError, match="account_id") as refused:
            await fetch_statement(agent, session.session_id, theirs, 10)
        assert (refused.value.kind, refused.value.code) == ("refused", "not_your_account")
        # The refusal carries the field as data, not only inside its message.
        reply = await uplink.request(
            statement_request=info_pb.StatementRequest(session_token=token, account_id=theirs)
        )
        assert (reply.error.code, reply.error.field) == (
            "not_your_account",
            "statement_request.account_id",
        )
        reply = await uplink.request(
            statement_request=info_pb.StatementRequest(session_token=token, account_id="A" * 5000)
        )
        assert (reply.error.code, reply.error.field) == (
            "invalid_argument",
            "statement_request.account_id",
        )
        assert "(5000 characters)" in reply.error.message and len(reply.error.message) < 200
        with pytest.raises(StatementError, match="session_id") as unknown:
            await fetch_statement(agent, "not-a-session", mine, 10)
        assert unknown.value.kind == "not_found"
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await server.stop(0)

    asyncio.run(scenario())
