"""The console's options: who signs in (a certificate), which server, where the page is served.

The page is served on loopback only: the console holds the person's private key, so anything
that can reach the page acts as that person.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from branchline.common.errors import InvalidArgument, echo
from branchline.common.ice import IceServers, parse_ice_servers

DEFAULT_LISTEN = "127.0.0.1:8790"
LANGUAGES = ("zh-CN", "en")
# ROLE:ID as branchline-teller names it -> the PKI folder of its certificate.
FOLDERS = {"teller": "tellers", "lobby": "lobby", "operator": "operators"}


@dataclass(frozen=True)
class Identity:
    role: str  # teller, lobby, operator
    ident: str

    def __str__(self) -> str:
        return f"{self.role}:{self.ident}"


@dataclass(frozen=True)
class Credentials:
    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class ConsoleSettings:
    target: str
    identity: Identity
    # None: plaintext to a server on --insecure-loopback (tests, development).
    credentials: Credentials | None
    host: str
    port: int
    lang: str = "zh-CN"
    timeout: float = 10.0
    # Where this console keeps recordings until the server has them (None: keeps none).
    state_dir: Path | None = None
    # STUN/TURN servers for the video calls' WebRTC (--ice-server; common/ice.py).
    ice: IceServers = IceServers()


def default_state_dir(identity: Identity) -> Path:
    """``$XDG_STATE_HOME/branchline-console/<role>-<id>`` (one folder per person, so two
    consoles on one workstation never upload each other's recordings)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "branchline-console" / f"{identity.role}-{identity.ident}"


def parse_identity(text: str) -> Identity:
    role, _, ident = (text or "").partition(":")
    if role not in FOLDERS or not ident:
        raise InvalidArgument(
            "as", f"name yourself as ROLE:ID, ROLE one of {', '.join(FOLDERS)} (got {echo(text)})"
        )
    return Identity(role, ident)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` on a loopback address; InvalidArgument naming ``listen`` otherwise."""
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise InvalidArgument("listen", f"expected HOST:PORT, got {echo(text)}")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise InvalidArgument(
            "listen",
            f"{echo(host)} is not a loopback address: the console acts with your certificate, "
            "so it is served to this workstation only (127.0.0.1 or ::1)",
            reason="not_loopback",
        )
    return host, int(port_text)


def credentials_for(
    identity: Identity,
    tls_dir: Path | None,
    ca: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
) -> Credentials:
    """The files of ``identity``'s certificate, as branchline-teller finds them."""
    if ca and cert and key:
        return Credentials(ca, cert, key)
    if tls_dir is None:
        raise InvalidArgument("tls_dir", "--tls-dir (or --ca, --cert and --key) is needed")
    folder = tls_dir / FOLDERS[identity.role]
    return Credentials(
        ca or tls_dir / "ca.pem",
        cert or folder / f"{identity.ident}.pem",
        key or folder / f"{identity.ident}.key",
    )


def read_ice(urls: list[str], username: str, credential_file: Path | None) -> IceServers:
    """``--ice-server`` URLs with ``--ice-username`` and the credential read from
    ``--ice-credential-file`` (never on the command line); InvalidArgument naming the option."""
    credential = ""
    if credential_file is not None:
        try:
            credential = credential_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InvalidArgument(
                "ice_credential_file", f"cannot read {echo(str(credential_file))}: {exc.strerror}"
            ) from None
    try:
        return parse_ice_servers(urls, username, credential)
    except ValueError as exc:
        raise InvalidArgument("ice_server", str(exc)) from None
