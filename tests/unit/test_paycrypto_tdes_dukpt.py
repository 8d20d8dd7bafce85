"""ANSI X9.24-1:2009 TDES DUKPT against published vectors.

Vector sources (every expected value below comes from one of these, none is computed
here):

[A4] ANSI X9.24-1:2009 Annex A.4 "DUKPT Test Data Examples" (BDK
     0123456789ABCDEFFEDCBA9876543210, initial KSN FFFF9876543210E00000, PIN 1234,
     PAN 4012345678909), as transcribed in openemv/dukpt test/dukpt_tdes_test.c
     (A.4.2 initial sequence and A.4.3 rollover sequence: KSNs, transaction keys and
     encrypted PIN blocks).
[MOOV] moov-io/dukpt pkg/des/des_test.go, "A.4.2 Initial Sequence": same transaction
     keys and PIN blocks plus data "4012345678909D987" enciphered (TDES-CBC, zero IV,
     zero padding) under the data request/response keys and ANSI X9.19 MACs under the
     MAC request/response keys.
[SY] shenyan1206/dukpt test/test_dukpt.js: PIN, MAC-request and data-request keys for
     counters 1-5 of the same BDK/KSN.
"""

from __future__ import annotations

import pytest
from Crypto.Cipher import DES, DES3

from branchline.common.paycrypto import (
    DukptError,
    DukptExhaustedError,
    KeyCheckError,
    TdesDukptDevice,
    TdesKeyUsage,
    encode_format0,
    encrypt_pin_block_tdes,
    tdes_dukpt,
)
from branchline.common.paycrypto._ladder import CounterRules, FutureKeyRegisters, walk

BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
IKSN = bytes.fromhex("FFFF9876543210E00000")
IPEK = bytes.fromhex("6AC292FAA1315B4D858AB3A3D7D5933A")  # [A4]
PIN, PAN = "1234", "4012345678909"
CLEAR_PIN_BLOCK = bytes.fromhex("041274EDCBA9876F")  # [A4] format 0 block of PIN/PAN

# [A4] A.4.2 initial sequence: (KSN, transaction key, encrypted PIN block).
INITIAL_SEQUENCE = [
    ("FFFF9876543210E00001", "042666B49184CFA368DE9628D0397BC9", "1B9C1845EB993A7A"),
    ("FFFF9876543210E00002", "C46551CEF9FD24B0AA9AD834130D3BC7", "10A01C8D02C69107"),
    ("FFFF9876543210E00003", "0DF3D9422ACA56E547676D07AD6BADFA", "18DC07B94797B466"),
    ("FFFF9876543210E00004", "279C0F6AEED0BE652B2C733E1383AE91", "0BC79509D5645DF7"),
    ("FFFF9876543210E00005", "5F8DC6D2C845C125508DDC048093B83F", "5BC0AF22AD87B327"),
    ("FFFF9876543210E00006", "5E415CB0BAF9F03CD0C14B63FB62FF43", "A16DF70AE36158D8"),
    ("FFFF9876543210E00007", "0C8F780B7C8B49D0AE84A9EB2A6CE660", "27711C16CB257F8E"),
    ("FFFF9876543210E00008", "27F66D5244FF62E1AA6F6120EDEB4280", "50E55547A5027551"),
    ("FFFF9876543210E00009", "27E31064FDC565698900E2057F658E7E", "536CF7F678ACFC8D"),
    ("FFFF9876543210E0000A", "6CF2500A22507C7CC776CEADC1E33014", "EDABBA23221833FE"),
    ("FFFF9876543210E0000B", "3E8260BA04B2D620C01482B3819A18B7", "2328981C57B4BDBA"),
    ("FFFF9876543210E0000C", "B716E1E11CF53D80726CAEE75C3A624F", "038D03CC926CF286"),
    ("FFFF9876543210E0000D", "E072EDF95340535FB6C581C58FBF2533", "6C8AA97088B62C68"),
    ("FFFF9876543210E0000E", "A80046087F5B8F245AAD95E18429084F", "F17C9E1D72CD4950"),
    ("FFFF9876543210E0000F", "93DD5B956C4878472E453AAEFD32A5AA", "B170F6E7F7F2F64A"),
    ("FFFF9876543210E00010", "59598DCBD9BD94C094165CE453585F57", "D5D9638559EF53D6"),
    ("FFFF9876543210E00011", "2B5F01F4F0CC05EA639D523231BF1BA2", "D544F8CDD292C863"),
    ("FFFF9876543210E00012", "9CF640F279C2AEE615F725EEEAC2CBAF", "7A21BD10F36DC41D"),
    ("FFFF9876543210E00013", "C3DF489FDF1153B4F03DE97C27DC4C2F", "78649BD17D0DFA60"),
    ("FFFF9876543210E00014", "658488507721B3F14737FA93F923CBD2", "7E7E16EA0C31AD56"),
    ("FFFF9876543210E00015", "E161D1956A61F6D2F37AFD7F9CC3699A", "72105C22EBC791E6"),
]

