"""Principals come from the certificate's one Branchline URI SAN, never from anything else."""

from __future__ import annotations

from pathlib import Path

from branchline.server import pki
from branchline.server.auth import OPERATOR, TERMINAL, Principal, principal_from_auth_context


def test_terminal_and_operator_principals(tmp_path: Path) -> None:
    layout = pki.init_pki(tmp_path / "pki", ["T-0001"], operators=["alice"])
    terminal = layout.terminal_cert("T-0001").read_bytes()
    operator = layout.operator_cert("alice").read_bytes()
    assert principal_from_auth_context({"x509_pem_cert": [terminal]}) == Principal(
        TERMINAL, "T-0001"
    )
    assert principal_from_auth_context({"x509_pem_cert": [operator]}) == Principal(
        OPERATOR, "alice"
    )


def test_no_certificate_no_principal() -> None:
    assert principal_from_auth_context({}) is None
    assert principal_from_auth_context({"x509_pem_cert": [b"not a certificate"]}) is None


def test_operator_certificate_is_not_a_terminal(tmp_path: Path) -> None:
    layout = pki.init_pki(tmp_path / "pki", [], operators=["ops"])
    # The CN fallback of terminal_id_from_cert must not turn an operator into a terminal.
    principal = principal_from_auth_context(
        {"x509_pem_cert": [layout.operator_cert("ops").read_bytes()]}
    )
    assert principal is not None and principal.role == OPERATOR
