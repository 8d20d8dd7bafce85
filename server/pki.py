"""A development PKI: one CA, a server certificate and one client certificate per terminal.

The server trusts terminals by their client certificate, so a terminal's identity lives in
the certificate: a URI SAN ``urn:branchline:terminal:<id>`` (and the subject CN, for tools
that only show that). Keys are ECDSA P-256, written 0600 from the start.

Staff get certificates the same way, one URI SAN naming their role and id:
``urn:branchline:operator:<name>``, ``urn:branchline:teller:<id>``,
``urn:branchline:lobby:<id>`` (lobby manager).

Layout under the PKI directory::

    ca.pem  ca.key  server.pem  server.key  terminals/<id>.pem  terminals/<id>.key
    operators/<name>.pem|.key  tellers/<id>.pem|.key  lobby/<id>.pem|.key
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TERMINAL_URI_PREFIX = "urn:branchline:terminal:"
OPERATOR_URI_PREFIX = "urn:branchline:operator:"
TELLER_URI_PREFIX = "urn:branchline:teller:"
LOBBY_URI_PREFIX = "urn:branchline:lobby:"
# Staff roles: the URI SAN prefix and the folder under the PKI directory of each.
USER_ROLES = {
    "operator": (OPERATOR_URI_PREFIX, "operators"),
    "teller": (TELLER_URI_PREFIX, "tellers"),
    "lobby": (LOBBY_URI_PREFIX, "lobby"),
}
DEFAULT_OPERATORS = ("ops",)
DEFAULT_SERVER_NAMES = ("localhost", "127.0.0.1")
DEFAULT_DAYS = 825
CA_COMMON_NAME = "Branchline development CA"
ORGANIZATION = "Branchline"

# Certificates start a little in the past so a terminal whose clock lags still accepts them.
_BACKDATE = dt.timedelta(minutes=5)


class CertificateIdentityError(ValueError):
    """A certificate names no terminal (or more than one)."""


@dataclass(frozen=True)
class PkiLayout:
    """Where each file of a PKI directory lives."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    def terminal_cert(self, terminal_id: str) -> Path:
        return self.directory / "terminals" / f"{_checked_terminal_id(terminal_id)}.pem"

    def terminal_key(self, terminal_id: str) -> Path:
        return self.directory / "terminals" / f"{_checked_terminal_id(terminal_id)}.key"

    def operator_cert(self, name: str) -> Path:
        return self.user_cert("operator", name)

    def operator_key(self, name: str) -> Path:
        return self.user_key("operator", name)

    def user_cert(self, role: str, name: str) -> Path:
        """A staff member's certificate: ``role`` is one of USER_ROLES."""
        return self.directory / _role_folder(role) / f"{_checked_terminal_id(name)}.pem"

    def user_key(self, role: str, name: str) -> Path:
        return self.directory / _role_folder(role) / f"{_checked_terminal_id(name)}.key"


