"""Thales payShield host-command protocol: framing, command layouts, error codes, client."""

from __future__ import annotations

from .client import PayShieldHsm

__all__ = ["PayShieldHsm"]
