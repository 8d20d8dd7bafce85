"""PIN translation (DUKPT -> ZPK) through the soft HSM against the raw TDES it needs.

Ceiling, measured in the same run: the two TDES block operations every translation
performs (decipher under the DUKPT PIN key, encipher under the ZPK), with the same
pycryptodome calls and nothing else. The ratio says how much of the time goes to DUKPT
key derivation, PIN block checks, key lookup and the interface around the cipher.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from Crypto.Cipher import DES3

from branchline.common.paycrypto import encode_format0, encrypt_pin_block_tdes, tdes_dukpt
from branchline.server.hsm import Algorithm, KeyType, MasterKey, SoftHsm

PAN = "4012345678909"
# KSNs of one PIN pad over its first 256 transactions: a realistic mix of counter bits.
BASE_KSN = bytes.fromhex("FFFF9876543210E00000")
MIN_SECONDS = 1.0


def _rate(step: Callable[[int], object], count: int) -> float:
    """Calls per second of ``step`` over at least MIN_SECONDS (whole passes of ``count``)."""
    calls = 0
    started = time.perf_counter()
    while True:
        for i in range(count):
            step(i)
        calls += count
        elapsed = time.perf_counter() - started
        if elapsed >= MIN_SECONDS:
            return calls / elapsed


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bl-bench-hsm-") as folder:
        hsm = SoftHsm.open(Path(folder) / "keystore.json", MasterKey(os.urandom(32)))
        hsm.create_key("bdk", KeyType.BDK, Algorithm.TDES)
        hsm.create_key("zpk", KeyType.ZPK, Algorithm.TDES)
        bdk = hsm.keystore.records()["bdk"].value
        zpk = hsm.keystore.records()["zpk"].value
        ksns = [tdes_dukpt.ksn_with_counter(BASE_KSN, c) for c in range(1, 257)]
        pin_keys = [tdes_dukpt.derive_working_key(bdk, k) for k in ksns]
        blocks = [encrypt_pin_block_tdes(key, encode_format0("1234", PAN)) for key in pin_keys]

        def translate(i: int) -> object:
            return hsm.translate_pin_dukpt_to_zpk("bdk", ksns[i], blocks[i], PAN, "zpk")

        def raw(i: int) -> object:
            clear = DES3.new(pin_keys[i], DES3.MODE_ECB).decrypt(blocks[i])
            return DES3.new(zpk, DES3.MODE_ECB).encrypt(clear)

        translations = _rate(translate, len(ksns))
        raw_pairs = _rate(raw, len(ksns))
    return {
        "translations_per_s": translations,
        "raw_tdes_pairs_per_s": raw_pairs,
        "translation_to_raw_ratio": translations / raw_pairs,
    }


if __name__ == "__main__":
    figures = run()
    for name, value in figures.items():
        print(f"{name:32} {value:14.4f}")
    print(
        f"one translation costs {1 / figures['translation_to_raw_ratio']:.1f}x the two raw "
        "TDES operations it needs (DUKPT derivation, PIN block checks, key lookup)"
    )
