"""The table of phone pairings, on the server's one metadata (migrations ``0009_mobile``,
``0011_phones``, ``0012_bench16_mobile_audit``).

One row per handle the server issued for a terminal's QR. Rows live in the database, not
in a replica, so any replica (and any gateway instance) can open, watch or cancel them.
The row of the handle a phone opened becomes that pairing: state ``paired`` with the
matching code and the hash of the phone's session token (the token itself is never
stored, nor ever sent to the terminal).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, UniqueConstraint

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

# Mobile-banking sign-in (authentication at the bank, migration ``0011_phones``): one row per
# customer enrolled. The password is kept as an argon2id hash, the TOTP secret (RFC 6238)
# as given at enrolment; failures count up to a lockout.
mobile_credentials = Table(
    "mobile_credentials",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("password_hash", String(255), nullable=False),
    # Base32, as authenticator apps take it.
    Column("totp_secret", String(128), nullable=False),
    Column("failed_attempts", Integer, nullable=False, default=0),
    Column("locked_until", UtcDateTime, nullable=True),
    # The last TOTP time step accepted: a code is never accepted twice.
    Column("last_totp_step", BigInteger, nullable=False, default=0),
)

# A pairing whose phone signed in at the bank: the customer its jobs act for.
mobile_logins = Table(
    "mobile_logins",
    metadata,
    Column("pairing_id", String(64), primary_key=True),
    Column("customer_id", String(64), nullable=False),
    Column("logged_in_at", UtcDateTime, nullable=False),
)

# The jobs phones filled in: validated, then forwarded to the paired terminal once.
mobile_jobs = Table(
    "mobile_jobs",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("pairing_id", String(64), nullable=False),
    Column("terminal_id", String(128), nullable=False),
    # Chosen by the phone: a repeat of (pairing, key) returns the same job.
    Column("idempotency_key", String(64), nullable=False),
    Column("service", String(32), nullable=False),
    Column("auth", String(16), nullable=False),
    # submitted, received, ready, authenticating, confirming, running, done, failed, canceled
    Column("state", String(16), nullable=False),
    Column("reason", String(64), nullable=False, default=""),
    # The validated job, as JSON (no secrets: the customer session is issued when pushed).
    Column("body", Text, nullable=False),
    # Signed in at the bank (auth bank) or bound by the card at the terminal.
    Column("customer_id", String(64), nullable=True),
    Column("receipt_reference", String(64), nullable=False, default=""),
    Column("queue_position", Integer, nullable=False, default=0),
    Column("result", Text, nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint(
        "pairing_id", "idempotency_key", name="uq_mobile_jobs_pairing_id_idempotency_key"
    ),
)
Index("ix_mobile_jobs_terminal_id_state", mobile_jobs.c.terminal_id, mobile_jobs.c.state)

# The bank's staff actions on mobile-banking enrolments (``branchline-server mobile``):
# enrol, reset, unlock. Never a password or TOTP secret, only what was done.
mobile_audit = Table(
    "mobile_audit",
    metadata,
    Column("audit_id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("actor", String(200), nullable=False),
    Column("action", String(32), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
)
Index("ix_mobile_audit_customer_id", mobile_audit.c.customer_id)
