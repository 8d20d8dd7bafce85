"""The HSM tests' shared keys (tests/unit/hsm_fixtures.py) reproduce the published values."""

from __future__ import annotations

from branchline.common.paycrypto import aes_dukpt, tdes_dukpt
from tests.unit.hsm_fixtures import (
    A4_PAN,
    A4_PIN,
    A4_PIN_BLOCK,
    AES_BDK,
    AES_KSN,
    AES_PIN_KEY,
    TDES_BDK,
    TDES_KSN,
    TDES_PIN_KEY,
    tdes_block,
)


def test_fixture_pin_block_is_the_published_one() -> None:
    assert tdes_block(A4_PIN, A4_PAN) == A4_PIN_BLOCK
    assert tdes_dukpt.derive_working_key(TDES_BDK, TDES_KSN) == TDES_PIN_KEY
    assert aes_dukpt.derive_working_key(AES_BDK, AES_KSN) == AES_PIN_KEY
