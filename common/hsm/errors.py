"""The HSM component's errors: one class per failure, each with a stable ``code``.

Callers branch on ``code`` (it also travels in gRPC error details); the message is for
people. Messages never carry key material, PINs, PIN blocks or full PANs: at most a
masked PAN. A PIN that does not verify is a normal ``False`` result, not an error.
"""

from __future__ import annotations


class HsmError(Exception):
    """Base class: ``code`` is stable, ``str(error)`` names what was wrong."""

    code = "hsm_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(HsmError):
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


class KeyNotFoundError(HsmError):
    """No key of that name (or the HSM refused the key reference)."""

    code = "key_not_found"

    def __init__(self, message: str, key_name: str | None = None) -> None:
        super().__init__(message)
        self.key_name = key_name


class WrongKeyTypeError(HsmError):
    """The key exists but is of another type or algorithm than the operation needs."""

    code = "wrong_key_type"


class KeyLengthError(HsmError):
    """Key material of the wrong length for its type and algorithm."""

    code = "key_length_invalid"


class KeyParityError(HsmError):
    """A DES key byte without odd parity."""

    code = "key_parity"


class KeyExistsError(HsmError):
    """A key of that name is already in the keystore."""

    code = "key_exists"


class KcvMismatchError(HsmError):
    """Imported key material does not match the key check value given with it."""

    code = "kcv_mismatch"


class UnsupportedOperationError(HsmError):
    """This backend does not offer the operation (or the payShield refused the command)."""

    code = "unsupported"


class KeystoreError(HsmError):
    """The keystore file is missing, unreadable or not a keystore."""

    code = "keystore_invalid"


class KeystoreMissingError(KeystoreError):
    code = "keystore_missing"


class KeystoreTamperedError(KeystoreError):
    """The keystore's authentication tag does not verify: corrupted or tampered with."""

    code = "keystore_tampered"


class MasterKeyError(HsmError):
    """The master key is missing, malformed, badly protected or not this keystore's."""

    code = "master_key_invalid"


class MasterKeyMismatchError(MasterKeyError):
    code = "master_key_mismatch"


class HsmUnavailableError(HsmError):
    """The network HSM cannot be reached or did not answer in time."""

    code = "hsm_unavailable"


class HsmProtocolError(HsmError):
    """The network HSM answered something that is not a valid response to our command."""

    code = "hsm_protocol"


class HsmInternalError(HsmError):
    """The HSM failed internally (payShield error 41 and the like)."""

    code = "hsm_internal"
