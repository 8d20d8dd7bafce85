"""ANSI X9.24-3-2017 AES DUKPT.

Originating side (PIN pad): :class:`AesDukptDevice` keeps 32 intermediate derivation
key registers, skips counters with more than 16 one-bits and stops when the 32-bit
counter runs out. Receiving side (host / HSM): :func:`derive_transaction_key` and
:func:`derive_working_key` go straight from BDK + KSN to the same keys.

A KSN is 12 bytes: the 8-byte initial key ID (4-byte BDK ID + 4-byte derivation ID)
followed by the 32-bit transaction counter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, IntEnum

from Crypto.Cipher import AES

from ._keys import require_key
from ._ladder import CounterRules, DeriveChild, FutureKeyRegisters, walk
from .errors import DukptError

KSN_LENGTH = 12
INITIAL_KEY_ID_LENGTH = 8
COUNTER_BITS = 32
MAX_ONE_BITS = 16

_RULES = CounterRules("AES DUKPT", COUNTER_BITS, MAX_ONE_BITS)
_DERIVATION_DATA_VERSION = 0x01


class KeyUsage(IntEnum):
    """X9.24-3 key usage indicators (bytes 2-3 of the derivation data)."""

    KEY_ENCRYPTION_KEY = 0x0002
    PIN_ENCRYPTION = 0x1000
    MAC_GENERATION = 0x2000
    MAC_VERIFICATION = 0x2001
    MAC_BOTH = 0x2002
    DATA_ENCRYPT = 0x3000
    DATA_DECRYPT = 0x3001
    DATA_BOTH = 0x3002
    KEY_DERIVATION = 0x8000
    KEY_DERIVATION_INITIAL_KEY = 0x8001


class KeyType(Enum):
    """Key types with their X9.24-3 algorithm indicator and length in bits."""

    TDES2 = (0x0000, 128)
    TDES3 = (0x0001, 192)
    AES128 = (0x0002, 128)
    AES192 = (0x0003, 192)
    AES256 = (0x0004, 256)

    @property
    def algorithm(self) -> int:
        return self.value[0]

    @property
    def bits(self) -> int:
        return self.value[1]

    @property
    def length(self) -> int:
        return self.bits // 8

    @property
    def is_aes(self) -> bool:
        return self in (KeyType.AES128, KeyType.AES192, KeyType.AES256)


_AES_BY_LENGTH = {t.length: t for t in (KeyType.AES128, KeyType.AES192, KeyType.AES256)}


def _aes_key_type(key: bytes, what: str) -> KeyType:
    return _AES_BY_LENGTH[len(require_key(key, _AES_BY_LENGTH, what))]


def _require_bytes(value: object, length: int, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise DukptError(f"AES DUKPT: {what} must be bytes, got {type(value).__name__}")
    data = bytes(value)
    if len(data) != length:
        raise DukptError(f"AES DUKPT: {what} must be {length} bytes long, got {len(data)}")
    return data


def ksn_counter(ksn: bytes) -> int:
    """The 32-bit transaction counter of a 12-byte KSN."""
    return int.from_bytes(_require_bytes(ksn, KSN_LENGTH, "KSN")[8:], "big")


def ksn_initial_key_id(ksn: bytes) -> bytes:
    """The 8-byte initial key ID (BDK ID + derivation ID) of a 12-byte KSN."""
    return _require_bytes(ksn, KSN_LENGTH, "KSN")[:8]


def make_ksn(initial_key_id: bytes, counter: int) -> bytes:
    """Initial key ID followed by the big-endian 32-bit counter."""
    ikid = _require_bytes(initial_key_id, INITIAL_KEY_ID_LENGTH, "initial key ID")
    if not 0 <= counter < 1 << COUNTER_BITS:
        raise DukptError(f"AES DUKPT: counter {counter} does not fit in {COUNTER_BITS} bits")
    return ikid + counter.to_bytes(4, "big")


def derivation_data(usage: KeyUsage, key_type: KeyType, payload: bytes, block: int = 1) -> bytes:
    """The 16-byte X9.24-3 derivation data block.

    Layout: version (01), block counter, key usage (2 bytes), algorithm (2 bytes),
    length in bits (2 bytes), then 8 payload bytes: the initial key ID when deriving
    an initial key, otherwise the derivation ID (KSN bytes 4-7) and the counter.
    """
    payload = _require_bytes(payload, 8, "derivation data payload")
    if not 1 <= block <= 255:
        raise DukptError(f"AES DUKPT: derivation block counter {block} is outside 1..255")
    return (
        bytes((_DERIVATION_DATA_VERSION, block))
        + int(usage).to_bytes(2, "big")
        + key_type.algorithm.to_bytes(2, "big")
        + key_type.bits.to_bytes(2, "big")
        + payload
    )


def _derive(derivation_key: bytes, usage: KeyUsage, key_type: KeyType, payload: bytes) -> bytes:
    # Encrypt one derivation data block per 128 bits of output (block counter 1, 2, ...).
    cipher = AES.new(derivation_key, AES.MODE_ECB)
    blocks = -(-key_type.bits // 128)
    out = b"".join(
        cipher.encrypt(derivation_data(usage, key_type, payload, n)) for n in range(1, blocks + 1)
    )
    return out[: key_type.length]


def derive_initial_key(bdk: bytes, initial_key_id: bytes) -> bytes:
    """Initial key for the device with ``initial_key_id``; same AES size as the BDK."""
    key_type = _aes_key_type(bdk, "AES DUKPT BDK")
    ikid = _require_bytes(initial_key_id, INITIAL_KEY_ID_LENGTH, "initial key ID")
    return _derive(bytes(bdk), KeyUsage.KEY_DERIVATION_INITIAL_KEY, key_type, ikid)


def _child_deriver(initial_key_id: bytes, key_type: KeyType) -> DeriveChild:
    derivation_id = initial_key_id[4:]

    def derive_child(parent: bytes, child_counter: int) -> bytes:
        payload = derivation_id + child_counter.to_bytes(4, "big")
        return _derive(parent, KeyUsage.KEY_DERIVATION, key_type, payload)

    return derive_child


def transaction_key_from_initial_key(initial_key: bytes, ksn: bytes) -> bytes:
    """Receiving side: the intermediate derivation key for ``ksn``, from the initial key."""
    key_type = _aes_key_type(initial_key, "AES DUKPT initial key")
    counter = ksn_counter(ksn)
    _RULES.check(counter)
    derive_child = _child_deriver(ksn_initial_key_id(ksn), key_type)
    return walk(bytes(initial_key), counter, derive_child, COUNTER_BITS)


def derive_transaction_key(bdk: bytes, ksn: bytes) -> bytes:
    """Receiving side: the intermediate derivation key for ``ksn``, from the BDK."""
    return transaction_key_from_initial_key(derive_initial_key(bdk, ksn_initial_key_id(ksn)), ksn)


def working_key(
    transaction_key: bytes,
    ksn: bytes,
    usage: KeyUsage = KeyUsage.PIN_ENCRYPTION,
    key_type: KeyType | None = None,
) -> bytes:
    """Working key of ``usage`` and ``key_type`` (default: the derivation key's size)."""
    derivation_type = _aes_key_type(transaction_key, "AES DUKPT transaction key")
    key_type = key_type or derivation_type
    if key_type.is_aes and key_type.bits > derivation_type.bits:
        raise DukptError(
            f"AES DUKPT: {key_type.name} working keys cannot come from "
            f"{derivation_type.name} derivation keys"
        )
    if usage in (KeyUsage.KEY_DERIVATION, KeyUsage.KEY_DERIVATION_INITIAL_KEY):
        raise DukptError(f"AES DUKPT: {usage.name} is not a working-key usage")
    payload = ksn_initial_key_id(ksn)[4:] + ksn[8:]
    return _derive(bytes(transaction_key), usage, key_type, payload)


def derive_working_key(
    bdk: bytes,
    ksn: bytes,
    usage: KeyUsage = KeyUsage.PIN_ENCRYPTION,
    key_type: KeyType | None = None,
) -> bytes:
    """Receiving side: BDK + KSN -> PIN (default), MAC, data or KEK working key."""
    return working_key(derive_transaction_key(bdk, ksn), ksn, usage, key_type)


@dataclass(frozen=True)
class AesTransaction:
    """One transaction's KSN and derivation key on the originating side (keys out of repr)."""

    ksn: bytes
    transaction_key: bytes = field(repr=False)

    @property
    def counter(self) -> int:
        return ksn_counter(self.ksn)

    @property
    def pin_key(self) -> bytes:
        """PIN encryption key of the same AES size as the derivation key."""
        return working_key(self.transaction_key, self.ksn, KeyUsage.PIN_ENCRYPTION)

    def working_key(self, usage: KeyUsage, key_type: KeyType | None = None) -> bytes:
        return working_key(self.transaction_key, self.ksn, usage, key_type)


class AesDukptDevice:
    """Originating (PIN pad) side of X9.24-3 AES DUKPT.

    Loading the initial key fills the 32 intermediate derivation key registers and the
    initial key is not kept; each :meth:`next_transaction` uses and erases one register.
    Not thread-safe: keep one object per PIN pad and call it from one task.
    """

    def __init__(self, initial_key: bytes, initial_key_id: bytes) -> None:
        self._init(initial_key, make_ksn(initial_key_id, 1))

    @classmethod
    def from_bdk(cls, bdk: bytes, initial_key_id: bytes) -> AesDukptDevice:
        """Key-injection convenience: derive the initial key and load it."""
        return cls(derive_initial_key(bdk, initial_key_id), initial_key_id)

    @classmethod
    def resume(cls, initial_key: bytes, next_ksn: bytes) -> AesDukptDevice:
        """Rebuild the register state a device has when ``next_ksn`` is its next KSN.

        For simulators and tests that restart mid-sequence; the initial key is dropped
        as soon as the registers are filled.
        """
        device = cls.__new__(cls)
        device._init(initial_key, next_ksn)
        return device

    def _init(self, initial_key: bytes, ksn: bytes) -> None:
        key_type = _aes_key_type(initial_key, "AES DUKPT initial key")
        self._initial_key_id = ksn_initial_key_id(ksn)
        derive_child = _child_deriver(self._initial_key_id, key_type)
        self._registers = FutureKeyRegisters(
            bytes(initial_key), ksn_counter(ksn), derive_child, _RULES
        )

    @property
    def exhausted(self) -> bool:
        """True once the 32-bit counter has run out; the device needs a new initial key."""
        return self._registers.exhausted

    @property
    def next_ksn(self) -> bytes | None:
        """KSN the next transaction will carry, or ``None`` when exhausted."""
        if self.exhausted:
            return None
        return make_ksn(self._initial_key_id, self._registers.counter)

    def next_transaction(self) -> AesTransaction:
        """KSN and derivation key for the next transaction; raises once exhausted."""
        counter, key = self._registers.take()
        return AesTransaction(make_ksn(self._initial_key_id, counter), key)