# [A4] A.4.3 rollover sequence: counters with ten one-bits are skipped.
ROLLOVER_SEQUENCE = [
    ("FFFF9876543210EFF800", "F9CDFEBF4F5B1D9EB3EC12454527E176", "33365F5CC6F23C35"),
    ("FFFF9876543210EFF801", "5BEE92627E97825C911BF619DF72CA3B", "3A86BF003F835C9D"),
    ("FFFF9876543210EFF802", "64CA2F8AB93F61B01620B00BF77C7301", "3DB977D05C36DF3F"),
    ("FFFF9876543210EFF804", "35A168695B3BA83307E871C42021DD37", "BA83243305712099"),
    ("FFFF9876543210EFF808", "12C380FCB72ED3C26FC6079AF63F4787", "B0DA04AC90A36D85"),
    ("FFFF9876543210EFF810", "D8007C833A1E3C49C6889B97A68C54FF", "2CF02BD9C309EEDA"),
    ("FFFF9876543210EFF820", "A9C9FF9B735FDD49591F296B0BF0FD70", "9D1E2F77AEEE81C6"),
    ("FFFF9876543210EFF840", "0E3E221062CB5E03A384602783A004FA", "40870B0F8BA2011C"),
    ("FFFF9876543210EFF880", "CA8225C587124DFBB87F279C0BE29727", "22E340D6ABB40981"),
    ("FFFF9876543210EFF900", "906AAC1751D4971A144D52C76C6E1F97", "1A4C10AFBA03A430"),
    ("FFFF9876543210EFFA00", "2B9E2CE7C2750337E10B54D2989EA6AF", "849763B43E5F9CFF"),
    ("FFFF9876543210EFFC00", "F9430DF975082491C77BE4EF4FDB91EE", "DEFC6F09F8927B71"),
    ("FFFF9876543210F00000", "AA4D58DB653EC74A48C75F2F047DD2B5", "73EC88AD0AC5830E"),
]

# [SY] counters 1-5: PIN key, MAC request key, data request key.
WORKING_KEYS = [
    (
        "FFFF9876543210E00001",
        "042666B49184CF5C68DE9628D0397B36",
        "042666B4918430A368DE9628D03984C9",
        "448D3F076D8304036A55A3D7E0055A78",
    ),
    (
        "FFFF9876543210E00002",
        "C46551CEF9FD244FAA9AD834130D3B38",
        "C46551CEF9FDDBB0AA9AD834130DC4C7",
        "F1BE73B36135C5C26CF937D50ABBE5AF",
    ),
    (
        "FFFF9876543210E00003",
        "0DF3D9422ACA561A47676D07AD6BAD05",
        "0DF3D9422ACAA9E547676D07AD6B52FA",
        "EEEEF522C67239E4A2A65FEBF4C511F4",
    ),
    (
        "FFFF9876543210E00004",
        "279C0F6AEED0BE9A2B2C733E1383AE6E",
        "279C0F6AEED041652B2C733E13835191",
        "BCF2610997C3AC3C5F13AE965A1B773B",
    ),
    (
        "FFFF9876543210E00005",
        "5F8DC6D2C845C1DA508DDC048093B8C0",
        "5F8DC6D2C8453E25508DDC048093473F",
        "F3054D8B7471284BDB4EE18AFC3B091B",
    ),
]

# [MOOV] data "4012345678909D987": (KSN, data request enc, data response enc,
# request MAC, response MAC).
MOOV_DATA = b"4012345678909D987"
MOOV_SEQUENCE = [
    (
        "FFFF9876543210E00001",
        "FC0D53B7EA1FDA9EE68AAF2E70D9B9506229BE2AA993F04F",
        "1FCC89AF66222F27B903898BB2BC8589CDBFDE5EC6AFCC25",
        "9CCC78173FC4FB64",
        "20364223C1FF00FA",
    ),
    (
        "FFFF9876543210E00002",
        "A2B4E70F846E63D68775B7215EB4563DFD3037244C61CC13",
        "5B692A6B1FDD5E25B0DEFAFDE1672E402F8011360CFF3508",
        "F608A9BCA6FFC311",
        "D1FCA6BEF05D24D2",
    ),
    (
        "FFFF9876543210E00005",
        "9FD7BD1EC28845ACA93367A9DA9317BD555C6B33AE22D365",
        "7D4C109E49E83355A556AE949EED359F4404E7A2F0167C00",
        "0202B96339022058",
        "5CBE3E81D1D2A0FB",
    ),
]


