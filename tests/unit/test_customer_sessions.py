"""Customer sessions: the server's signed token and the agent's local handles."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from branchline.agent.customer.session import LOCAL_TTL, AccountView, SessionStore, SessionUnknown
from branchline.server.ledger import accounts as acc
from branchline.server.ledger.cards import enroll_card
from branchline.server.ledger.pan_token import PanTokenizer
from branchline.server.ledger.pin_service import PinSettings, PinVerifier
from branchline.server.ledger.sessions import LABEL, CustomerSessions, SessionRefused
from branchline.server.storage import open_database
from branchline.v1 import terminal_link_pb2 as pb
from tests.unit.ledger_support import T0, customer
from tests.unit.sqlite_template import migrated_sqlite

KEY = bytes(range(32))
PAN = "4761739001010010"


def sessions() -> CustomerSessions:
    return CustomerSessions(PanTokenizer(KEY).derive_key(LABEL))


def test_a_token_is_bound_to_its_terminal_and_expires() -> None:
    token = sessions().issue("T1", "card-token", "C-1", T0)
    claims = sessions().check(token, "T1", T0 + timedelta(minutes=9))
    assert (claims.terminal_id, claims.card_token, claims.customer_id) == (
        "T1",
        "card-token",
        "C-1",
    )
    with pytest.raises(SessionRefused, match="issued to terminal 'T1', not 'T2'") as other:
        sessions().check(token, "T2", T0)
    assert other.value.code == "session_other_terminal"
    with pytest.raises(SessionRefused, match="expired") as late:
        sessions().check(token, "T1", T0 + timedelta(minutes=10))
    assert late.value.code == "session_expired"


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("", "session_required"),
        ("no-dot", "session_invalid"),
        ("a.b.c", "session_invalid"),
        ("x" * 2000 + ".00", "session_invalid"),
    ],
)
def test_malformed_tokens_are_refused_by_name(token: str, code: str) -> None:
    with pytest.raises(SessionRefused, match="^session_token: ") as refused:
        sessions().check(token, "T1", T0)
    assert refused.value.code == code


def test_a_forged_or_altered_token_is_refused() -> None:
    token = sessions().issue("T1", "card-token", "C-1", T0)
    body, signature = token.split(".")
    forged = CustomerSessions(b"k" * 32).issue("T1", "card-token", "C-1", T0)
    for bad in (forged, body + "." + "0" * len(signature), body[:-2] + "AA." + signature):
        with pytest.raises(SessionRefused, match="signature") as refused:
            sessions().check(bad, "T1", T0)
        assert refused.value.code == "session_invalid"
    with pytest.raises(ValueError, match="16 bytes"):
        CustomerSessions(b"short")


def test_a_verified_pin_opens_a_session_with_the_cards_accounts(tmp_path: Path) -> None:
    engine = open_database(migrated_sqlite(tmp_path / "server.db"))
    tokenizer = PanTokenizer(KEY)
    customer(engine, "C-1")
    enroll_card(
        engine,
        card_token=tokenizer.token(PAN),
        pan_masked="476173******0010",
        customer_id="C-1",
        verification_method="visa_pvv",
        pvki=1,
        verification_value="1234",
        pvk_name="pvk",
        now=T0,
    )
    account = acc.open_account(engine, "C-1", "cash", "EUR", T0, account_id="A-EUR")
    acc.link_card(engine, tokenizer.token(PAN), account.account_id, T0)
    # The stand-in HSM verifies the all-zero PIN block only.
    verifier = PinVerifier(
        engine, tokenizer, lambda _c, _p, block, _k, _f: block == bytes(8), PinSettings(3)
    )
    request = pb.PinVerifyRequest(
        request_id="r1", pan=PAN, pin_block=bytes(8), ksn=bytes(10), pin_block_format=0
    )
    ok = verifier.verify("T1", request, T0)
    assert ok.verified and ok.customer_id == "C-1"
    assert [(a.account_id, a.currency, a.balance) for a in ok.accounts] == [
        ("A-EUR", "EUR", "0.00")
    ]
    assert verifier.sessions.check(ok.session_token, "T1", T0).customer_id == "C-1"
    # A replay gets the first answer and a session again; the stored answer holds no token.
    again = verifier.verify("T1", request, T0)
    assert again.verified and again.session_token
    wrong = verifier.verify(
        "T1",
        pb.PinVerifyRequest(
            request_id="r2", pan=PAN, pin_block=bytes([1] * 8), ksn=bytes(10), pin_block_format=0
        ),
        T0,
    )
    assert not wrong.verified and not wrong.session_token and not wrong.accounts
    engine.dispose()


def test_the_agent_hands_out_handles_not_tokens_and_forgets_them() -> None:
    now = [0.0]
    store = SessionStore(clock=lambda: now[0])
    accounts = (AccountView("A-EUR", "cash", "EUR", "10.00", "10.00"),)
    session = store.open("secret-token", "C-1", "476173******0010", accounts)
    assert "secret-token" not in repr(session) and "secret-token" not in session.session_id
    assert store.get(session.session_id) is session
    assert session.account("A-EUR").currency == "EUR"
    with pytest.raises(SessionUnknown, match="account_id: 'A-USD'"):
        session.account("A-USD")
    now[0] = LOCAL_TTL
    with pytest.raises(SessionUnknown, match="session_id: no such customer session"):
        store.get(session.session_id)
    kept = store.open("t2", "C-2", "", ())
    assert store.close(kept.session_id) and not store.close(kept.session_id)
