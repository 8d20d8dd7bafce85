"""Development PKI: chains verify, keys stay private, identities come out of certificates."""

from __future__ import annotations

import datetime as dt
import stat
from collections.abc import Iterator
from concurrent import futures
from ipaddress import ip_address
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    DNSName,
    IPAddress,
    PolicyBuilder,
    Store,
    VerificationError,
)

from branchline.server import pki

TERMINALS = ["T-0001", "kiosk.north_2"]


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def policy(ca: Path) -> PolicyBuilder:
    return PolicyBuilder().store(Store([load(ca)])).time(dt.datetime.now(dt.UTC))


@pytest.fixture
def layout(tmp_path: Path) -> pki.PkiLayout:
    return pki.init_pki(tmp_path / "pki", TERMINALS)


def test_files_and_private_key_modes(layout: pki.PkiLayout) -> None:
    keys = [
        layout.ca_key,
        layout.server_key,
        layout.operator_key("ops"),
        *(layout.terminal_key(t) for t in TERMINALS),
    ]
    certs = [
        layout.ca_cert,
        layout.server_cert,
        layout.operator_cert("ops"),
        *(layout.terminal_cert(t) for t in TERMINALS),
    ]
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        assert private.curve.name == "secp256r1"
    for cert in certs:
        assert not stat.S_IMODE(cert.stat().st_mode) & 0o022, cert
    assert sorted(p.name for p in layout.directory.rglob("*") if p.is_file()) == sorted(
        p.name for p in keys + certs
    )


def test_server_certificate_verifies_for_every_name(layout: pki.PkiLayout) -> None:
    server = load(layout.server_cert)
    for subject in (DNSName("localhost"), IPAddress(ip_address("127.0.0.1"))):
        verifier = policy(layout.ca_cert).build_server_verifier(subject)
        chain = verifier.verify(server, [])
        assert chain[-1] == load(layout.ca_cert)
    with pytest.raises(VerificationError):
        policy(layout.ca_cert).build_server_verifier(DNSName("example.com")).verify(server, [])
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ip_address("127.0.0.1")]


def test_terminal_certificates_verify_as_clients_and_carry_the_id(layout: pki.PkiLayout) -> None:
    verifier = policy(layout.ca_cert).build_client_verifier()
    for terminal_id in TERMINALS:
        cert = load(layout.terminal_cert(terminal_id))
        verified = verifier.verify(cert, [])
        assert x509.UniformResourceIdentifier(f"urn:branchline:terminal:{terminal_id}") in (
            verified.subjects or []
        )
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == terminal_id
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        pem = layout.terminal_cert(terminal_id).read_bytes()
        assert pki.terminal_id_from_cert(pem) == terminal_id
        assert (
            pki.terminal_id_from_cert(cert.public_bytes(serialization.Encoding.DER)) == terminal_id
        )
        # The matching key is the one written beside it.
        key = serialization.load_pem_private_key(
            layout.terminal_key(terminal_id).read_bytes(), password=None
        )
        assert key.public_key() == cert.public_key()


def test_another_cas_certificates_do_not_verify(layout: pki.PkiLayout, tmp_path: Path) -> None:
    other = pki.init_pki(tmp_path / "other", ["T-0001"])
    with pytest.raises(VerificationError):
        policy(layout.ca_cert).build_client_verifier().verify(
            load(other.terminal_cert("T-0001")), []
        )
    with pytest.raises(VerificationError):
        policy(layout.ca_cert).build_server_verifier(DNSName("localhost")).verify(
            load(other.server_cert), []
        )


def test_refuses_to_replace_a_ca_unless_asked(layout: pki.PkiLayout) -> None:
    before = layout.ca_cert.read_bytes()
    with pytest.raises(FileExistsError):
        pki.init_pki(layout.directory, ["T-0009"])
    assert layout.ca_cert.read_bytes() == before
    assert not layout.terminal_cert("T-0009").exists()

    pki.init_pki(layout.directory, TERMINALS, overwrite=True)
    assert layout.ca_cert.read_bytes() != before
    assert stat.S_IMODE(layout.ca_key.stat().st_mode) == 0o600
    policy(layout.ca_cert).build_client_verifier().verify(load(layout.terminal_cert("T-0001")), [])


def test_issue_a_terminal_certificate_later(layout: pki.PkiLayout) -> None:
    cert_path, key_path = pki.issue_terminal_cert(layout.directory, "T-0042", days=30)
    assert (cert_path, key_path) == (layout.terminal_cert("T-0042"), layout.terminal_key("T-0042"))
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    cert = load(cert_path)
    policy(layout.ca_cert).build_client_verifier().verify(cert, [])
    assert pki.terminal_id_from_cert(cert) == "T-0042"
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=30) <= lifetime <= dt.timedelta(days=30, minutes=6)
    with pytest.raises(FileExistsError):
        pki.issue_terminal_cert(layout.directory, "T-0042")
    pki.issue_terminal_cert(layout.directory, "T-0042", overwrite=True)
    assert load(cert_path) != cert


