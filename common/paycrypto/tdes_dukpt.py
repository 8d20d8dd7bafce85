"""ANSI X9.24-1:2009 TDES DUKPT (Derived Unique Key Per Transaction).

Originating side (PIN pad): :class:`TdesDukptDevice` keeps the 21 future-key registers,
hands out one transaction key per transaction and skips counters with more than ten
one-bits. Receiving side (host / HSM): :func:`derive_transaction_key` derives the same
key directly from the BDK and the KSN, and :func:`working_key` applies the PIN, MAC and
data variants.

Keys are double-length (16 bytes). A KSN is 10 bytes; its rightmost 21 bits are the
transaction counter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ._des import tdes_encrypt
from ._keys import require_key, xor
from ._ladder import CounterRules, DeriveChild, FutureKeyRegisters, walk
from .errors import DukptError

KSN_LENGTH = 10
KEY_LENGTH = 16
COUNTER_BITS = 21
MAX_ONE_BITS = 10

_COUNTER_MASK = (1 << COUNTER_BITS) - 1
_RULES = CounterRules("TDES DUKPT", COUNTER_BITS, MAX_ONE_BITS)
# X9.24-1 key-derivation mask for the right half of the IPEK and for the NRKGP.
_KEY_MASK = bytes.fromhex("C0C0C0C000000000C0C0C0C000000000")


class TdesKeyUsage(Enum):
    """Working-key variants of X9.24-1:2009 (XOR masks over the transaction key)."""

    PIN_ENCRYPTION = bytes.fromhex("00000000000000FF00000000000000FF")
    MAC_REQUEST = bytes.fromhex("000000000000FF00000000000000FF00")
    MAC_RESPONSE = bytes.fromhex("00000000FF00000000000000FF000000")
    DATA_REQUEST = bytes.fromhex("0000000000FF00000000000000FF0000")
    DATA_RESPONSE = bytes.fromhex("000000FF00000000000000FF00000000")


_DATA_USAGES = (TdesKeyUsage.DATA_REQUEST, TdesKeyUsage.DATA_RESPONSE)


def _require_ksn(ksn: object) -> bytes:
    if not isinstance(ksn, bytes | bytearray | memoryview):
        raise DukptError(f"TDES DUKPT: KSN must be bytes, got {type(ksn).__name__}")
    data = bytes(ksn)
    if len(data) != KSN_LENGTH:
        raise DukptError(f"TDES DUKPT: KSN must be {KSN_LENGTH} bytes long, got {len(data)}")
    return data


def ksn_counter(ksn: bytes) -> int:
    """The 21-bit transaction counter of a 10-byte KSN."""
    return int.from_bytes(_require_ksn(ksn), "big") & _COUNTER_MASK


def ksn_with_counter(ksn: bytes, counter: int) -> bytes:
    """``ksn`` with its transaction counter replaced by ``counter``."""
    if not 0 <= counter <= _COUNTER_MASK:
        raise DukptError(f"TDES DUKPT: counter {counter} does not fit in {COUNTER_BITS} bits")
    value = int.from_bytes(_require_ksn(ksn), "big") & ~_COUNTER_MASK
    return (value | counter).to_bytes(KSN_LENGTH, "big")


def derive_ipek(bdk: bytes, ksn: bytes) -> bytes:
    """Initial PIN encryption key for the device identified by ``ksn`` (counter ignored)."""
    bdk = require_key(bdk, (KEY_LENGTH,), "TDES DUKPT BDK")
    # The leftmost 64 bits of the KSN with the counter cleared identify the device.
    ksn_left = ksn_with_counter(ksn, 0)[:8]
    left = tdes_encrypt(bdk, ksn_left, "TDES DUKPT BDK")
    right = tdes_encrypt(xor(bdk, _KEY_MASK), ksn_left, "TDES DUKPT BDK")
    return left + right


def _nrkgp(key: bytes, register: bytes) -> bytes:
    # X9.24-1 non-reversible key generation process: each half is
    # E(key_left, register XOR key_right) XOR key_right, the left half under the masked key.
    def half(k: bytes) -> bytes:
        return xor(tdes_encrypt(k[:8], xor(register, k[8:])), k[8:])

    return half(xor(key, _KEY_MASK)) + half(key)


def _child_deriver(ksn: bytes) -> DeriveChild:
    ksn_right = int.from_bytes(ksn_with_counter(ksn, 0)[2:], "big")

    def derive_child(parent: bytes, child_counter: int) -> bytes:
        return _nrkgp(parent, (ksn_right | child_counter).to_bytes(8, "big"))

    return derive_child


def transaction_key_from_ipek(ipek: bytes, ksn: bytes) -> bytes:
    """Receiving side: the transaction key (future key) for ``ksn``, from its IPEK."""
    ipek = require_key(ipek, (KEY_LENGTH,), "TDES DUKPT IPEK")
    ksn = _require_ksn(ksn)
    counter = ksn_counter(ksn)
    _RULES.check(counter)
    derive_child = _child_deriver(ksn)
    return walk(ipek, counter, derive_child, COUNTER_BITS)


def derive_transaction_key(bdk: bytes, ksn: bytes) -> bytes:
    """Receiving side: the transaction key for ``ksn``, straight from the BDK."""
    return transaction_key_from_ipek(derive_ipek(bdk, ksn), ksn)


def working_key(transaction_key: bytes, usage: TdesKeyUsage = TdesKeyUsage.PIN_ENCRYPTION) -> bytes:
    """Apply the X9.24-1:2009 variant for ``usage`` to a transaction key.

    Data keys additionally pass each variant half through TDES under the variant key
    itself, the one-way step X9.24-1:2009 adds for data encryption keys.
    """
    transaction_key = require_key(transaction_key, (KEY_LENGTH,), "TDES DUKPT transaction key")
    variant = xor(transaction_key, usage.value)
    if usage in _DATA_USAGES:
        return tdes_encrypt(variant, variant, "TDES DUKPT data key")
    return variant


def derive_working_key(
    bdk: bytes, ksn: bytes, usage: TdesKeyUsage = TdesKeyUsage.PIN_ENCRYPTION
) -> bytes:
    """Receiving side: BDK + KSN -> PIN (default), MAC or data key for that transaction."""
    return working_key(derive_transaction_key(bdk, ksn), usage)


@dataclass(frozen=True)
class TdesTransaction:
    """One transaction's KSN and key on the originating side (keys kept out of repr)."""

    ksn: bytes
    transaction_key: bytes = field(repr=False)

    @property
    def counter(self) -> int:
        return ksn_counter(self.ksn)

    @property
    def pin_key(self) -> bytes:
        return working_key(self.transaction_key, TdesKeyUsage.PIN_ENCRYPTION)

    def working_key(self, usage: TdesKeyUsage) -> bytes:
        return working_key(self.transaction_key, usage)