def h(value: str) -> bytes:
    return bytes.fromhex(value)


# --- host side ----------------------------------------------------------------------


def test_ipek_matches_x9_24_1_annex_a() -> None:
    assert tdes_dukpt.derive_ipek(BDK, IKSN) == IPEK
    # The counter bits of the KSN do not take part in the IPEK.
    assert tdes_dukpt.derive_ipek(BDK, h("FFFF9876543210E00001")) == IPEK


def test_clear_pin_block_matches_annex_a() -> None:
    assert encode_format0(PIN, PAN) == CLEAR_PIN_BLOCK


@pytest.mark.parametrize(("ksn", "key", "pin_block"), INITIAL_SEQUENCE + ROLLOVER_SEQUENCE)
def test_host_derives_published_transaction_keys(ksn: str, key: str, pin_block: str) -> None:
    assert tdes_dukpt.derive_transaction_key(BDK, h(ksn)) == h(key)
    assert tdes_dukpt.transaction_key_from_ipek(IPEK, h(ksn)) == h(key)
    pin_key = tdes_dukpt.derive_working_key(BDK, h(ksn))
    assert encrypt_pin_block_tdes(pin_key, CLEAR_PIN_BLOCK) == h(pin_block)


@pytest.mark.parametrize(("ksn", "pin_key", "mac_key", "data_key"), WORKING_KEYS)
def test_host_working_key_variants(ksn: str, pin_key: str, mac_key: str, data_key: str) -> None:
    tk = tdes_dukpt.derive_transaction_key(BDK, h(ksn))
    assert tdes_dukpt.working_key(tk) == h(pin_key)
    assert tdes_dukpt.working_key(tk, TdesKeyUsage.PIN_ENCRYPTION) == h(pin_key)
    assert tdes_dukpt.working_key(tk, TdesKeyUsage.MAC_REQUEST) == h(mac_key)
    assert tdes_dukpt.working_key(tk, TdesKeyUsage.DATA_REQUEST) == h(data_key)


def _retail_mac(key: bytes, data: bytes) -> bytes:
    # ANSI X9.19: single-DES CBC-MAC under the left half, then D(right), E(left).
    padded = data + bytes(-len(data) % 8)
    last = DES.new(key[:8], DES.MODE_CBC, iv=bytes(8)).encrypt(padded)[-8:]
    return DES.new(key[:8], DES.MODE_ECB).encrypt(DES.new(key[8:], DES.MODE_ECB).decrypt(last))


@pytest.mark.parametrize(("ksn", "req_enc", "res_enc", "req_mac", "res_mac"), MOOV_SEQUENCE)
def test_mac_and_data_keys_reproduce_moov_vectors(
    ksn: str, req_enc: str, res_enc: str, req_mac: str, res_mac: str
) -> None:
    tk = tdes_dukpt.derive_transaction_key(BDK, h(ksn))
    padded = MOOV_DATA + bytes(-len(MOOV_DATA) % 8)

    def cbc(usage: TdesKeyUsage) -> bytes:
        key = tdes_dukpt.working_key(tk, usage)
        return DES3.new(key, DES3.MODE_CBC, iv=bytes(8)).encrypt(padded)

    assert cbc(TdesKeyUsage.DATA_REQUEST) == h(req_enc)
    assert cbc(TdesKeyUsage.DATA_RESPONSE) == h(res_enc)
    assert _retail_mac(tdes_dukpt.working_key(tk, TdesKeyUsage.MAC_REQUEST), MOOV_DATA) == h(
        req_mac
    )
    assert _retail_mac(tdes_dukpt.working_key(tk, TdesKeyUsage.MAC_RESPONSE), MOOV_DATA) == h(
        res_mac
    )


# --- originating (device) side ------------------------------------------------------


def test_device_produces_annex_a_initial_sequence() -> None:
    device = TdesDukptDevice(IPEK, IKSN)
    for ksn, key, pin_block in INITIAL_SEQUENCE:
        assert device.next_ksn == h(ksn)
        tx = device.next_transaction()
        assert tx.ksn == h(ksn)
        assert tx.transaction_key == h(key)
        assert encrypt_pin_block_tdes(tx.pin_key, CLEAR_PIN_BLOCK) == h(pin_block)


