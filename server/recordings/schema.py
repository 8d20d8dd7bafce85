"""Tables of recordings, on the server's one metadata (migration ``0009_recordings``).

A recording is stored once per content (``sha256``); ``recordings`` indexes it by the
transaction it belongs to. ``recording_uploads`` holds uploads in progress (the bytes are in
the store's ``uploads/`` folder, whose length is the resume offset), ``recording_audit``
every viewing, hold and deletion.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, String, Table, Text

from branchline.server.storage.schema import UtcDateTime, metadata

ID = 64
SERIAL = BigInteger().with_variant(Integer(), "sqlite")

recordings = Table(
    "recordings",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("txn_ref", String(ID), nullable=False),
    # tube, call, cheque
    Column("kind", String(16), nullable=False),
    Column("recording_id", String(ID), nullable=False),
    # kiosk, backoffice, teller
    Column("source", String(16), nullable=False),
    Column("terminal_id", String(128), nullable=False),
    # Who may watch it at a terminal ("" for nobody but staff).
    Column("customer_id", String(ID), nullable=False),
    Column("media_type", String(32), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("duration_seconds", Float, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("ended_at", UtcDateTime, nullable=True),
    Column("stored_at", UtcDateTime, nullable=False),
    Column("legal_hold", Boolean, nullable=False),
    Column("hold_reason", Text, nullable=False),
)
Index("ix_recordings_txn_ref", recordings.c.txn_ref)
Index("ix_recordings_stored_at", recordings.c.stored_at)

recording_uploads = Table(
    "recording_uploads",
    metadata,
    Column("upload_id", String(ID), primary_key=True),
    # One upload in progress per content: a second Begin of it resumes this one.
    Column("sha256", String(64), nullable=False, unique=True),
    Column("size", BigInteger, nullable=False),
    Column("txn_ref", String(ID), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("recording_id", String(ID), nullable=False),
    Column("source", String(16), nullable=False),
    Column("terminal_id", String(128), nullable=False),
    Column("customer_id", String(ID), nullable=False),
    Column("media_type", String(32), nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("ended_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)

recording_audit = Table(
    "recording_audit",
    metadata,
    Column("audit_id", SERIAL, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    # "teller t-1", "terminal T1 customer C-1", "retention"
    Column("actor", String(200), nullable=False),
    # viewed, listed, deleted, hold, release, stored
    Column("action", String(16), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("txn_ref", String(ID), nullable=False),
    Column("detail", Text, nullable=False),
)
Index("ix_recording_audit_sha256", recording_audit.c.sha256)