# long: one certificate per role written in sequence; each step a call
def init_pki(
    directory: Path,
    terminal_ids: Iterable[str],
    server_names: Sequence[str] | None = DEFAULT_SERVER_NAMES,
    days: int = DEFAULT_DAYS,
    *,
    overwrite: bool = False,
    operators: Iterable[str] = DEFAULT_OPERATORS,
    tellers: Iterable[str] = (),
    lobby_managers: Iterable[str] = (),
) -> PkiLayout:
    """Create a CA, a server certificate for ``server_names``, one per terminal and one per
    operations user (``operators/<name>.pem``, for the Fleet API and other staff tools),
    teller (``tellers/<id>.pem``) and lobby manager (``lobby/<id>.pem``).

    ``server_names`` are DNS names or IP addresses; None means DEFAULT_SERVER_NAMES.
    Refuses (FileExistsError) when a CA is already there, unless ``overwrite``: a new CA
    invalidates every certificate the old one issued.
    """
    layout = PkiLayout(Path(directory))
    ids = [_checked_terminal_id(terminal_id) for terminal_id in terminal_ids]
    if server_names is None:
        server_names = DEFAULT_SERVER_NAMES
    if not server_names:
        raise ValueError("at least one server name is needed")
    if days < 1:
        raise ValueError(f"days must be positive, got {days}")
    if not overwrite:
        for path in (layout.ca_cert, layout.ca_key):
            if path.exists():
                raise FileExistsError(f"{path} exists; pass overwrite=True to replace the CA")
    layout.directory.mkdir(parents=True, exist_ok=True)

    now = _now()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME),
        ]
    )
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            _key_usage(digital_signature=False, key_cert_sign=True, crl_sign=True), critical=True
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_file(layout.ca_key, _key_pem(ca_key), private=True)
    _write_file(layout.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), private=False)

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _issue(
        ca_cert,
        ca_key,
        server_key.public_key(),
        common_name=server_names[0],
        alt_names=[_server_alt_name(name) for name in server_names],
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        days=days,
    )
    _write_file(layout.server_key, _key_pem(server_key), private=True)
    _write_file(
        layout.server_cert, server_cert.public_bytes(serialization.Encoding.PEM), private=False
    )

    for terminal_id in ids:
        _write_terminal(layout, ca_cert, ca_key, terminal_id, days)
    for role, names in (("operator", operators), ("teller", tellers), ("lobby", lobby_managers)):
        for name in names:
            _write_user(layout, ca_cert, ca_key, role, _checked_terminal_id(name), days)
    return layout