class TdesDukptDevice:
    """Originating (PIN pad) side of X9.24-1 DUKPT.

    Loading the IPEK fills the 21 future-key registers and the IPEK itself is not kept.
    Each :meth:`next_transaction` uses (and erases) one register, so keys of past
    transactions cannot be recovered from the device state. Not thread-safe: keep one
    object per PIN pad and call it from one task.
    """

    def __init__(self, ipek: bytes, initial_ksn: bytes) -> None:
        if ksn_counter(initial_ksn) != 0:
            raise DukptError(
                "TDES DUKPT: the initial KSN must have a zero transaction counter "
                "(use TdesDukptDevice.resume to continue from a later counter)"
            )
        self._init(ipek, initial_ksn, 1)

    @classmethod
    def from_bdk(cls, bdk: bytes, initial_ksn: bytes) -> TdesDukptDevice:
        """Key-injection convenience: derive the IPEK and load it."""
        return cls(derive_ipek(bdk, initial_ksn), initial_ksn)

    @classmethod
    def resume(cls, ipek: bytes, next_ksn: bytes) -> TdesDukptDevice:
        """Rebuild the register state a device has when ``next_ksn`` is its next KSN.

        For simulators and tests that restart mid-sequence; a real device never keeps
        the IPEK, and neither does this object once the registers are filled.
        """
        device = cls.__new__(cls)
        device._init(ipek, next_ksn, ksn_counter(next_ksn))
        return device

    def _init(self, ipek: bytes, ksn: bytes, counter: int) -> None:
        ipek = require_key(ipek, (KEY_LENGTH,), "TDES DUKPT IPEK")
        self._ksn = _require_ksn(ksn)
        derive_child = _child_deriver(self._ksn)
        self._registers = FutureKeyRegisters(ipek, counter, derive_child, _RULES)

    @property
    def exhausted(self) -> bool:
        """True once the 21-bit counter has run out; the device needs a new IPEK."""
        return self._registers.exhausted

    @property
    def next_ksn(self) -> bytes | None:
        """KSN the next transaction will carry, or ``None`` when exhausted."""
        if self.exhausted:
            return None
        return ksn_with_counter(self._ksn, self._registers.counter)

    def next_transaction(self) -> TdesTransaction:
        """KSN and transaction key for the next transaction; raises once exhausted."""
        counter, key = self._registers.take()
        return TdesTransaction(ksn_with_counter(self._ksn, counter), key)
