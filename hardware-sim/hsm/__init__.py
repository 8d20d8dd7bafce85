"""A simulated Thales payShield HSM (host commands over TCP) for development and CI.

Run it with ``python -m branchline.sim.hsm --listen 127.0.0.1:0 --keystore FILE``; the
``payshield`` HSM backend talks to it exactly as to a real payShield, apart from the key
references documented in :mod:`branchline.common.hsm.payshield.wire`.
"""

from __future__ import annotations

from .emulation import PayShieldEmulation
from .server import PayShieldServer

__all__ = ["PayShieldEmulation", "PayShieldServer"]
