"""The ``payshield`` HSM backend: a client of the Thales payShield host-command protocol.

The codec it speaks (framing, command layouts, error codes) is
``branchline.common.hsm.payshield``, shared with the simulated payShield.
"""

from __future__ import annotations

from .client import PayShieldHsm

__all__ = ["PayShieldHsm"]
