"""payShield error codes and how they map onto Branchline's HSM errors.

Descriptions follow the payShield host command reference's error-code list (as
transcribed in softwaregroup-bg/ut-codec-payshield ``errors/list.json`` and the
per-command tables of the reference: CA/CC, G0/CI, GQ/CM, DC, DG). '01' on a verification
command is not an error: it is the "PIN does not verify" answer.
"""

from __future__ import annotations

from .. import errors as e

DESCRIPTIONS = {
    "00": "no error",
    "01": "verification failure",
    "04": "invalid key type code",
    "10": "source key parity error",
    "11": "destination key parity error",
    "12": "contents of user storage not available",
    "13": "invalid LMK identifier",
    "15": "invalid input data (invalid format, invalid characters, or not enough data)",
    "20": "PIN block does not contain valid values",
    "22": "invalid account number",
    "23": "invalid PIN block format code",
    "24": "PIN is fewer than 4 or more than 12 digits in length",
    "25": "decimalisation table error",
    "26": "invalid key scheme",
    "27": "incompatible key length",
    "28": "invalid key type",
    "29": "key function not permitted",
    "41": "internal hardware/software error",
    "51": "invalid message header",
    "67": "command not licensed",
    "68": "command has been disabled",
    "75": "single length key masquerading as double or triple length key",
}

# Most specific class first: the first isinstance match wins.
_CODE_OF: tuple[tuple[type[e.HsmError], str], ...] = (
    (e.InvalidAccountError, "22"),
    (e.PinBlockInvalidError, "20"),
    (e.UnsupportedFormatError, "23"),
    (e.DecimalizationTableError, "25"),
    (e.InvalidInputError, "15"),
    (e.KeyNotFoundError, "10"),
    (e.KeyParityError, "10"),
    (e.KeyLengthError, "27"),
    (e.WrongKeyTypeError, "28"),
    (e.UnsupportedOperationError, "68"),
)

_ERROR_OF: dict[str, type[e.HsmError]] = {
    "04": e.WrongKeyTypeError,
    "10": e.KeyNotFoundError,
    "11": e.KeyNotFoundError,
    "12": e.KeyNotFoundError,
    "15": e.InvalidInputError,
    "20": e.PinBlockInvalidError,
    "22": e.InvalidAccountError,
    "23": e.UnsupportedFormatError,
    "24": e.PinBlockInvalidError,
    "25": e.DecimalizationTableError,
    "26": e.WrongKeyTypeError,
    "27": e.KeyLengthError,
    "28": e.WrongKeyTypeError,
    "29": e.WrongKeyTypeError,
    "67": e.UnsupportedOperationError,
    "68": e.UnsupportedOperationError,
    "75": e.KeyLengthError,
}


def code_for(error: e.HsmError) -> str:
    """The payShield error code a simulator answers for ``error``."""
    for cls, code in _CODE_OF:
        if isinstance(error, cls):
            return code
    return "41"


def error_for(code: str, command: str, key_roles: tuple[str, str] = ("", "")) -> e.HsmError:
    """The HSM error for a payShield error code answered to ``command``.

    ``key_roles`` names the command's first and second key fields so that 10 and 11 say
    which key was refused. The message carries the code and its reference meaning only.
    """
    description = DESCRIPTIONS.get(code, "unknown error code")
    if code in ("10", "11") and any(key_roles):
        role = key_roles[0] if code == "10" else key_roles[1]
        text = f"payShield refused the {role} for {command} (error {code}: {description}, or unknown key reference)"
    else:
        text = f"payShield answered {command} with error {code}: {description}"
    return _ERROR_OF.get(code, e.HsmInternalError)(text)