def test_server_names(tmp_path: Path) -> None:
    custom = pki.init_pki(tmp_path / "a", [], server_names=["dispatch.bank.example", "::1"])
    san = load(custom.server_cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == ["dispatch.bank.example"]
    assert san.value.get_values_for_type(x509.IPAddress) == [ip_address("::1")]
    defaults = pki.init_pki(tmp_path / "b", [], server_names=None)
    policy(defaults.ca_cert).build_server_verifier(DNSName("localhost")).verify(
        load(defaults.server_cert), []
    )
    with pytest.raises(ValueError, match="server name"):
        pki.init_pki(tmp_path / "c", [], server_names=[])


@pytest.mark.parametrize("bad", ["", "../etc", ".hidden", "a/b", "tëst", "a b"])
def test_unsafe_terminal_ids_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="terminal id"):
        pki.init_pki(tmp_path, [bad])
    assert not (tmp_path / "ca.pem").exists()


def _self_signed(name: x509.Name, alt_names: list[x509.GeneralName] | None = None) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_identity_falls_back_to_the_common_name_and_fails_clearly() -> None:
    cn_only = _self_signed(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "T-0007")]))
    assert pki.terminal_id_from_cert(cn_only) == "T-0007"
    # The URI SAN wins over the CN.
    both = _self_signed(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored")]),
        [x509.DNSName("x.example"), x509.UniformResourceIdentifier("urn:branchline:terminal:T-8")],
    )
    assert pki.terminal_id_from_cert(both) == "T-8"
    nameless = _self_signed(
        x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Branchline")]),
        [x509.UniformResourceIdentifier("https://example.com/")],
    )
    with pytest.raises(pki.CertificateIdentityError, match="neither"):
        pki.terminal_id_from_cert(nameless)


def test_identity_from_auth_context(layout: pki.PkiLayout) -> None:
    pem = layout.terminal_cert("T-0001").read_bytes()
    assert pki.identity_from_auth_context({"x509_pem_cert": [pem]}) == "T-0001"
    san = b"urn:branchline:terminal:T-0002"
    assert pki.identity_from_auth_context({"x509_subject_alternative_name": [san]}) == "T-0002"
    assert pki.identity_from_auth_context({"x509_common_name": [b"T-0003"]}) == "T-0003"
    assert pki.identity_from_auth_context({"transport_security_type": [b"insecure"]}) is None
    assert pki.identity_from_auth_context({}) is None


@pytest.fixture
def mtls_server(layout: pki.PkiLayout) -> Iterator[int]:
    """A gRPC server requiring client certificates; its one method answers the caller's id."""

    def who(_request: bytes, context: grpc.ServicerContext) -> bytes:
        return (pki.identity_from_auth_context(cast(Any, context.auth_context())) or "-").encode()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "test.Who", {"Am": grpc.unary_unary_rpc_method_handler(who)}
            )
        ]
    )
    credentials = grpc.ssl_server_credentials(
        [(layout.server_key.read_bytes(), layout.server_cert.read_bytes())],
        root_certificates=layout.ca_cert.read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    yield port
    server.stop(None)


def _ask(layout: pki.PkiLayout, ca: pki.PkiLayout, target: str, terminal_id: str) -> str:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=layout.ca_cert.read_bytes(),
        private_key=ca.terminal_key(terminal_id).read_bytes(),
        certificate_chain=ca.terminal_cert(terminal_id).read_bytes(),
    )
    with grpc.secure_channel(target, credentials) as channel:
        call = channel.unary_unary(
            "/test.Who/Am", request_serializer=None, response_deserializer=None
        )
        answer: bytes = call(b"", timeout=10)
    return answer.decode()


def test_mutual_tls_with_grpc(layout: pki.PkiLayout, mtls_server: int, tmp_path: Path) -> None:
    assert _ask(layout, layout, f"localhost:{mtls_server}", "T-0001") == "T-0001"
    assert _ask(layout, layout, f"127.0.0.1:{mtls_server}", "kiosk.north_2") == "kiosk.north_2"
    stranger = pki.init_pki(tmp_path / "stranger", ["T-0001"])
    with pytest.raises(grpc.RpcError) as refused:
        _ask(layout, stranger, f"localhost:{mtls_server}", "T-0001")
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
