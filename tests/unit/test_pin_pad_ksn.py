"""KSN counter arithmetic behind the technician's "KSN counter" (counter, remaining)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from branchline.drivers.pin_pad import ksn
from branchline.drivers.pin_pad.protocol import Algorithm


def test_a_fresh_tdes_key_has_2_to_the_20_minus_1_pin_blocks() -> None:
    # Counters 1 .. 2**21-1 with at most ten one-bits: half of all 21-bit values, minus zero.
    assert ksn.remaining(Algorithm.TDES, 1) == 2**20 - 1
    assert ksn.remaining(Algorithm.TDES, 2) == 2**20 - 2
    assert ksn.last_counter(Algorithm.TDES) == 0x1FF800
    assert ksn.remaining(Algorithm.TDES, 0x1FF800) == 1
    assert ksn.remaining(Algorithm.TDES, 0x200000) == 0


def test_aes_last_counter_and_remaining() -> None:
    assert ksn.last_counter(Algorithm.AES) == 0xFFFF0000
    assert ksn.remaining(Algorithm.AES, 0xFFFF0000) == 1
    assert ksn.remaining(Algorithm.AES, 0xFFFF0001) == 0  # 17 one-bits: never used


@given(st.integers(0, 1 << 10), st.integers(1, 10), st.integers(0, 10))
def test_count_below_matches_brute_force(limit: int, bits: int, ones: int) -> None:
    limit = min(limit, 1 << bits)
    expected = sum(1 for x in range(limit) if x.bit_count() <= ones)
    assert ksn._count_below(limit, bits, ones) == expected


def test_ksn_with_counter_keeps_the_key_id() -> None:
    tdes = bytes.fromhex("FFFF9876543210E00000")
    assert ksn.ksn_with_counter(Algorithm.TDES, tdes, 5).hex().upper() == "FFFF9876543210E00005"
    aes = bytes.fromhex("123456789012345600000000")
    assert ksn.ksn_counter(Algorithm.AES, ksn.ksn_with_counter(Algorithm.AES, aes, 7)) == 7
