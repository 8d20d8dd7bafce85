"""Phones' jobs on the server: sign-in at the bank (argon2id, TOTP against RFC 6238's
published vectors, lockout), job validation naming the field, the terminal's live service
list, idempotency, and the terminal moving a job forward only. SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from branchline.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from branchline.server import fleet_registry as fr
from branchline.server.fleet_registry import DeviceRecord
from branchline.server.ledger.accounts import open_account
from branchline.server.ledger.cards import add_customer
from branchline.server.mobile import bank_auth, jobs
from branchline.server.mobile.schema import mobile_credentials
from branchline.server.mobile.services import service_list

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
SECRET = base64.b32encode(b"12345678901234567890").decode()
DEVICES = ("card_reader", "pin_pad", "tube_station", "printer", "cheque_printer")


# RFC 6238 Appendix B: the published test vectors (8 digits; SHA-1 / SHA-256 / SHA-512
# seeds of 20 / 32 / 64 bytes).
RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize(("when", "sha1", "sha256", "sha512"), RFC6238)
def test_totp_matches_rfc6238_vectors(when: int, sha1: str, sha256: str, sha512: str) -> None:
    seed = b"12345678901234567890"
    assert bank_auth.totp(seed, when, 8, "sha1") == sha1
    assert bank_auth.totp((seed * 2)[:32], when, 8, "sha256") == sha256
    assert bank_auth.totp((seed * 4)[:64], when, 8, "sha512") == sha512


def _code(at: datetime) -> str:
    return bank_auth.totp(bank_auth.secret_bytes(SECRET), at.timestamp())


def test_password_is_stored_as_argon2id_only(engine: Engine) -> None:
    bank_auth.enroll(engine, "c1", "correct horse", SECRET)
    with engine.connect() as conn:
        stored = conn.execute(select(mobile_credentials.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    with pytest.raises(InvalidArgument) as short:
        bank_auth.enroll(engine, "c2", "short", SECRET)
    assert short.value.field == "password"


def test_login_needs_password_and_a_fresh_code(engine: Engine) -> None:
    bank_auth.enroll(engine, "c1", "correct horse", SECRET)
    ok = bank_auth.LoginCheck("c1", "correct horse", _code(T0))
    assert bank_auth.login(engine, ok, T0) == "c1"
    # The same code (time step) is never accepted twice.
    with pytest.raises(PermissionDenied) as replayed:
        bank_auth.login(engine, ok, T0 + timedelta(seconds=1))
    assert replayed.value.rule == "login_failed"
    for wrong in (
        bank_auth.LoginCheck("c1", "wrong horse", _code(T0 + timedelta(seconds=60))),
        bank_auth.LoginCheck("nobody", "correct horse", _code(T0 + timedelta(seconds=60))),
        bank_auth.LoginCheck("c1", "correct horse", "000000"),
    ):
        with pytest.raises(PermissionDenied) as refused:
            bank_auth.login(engine, wrong, T0 + timedelta(seconds=60))
        assert refused.value.rule == "login_failed"  # the same answer whatever was wrong
    with pytest.raises(InvalidArgument) as malformed:
        bank_auth.login(engine, bank_auth.LoginCheck("c1", "x", "12"), T0)
    assert malformed.value.field == "totp"


def test_lockout_after_repeated_failures(engine: Engine) -> None:
    bank_auth.enroll(engine, "c1", "correct horse", SECRET)
    now = T0
    for _ in range(bank_auth.MAX_FAILURES - 1):
        with pytest.raises(PermissionDenied) as refused:
            bank_auth.login(engine, bank_auth.LoginCheck("c1", "guess", _code(now)), now)
        assert refused.value.rule == "login_failed"
    with pytest.raises(PermissionDenied) as locked:
        bank_auth.login(engine, bank_auth.LoginCheck("c1", "guess", _code(now)), now)
    assert locked.value.rule == "login_locked"
    # Locked: even the right password and code are refused, until the lockout ends.
    later = now + timedelta(minutes=1)
    right = bank_auth.LoginCheck("c1", "correct horse", _code(later))
    with pytest.raises(PermissionDenied) as still:
        bank_auth.login(engine, right, later)
    assert still.value.rule == "login_locked"
    after = now + bank_auth.LOCKOUT + timedelta(seconds=30)
    assert bank_auth.login(engine, bank_auth.LoginCheck("c1", "correct horse", _code(after)), after)


def _form(**fields: object) -> jobs.JobForm:
    base: dict[str, object] = {"idempotency_key": "key-0001", "auth": "terminal"}
    base.update(fields)
    return jobs.JobForm(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"service": "tube_deposit", "asset_kind": "gold"}, "asset_kind"),
        ({"service": "tube_deposit", "asset_kind": "cash", "currency": "C", "amount": "1"}, "currency"),
        ({"service": "tube_withdrawal", "currency": "CNY", "amount": "-5"}, "amount"),
        ({"service": "tube_withdrawal", "currency": "CNY", "amount": "ten"}, "amount"),
        ({"service": "statement_view", "period_from": "2026-13-01"}, "period_from"),
        ({"service": "statement_print", "period_from": "2026-02-01", "period_to": "2026-01-01"}, "period_to"),
        ({"service": "cheque_book", "cheque_leaves": 7}, "cheque_leaves"),
        ({"service": "video_teller", "business_type": "robbery"}, "business_type"),
        ({"service": "teleport"}, "service"),
        ({"service": "video_teller", "auth": "magic"}, "auth"),
        ({"service": "video_teller", "idempotency_key": "x"}, "idempotency_key"),
    ],
)  # fmt: skip
def test_validation_names_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        jobs.validate(_form(**fields), None)
    assert refused.value.field == field


def test_bank_jobs_only_for_the_customers_own_accounts() -> None:
    owned = {"acc-cash": "cash", "acc-gold": "metal"}
    form = _form(service="tube_withdrawal", auth="bank", currency="CNY", amount="100")
    with pytest.raises(InvalidArgument) as missing:
        jobs.validate(form, owned)
    assert missing.value.field == "account_id"
    for account, reason in (("acc-other", "not_your_account"), ("acc-gold", "wrong_account_kind")):
        with pytest.raises(InvalidArgument) as refused:
            jobs.validate(jobs.JobForm(**{**form.__dict__, "account_id": account}), owned)
        assert (refused.value.field, refused.value.reason) == ("account_id", reason)
    body = jobs.validate(jobs.JobForm(**{**form.__dict__, "account_id": "acc-cash"}), owned)
    assert body["account_id"] == "acc-cash" and body["amount"] == "100"


def _register(engine: Engine, **status: str) -> None:
    devices = [DeviceRecord(name, "sim", status.get(name, "online")) for name in DEVICES]
    fr.register_terminal(
        engine, "t1", "north", "self_service", "1", devices, "r1", T0,
        service_state="in_service",
    )  # fmt: skip


def test_only_services_the_terminal_offers_now(engine: Engine) -> None:
    _register(engine, tube_station="user_error", card_reader="hardware_error")
    listed = service_list(fr.get_terminal(engine, "t1"))  # type: ignore[arg-type]
    deposit = _form(service="tube_deposit", asset_kind="cash", currency="CNY", amount="1")
    with pytest.raises(FailedPrecondition) as tube:
        jobs.check_offered(deposit, listed)
    assert (tube.value.field, tube.value.reason) == ("service", "service_unavailable")
    with pytest.raises(FailedPrecondition) as card:
        jobs.check_offered(_form(service="video_teller", business_type="card_services"), listed)
    assert (card.value.field, card.value.reason) == ("auth", "auth_unavailable")
    jobs.check_offered(_form(service="video_teller", business_type="card", auth="bank"), listed)
    withheld = service_list(fr.get_terminal(engine, "t1"), frozenset({"cheque_book"}))  # type: ignore[arg-type]
    assert "cheque_book" not in withheld.services


def test_submit_is_idempotent_and_one_job_at_a_time(engine: Engine) -> None:
    form = _form(service="video_teller", business_type="loan")
    body = jobs.validate(form, None)
    first = jobs.submit(engine, "pair-1", "t1", form, body, "", T0)
    again = jobs.submit(engine, "pair-1", "t1", form, body, "", T0)
    assert first.job_id == again.job_id and first.state == "submitted"
    other = jobs.JobForm(**{**form.__dict__, "business_type": "card_services"})
    with pytest.raises(FailedPrecondition) as reused:
        jobs.submit(engine, "pair-1", "t1", other, jobs.validate(other, None), "", T0)
    assert reused.value.reason == "idempotency_key_reused"
    second = jobs.JobForm(**{**form.__dict__, "idempotency_key": "key-0002"})
    with pytest.raises(FailedPrecondition) as busy:
        jobs.submit(engine, "pair-1", "t1", second, body, "", T0)
    assert busy.value.reason == "job_in_progress"
    assert [j.job_id for j in jobs.waiting(engine, "t1")] == [first.job_id]
    with pytest.raises(NotFound):
        jobs.get(engine, first.job_id, "pair-other")


def test_the_same_step_again_binds_the_customer_and_moves_the_queue(engine: Engine) -> None:
    """The terminal reports authenticating when card + PIN starts and again, with the card's
    customer, once read; a queued video call reports running again at each new position."""
    form = _form(service="tube_deposit", asset_kind="cash", currency="CNY", amount="50")
    job = jobs.submit(engine, "pair-1", "t1", form, jobs.validate(form, None), "", T0)
    jobs.advance(engine, "t1", job.job_id, jobs.Progress("authenticating"), T0)
    bound = jobs.advance(
        engine, "t1", job.job_id, jobs.Progress("authenticating", customer_id="c9"), T0
    )
    assert (bound.state, bound.customer_id) == ("authenticating", "c9")
    with pytest.raises(FailedPrecondition) as other:
        jobs.advance(
            engine, "t1", job.job_id, jobs.Progress("authenticating", customer_id="c8"), T0
        )
    assert other.value.reason == "other_customer"
    video = _form(idempotency_key="key-0009", service="video_teller", business_type="loan")
    jobs.advance(engine, "t1", job.job_id, jobs.Progress("canceled"), T0)
    queued = jobs.submit(engine, "pair-1", "t1", video, jobs.validate(video, None), "", T0)
    seen = [
        jobs.advance(
            engine, "t1", queued.job_id, jobs.Progress("running", queue_position=p), T0
        ).queue_position
        for p in (3, 2, 2, 1)
    ]
    assert seen == [3, 2, 2, 1]
    done = jobs.advance(engine, "t1", queued.job_id, jobs.Progress("done"), T0)
    assert (done.state, done.queue_position) == ("done", 0)


def test_the_terminal_moves_its_job_forward_only(engine: Engine) -> None:
    form = _form(service="tube_deposit", asset_kind="cash", currency="CNY", amount="50")
    job = jobs.submit(engine, "pair-1", "t1", form, jobs.validate(form, None), "", T0)
    with pytest.raises(NotFound):
        jobs.advance(engine, "t2", job.job_id, jobs.Progress("received"), T0)
    jobs.advance(engine, "t1", job.job_id, jobs.Progress("ready"), T0)
    assert jobs.waiting(engine, "t1") == []
    bound = jobs.advance(engine, "t1", job.job_id, jobs.Progress("running", customer_id="c9"), T0)
    assert bound.customer_id == "c9"
    with pytest.raises(FailedPrecondition) as back:
        jobs.advance(engine, "t1", job.job_id, jobs.Progress("ready"), T0)
    assert back.value.reason == "job_state_order"
    with pytest.raises(FailedPrecondition) as other:
        jobs.advance(engine, "t1", job.job_id, jobs.Progress("running", customer_id="c8"), T0)
    assert other.value.reason == "other_customer"
    done = jobs.advance(
        engine, "t1", job.job_id, jobs.Progress("done", receipt_reference="R-1"), T0
    )
    assert (done.state, done.receipt_reference) == ("done", "R-1")
    # Finished stays finished; a repeat is answered as it is.
    assert jobs.advance(engine, "t1", job.job_id, jobs.Progress("failed"), T0).state == "done"


def test_customer_accounts_for_bank_jobs(engine: Engine) -> None:
    add_customer(engine, "c1", "Ada", T0)
    open_account(engine, "c1", "cash", "CNY", T0, account_id="acc-1")
    rows = jobs.customer_accounts(engine, "c1")
    assert [r.account_id for r in rows] == ["acc-1"]
    jobs.record_login(engine, "pair-1", "c1", T0)
    assert jobs.logged_in(engine, "pair-1") == "c1" and jobs.logged_in(engine, "pair-2") == ""
