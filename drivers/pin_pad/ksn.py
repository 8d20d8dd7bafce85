"""KSN transaction counters: what a technician sees as "KSN counter" (counter and how many PIN
blocks the loaded key has left).

DUKPT devices only use counters with at most ten (TDES, 21-bit counter) or sixteen (AES,
32-bit counter) one-bits, so "remaining" counts those, not the plain difference to the top.
"""

from __future__ import annotations

from math import comb

from branchline.common.paycrypto import aes_dukpt, tdes_dukpt
from branchline.drivers.pin_pad.protocol import Algorithm

_RULES = {
    Algorithm.TDES: (tdes_dukpt.COUNTER_BITS, tdes_dukpt.MAX_ONE_BITS),
    Algorithm.AES: (aes_dukpt.COUNTER_BITS, aes_dukpt.MAX_ONE_BITS),
}


def ksn_counter(algorithm: Algorithm, ksn: bytes) -> int:
    if algorithm is Algorithm.TDES:
        return tdes_dukpt.ksn_counter(ksn)
    return aes_dukpt.ksn_counter(ksn)


def _count_below(limit: int, bits: int, max_ones: int) -> int:
    """How many x in [0, limit) have at most ``max_ones`` one-bits (limit <= 2**bits)."""
    total = 0
    ones = 0
    for bit in reversed(range(bits + 1)):
        if limit >> bit & 1:
            # x shares limit's bits above ``bit`` and has 0 here: the lower bits are free.
            free_ones = max_ones - ones
            if free_ones >= 0:
                total += sum(comb(bit, k) for k in range(min(bit, free_ones) + 1))
            ones += 1
    return total


def remaining(algorithm: Algorithm, next_counter: int) -> int:
    """PIN blocks left when ``next_counter`` is the counter of the next one."""
    bits, max_ones = _RULES[algorithm]
    top = 1 << bits
    if next_counter >= top:
        return 0
    start = max(1, next_counter)
    return _count_below(top, bits, max_ones) - _count_below(start, bits, max_ones)


def last_counter(algorithm: Algorithm) -> int:
    """The highest counter a device ever uses: the top ``max_ones`` bits set."""
    bits, max_ones = _RULES[algorithm]
    return ((1 << max_ones) - 1) << (bits - max_ones)


def ksn_with_counter(algorithm: Algorithm, ksn: bytes, counter: int) -> bytes:
    if algorithm is Algorithm.TDES:
        return tdes_dukpt.ksn_with_counter(ksn, counter)
    return aes_dukpt.make_ksn(aes_dukpt.ksn_initial_key_id(ksn), counter)
