"""Who is calling: the principal taken from the verified client certificate, and role checks.

A certificate names exactly one principal in a URI SAN: ``urn:branchline:terminal:<id>``,
``urn:branchline:operator:<name>``, ``urn:branchline:teller:<id>`` or
``urn:branchline:lobby:<id>`` (lobby manager) or ``urn:branchline:mobile:<name>`` (the phone
gateway). Nothing in a message body can change it.
With ``--insecure-loopback`` there are no certificates and every caller is trusted
(development only; the server refuses that mode off loopback); services that need to know
who is calling then take the principal from the ``branchline-principal`` metadata
(``role:id``), see ``Authorizer.identify``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import grpc
from cryptography import x509

from branchline.server.pki import (
    LOBBY_URI_PREFIX,
    MOBILE_URI_PREFIX,
    OPERATOR_URI_PREFIX,
    TELLER_URI_PREFIX,
    TERMINAL_URI_PREFIX,
)

TERMINAL = "terminal"
OPERATOR = "operator"
TELLER = "teller"
LOBBY = "lobby"
# The phone gateway (branchline-mobile): its service certificate, not a person's.
MOBILE = "mobile"
_PREFIXES = {
    TERMINAL: TERMINAL_URI_PREFIX,
    OPERATOR: OPERATOR_URI_PREFIX,
    TELLER: TELLER_URI_PREFIX,
    LOBBY: LOBBY_URI_PREFIX,
    MOBILE: MOBILE_URI_PREFIX,
}
# How error messages name the holders of each role.
ROLE_PLURALS = {
    TERMINAL: "terminals",
    OPERATOR: "operators",
    TELLER: "tellers",
    LOBBY: "lobby managers",
    MOBILE: "phone gateways",
}
# Development only (--insecure-loopback): who the caller says it is, as "role:id".
PRINCIPAL_METADATA_KEY = "branchline-principal"


@dataclass(frozen=True)
class Principal:
    role: str
    name: str

    def __str__(self) -> str:
        return f"{self.role} {self.name}"


def principal_from_cert(pem: bytes) -> Principal | None:
    try:
        cert = x509.load_pem_x509_certificate(pem)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return None
    found = [
        Principal(role, uri[len(prefix) :])
        for uri in san.get_values_for_type(x509.UniformResourceIdentifier)
        for role, prefix in _PREFIXES.items()
        if uri.startswith(prefix) and len(uri) > len(prefix)
    ]
    # A certificate naming two principals is ambiguous: trust neither.
    return found[0] if len(found) == 1 else None


def principal_from_text(text: str) -> Principal | None:
    """``role:id`` as the CLI's ``--as`` and the insecure-mode metadata spell a principal."""
    role, _, name = text.partition(":")
    return Principal(role, name) if role in _PREFIXES and name else None


def roles_phrase(roles: Sequence[str]) -> str:
    names = [ROLE_PLURALS.get(role, f"{role}s") for role in roles]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def principal_from_auth_context(auth_context: Mapping[str, Iterable[bytes]]) -> Principal | None:
    pems = list(auth_context.get("x509_pem_cert") or [])
    return principal_from_cert(pems[0]) if pems else None


class Authorizer:
    """Checks the caller's role; ``insecure`` (loopback development mode) lets everyone in."""

    def __init__(self, insecure: bool) -> None:
        self.insecure = insecure

    async def require(
        self, context: grpc.aio.ServicerContext, role: str, rpc: str
    ) -> Principal | None:
        if self.insecure:
            return None
        principal = principal_from_auth_context(context.auth_context())
        if principal is None:
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED, "no Branchline principal in the client certificate"
            )
        assert principal is not None
        if principal.role != role:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{rpc} is for {role}s only; the caller is {principal}",
            )
        return principal

    async def identify(
        self, context: grpc.aio.ServicerContext, roles: Sequence[str], rpc: str
    ) -> Principal:
        """The caller, who must hold one of ``roles``; aborts the call otherwise.

        Unlike ``require`` this always names a principal: in insecure mode it is taken
        from the ``branchline-principal`` metadata, since there is no certificate.
        """
        if self.insecure:
            claimed = dict(context.invocation_metadata() or ()).get(PRINCIPAL_METADATA_KEY)
            text = claimed.decode() if isinstance(claimed, bytes) else (claimed or "")
            principal = principal_from_text(text)
            if principal is None:
                await context.abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    f"{PRINCIPAL_METADATA_KEY} metadata: without certificates "
                    "(--insecure-loopback) name the caller as role:id",
                )
        else:
            principal = principal_from_auth_context(context.auth_context())
            if principal is None:
                await context.abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "no Branchline principal in the client certificate",
                )
        assert principal is not None
        if principal.role not in roles:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{rpc} is for {roles_phrase(roles)} only; the caller is {principal}",
            )
        return principal
