"""ISO 9564-1 PIN block formats 0, 1, 3 and 4.

Vector sources:

[EFT]  EFTlab knowledge base, "Complete list of PIN-blocks"
       (eftlab.com.au/knowledge-base/complete-list-of-pin-blocks), ISO-0 example:
       PAN 43219876543210987, PIN 1234 -> 0412AC89ABCDEF67.
[A4]   ANSI X9.24-1:2009 Annex A.4 (also openemv/pinblock test/pinblock_format0_test.c):
       PIN 1234, PAN 4012345678909 -> 041274EDCBA9876F.
[PSEC] knovichikhin/psec tests/test_pinblock.py: format 0 and 3 blocks for PAN
       5555555551234567, format 4 PIN/PAN fields, the deterministic format 4 block for
       PIN 1234 / PAN 1234567890123456789 (random fill all 0xFF), and two decipher
       vectors, one of them from the ep2 eft/pos 2000 Security Specification v8.0.0,
       8.4 "PIN Encryption".
[OPB]  openemv/pinblock test/pinblock_format1_test.c (format 1, PIN 12345 with fill
       EDCBA9876 -> 1512345EDCBA9876) and test/pinblock_format4_test.c (format 4 fields
       of the X9.24-3 example, "top of page 31"; short-PAN field for 123456789).
[X924] ANSI X9.24-3-2017 supplementary test vectors, "Calculation of AES PIN Block
       Format 4": PIN 1234, PAN 4111111111111111, random 2F69ADDE2E9E7ACE, encrypted
       under the counter-1 and counter-2 PIN keys; as transcribed in
       teamforage/forage-android-sdk .../pos/encryption/PinBlockIso4Test.kt.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from branchline.common.paycrypto import (
    KeyCheckError,
    PinBlockError,
    decode_format0,
    decode_format1,
    decode_format3,
    decode_format4_pin_field,
    decode_pin_block,
    decrypt_format4,
    decrypt_pin_block_tdes,
    encode_format0,
    encode_format1,
    encode_format3,
    encode_format4_pan_field,
    encode_format4_pin_field,
    encode_pin_block,
    encrypt_format4,
    encrypt_pin_block_tdes,
    pin_block_format,
)


def h(value: str) -> bytes:
    return bytes.fromhex(value)


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def fixed(data: bytes) -> Callable[[int], bytes]:
    """A ``random_bytes`` stand-in that hands out ``data`` in order."""
    stream = bytearray(data)

    def take(n: int) -> bytes:
        out = bytes(stream[:n])
        del stream[:n]
        return out

    return take


# --- format 0 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pin", "pan", "block"),
    [
        ("1234", "43219876543210987", "0412AC89ABCDEF67"),  # [EFT]
        ("1234", "4012345678909", "041274EDCBA9876F"),  # [A4]
        ("1234", "5555555551234567", "041261AAAAEDCBA9"),  # [PSEC]
        ("123456789012", "5555555551234567", "0C1261032D8226A9"),  # [PSEC]
    ],
)
def test_format0_published_examples(pin: str, pan: str, block: str) -> None:
    assert encode_format0(pin, pan) == h(block)
    assert decode_format0(h(block), pan) == pin
    assert decode_pin_block(h(block), pan) == pin
    assert pin_block_format(h(block)) == 0


@pytest.mark.parametrize(
    ("pin", "block"),
    [("123456789", "091261032D8DCBA9"), ("1234567890", "0A1261032D82CBA9")],  # [PSEC]
)
def test_format0_published_decodes(pin: str, block: str) -> None:
    assert decode_format0(h(block), "5555555551234567") == pin


def test_format0_short_pan_is_zero_padded() -> None:
    # PAN without check digit shorter than 12 digits is right-justified (ISO 9564-1).
    block = encode_format0("1234", "123456789")
    assert block == xor(h("041234FFFFFFFFFF"), h("0000000012345678"))


# --- format 1 -----------------------------------------------------------------------


def test_format1_published_example() -> None:
    # [OPB] fill nibbles E, D, C, B, A, 9, 8, 7, 6.
    block = h("1512345EDCBA9876")
    assert encode_format1("12345", random_bytes=fixed(bytes(range(0xE, 0x5, -1)))) == block
    assert decode_format1(block) == "12345"
    assert decode_pin_block(block) == "12345"


def test_format1_fill_is_random() -> None:
    assert encode_format1("1234")[:3] == h("141234")
    assert len({encode_format1("1234") for _ in range(8)}) > 1


# --- format 3 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pin", "block"),
    [
        ("1234", "341261AAAAEDCBA9"),
        ("123456789", "391261032D8DCBA9"),
        ("1234567890", "3A1261032D82CBA9"),
        ("123456789012", "3C1261032D8226A9"),
    ],
)  # [PSEC], PAN 5555555551234567, every fill nibble 0xF
def test_format3_published_examples(pin: str, block: str) -> None:
    pan = "5555555551234567"
    # Random byte 5 maps to fill nibble 0xA + 5 = 0xF.
    assert encode_format3(pin, pan, random_bytes=fixed(b"\x05" * 16)) == h(block)
    assert decode_format3(h(block), pan) == pin
    assert decode_pin_block(h(block), pan) == pin


def test_format3_fill_sampling_rejects_biased_bytes() -> None:
    # Bytes >= 252 would bias a mod-6 draw, so they are skipped.
    block = encode_format3("1234", "5555555551234567", random_bytes=fixed(b"\xff\xfc" + bytes(20)))
    field = xor(block, h("0000555555123456"))
    assert field == h("341234AAAAAAAAAA")


# --- format 4 -----------------------------------------------------------------------

X924_RANDOM = h("2F69ADDE2E9E7ACE")


def test_format4_fields_x9_24_3_example() -> None:
    # [X924]/[OPB] plaintext fields, byte for byte.
    assert encode_format4_pin_field("1234", random_bytes=fixed(X924_RANDOM)) == h(
        "441234AAAAAAAAAA2F69ADDE2E9E7ACE"
    )
    assert encode_format4_pan_field("4111111111111111") == h("44111111111111111000000000000000")


@pytest.mark.parametrize(
    ("key", "block"),
    [
        ("AF8CB133A78F8DC2D1359F18527593FB", "A912150391AB65A67E52883D81CE2D15"),
        ("D30BDC73EC9714B000BEC66BDB7B6D09", "52A00503BD34BA1383F6A7EE9FE2547F"),
    ],
)  # [X924] transactions 1 and 2
def test_format4_encryption_x9_24_3_example(key: str, block: str) -> None:
    enc = encrypt_format4(h(key), "1234", "4111111111111111", random_bytes=fixed(X924_RANDOM))
    assert enc == h(block)
    assert decrypt_format4(h(key), h(block), "4111111111111111") == "1234"


def test_format4_psec_examples() -> None:
    # [PSEC] PIN 1234, PAN 1234567890123456789, random fill all 0xFF.
    key = h("00112233445566778899AABBCCDDEEFF")
    enc = encrypt_format4(key, "1234", "1234567890123456789", random_bytes=lambda n: b"\xff" * n)
    assert enc == h("28B41FDDD29B743E93124BD8E32D921E")
    assert decrypt_format4(key, enc, "1234567890123456789") == "1234"
    assert encode_format4_pan_field("112233445566778899") == h("61122334455667788990000000000000")
    assert decode_format4_pin_field(h("441234AAAAAAAAAA548ED7FD65495950")) == "1234"
    # PAN shorter than 12 digits.
    assert decrypt_format4(key, h("39B69B1B91FE05D48F7EF0D68EB2CBD6"), "1") == "123456"


def test_format4_ep2_example() -> None:
    # [PSEC] quoting ep2 eft/pos 2000 Security Specification 8.0.0, 8.4.
    key = h("C1D0F8FB4958670DBA40AB1F3752EF0D")
    block = h("CC17F65586BFD0953010226C4FC5B3CA")
    assert decrypt_format4(key, block, "432198765432109870") == "1234"


def test_format4_short_pan_field() -> None:
    # [OPB] hand-made short PAN example.
    assert encode_format4_pan_field("123456789") == h("00001234567890000000000000000000")


# --- TDES encipherment of 8-byte blocks ----------------------------------------------


def test_tdes_pin_block_encipherment_round_trip() -> None:
    # PIN key and result from ANSI X9.24-1:2009 A.4.2, counter 1 (openemv/dukpt).
    key = h("042666B49184CF5C68DE9628D0397B36")
    assert encrypt_pin_block_tdes(key, h("041274EDCBA9876F")) == h("1B9C1845EB993A7A")
    assert decrypt_pin_block_tdes(key, h("1B9C1845EB993A7A")) == h("041274EDCBA9876F")


# --- round trips --------------------------------------------------------------------

pins = st.text(alphabet="0123456789", min_size=4, max_size=12)
pans = st.text(alphabet="0123456789", min_size=12, max_size=19)


@given(pin=pins, pan=pans)
def test_format0_round_trip(pin: str, pan: str) -> None:
    assert decode_format0(encode_format0(pin, pan), pan) == pin
    assert decode_pin_block(encode_pin_block(pin, 0, pan), pan) == pin


@given(pin=pins, seed=st.binary(min_size=14, max_size=14))
def test_format1_round_trip(pin: str, seed: bytes) -> None:
    block = encode_format1(pin, random_bytes=fixed(seed))
    assert decode_format1(block) == pin
    assert decode_pin_block(encode_pin_block(pin, 1)) == pin


@given(pin=pins, pan=pans, seed=st.binary(min_size=64, max_size=64))
def test_format3_round_trip(pin: str, pan: str, seed: bytes) -> None:
    block = encode_format3(pin, pan, random_bytes=fixed(seed))
    assert decode_format3(block, pan) == pin
    assert decode_pin_block(encode_pin_block(pin, 3, pan), pan) == pin


@given(
    pin=pins,
    pan=st.text(alphabet="0123456789", min_size=1, max_size=19),
    key=st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    seed=st.binary(min_size=8, max_size=8),
)
def test_format4_round_trip(pin: str, pan: str, key: bytes, seed: bytes) -> None:
    block = encrypt_format4(key, pin, pan, random_bytes=fixed(seed))
    assert len(block) == 16
    assert decrypt_format4(key, block, pan) == pin
    assert decode_format4_pin_field(encode_format4_pin_field(pin, random_bytes=fixed(seed))) == pin


# --- bad input ----------------------------------------------------------------------

PAN = "4012345678909"


@pytest.mark.parametrize("pin", ["123", "1234567890123", ""])
def test_pin_wrong_length(pin: str) -> None:
    with pytest.raises(PinBlockError, match=f"PIN must be 4-12 digits long, got {len(pin)}"):
        encode_format0(pin, PAN)


@pytest.mark.parametrize("pin", ["12a4", "12 4", "１２３４", "12-4"])
def test_pin_not_digits(pin: str) -> None:
    with pytest.raises(PinBlockError, match="PIN character at position"):
        encode_format4_pin_field(pin)


def test_pin_not_a_string() -> None:
    with pytest.raises(PinBlockError, match="PIN must be a str"):
        encode_format0(1234, PAN)  # type: ignore[arg-type]


@pytest.mark.parametrize("pan", ["", "4", "40123456789012345678", "40123456789O9"])
def test_bad_pan_for_format0(pan: str) -> None:
    with pytest.raises(PinBlockError, match="PAN"):
        encode_format0("1234", pan)


def test_bad_control_nibble() -> None:
    with pytest.raises(
        PinBlockError, match="PIN block format 0: control nibble is 0x1, expected 0x0"
    ):
        decode_format0(h("141274EDCBA9876F"), PAN)
    with pytest.raises(PinBlockError, match="control nibble is 0x2, expected 0x0, 0x1 or 0x3"):
        decode_pin_block(h("241234FFFFFFFFFF"))


def test_bad_length_nibble() -> None:
    with pytest.raises(PinBlockError, match="PIN length nibble is 0x3, expected 0x4-0xC"):
        decode_format1(h("13123FFFFFFFFFFF"))


def test_bad_fill_format0() -> None:
    # Clear block for PIN 1234 with nibble 9 of the PIN field changed from F to C.
    field = h("041234FFFCFFFFFF")
    block = xor(field, h("0000401234567890"))
    with pytest.raises(
        PinBlockError, match="PIN block format 0: fill nibble at position 9 is 0xC, expected 0xF"
    ):
        decode_format0(block, PAN)


def test_fill_that_may_be_a_pin_digit_is_not_printed() -> None:
    # Six-digit PIN whose length nibble claims 4: nibble 6 is the PIN digit 5.
    field = h("04123456FFFFFFFF")
    block = xor(field, h("0000401234567890"))
    with pytest.raises(PinBlockError) as info:
        decode_format0(block, PAN)
    message = str(info.value)
    assert "position 6 is a decimal digit, expected 0xF" in message
    assert "5" not in message.replace("0xF", "")


def test_bad_fill_format3_and_format4() -> None:
    field = h("341234AAAAAAAAA5")
    block = xor(field, h("0000401234567890"))
    with pytest.raises(PinBlockError, match="position 15 is a decimal digit, expected 0xA-0xF"):
        decode_format3(block, PAN)
    with pytest.raises(PinBlockError, match="format 4: fill nibble at position 7 is 0xB"):
        decode_format4_pin_field(h("441234ABAAAAAAAA548ED7FD65495950"))


def test_bad_pin_digit_nibble() -> None:
    with pytest.raises(PinBlockError, match="PIN digit at position 4 is 0xD"):
        decode_format4_pin_field(h("4412D4AAAAAAAAAA548ED7FD65495950"))


@pytest.mark.parametrize("block", [b"", bytes(7), bytes(9), bytes(16)])
def test_wrong_block_length(block: bytes) -> None:
    with pytest.raises(PinBlockError, match="must be 8 bytes long"):
        decode_format0(block, PAN)


def test_wrong_format4_block_length() -> None:
    with pytest.raises(PinBlockError, match="PIN block format 4 must be 16 bytes long, got 17"):
        decrypt_format4(bytes(16), bytes(17), PAN)


@pytest.mark.parametrize("key", [bytes(8), bytes(15), bytes(33)])
def test_wrong_aes_key_length(key: bytes) -> None:
    with pytest.raises(KeyCheckError, match="AES PIN key must be 16, 24 or 32 bytes long"):
        encrypt_format4(key, "1234", PAN)


def test_wrong_tdes_key_length() -> None:
    with pytest.raises(KeyCheckError, match="TDES PIN key must be 16 or 24 bytes long, got 8"):
        encrypt_pin_block_tdes(bytes(8), bytes(8))


def test_unsupported_format_and_missing_pan() -> None:
    with pytest.raises(PinBlockError, match="format 2 is not supported"):
        encode_pin_block("1234", 2, PAN)
    with pytest.raises(PinBlockError, match="format 0 needs the PAN"):
        encode_pin_block("1234", 0)


def test_short_random_source_is_reported() -> None:
    with pytest.raises(PinBlockError, match=r"random_bytes\(8\) returned 3 bytes"):
        encode_format4_pin_field("1234", random_bytes=lambda n: b"abc")


def test_messages_never_contain_pin_or_pan() -> None:
    pin, pan = "987654", "4111111111111111"
    key = bytes(range(16))
    block = encrypt_format4(key, pin, pan, random_bytes=fixed(bytes(8)))
    failures: list[PinBlockError] = []
    for call in (
        lambda: decrypt_format4(key, block, "4111111111111112"),  # wrong PAN
        lambda: decode_format0(encode_format3(pin, pan), pan),
        lambda: encode_format0(pin + "x", pan),
        lambda: encode_format0(pin, pan + "1234"),
    ):
        with pytest.raises(PinBlockError) as info:
            call()
        failures.append(info.value)
    for error in failures:
        assert pin not in str(error)
        assert pan not in str(error)
