"""The HSM component's errors: one class per failure, each with a stable ``code``.

They are part of the one error model (``branchline.common.errors``): each also subclasses
the kind it is (a malformed parameter is an InvalidArgument, a missing key a NotFound, an
unreachable HSM Unavailable, ...), and its ``code`` is its ``reason``, so a gRPC boundary
converts it like any other refusal. Callers branch on ``code``; the message is for people.
Messages never carry key material, PINs, PIN blocks or full PANs: at most a masked PAN. A
PIN that does not verify is a normal ``False`` result, not an error.
"""

from __future__ import annotations

from typing import ClassVar

from branchline.common.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)


class HsmError(DomainError):
    """Base class: ``code`` is stable, ``str(error)`` names what was wrong. Without a more
    specific kind it is a failed precondition."""

    code: ClassVar[str] = "hsm_error"  # type: ignore[assignment]  # a constant per class

    def __init__(self, message: str, *, field: str = "") -> None:
        # DomainError's constructor for every kind: the HSM's messages already say what.
        DomainError.__init__(self, message, field=field, reason=self.code)


class InvalidInputError(HsmError, InvalidArgument):
    """A parameter is malformed (hex, length, digits, KSN, format code...)."""

    code = "invalid_input"


class InvalidAccountError(InvalidInputError):
    """The PAN is not 12-19 decimal digits."""

    code = "invalid_account"


class PinBlockInvalidError(InvalidInputError):
    """The deciphered PIN block does not hold a valid PIN for its format and PAN."""

    code = "pin_block_invalid"


class UnsupportedFormatError(InvalidInputError):
    """A PIN block format this operation does not support."""

    code = "unsupported_format"


class DecimalizationTableError(InvalidInputError):
    """The decimalisation table is not 16 decimal digits."""

    code = "decimalization_table_invalid"


class KeyNotFoundError(HsmError, NotFound):
    """No key of that name (or the HSM refused the key reference)."""

    code = "key_not_found"

    def __init__(self, message: str, key_name: str | None = None) -> None:
        super().__init__(message)
        self.key_name = key_name


class WrongKeyTypeError(HsmError, FailedPrecondition):
    """The key exists but is of another type or algorithm than the operation needs."""

    code = "wrong_key_type"


class KeyLengthError(HsmError, InvalidArgument):
    """Key material of the wrong length for its type and algorithm."""

    code = "key_length_invalid"


class KeyParityError(HsmError, InvalidArgument):
    """A DES key byte without odd parity."""

    code = "key_parity"


class KeyExistsError(HsmError, AlreadyExists):
    """A key of that name is already in the keystore."""

    code = "key_exists"


class KcvMismatchError(HsmError, InvalidArgument):
    """Imported key material does not match the key check value given with it."""

    code = "kcv_mismatch"


class UnsupportedOperationError(HsmError, FailedPrecondition):
    """This backend does not offer the operation (or the payShield refused the command)."""

    code = "unsupported"


class KeystoreError(HsmError, FailedPrecondition):
    """The keystore file is missing, unreadable or not a keystore."""

    code = "keystore_invalid"


class KeystoreMissingError(KeystoreError):
    code = "keystore_missing"


class KeystoreTamperedError(KeystoreError):
    """The keystore's authentication tag does not verify: corrupted or tampered with."""

    code = "keystore_tampered"


class MasterKeyError(HsmError, FailedPrecondition):
    """The master key is missing, malformed, badly protected or not this keystore's."""

    code = "master_key_invalid"


class MasterKeyMismatchError(MasterKeyError):
    code = "master_key_mismatch"


class HsmUnavailableError(HsmError, Unavailable):
    """The network HSM cannot be reached or did not answer in time."""

    code = "hsm_unavailable"


class HsmProtocolError(HsmError, Unavailable):
    """The network HSM answered something that is not a valid response to our command."""

    code = "hsm_protocol"


class HsmInternalError(HsmError, Unavailable):
    """The HSM failed internally (payShield error 41 and the like)."""

    code = "hsm_internal"
