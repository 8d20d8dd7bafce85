"""Test fixtures for the HSM: a card's PVV and IBM 3624 offset from a clear PIN.

Only tests make verification values this way; production enrolment gives the HSM the desk
PIN pad's PIN block (``branchline-server cards enroll --pin-block``), and demos make that
block with the simulator's desk pad (``branchline.sim.enrol_pin_pad``).
"""

from __future__ import annotations

from branchline.common.hsm import pinverify, validate
from branchline.common.hsm.interface import (
    DEFAULT_DECIMALIZATION_TABLE,
    Ibm3624Record,
    PvvRecord,
)
from branchline.common.hsm.soft import SoftHsm


def enroll_pin_for_testing(
    hsm: SoftHsm,
    pvk_name: str,
    pan: str,
    pin: str,
    *,
    pvki: int = 1,
    validation_data: str | None = None,
    decimalization_table: str = DEFAULT_DECIMALIZATION_TABLE,
    pad: str = "F",
) -> tuple[PvvRecord, Ibm3624Record]:
    """PVV and IBM 3624 offset of ``pin`` under the soft HSM's PVK ``pvk_name``;
    ``validation_data`` defaults to the 12-digit account number field."""
    pvk = hsm._pvk(pvk_name)  # the fixture reads the key as only a test may
    data = validation_data or validate.account12(pan)
    pvv = pinverify.visa_pvv(pvk, pan, pvki, pin)
    offset = pinverify.ibm3624_offset(pvk, data, decimalization_table, pin, pad)
    return PvvRecord(pvki, pvv), Ibm3624Record(offset, data.upper(), decimalization_table, pad)
