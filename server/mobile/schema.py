"""The table of phone pairings, on the server's one metadata (migration ``0009_mobile``).

One row per handle the server issued for a terminal's QR. Rows live in the database, not
in a replica, so any replica (and any gateway instance) can open, watch or cancel them.
The row of the handle a phone opened becomes that pairing: state ``paired`` with the
matching code and the hash of the phone's session token (the token itself is never
stored, nor ever sent to the terminal).
"""

from __future__ import annotations

from sqlalchemy import Column, Index, String, Table

from branchline.server.storage.schema import UtcDateTime, metadata

mobile_pairings = Table(
    "mobile_pairings",
    metadata,
    # Opaque and random (URL-safe): what the QR's URL carries.
    Column("handle", String(64), primary_key=True),
    # The typed alternative to scanning: short, unambiguous letters and digits.
    Column("short_code", String(16), nullable=False, unique=True),
    Column("terminal_id", String(128), nullable=False),
    Column("branch", String(128), nullable=False),
    # offered -> paired -> ended; offered -> superseded (another handle paired) / expired.
    Column("state", String(16), nullable=False),
    Column("issued_at", UtcDateTime, nullable=False),
    # The handle can no longer be opened after this.
    Column("expires_at", UtcDateTime, nullable=False),
    Column("paired_at", UtcDateTime, nullable=True),
    # Four digits, shown on the phone and on the terminal once paired.
    Column("matching_code", String(4), nullable=True),
    # SHA-256 (hex) of the phone's session token.
    Column("session_hash", String(64), nullable=True, unique=True),
    # The paired session ends by itself after this (renewed while the phone is active).
    Column("session_expires_at", UtcDateTime, nullable=True),
    Column("ended_at", UtcDateTime, nullable=True),
    # canceled_by_phone, canceled_by_terminal, timed_out, terminal_gone
    Column("end_reason", String(32), nullable=True),
)
# The rotation reads the newest handles of a terminal, and its live pairing.
Index(
    "ix_mobile_pairings_terminal_id_state_issued_at",
    mobile_pairings.c.terminal_id,
    mobile_pairings.c.state,
    mobile_pairings.c.issued_at,
)