def test_device_from_bdk_matches_host() -> None:
    device = TdesDukptDevice.from_bdk(BDK, IKSN)
    for ksn, pin_key, mac_key, data_key in WORKING_KEYS:
        tx = device.next_transaction()
        assert tx.ksn == h(ksn)
        assert tx.counter == tdes_dukpt.ksn_counter(h(ksn))
        assert tx.pin_key == h(pin_key)
        assert tx.working_key(TdesKeyUsage.MAC_REQUEST) == h(mac_key)
        assert tx.working_key(TdesKeyUsage.DATA_REQUEST) == h(data_key)


def test_device_skips_counters_with_ten_one_bits_like_annex_a_rollover() -> None:
    device = TdesDukptDevice.resume(IPEK, h(ROLLOVER_SEQUENCE[0][0]))
    for ksn, key, pin_block in ROLLOVER_SEQUENCE:
        tx = device.next_transaction()
        assert tx.ksn == h(ksn)
        assert tx.transaction_key == h(key)
        assert encrypt_pin_block_tdes(tx.pin_key, CLEAR_PIN_BLOCK) == h(pin_block)


def test_device_refuses_once_21_bit_counter_is_exhausted() -> None:
    # 0x1FF800 (bits 11-20) is the last counter with at most ten one-bits.
    last = tdes_dukpt.ksn_with_counter(IKSN, 0x1FF800)
    device = TdesDukptDevice.resume(IPEK, last)
    tx = device.next_transaction()
    assert tx.ksn == last
    assert tx.transaction_key == tdes_dukpt.derive_transaction_key(BDK, last)
    assert device.exhausted
    assert device.next_ksn is None
    with pytest.raises(DukptExhaustedError, match="21-bit transaction counter is exhausted"):
        device.next_transaction()


def test_transaction_repr_hides_keys() -> None:
    tx = TdesDukptDevice(IPEK, IKSN).next_transaction()
    assert tx.transaction_key.hex() not in repr(tx).lower()
    assert "transaction_key" not in repr(tx)


# --- register algorithm on a small counter ------------------------------------------


def test_register_walk_visits_every_allowed_counter_in_order() -> None:
    """The register engine on an 8-bit counter with at most 3 one-bits: it must visit
    exactly the allowed counters in increasing order, each with the key a receiver
    derives directly, then refuse."""
    rules = CounterRules("toy", 8, 3)

    def child(parent: bytes, counter: int) -> bytes:
        return DES.new(parent, DES.MODE_ECB).encrypt(counter.to_bytes(8, "big"))

    root = bytes(range(8))
    registers = FutureKeyRegisters(root, 1, child, rules)
    seen = []
    while not registers.exhausted:
        counter, key = registers.take()
        assert key == walk(root, counter, child, 8)
        seen.append(counter)
    assert seen == [c for c in range(1, 256) if c.bit_count() <= 3]
    with pytest.raises(DukptExhaustedError):
        registers.take()


# --- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize("ksn", [b"", bytes(9), bytes(11)])
def test_wrong_ksn_length(ksn: bytes) -> None:
    with pytest.raises(DukptError, match="KSN must be 10 bytes long"):
        tdes_dukpt.derive_transaction_key(BDK, ksn)


@pytest.mark.parametrize("bdk", [bytes(8), bytes(24), bytes(15)])
def test_wrong_bdk_length(bdk: bytes) -> None:
    with pytest.raises(KeyCheckError, match="BDK must be 16 bytes long"):
        tdes_dukpt.derive_ipek(bdk, IKSN)


def test_wrong_ipek_length() -> None:
    with pytest.raises(KeyCheckError, match="IPEK must be 16 bytes long"):
        TdesDukptDevice(bytes(24), IKSN)


def test_host_rejects_counter_zero_and_too_many_one_bits() -> None:
    with pytest.raises(DukptError, match="outside 1..2097151"):
        tdes_dukpt.derive_transaction_key(BDK, IKSN)
    eleven_ones = tdes_dukpt.ksn_with_counter(IKSN, 0b111_1111_1111)
    with pytest.raises(DukptError, match="11 one-bits"):
        tdes_dukpt.derive_transaction_key(BDK, eleven_ones)


def test_device_wants_a_zero_counter_initial_ksn() -> None:
    with pytest.raises(DukptError, match="zero transaction counter"):
        TdesDukptDevice(IPEK, h("FFFF9876543210E00001"))


def test_errors_never_carry_key_material() -> None:
    secret = bytes.fromhex("00112233445566778899AABBCCDDEEFF")[:15]
    with pytest.raises(KeyCheckError) as info:
        tdes_dukpt.derive_ipek(secret, IKSN)
    assert secret.hex() not in str(info.value).lower()
