"""The bridge from a card's verification data to the HSM's verify command."""

from __future__ import annotations

from branchline.common.errors import InvalidArgument
from branchline.server.hsm import Hsm, HsmError, Ibm3624Record, PvvRecord
from branchline.server.ledger.cards import CardRecord
from branchline.server.ledger.pin_service import HsmFailure, HsmVerify

VISA_PVV = "visa_pvv"
IBM3624 = "ibm3624_offset"
METHODS = (VISA_PVV, IBM3624)
# Errors that describe the request, not the HSM: the PIN block does not decode, and so on.
REQUEST_ERRORS = {"pin_block_invalid", "invalid_account", "invalid_input", "ksn_invalid"}


def ibm_validation_data(pan: str) -> str:
    """IBM 3624 validation data: the 12 rightmost PAN digits before the check digit."""
    return pan[-13:-1]


def verification_record(card: CardRecord, pan: str) -> PvvRecord | Ibm3624Record:
    if card.verification_method == VISA_PVV:
        return PvvRecord(pvki=card.pvki, pvv=card.verification_value)
    if card.verification_method == IBM3624:
        return Ibm3624Record(
            offset=card.verification_value, validation_data=ibm_validation_data(pan)
        )
    raise HsmFailure(
        f"card {card.pan_masked}: unknown verification method {card.verification_method!r}"
    )


def hsm_pin_check(hsm: Hsm, bdk_name: str) -> HsmVerify:
    def check(
        card: CardRecord, pan: str, pin_block: bytes, ksn: bytes, pin_block_format: int
    ) -> bool:
        try:
            return hsm.verify_pin_dukpt(
                bdk_name, ksn, pin_block, pan, card.pvk_name, verification_record(card, pan)
            )
        except HsmError as exc:
            if exc.code in REQUEST_ERRORS:
                raise InvalidArgument(
                    "pin_verify.pin_block",
                    f"the HSM refused the request: {exc}",
                    reason="invalid_pin_block",
                ) from None
            raise HsmFailure(f"{exc.code}: {exc}") from None

    return check