def issue_terminal_cert(
    directory: Path, terminal_id: str, days: int = DEFAULT_DAYS, *, overwrite: bool = False
) -> tuple[Path, Path]:
    """Issue a certificate for one more terminal from an existing CA; returns (cert, key)."""
    layout = PkiLayout(Path(directory))
    terminal_id = _checked_terminal_id(terminal_id)
    if days < 1:
        raise ValueError(f"days must be positive, got {days}")
    if not overwrite and layout.terminal_cert(terminal_id).exists():
        raise FileExistsError(
            f"{layout.terminal_cert(terminal_id)} exists; pass overwrite=True to reissue it"
        )
    ca_cert = x509.load_pem_x509_certificate(layout.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(layout.ca_key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{layout.ca_key} is not an EC private key")
    _write_terminal(layout, ca_cert, ca_key, terminal_id, days)
    return layout.terminal_cert(terminal_id), layout.terminal_key(terminal_id)


def issue_user_cert(
    directory: Path, role: str, name: str, days: int = DEFAULT_DAYS, *, overwrite: bool = False
) -> tuple[Path, Path]:
    """Issue a staff certificate (operator, teller or lobby manager) from an existing CA."""
    layout = PkiLayout(Path(directory))
    name = _checked_terminal_id(name)
    if days < 1:
        raise ValueError(f"days must be positive, got {days}")
    cert_path = layout.user_cert(role, name)
    if not overwrite and cert_path.exists():
        raise FileExistsError(f"{cert_path} exists; pass overwrite=True to reissue it")
    ca_cert, ca_key = _load_ca(layout)
    _write_user(layout, ca_cert, ca_key, role, name, days)
    return cert_path, layout.user_key(role, name)


def _load_ca(layout: PkiLayout) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert = x509.load_pem_x509_certificate(layout.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(layout.ca_key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{layout.ca_key} is not an EC private key")
    return ca_cert, ca_key


def terminal_id_from_cert(cert: bytes | x509.Certificate) -> str:
    """The terminal a client certificate (PEM, DER or parsed) belongs to.

    The ``urn:branchline:terminal:`` URI SAN wins; the subject CN is the fallback for
    certificates without one. Raises CertificateIdentityError when neither names a terminal.
    """
    if not isinstance(cert, x509.Certificate):
        cert = _load_cert(cert)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        uris: list[str] = []
    else:
        uris = [
            uri[len(TERMINAL_URI_PREFIX) :]
            for uri in san.get_values_for_type(x509.UniformResourceIdentifier)
            if uri.startswith(TERMINAL_URI_PREFIX)
        ]
    if len(uris) > 1:
        raise CertificateIdentityError(f"certificate names several terminals: {uris}")
    if uris and uris[0]:
        return uris[0]
    common_names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if common_names:
        value = common_names[0].value
        name = value.decode() if isinstance(value, bytes) else value
        if name:
            return name
    raise CertificateIdentityError(
        f"certificate {cert.subject.rfc4514_string()!r} has neither a "
        f"{TERMINAL_URI_PREFIX}<id> URI SAN nor a subject common name"
    )


def identity_from_auth_context(auth_context: Mapping[str, Iterable[bytes]]) -> str | None:
    """The terminal id from a gRPC ``ServicerContext.auth_context()``, None if unauthenticated.

    gRPC fills these keys only for a verified client certificate, so the server must
    require client authentication. The full certificate is preferred; the SAN and CN
    properties are fallbacks for gRPC builds that do not expose it.
    """
    pems = list(auth_context.get("x509_pem_cert") or [])
    if pems:
        try:
            return terminal_id_from_cert(pems[0])
        except CertificateIdentityError:
            return None
    for san in auth_context.get("x509_subject_alternative_name") or []:
        text = san.decode("utf-8", "replace")
        if text.startswith(TERMINAL_URI_PREFIX) and len(text) > len(TERMINAL_URI_PREFIX):
            return text[len(TERMINAL_URI_PREFIX) :]
    for common_name in auth_context.get("x509_common_name") or []:
        if common_name:
            return common_name.decode("utf-8", "replace")
    return None


def _write_terminal(
    layout: PkiLayout,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    terminal_id: str,
    days: int,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _issue(
        ca_cert,
        ca_key,
        key.public_key(),
        common_name=terminal_id,
        alt_names=[x509.UniformResourceIdentifier(TERMINAL_URI_PREFIX + terminal_id)],
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        days=days,
    )
    layout.terminal_cert(terminal_id).parent.mkdir(parents=True, exist_ok=True)
    _write_file(layout.terminal_key(terminal_id), _key_pem(key), private=True)
    _write_file(
        layout.terminal_cert(terminal_id),
        cert.public_bytes(serialization.Encoding.PEM),
        private=False,
    )


def _write_user(
    layout: PkiLayout,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    role: str,
    name: str,
    days: int,
) -> None:
    prefix, _folder = USER_ROLES[role]
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _issue(
        ca_cert,
        ca_key,
        key.public_key(),
        common_name=f"{role} {name}",
        alt_names=[x509.UniformResourceIdentifier(prefix + name)],
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        days=days,
    )
    cert_path = layout.user_cert(role, name)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    _write_file(layout.user_key(role, name), _key_pem(key), private=True)
    _write_file(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)


def _role_folder(role: str) -> str:
    if role not in USER_ROLES:
        raise ValueError(f"role {role!r}: expected one of {', '.join(USER_ROLES)}")
    return USER_ROLES[role][1]


def _issue(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    public_key: ec.EllipticCurvePublicKey,
    *,
    common_name: str,
    alt_names: list[x509.GeneralName],
    usage: x509.ObjectIdentifier,
    days: int,
) -> x509.Certificate:
    now = _now()
    # Never outlive the CA: such a certificate would stop verifying early anyway.
    not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _key_usage(
    *, digital_signature: bool, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _server_alt_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _checked_terminal_id(terminal_id: str) -> str:
    # The id becomes a file name and part of a URN: ASCII letters, digits, '-', '_', '.'.
    if (
        not terminal_id
        or terminal_id.startswith(".")
        or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in terminal_id)
    ):
        raise ValueError(
            f"terminal id {terminal_id!r}: use ASCII letters, digits, '-', '_' and '.', "
            "not starting with '.'"
        )
    return terminal_id


def _load_cert(data: bytes) -> x509.Certificate:
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_file(path: Path, data: bytes, *, private: bool) -> None:
    """Write ``path`` atomically, with its final mode from the moment it exists.

    A fresh temporary file is created with the mode (an existing file would keep its old
    one) and renamed over ``path``, so a key is never readable by others, not even briefly.
    """
    mode = 0o600 if private else 0o644
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)
