"""The bank desk's PIN pad at card enrolment, simulated: it turns the PIN a customer would
type into the DUKPT PIN block a real pad sends, for ``branchline-server cards enroll
--pin-block``. Demo and test tooling only: production enrolment never sees a clear PIN.

The pad is keyed like the terminal's (an initial key the HSM derives from the BDK for the
pad's KSN, ``branchline-hsm derive-initial-key``); its first transaction's block and KSN
are what the enrolment command takes.

    python -m branchline.sim.enrol_pin_pad --initial-key HEX --pin 1234 --pan -
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

from branchline.common import paycrypto

# The desk pad's KSN (TDES DUKPT, counter 0): another device than any terminal's pad.
ENROL_KSN = "FFFF9876543211E00000"


@dataclass(frozen=True)
class EnrolmentBlock:
    pin_block: str  # hex, ISO format 0 under the transaction's DUKPT PIN key
    ksn: str  # hex, the transaction's KSN

    def cli_args(self, bdk: str = "BDK", zpk: str = "ZPK") -> list[str]:
        """The ``cards enroll`` arguments that carry this block."""
        return ["--pin-block", self.pin_block, "--ksn", self.ksn, "--bdk", bdk, "--zpk", zpk]


def enrolment_block(initial_key: str, pin: str, pan: str, ksn: str = ENROL_KSN) -> EnrolmentBlock:
    """The block the desk pad keyed with ``initial_key`` (hex IPEK for ``ksn``) sends for
    ``pin`` typed against ``pan``."""
    device = paycrypto.TdesDukptDevice(bytes.fromhex(initial_key), bytes.fromhex(ksn))
    transaction = device.next_transaction()
    clear = paycrypto.encode_format0(pin, pan)
    block = paycrypto.encrypt_pin_block_tdes(transaction.pin_key, clear)
    return EnrolmentBlock(block.hex().upper(), transaction.ksn.hex().upper())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m branchline.sim.enrol_pin_pad")
    parser.add_argument("--initial-key", required=True, help="the pad's IPEK (hex)")
    parser.add_argument("--ksn", default=ENROL_KSN, help="the pad's initial KSN (hex)")
    parser.add_argument("--pin", required=True, help="the PIN the customer types (test data)")
    parser.add_argument("--pan", required=True, help="card number, or - to read it from stdin")
    args = parser.parse_args(argv)
    pan = args.pan if args.pan != "-" else sys.stdin.readline().strip()
    try:
        out = enrolment_block(args.initial_key, args.pin, pan, args.ksn)
    except ValueError as exc:  # paycrypto errors are ValueErrors
        print(f"enrol_pin_pad: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"pin_block": out.pin_block, "ksn": out.ksn}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
