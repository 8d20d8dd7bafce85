"""The transaction reference printed on every receipt: ``BLTX:<terminal_id>:<txn_id>``.

The terminal journals each money call to the ledger under request id ``<txn_id>:<step>``,
so the reference finds every ledger entry of the transaction. Both parts are plain
identifiers (letters, digits, ``.``, ``_``, ``-``); neither may contain ``:``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from branchline.common.errors import InvalidArgument, echo

PREFIX = "BLTX"
# BLCQ: a cheque-book purchase (docs/flows/cheques.md); same shape, its own namespace.
CHEQUE_PREFIX = "BLCQ"
PREFIXES = (PREFIX, CHEQUE_PREFIX)
MAX_REFERENCE = 128
_PART = re.compile(r"^[A-Za-z0-9._-]+$")


class BadReference(InvalidArgument, ValueError):
    """The reference is malformed; the message names what is wrong, ``field`` is
    ``reference``."""

    def __init__(self, message: str, *, field: str = "reference", reason: str = "") -> None:
        super().__init__(field, message, reason=reason)


@dataclass(frozen=True)
class TxReference:
    terminal_id: str
    txn_id: str
    prefix: str = PREFIX

    def __str__(self) -> str:
        return f"{self.prefix}:{self.terminal_id}:{self.txn_id}"

    @property
    def request_prefix(self) -> str:
        """What the ledger's request ids of this transaction start with."""
        return f"{self.txn_id}:"


def _check_part(value: str, name: str) -> None:
    if not value:
        raise BadReference(f"reference: the {name} is empty")
    if not _PART.match(value):
        raise BadReference(
            f"reference: the {name} {echo(value)} may hold only letters, digits, '.', '_' and '-'"
        )


def make_reference(terminal_id: str, txn_id: str, prefix: str = PREFIX) -> TxReference:
    _check_part(terminal_id, "terminal id")
    _check_part(txn_id, "transaction id")
    reference = TxReference(terminal_id, txn_id, prefix)
    if len(str(reference)) > MAX_REFERENCE:
        raise BadReference(f"reference: longer than {MAX_REFERENCE} characters")
    return reference


def parse_reference(text: str) -> TxReference:
    """``BLTX:<terminal_id>:<txn_id>`` -> its parts; BadReference naming what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise BadReference("reference: must not be empty")
    text = text.strip()
    if len(text) > MAX_REFERENCE:
        raise BadReference(
            f"reference: longer than {MAX_REFERENCE} characters (got {echo(text)})",
            reason="too_long",
        )
    prefix, sep, rest = text.partition(":")
    if prefix not in PREFIXES or not sep:
        raise BadReference(
            f"reference: must start with '{PREFIX}:' or '{CHEQUE_PREFIX}:', got {echo(text, 12)}"
        )
    terminal_id, sep, txn_id = rest.partition(":")
    if not sep:
        raise BadReference(f"reference: expected {prefix}:<terminal_id>:<txn_id>, got {echo(text)}")
    return make_reference(terminal_id, txn_id, prefix)


_PLAIN_REF = re.compile(r"[A-Za-z0-9._-]{1,128}")


def txn_ref_of(reference: str) -> str:
    """The transaction a recording is filed under, from what a receipt prints (its QR code
    types it): ``BLTX:<terminal>:<txn>`` or ``BLCQ:<terminal>:<purchase>`` gives the id after
    the terminal; a call's id or a bare transaction id is taken as it is."""
    reference = reference.strip() if isinstance(reference, str) else ""
    if not reference:
        raise BadReference("reference: must not be empty", reason="required")
    if len(reference) > MAX_REFERENCE:
        raise BadReference(f"reference: longer than {MAX_REFERENCE} characters", reason="too_long")
    if ":" in reference and reference.partition(":")[0].upper() in PREFIXES:
        return parse_reference(reference).txn_id
    if not _PLAIN_REF.fullmatch(reference):
        raise BadReference("reference: a receipt's reference (BLTX:... or BLCQ:...) or a call's id")
    return reference
