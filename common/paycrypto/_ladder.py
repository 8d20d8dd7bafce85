"""The counter and future-key-register walk shared by TDES and AES DUKPT.

Both ANSI X9.24-1 (TDES) and X9.24-3 (AES) derive the key for counter ``c`` by starting
at the initial key and, for every set bit of ``c`` from the most significant down,
deriving a child key for the counter prefix ending in that bit. Only the child
derivation differs (the TDES non-reversible key generation process versus AES
derivation data), so it is passed in as ``derive_child(parent_key, child_counter)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import DukptError, DukptExhaustedError

DeriveChild = Callable[[bytes, int], bytes]


@dataclass(frozen=True)
class CounterRules:
    """Width of the transaction counter and the most one-bits a usable counter may have."""

    name: str
    bits: int
    max_ones: int

    @property
    def limit(self) -> int:
        return 1 << self.bits

    def check(self, counter: int) -> None:
        """Raise ``DukptError`` unless ``counter`` is one a device could have used."""
        if not 0 < counter < self.limit:
            raise DukptError(
                f"{self.name}: transaction counter {counter} is outside 1..{self.limit - 1}"
            )
        ones = counter.bit_count()
        if ones > self.max_ones:
            raise DukptError(
                f"{self.name}: transaction counter {counter:#x} has {ones} one-bits; "
                f"the standard never uses counters with more than {self.max_ones}"
            )


def walk(initial_key: bytes, counter: int, derive_child: DeriveChild, bits: int) -> bytes:
    """Receiving side: derive the key for ``counter`` straight from the initial key."""
    key = initial_key
    prefix = 0
    for bit in reversed(range(bits)):
        mask = 1 << bit
        if counter & mask:
            prefix |= mask
            key = derive_child(key, prefix)
    return key


class FutureKeyRegisters:
    """Originating side: the register set an X9.24 device keeps between transactions.

    Register ``i`` holds the key for the current counter's bits above ``i`` with bit
    ``i`` set. The key for the current counter sits in the register of its lowest set
    bit; using it erases it, which is what makes past keys unrecoverable on the device.
    """

    def __init__(
        self, initial_key: bytes, counter: int, derive_child: DeriveChild, rules: CounterRules
    ) -> None:
        rules.check(counter)
        self._rules = rules
        self._derive_child = derive_child
        self._counter = counter
        self._registers: dict[int, bytes] = {}
        self._fill(initial_key)

    def _fill(self, initial_key: bytes) -> None:
        # One walk from the top bit down to the current counter's lowest set bit fills
        # every register that can still be used; set bits above it are already spent.
        low = (self._counter & -self._counter).bit_length() - 1
        key = initial_key
        prefix = 0
        for bit in reversed(range(low, self._rules.bits)):
            mask = 1 << bit
            if self._counter & mask:
                prefix |= mask
                key = self._derive_child(key, prefix)
            else:
                self._registers[bit] = self._derive_child(key, prefix | mask)
        self._registers[low] = key

    @property
    def counter(self) -> int:
        """Counter of the next transaction (``>= 2**bits`` once exhausted)."""
        return self._counter

    @property
    def exhausted(self) -> bool:
        return self._counter >= self._rules.limit

    def take(self) -> tuple[int, bytes]:
        """Return ``(counter, key)`` for the next transaction and move past it."""
        if self.exhausted:
            raise DukptExhaustedError(
                f"{self._rules.name}: the {self._rules.bits}-bit transaction counter is "
                "exhausted; load a new initial key"
            )
        counter = self._counter
        low_mask = counter & -counter
        low = low_mask.bit_length() - 1
        key = self._registers.pop(low)
        if counter.bit_count() < self._rules.max_ones:
            # Fill the registers below this bit from the key being used, then step by one.
            for bit in reversed(range(low)):
                self._registers[bit] = self._derive_child(key, counter | (1 << bit))
            self._counter = counter + 1
        else:
            # Every counter between here and the next carry has too many one-bits.
            self._counter = counter + low_mask
        if self.exhausted:
            self._registers.clear()
        return counter, key
