"""Visa PVV and IBM 3624 offset against published examples.

[PSEC] knovichikhin/psec tests/test_pin.py (and the generate_visa_pvv docstring): PVK
       0123456789ABCDEFFEDCBA9876543210; Visa PVVs (two of them need the second,
       non-decimal scan) and IBM 3624 PINs/offsets with conversion table
       1234567890123456, validation data taken from PAN 1122334455667788.
[CCA]  IBM 4758 CCA Basic Services Release 2.54, Appendix E "IBM 3624 PIN-Calculation
       Method" example: encrypted validation data E5C1BD67B66AE7C6, decimalisation
       table 8351296477461538 -> 3913656466643416, 6-digit A-PIN 391365.
[MAG]  "IBM 3624 Customer PIN, natural PIN, PIN offset" (topic.alibabacloud.com,
       after gae.ucm.es/~padilla/extrawork/magexam1.html): single-DES PVKs, table
       0123456789012345; example 1 natural PIN 643085 and offset 456789 -> PIN 099764,
       example 2 natural PIN 9046, offset 2298 -> PIN 1234.
"""

from __future__ import annotations

import pytest

from branchline.common.hsm import pinverify
from branchline.common.hsm.errors import (
    DecimalizationTableError,
    InvalidAccountError,
    InvalidInputError,
    KeyLengthError,
)

PSEC_PVK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
PSEC_TABLE = "1234567890123456"
PSEC_PAN = "1122334455667788"


@pytest.mark.parametrize(
    ("pvki", "pin", "pan", "pvv"),
    [
        (1, "4524", "1122334455667788", "8523"),
        (2, "1912", "1122334455667788", "3244"),
        (1, "0570", "1122334455667718", "3144"),  # second scan: 2 decimal digits only
        (1, "8299", "1122334455667708", "4422"),  # second scan: 3 decimal digits only
        (3, "4524", "1122334455667788", "4021"),  # psec docstring example
    ],
)
def test_visa_pvv_psec(pvki: int, pin: str, pan: str, pvv: str) -> None:
    assert pinverify.visa_pvv(PSEC_PVK, pan, pvki, pin) == pvv
    assert pinverify.visa_pvv_matches(PSEC_PVK, pan, pin, pvki, pvv)
    wrong = f"{(int(pin) + 1) % 10000:04d}"
    assert not pinverify.visa_pvv_matches(PSEC_PVK, pan, wrong, pvki, pvv)


def test_visa_pvv_uses_only_first_four_pin_digits() -> None:
    assert pinverify.visa_pvv(PSEC_PVK, PSEC_PAN, 1, "452499") == "8523"


def test_pvv_decimalisation_scans() -> None:
    # The two-scan rule on hand-made ciphertexts: decimal digits first, then A-F minus 10.
    assert pinverify.decimalize_pvv(bytes.fromhex("A1B2C3D4E5F60718")) == "1234"
    assert pinverify.decimalize_pvv(bytes.fromhex("EEDCD3AACADEFC1A")) == "3144"
    assert pinverify.decimalize_pvv(bytes.fromhex("ABCDEFABCDEFABCD")) == "0123"


@pytest.mark.parametrize(
    ("offset", "data", "pad", "pin"),
    [
        ("0000", "1122334455667788", "F", "4524"),
        ("1111", "1122334455667788", "F", "5635"),
        ("6586", "1122334455667788", "F", "0000"),
        ("7697", "1122334455667788", "F", "1111"),
        ("7710", "1122334455667788", "F", "1234"),
        ("0000", "11223344556677", "F", "5518"),  # 14 digits, padded with F
        ("0000", "12233445566778", "1", "3675"),  # PAN digits 2-15, padded with 1
        ("0000", "22334455667788", "1", "5550"),  # PAN digits 3-16, padded with 1
    ],
)
def test_ibm3624_psec(offset: str, data: str, pad: str, pin: str) -> None:
    assert pinverify.ibm3624_pin_from_offset(PSEC_PVK, data, PSEC_TABLE, offset, pad) == pin
    assert pinverify.ibm3624_offset(PSEC_PVK, data, PSEC_TABLE, pin, pad) == offset
    assert pinverify.ibm3624_matches(PSEC_PVK, data, PSEC_TABLE, pin, offset, pad)


def test_ibm3624_decimalisation_cca_example() -> None:
    digits = pinverify.decimalize(bytes.fromhex("E5C1BD67B66AE7C6"), "8351296477461538")
    assert digits == "3913656466643416"
    assert digits[:6] == "391365"


def test_ibm3624_magexam_example_1() -> None:
    pvk = bytes.fromhex("1313131313131313")
    table = "0123456789012345"
    data = "1234567890123456"
    assert pinverify.ibm3624_intermediate(pvk, data, table) == "6430851379504444"
    assert pinverify.ibm3624_natural_pin(pvk, data, table, 6) == "643085"
    assert pinverify.ibm3624_pin_from_offset(pvk, data, table, "456789") == "099764"
    assert pinverify.ibm3624_pin_from_offset(pvk, data, table, "000000") == "643085"
    assert pinverify.ibm3624_offset(pvk, data, table, "099764") == "456789"


def test_ibm3624_magexam_example_2() -> None:
    pvk = bytes.fromhex("0123456789ABCDEF")
    table = "0123456789012345"
    data = "1234567890123445"
    assert pinverify.ibm3624_natural_pin(pvk, data, table, 4) == "9046"
    assert pinverify.ibm3624_offset(pvk, data, table, "1234") == "2298"
    assert pinverify.ibm3624_matches(pvk, data, table, "1234", "2298")
    assert not pinverify.ibm3624_matches(pvk, data, table, "1235", "2298")


def test_ibm3624_length_mismatch_does_not_verify() -> None:
    # A 5-digit PIN against a 4-digit offset: the PIN that offset stands for has 4 digits.
    assert not pinverify.ibm3624_matches(PSEC_PVK, PSEC_PAN, PSEC_TABLE, "45240", "0000")


def test_bad_inputs_are_named() -> None:
    with pytest.raises(DecimalizationTableError):
        pinverify.ibm3624_offset(PSEC_PVK, PSEC_PAN, "12345", "1234")
    with pytest.raises(InvalidInputError, match="validation data"):
        pinverify.ibm3624_offset(PSEC_PVK, "XYZ", PSEC_TABLE, "1234")
    with pytest.raises(InvalidInputError, match="pad"):
        pinverify.ibm3624_offset(PSEC_PVK, PSEC_PAN, PSEC_TABLE, "1234", "FF")
    with pytest.raises(InvalidInputError, match="PIN must be 4-12"):
        pinverify.visa_pvv(PSEC_PVK, PSEC_PAN, 1, "123")
    with pytest.raises(InvalidInputError, match="PVKI"):
        pinverify.visa_pvv(PSEC_PVK, PSEC_PAN, 10, "1234")
    with pytest.raises(InvalidAccountError):
        pinverify.visa_pvv(PSEC_PVK, "12345", 1, "1234")
    with pytest.raises(KeyLengthError, match="single-length"):
        pinverify.visa_pvv(bytes.fromhex("0123456789ABCDEF") * 2, PSEC_PAN, 1, "1234")
    with pytest.raises(KeyLengthError):
        pinverify.visa_pvv(bytes(5), PSEC_PAN, 1, "1234")


def test_error_messages_hold_no_pin() -> None:
    with pytest.raises(InvalidInputError) as info:
        pinverify.visa_pvv(PSEC_PVK, PSEC_PAN, 1, "98765432109876")
    assert "98765432109876" not in str(info.value)
