"""``branchline-server mobile enrol|reset|unlock|show`` through the real entry point
(``main(argv)`` in this process, and once as a subprocess with the password piped in): the
provisioning URI's secret and its QR give codes the bank's sign-in accepts, resets and
unlock change what they say, every change is audited without a secret, bad input is refused
naming what was wrong."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import Engine, insert, select

from branchline.common.errors import DomainError
from branchline.server.ledger.cards import add_customer
from branchline.server.main import main
from branchline.server.mobile import bank_auth
from branchline.server.mobile.schema import mobile_audit, mobile_credentials, mobile_logins
from branchline.server.storage.engine import open_database

PASSWORD = "correct horse battery"


def now() -> datetime:
    """The wall clock to the second, read when used: `show` judges a lockout against the real
    clock, so a fixed date failed once its 15 minutes had passed, and a time read at import
    was 20 minutes old by the time a slow full run reached the lockout test."""
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    root = tmp_path_factory.mktemp("mobile-cli")
    url = f"sqlite:///{root / 'server.db'}"
    engine = open_database(url)
    for customer in ("C-1", "C-2", "C-3", "C-4", "C-5", "C-6"):
        add_customer(engine, customer, f"Customer {customer}", now())
    yield url, engine
    engine.dispose()


def cli(
    db: str, *argv: str, stdin: str = "", capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        code = main(["--db", db, "mobile", *argv])
    finally:
        sys.stdin = saved
    out, err = capsys.readouterr()
    return code, out, err


def secret_of(uri: str) -> str:
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp", uri
    query = parse_qs(parts.query)
    assert query["algorithm"] == ["SHA1"] and query["digits"] == ["6"]
    assert query["period"] == ["30"] and query["issuer"] == ["Branchline"]
    return query["secret"][0]


def sign_in(engine: Engine, customer: str, password: str, secret: str, at: datetime) -> str:
    code = bank_auth.totp(bank_auth.secret_bytes(secret), at.timestamp())
    return bank_auth.login(engine, bank_auth.LoginCheck(customer, password, code), at)


def audit_text(engine: Engine) -> str:
    with engine.connect() as conn:
        return "\n".join(str(tuple(r)) for r in conn.execute(select(mobile_audit)))


def test_enrol_prints_the_uri_once_and_its_codes_sign_in(
    bank: tuple[str, Engine], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, engine = bank
    qr = tmp_path / "c1.png"
    code, out, err = cli(
        db, "enrol", "--customer", "C-1", "--qr", str(qr), "--json",
        stdin=PASSWORD + "\n", capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    shown = json.loads(out)
    assert shown["customer_id"] == "C-1" and shown["qr_png"] == str(qr)
    secret = secret_of(shown["otpauth_uri"])
    assert len(bank_auth.secret_bytes(secret)) == 20
    assert PASSWORD not in out + err
    # The PNG is the same URI, readable by the owner only.
    assert qr.stat().st_mode & 0o777 == 0o600
    decoded = [d.text for d in zxingcpp.read_barcodes(Image.open(qr))]
    assert decoded == [shown["otpauth_uri"]]
    assert sign_in(engine, "C-1", PASSWORD, secret, now()) == "C-1"
    # Stored as an argon2id hash; the audit holds neither the password nor the secret.
    with engine.connect() as conn:
        row = conn.execute(
            select(mobile_credentials).where(mobile_credentials.c.customer_id == "C-1")
        ).one()
    assert row.password_hash.startswith("$argon2id$")
    trail = audit_text(engine)
    assert "enrol" in trail and "bank:cli" in trail
    assert secret not in trail and PASSWORD not in trail
    # Never shown again: show has no secret.
    code, out, _ = cli(db, "show", "--customer", "C-1", "--json", capsys=capsys)
    assert code == 0 and secret not in out and "argon2" not in out
    assert json.loads(out)["customers"][0]["audit"][0]["action"] == "enrol"


@pytest.mark.parametrize(
    ("argv", "stdin", "says"),
    [
        (("enrol", "--customer", "C-404"), PASSWORD, "unknown_customer (customer)"),
        (("enrol", "--customer", "C-2"), "short", "too_short (password)"),
        (("enrol", "--customer", "C-2"), "", "required (password)"),
        (("enrol", "--customer", "C-2"), "x" * 300, "too_long (password)"),
        (("enrol", "--customer", "C-2", "--issuer", "A:B"), PASSWORD, "(issuer)"),
        (("enrol", "--customer", ""), PASSWORD, "required (customer)"),
        (("reset", "--customer", "C-2", "--totp"), "", "not_enrolled (customer)"),
        (("unlock", "--customer", "C-2"), "", "not_enrolled (customer)"),
        (("show", "--customer", "C-2"), "", "not_enrolled (customer)"),
        (("reset", "--customer", "C-1"), "", "nothing_to_reset (reset)"),
        (("enrol", "--customer", "C-1"), PASSWORD, "already_enrolled (customer)"),
    ],
)
def test_bad_input_is_refused_naming_what_was_wrong(
    bank: tuple[str, Engine],
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    stdin: str,
    says: str,
) -> None:
    db, engine = bank
    if argv[0] == "enrol" and argv[2] == "C-1" and "C-1" not in audit_text(engine):
        cli(db, "enrol", "--customer", "C-1", stdin=PASSWORD, capsys=capsys)
    code, out, err = cli(db, *argv, stdin=stdin + "\n", capsys=capsys)
    assert code == 2 and out == ""
    assert err.startswith("branchline-server mobile: ") and says in err, err
    with engine.connect() as conn:
        enrolled = {r.customer_id for r in conn.execute(select(mobile_credentials))}
    assert "C-2" not in enrolled and "C-404" not in enrolled


def test_a_password_on_the_command_line_is_refused(
    bank: tuple[str, Engine], capsys: pytest.CaptureFixture[str]
) -> None:
    db, _ = bank
    with pytest.raises(SystemExit) as exited:
        main(["--db", db, "mobile", "enrol", "--customer", "C-3", "--password", PASSWORD])
    assert exited.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_an_existing_qr_file_is_refused_before_anything_changes(
    bank: tuple[str, Engine], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, engine = bank
    taken = tmp_path / "taken.png"
    taken.write_bytes(b"mine")
    code, _, err = cli(
        db, "enrol", "--customer", "C-3", "--qr", str(taken), stdin=PASSWORD, capsys=capsys
    )
    assert code == 2 and "exists (qr)" in err
    assert taken.read_bytes() == b"mine"
    code, _, err = cli(db, "show", "--customer", "C-3", capsys=capsys)
    assert code == 2 and "not_enrolled" in err


# long: one customer's whole life at the bank's desk, each step checked against the sign-in
def test_lockout_unlock_and_resets(
    bank: tuple[str, Engine], capsys: pytest.CaptureFixture[str]
) -> None:
    db, engine = bank
    code, out, _ = cli(db, "enrol", "--customer", "C-4", "--json", stdin=PASSWORD, capsys=capsys)
    secret = secret_of(json.loads(out)["otpauth_uri"])
    at = now()
    for _ in range(bank_auth.MAX_FAILURES):
        at += timedelta(seconds=30)
        with pytest.raises(DomainError):
            sign_in(engine, "C-4", "wrong password!", secret, at)
    code, out, _ = cli(db, "show", "--customer", "C-4", "--json", capsys=capsys)
    assert json.loads(out)["customers"][0]["locked"] is True
    at += timedelta(seconds=30)
    with pytest.raises(DomainError) as locked:
        sign_in(engine, "C-4", PASSWORD, secret, at)
    assert locked.value.reason == "login_locked"

    code, out, _ = cli(db, "unlock", "--customer", "C-4", "--json", capsys=capsys)
    assert code == 0 and json.loads(out) == {"customer_id": "C-4", "was_locked": True}
    at += timedelta(seconds=30)
    assert sign_in(engine, "C-4", PASSWORD, secret, at) == "C-4"

    # A new password: the old one no longer signs in.
    new_password = "another long passphrase"
    code, out, _ = cli(
        db, "reset", "--customer", "C-4", "--password", stdin=new_password, capsys=capsys
    )
    assert code == 0 and "reset C-4: password" in out and new_password not in out
    at += timedelta(seconds=30)
    with pytest.raises(DomainError):
        sign_in(engine, "C-4", PASSWORD, secret, at)
    at += timedelta(seconds=30)
    assert sign_in(engine, "C-4", new_password, secret, at) == "C-4"

    # A new authenticator: codes of the old secret fail, the new one's pass.
    code, out, _ = cli(db, "reset", "--customer", "C-4", "--totp", "--json", capsys=capsys)
    fresh = secret_of(json.loads(out)["otpauth_uri"])
    assert fresh != secret
    at += timedelta(seconds=30)
    with pytest.raises(DomainError):
        sign_in(engine, "C-4", new_password, secret, at)
    at += timedelta(seconds=30)
    assert sign_in(engine, "C-4", new_password, fresh, at) == "C-4"

    code, out, _ = cli(db, "show", "--customer", "C-4", "--json", capsys=capsys)
    actions = [a["action"] for a in json.loads(out)["customers"][0]["audit"]]
    assert actions == ["enrol", "unlock", "reset", "reset"]
    assert fresh not in audit_text(engine) and new_password not in audit_text(engine)
    code, out, _ = cli(db, "show", capsys=capsys)
    assert code == 0 and "C-4: can sign in" in out


def test_unenrol_deletes_the_credentials_and_signs_the_phones_out(
    bank: tuple[str, Engine], capsys: pytest.CaptureFixture[str]
) -> None:
    db, engine = bank
    code, out, _ = cli(db, "enrol", "--customer", "C-6", "--json", stdin=PASSWORD, capsys=capsys)
    secret = secret_of(json.loads(out)["otpauth_uri"])
    at = now()
    assert sign_in(engine, "C-6", PASSWORD, secret, at) == "C-6"
    with engine.begin() as conn:  # a phone signed in at the bank as C-6
        conn.execute(
            insert(mobile_logins).values(pairing_id="PR-C6", customer_id="C-6", logged_in_at=at)
        )

    code, out, _ = cli(db, "unenrol", "--customer", "C-6", "--json", capsys=capsys)
    assert code == 0
    assert json.loads(out) == {"customer_id": "C-6", "unenrolled": True, "phones_signed_out": 1}
    with engine.connect() as conn:
        assert (
            conn.execute(
                select(mobile_credentials).where(mobile_credentials.c.customer_id == "C-6")
            ).all()
            == []
        )
        assert (
            conn.execute(select(mobile_logins).where(mobile_logins.c.customer_id == "C-6")).all()
            == []
        )
        actions = [
            (r.action, r.actor)
            for r in conn.execute(
                select(mobile_audit)
                .where(mobile_audit.c.customer_id == "C-6")
                .order_by(mobile_audit.c.audit_id)
            )
        ]
    assert actions == [("enrol", "bank:cli"), ("unenrol", "bank:cli")]
    with pytest.raises(DomainError):  # the right password and code no longer sign in
        sign_in(engine, "C-6", PASSWORD, secret, at + timedelta(seconds=30))

    code, out, err = cli(db, "unenrol", "--customer", "C-6", capsys=capsys)
    assert code == 2 and out == "" and "not_enrolled (customer)" in err


def test_enrol_as_a_process_with_the_password_piped_in(bank: tuple[str, Engine]) -> None:
    db, engine = bank
    done = subprocess.run(
        [sys.executable, "-m", "branchline.server.main", "--db", db, "--log-level", "error",
         "mobile", "--actor", "clerk:BO-1", "enrol", "--customer", "C-5", "--json"],
        input=PASSWORD + "\n", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    secret = secret_of(json.loads(done.stdout)["otpauth_uri"])
    assert PASSWORD not in done.stdout + done.stderr
    assert sign_in(engine, "C-5", PASSWORD, secret, now()) == "C-5"
    assert "clerk:BO-1" in audit_text(engine)


def test_the_simulated_authenticator_app_gives_codes_the_bank_accepts(
    bank: tuple[str, Engine], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from branchline.sim import authenticator

    db, engine = bank
    code, out, _ = cli(db, "reset", "--customer", "C-1", "--totp", "--json", capsys=capsys)
    uri_file = tmp_path / "c1.otpauth"
    uri_file.write_text(json.loads(out)["otpauth_uri"] + "\n")
    assert authenticator.main([str(uri_file), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert 0 < shown["valid_for_s"] <= 30
    check = bank_auth.LoginCheck("C-1", PASSWORD, shown["code"])
    assert bank_auth.login(engine, check, datetime.now(UTC)) == "C-1"
    for bad, says in (
        ("https://example.com/", "not an otpauth://totp/ URI"),
        ("otpauth://totp/X:C-1?secret=!!!!", "not base32"),
        ("otpauth://totp/X:C-1?secret=ABCDEFGH&digits=8", "6 digits"),
        ("otpauth://totp/X:C-1?issuer=X", "no secret"),
    ):
        uri_file.write_text(bad)
        assert authenticator.main([str(uri_file)]) == 2
        assert says in capsys.readouterr().err
    assert authenticator.main([str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
