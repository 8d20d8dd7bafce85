"""Exceptions raised by ``branchline.common.paycrypto``.

Every error is a ``ValueError`` so callers that validate input generically still catch
it. Messages name *what* was wrong (field, position, expected form) and never carry a
clear PIN, a full PAN or key material: they end up in logs and gRPC error details.
"""

from __future__ import annotations


class PayCryptoError(ValueError):
    """Base class for every payment-cryptography input error."""


class PinBlockError(PayCryptoError):
    """A PIN, PAN or PIN block is malformed or does not match its format."""


class KeyCheckError(PayCryptoError):
    """Key material has the wrong length, bad parity or a mismatching check value."""


class DukptError(PayCryptoError):
    """A KSN, counter or DUKPT parameter is invalid."""


class DukptExhaustedError(DukptError):
    """The originating device has used up its transaction counter and needs a new key."""
