"""ANSI X9.24-3-2017 AES DUKPT against the standard's supplementary test vectors.

All expected values come from the ASC X9 "X9.24-3-2017 Test Vectors" supplement
(x9.org, X9.24-3-2017-Test-Vectors-20180129), BDK FEDCBA9876543210F1F1F1F1F1F1F1F1
(AES-128; doubled for AES-256), initial key ID 1234567890123456, as transcribed in:

[OE]  openemv/dukpt test/dukpt_aes128_test.c and test/dukpt_aes_test.c: initial keys
      (AES-128 and AES-256) and intermediate derivation ("transaction") keys for
      counters 1-8, 0x1FFFE, 0x20000, 0x20001 and the last four counters.
[JP]  joyner-perez/aes_dukpt_x9.24-3-2017 src/test/java/com/security/aesdukpt/
      DukptTests.java: the 32 intermediate derivation key registers after loading the
      initial key, and host-derived PIN / MAC-generation / data-encrypt keys for
      counters 1, 2, 3, 7, 131073, 8675309 and 4294901760.
[FG]  teamforage/forage-android-sdk forage-android/src/test/java/com/joinforage/forage/
      android/pos/encryption/DukptFixtures.kt: device-side PIN encryption keys for the
      first transactions.
[CEX] QRCS-CORP/CEX Test/DUKPTTest.cpp (cites the X9 PDF): AES-256 PIN key, counter 1.
[IDX] Two further public test suites reproducing the supplement (a C# "Annex B"
      suite and a YAML vector catalogue; the search index did not name their
      repositories): 2TDEA / 3TDEA PIN keys and the KEK for counter 1, and the
      derivation data layout.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from branchline.common.paycrypto import (
    AesDukptDevice,
    DukptError,
    DukptExhaustedError,
    KeyCheckError,
    KeyType,
    KeyUsage,
    aes_dukpt,
)

BDK128 = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
BDK256 = BDK128 * 2
IKID = bytes.fromhex("1234567890123456")
IK128 = bytes.fromhex("1273671EA26AC29AFA4D1084127652A1")  # [OE]
IK256 = bytes.fromhex(  # [OE] dukpt_aes_test.c
    "CE9CE0C101D1138F97FB6CAD4DF045A7083D4EAE2D35A31789D01CCF0949550F"
)

# [OE] intermediate derivation keys by counter.
DERIVATION_KEYS = {
    0x00000001: "4F21B565BAD9835E112B6465635EAE44",
    0x00000002: "2F34D68DE10F68D38091A73B9E7C437C",
    0x00000003: "031504E530365CF81264238540518318",
    0x00000004: "0EEFC7ADA628BA68878DA9165A8A1887",
    0x00000005: "C2A7AC328A5DA2D6002D62465BFC028B",
    0x00000006: "D30F7D9351DA58448A2F5E92B4EE3B7D",
    0x00000007: "A8253CEED9AC042C54F75D35C8352278",
    0x00000008: "718EE6CF0B27E53D5F7AF99C4D8146A2",
    0x0001FFFE: "E21E8C8D347F8561A2BE752DAA85A111",
    0x00020000: "F7AE9025468A25D37B7249CFFED224C8",
    0x00020001: "692C8EA4013645135B36497131DF9D2C",
    0xFFFE2000: "48E585B694EB0B18D5C35443E163C0BA",
    0xFFFE4000: "396C2C7CA1EA701C03B86B7D41F0C562",
    0xFFFE8000: "0387625F189B58AE03EF0E8CCA41105E",
    0xFFFF0000: "F6BA59389BD14A9855BE9727E7C52E3C",
}

# [JP] host working keys: counter -> (PIN encryption, MAC generation, data encrypt).
WORKING_KEYS = {
    1: (
        "AF8CB133A78F8DC2D1359F18527593FB",
        "A2DC23DE6FDE0824A2BC321E08E4B8B7",
        "A35C412EFD41FDB98B69797C02DCD08F",
    ),
    2: (
        "D30BDC73EC9714B000BEC66BDB7B6D09",
        "484C3B06E8562704528CD5B46FB12FB6",
        "D639514AA33AC43AD9229E433D6D4E5B",
    ),
    3: (
        "7D69F01F3B45449F62C7816ECE723268",
        "A5DF7D9D800CA769766F0C77CA4E6E6C",
        "EF17F6AB45B4820C93A3DCB21BC491AD",
    ),
    7: (
        "6ECF912F3B18CA11A7A27BB60705FD09",
        "BAA08CA263C69525BC6B1BA8F4275D69",
        "0FA8F1F0A2DD7B1005A862D77CDED698",
    ),
    131073: (
        "8AC85C93EED246054ADC3104479115A6",
        "EF7C9461E2AFED2A8012CC6301CFEEBE",
        "B93B4BF0D52163B3CF9312F8E55629A3",
    ),
    8675309: (
        "D1DDA386AA4A556AF0119FDCB5D132C6",
        "89365C7970950CAC0A6261FFC7DB26C6",
        "B1E4D9006A87DD08D87F11A124D35517",
    ),
    4294901760: (
        "27EFAC1D158632588F4AC69E45C247C4",
        "AE558BABC206D303FDF68B1181F228C6",
        "08878BFCC45CA5AEF6A1AB40BAC882B5",
    ),
}

# [FG] device PIN encryption keys for counters 1, 2, 3, ...
DEVICE_PIN_KEYS = [
    "AF8CB133A78F8DC2D1359F18527593FB",
    "D30BDC73EC9714B000BEC66BDB7B6D09",
    "7D69F01F3B45449F62C7816ECE723268",
    "91A0588318EC2673214271F70137896E",
    "35A43BC9EFEB09C756204B57E3FB7D4D",
    "02DCC6CD1201A3A2CA7099559C862123",
    "6ECF912F3B18CA11A7A27BB60705FD09",
    "4D9DF3FBEE3448FC3E676D04320A90F5",
    "B4273D0F8804829572AFF61FA2BC417F",
    "BA7CF1ABF6B4A23A16A07CDE63F3514C",
    "FBB09B064691293A3FFBA322F2C55014",
    "6743311B691A3065561BB075EB39DA2D",
    "0BAC7E46F72C543F06C7144080E2AD4B",
    "3453AA079FF413D9FF51E6055F03B664",
    "4A22D5A8B6B6C06292EAAC6A1353C369",
    "A09C63853B707708DEAB907BA778C191",
    "0C30F0D8D070B90FF25D83B6E23BC1A4",
]

# [JP] intermediate derivation key registers right after loading the initial key:
# register i holds the key for counter 1 << i.
REGISTERS_AFTER_LOAD = [
    "4F21B565BAD9835E112B6465635EAE44",
    "2F34D68DE10F68D38091A73B9E7C437C",
    "0EEFC7ADA628BA68878DA9165A8A1887",
    "718EE6CF0B27E53D5F7AF99C4D8146A2",
    "7459762EED7F51D08567ED6598DFBEA2",
    "1ED39390B4448C69819EB55F4C616564",
    "C13BDA0A56D6998E544E0A10A3D979DA",
    "089F6B989CA13D49A6A0317F85460CE5",
    "065355A6A3DD4C2260BDDDFA0C16704E",
    "CF16FEBC5CFD1A741A3280564A9681F2",
    "4BF8EB1DAF9F4244332ED01663EB654E",
    "492248FEE0FE87E8B5DB7BB2AC7BC955",
    "18690547EB19D28EFAF5EF6D22C271AA",
    "84F4CCA45C4F1D4E063F1CE5B95B6C7F",
    "4EC5FC0C3CD62AFF174A37B6FDC2B0D9",
    "9EF99A4D5FD548A23D299074047F7F6B",
    "F4C6237DB49E28BF96E6A18CD8CDDA00",
    "F7AE9025468A25D37B7249CFFED224C8",
    "579594A986E87917382A181576FA7A9A",
    "5AAF46AAD7593E0D224E05E13629ED1E",
    "5787EB837B6FFB3AF24759F8625CEC19",
    "988A3AB89B9332A15D0BE2C54C279923",
    "E55171636976BDC5758A6FA4C25F0008",
    "DF16D5BAC52FFA7564D7DBD2DE7C6CCF",
    "145E8C933FC0D61900592035CF18A5AF",
    "FBDF917E209B42F9DB8843D18BEE8033",
    "61C70779F920BBD37815C21B5A1A7B75",
    "97D7BB3FC342B9E961308BB8B801775B",
    "69B453118411404DB54AE2B751F02F43",
    "7CCE4E679F4FC3478E3CD4509D64A7F3",
    "36AF4AA9FC1100B2AE7742101540340A",
    "9DC56486499A2E857FDEFC4740641EA8",
]


def h(value: str) -> bytes:
    return bytes.fromhex(value)


def ksn(counter: int) -> bytes:
    return aes_dukpt.make_ksn(IKID, counter)


# --- derivation data and initial keys -----------------------------------------------


def test_derivation_data_layout() -> None:
    # [IDX] initial key derivation and PIN key for counter 1, AES-128.
    ik_data = aes_dukpt.derivation_data(KeyUsage.KEY_DERIVATION_INITIAL_KEY, KeyType.AES128, IKID)
    assert ik_data == h("01018001000200801234567890123456")
    pin_data = aes_dukpt.derivation_data(
        KeyUsage.PIN_ENCRYPTION, KeyType.AES128, h("9012345600000001")
    )
    assert pin_data == h("01011000000200809012345600000001")


def test_initial_keys() -> None:
    assert aes_dukpt.derive_initial_key(BDK128, IKID) == IK128
    assert aes_dukpt.derive_initial_key(BDK256, IKID) == IK256


# --- host side ----------------------------------------------------------------------


@pytest.mark.parametrize(("counter", "key"), sorted(DERIVATION_KEYS.items()))
def test_host_intermediate_derivation_keys(counter: int, key: str) -> None:
    assert aes_dukpt.derive_transaction_key(BDK128, ksn(counter)) == h(key)
    assert aes_dukpt.transaction_key_from_initial_key(IK128, ksn(counter)) == h(key)


@pytest.mark.parametrize(("counter", "keys"), sorted(WORKING_KEYS.items()))
def test_host_working_keys(counter: int, keys: tuple[str, str, str]) -> None:
    pin_key, mac_key, data_key = keys
    assert aes_dukpt.derive_working_key(BDK128, ksn(counter)) == h(pin_key)
    tk = aes_dukpt.derive_transaction_key(BDK128, ksn(counter))
    assert aes_dukpt.working_key(tk, ksn(counter), KeyUsage.PIN_ENCRYPTION) == h(pin_key)
    assert aes_dukpt.working_key(tk, ksn(counter), KeyUsage.MAC_GENERATION) == h(mac_key)
    assert aes_dukpt.working_key(tk, ksn(counter), KeyUsage.DATA_ENCRYPT) == h(data_key)


def test_host_tdes_and_kek_working_keys_from_aes128() -> None:
    # [IDX] counter 1: 2TDEA and 3TDEA PIN keys and the AES-128 key encryption key.
    tk = aes_dukpt.derive_transaction_key(BDK128, ksn(1))
    assert aes_dukpt.working_key(tk, ksn(1), key_type=KeyType.TDES2) == h(
        "630C706D9546E47D4449313F61C4D4AB"
    )
    assert aes_dukpt.working_key(tk, ksn(1), key_type=KeyType.TDES3) == h(
        "EA8B3F37EB9B15831167EF2977FD8762D9B5913F35766F6A"
    )
    assert aes_dukpt.working_key(tk, ksn(1), KeyUsage.KEY_ENCRYPTION_KEY) == h(
        "36A724B7BEFA5A25F5E7B5782A4554A2"
    )


def test_host_aes256_pin_key() -> None:
    # [CEX] AES-256 BDK, counter 1, AES-256 PIN encryption key.
    expected = h("8C1AB7BEE973829E30242E0BBBDD4946D540C98FC1B5BDCF94790001A23FD502")
    assert aes_dukpt.derive_working_key(BDK256, ksn(1)) == expected
    assert aes_dukpt.derive_working_key(BDK256, ksn(1), key_type=KeyType.AES256) == expected


# --- originating (device) side ------------------------------------------------------


def test_device_registers_after_loading_initial_key() -> None:
    device = AesDukptDevice(IK128, IKID)
    registers = device._registers._registers  # white-box: the X9.24-3 register set
    assert [registers[i].hex().upper() for i in range(32)] == REGISTERS_AFTER_LOAD


def test_device_produces_published_pin_key_sequence() -> None:
    device = AesDukptDevice.from_bdk(BDK128, IKID)
    for counter, pin_key in enumerate(DEVICE_PIN_KEYS, start=1):
        assert device.next_ksn == ksn(counter)
        tx = device.next_transaction()
        assert tx.ksn == ksn(counter)
        assert tx.counter == counter
        assert tx.pin_key == h(pin_key)
        if counter in DERIVATION_KEYS:
            assert tx.transaction_key == h(DERIVATION_KEYS[counter])
        if counter in WORKING_KEYS:
            _, mac_key, data_key = WORKING_KEYS[counter]
            assert tx.working_key(KeyUsage.MAC_GENERATION) == h(mac_key)
            assert tx.working_key(KeyUsage.DATA_ENCRYPT) == h(data_key)


def test_device_skips_counters_with_more_than_16_one_bits() -> None:
    # 0x1FFFE has 16 one-bits, so 0x1FFFF is skipped and 0x20000 follows [OE].
    device = AesDukptDevice.resume(IK128, ksn(0x1FFFE))
    for counter in (0x1FFFE, 0x20000, 0x20001):
        tx = device.next_transaction()
        assert tx.ksn == ksn(counter)
        assert tx.transaction_key == h(DERIVATION_KEYS[counter])


def test_device_refuses_once_32_bit_counter_is_exhausted() -> None:
    # The last four counters of the supplement; 0xFFFF0000 is the final usable one [OE].
    device = AesDukptDevice.resume(IK128, ksn(0xFFFE2000))
    for counter in (0xFFFE2000, 0xFFFE4000, 0xFFFE8000, 0xFFFF0000):
        tx = device.next_transaction()
        assert tx.ksn == ksn(counter)
        assert tx.transaction_key == h(DERIVATION_KEYS[counter])
    assert tx.pin_key == h(WORKING_KEYS[0xFFFF0000][0])
    assert device.exhausted
    assert device.next_ksn is None
    with pytest.raises(DukptExhaustedError, match="32-bit transaction counter is exhausted"):
        device.next_transaction()


@given(st.integers(min_value=1, max_value=0xFFFFFFFF).filter(lambda c: c.bit_count() <= 16))
def test_resumed_device_agrees_with_host(counter: int) -> None:
    device = AesDukptDevice.resume(IK128, ksn(counter))
    for _ in range(3):
        if device.exhausted:
            break
        tx = device.next_transaction()
        assert tx.pin_key == aes_dukpt.working_key(
            aes_dukpt.transaction_key_from_initial_key(IK128, tx.ksn), tx.ksn
        )


def test_transaction_repr_hides_keys() -> None:
    tx = AesDukptDevice(IK128, IKID).next_transaction()
    assert tx.transaction_key.hex() not in repr(tx).lower()


# --- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize("bdk", [bytes(8), bytes(15), bytes(33)])
def test_wrong_bdk_length(bdk: bytes) -> None:
    with pytest.raises(KeyCheckError, match="BDK must be 16, 24 or 32 bytes long"):
        aes_dukpt.derive_initial_key(bdk, IKID)


def test_wrong_initial_key_id_and_ksn_length() -> None:
    with pytest.raises(DukptError, match="initial key ID must be 8 bytes long, got 12"):
        aes_dukpt.derive_initial_key(BDK128, IKID + bytes(4))
    with pytest.raises(DukptError, match="KSN must be 12 bytes long, got 10"):
        aes_dukpt.derive_transaction_key(BDK128, bytes(10))


def test_host_rejects_invalid_counters() -> None:
    with pytest.raises(DukptError, match="outside 1..4294967295"):
        aes_dukpt.derive_transaction_key(BDK128, ksn(0))
    with pytest.raises(DukptError, match="17 one-bits"):
        aes_dukpt.derive_transaction_key(BDK128, ksn(0x1FFFF))


def test_working_key_cannot_outgrow_derivation_key() -> None:
    tk = aes_dukpt.derive_transaction_key(BDK128, ksn(1))
    with pytest.raises(DukptError, match="AES256 working keys cannot come from AES128"):
        aes_dukpt.working_key(tk, ksn(1), key_type=KeyType.AES256)
    with pytest.raises(DukptError, match="not a working-key usage"):
        aes_dukpt.working_key(tk, ksn(1), KeyUsage.KEY_DERIVATION)
