"""The server's HSM component: PIN translation and verification, DUKPT key injection.

Two backends behind one interface (:class:`Hsm`): ``soft`` (keys in a keystore sealed
with AES-256-GCM, crypto in process) and ``payshield`` (a Thales payShield 9000/10K over
its TCP host-command protocol; ``branchline.sim.hsm`` simulates one). :func:`open_hsm`
builds either from a URL. The contract, the soft backend and the payShield codec live in
``branchline.common.hsm`` (the simulator uses them too); this package adds the URL opener and
the payShield client:

- ``soft:///abs/path/keystore.json`` or ``soft:relative/keystore.json`` (master key from
  ``BRANCHLINE_HSM_MASTER_KEY`` or ``?master_key_file=PATH``);
- ``payshield://host:port?header_length=4&timeout=5&pool_size=4``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from branchline.common.hsm.errors import HsmError, InvalidInputError
from branchline.common.hsm.interface import (
    DEFAULT_DECIMALIZATION_TABLE,
    Algorithm,
    Hsm,
    Ibm3624Record,
    KeyInfo,
    KeyType,
    PvvRecord,
    Verification,
)
from branchline.common.hsm.keystore import KeyStore, MasterKey
from branchline.common.hsm.soft import SoftHsm

from .payshield import PayShieldHsm


def _one(query: dict[str, list[str]], name: str, default: str) -> str:
    values = query.pop(name, [default])
    return values[-1]


def open_hsm(url: str) -> Hsm:
    """An HSM backend from a ``soft:`` or ``payshield:`` URL (see the module docstring)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    try:
        if parts.scheme == "soft":
            path = Path(parts.netloc + parts.path) if parts.netloc else Path(parts.path)
            if not str(path):
                raise InvalidInputError("soft: URL needs a keystore path")
            key_file = _one(query, "master_key_file", "")
            hsm: Hsm = SoftHsm.open(path, MasterKey.resolve(Path(key_file) if key_file else None))
        elif parts.scheme == "payshield":
            if not parts.hostname or parts.port is None:
                raise InvalidInputError("payshield: URL needs host:port")
            hsm = PayShieldHsm(
                parts.hostname,
                parts.port,
                header_length=int(_one(query, "header_length", "4")),
                timeout=float(_one(query, "timeout", "5")),
                pool_size=int(_one(query, "pool_size", "4")),
            )
        else:
            raise InvalidInputError(
                f"HSM URL scheme must be soft: or payshield:, got {parts.scheme or 'none'!r}"
            )
    except ValueError as exc:  # a bad port, header length, timeout or pool size
        raise InvalidInputError(f"HSM URL {url!r}: {exc}") from None
    if query:
        raise InvalidInputError(f"HSM URL: unknown option {sorted(query)[0]!r}")
    return hsm


__all__ = [
    "DEFAULT_DECIMALIZATION_TABLE",
    "Algorithm",
    "Hsm",
    "HsmError",
    "Ibm3624Record",
    "KeyInfo",
    "KeyStore",
    "KeyType",
    "MasterKey",
    "PayShieldHsm",
    "PvvRecord",
    "SoftHsm",
    "Verification",
    "open_hsm",
]
