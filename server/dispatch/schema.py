"""Tables of the dispatch core, on the server's one metadata.

Migration ``0002_dispatch`` creates them; the schema/migration parity test compares both.
Every state a task or a teller is in lives here, so a restarted server (or another replica
sharing the PostgreSQL database) carries on exactly where the last one stopped.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from branchline.server.storage.schema import UtcDateTime, metadata

ID = 64

branches = Table(
    "branches",
    metadata,
    Column("branch_id", String(ID), primary_key=True),
    Column("name", String(200), nullable=False),
    # None: the server's --routing-strategy.
    Column("routing_strategy", String(32), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)

tellers = Table(
    "tellers",
    metadata,
    Column("teller_id", String(ID), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("branch_id", String(ID), ForeignKey("branches.branch_id"), nullable=False),
    Column("on_duty", Boolean, nullable=False),
    # Set by the teller (a break) or by a missed offer; an away teller gets no offers.
    Column("away", Boolean, nullable=False),
    # Tasks the teller holds (offered, waiting, accepted). Kept on the row so that
    # "offer only to a free teller" is one conditional UPDATE, safe across replicas.
    Column("load", Integer, nullable=False),
    # When the teller last became free: the key of the longest-idle strategy.
    Column("idle_since", UtcDateTime, nullable=False),
    Column("handled", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
Index(
    "ix_tellers_branch_id_on_duty_load_idle_since",
    tellers.c.branch_id,
    tellers.c.on_duty,
    tellers.c.load,
    tellers.c.idle_since,
)

teller_skills = Table(
    "teller_skills",
    metadata,
    Column(
        "teller_id",
        String(ID),
        ForeignKey("tellers.teller_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("skill", String(ID), primary_key=True),
)
Index("ix_teller_skills_skill_teller_id", teller_skills.c.skill, teller_skills.c.teller_id)

lobby_managers = Table(
    "lobby_managers",
    metadata,
    Column("manager_id", String(ID), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("branch_id", String(ID), ForeignKey("branches.branch_id"), nullable=False),
    Column("on_duty", Boolean, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
Index("ix_lobby_managers_branch_id", lobby_managers.c.branch_id)

tasks = Table(
    "tasks",
    metadata,
    Column("task_id", String(ID), primary_key=True),
    # The origin's idempotency key: a repeated SendTask returns the first task.
    Column("request_id", String(128), nullable=False),
    Column("origin_terminal", String(128), nullable=False),
    Column("origin_branch", String(128), nullable=False),
    Column("target_branch", String(ID), ForeignKey("branches.branch_id"), nullable=False),
    Column("business_type", String(ID), nullable=False),
    Column("title", String(200), nullable=False),
    # JSON object of string to string: the business data the counter collected.
    Column("fields", Text, nullable=False),
    Column("note", Text, nullable=False),
    Column("customer_ref", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    # The teller holding the task (offered, waiting, accepted), then the one who finished it.
    Column("teller_id", String(ID), nullable=True),
    Column("offer_id", BigInteger().with_variant(Integer(), "sqlite"), nullable=True),
    Column("offer_expires_at", UtcDateTime, nullable=True),
    Column("lobby_manager_id", String(ID), nullable=True),
    Column("wait_estimate_seconds", Integer, nullable=True),
    Column("result_outcome", String(16), nullable=True),
    Column("result_reason", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("origin_terminal", "request_id"),
)
# The branch queue per business type (oldest first: a free teller's next task), a
# teller's tasks, an origin's tasks, the expiry sweep. The queue index ends with the
# tie-break of the queue order (created_at, task_id), so the head of a queue is its first
# entry: no sort of the queue (migration 0007).
Index(
    "ix_tasks_target_branch_business_type_state_created_at_task_id",
    tasks.c.target_branch,
    tasks.c.business_type,
    tasks.c.state,
    tasks.c.created_at,
    tasks.c.task_id,
)
Index("ix_tasks_teller_id_state", tasks.c.teller_id, tasks.c.state)
Index("ix_tasks_origin_terminal_created_at", tasks.c.origin_terminal, tasks.c.created_at)
Index("ix_tasks_state_offer_expires_at", tasks.c.state, tasks.c.offer_expires_at)

# Every offer ever made: who was asked, how they answered. Routing never offers a task
# again to a teller who rejected it or let the offer expire.
task_offers = Table(
    "task_offers",
    metadata,
    Column(
        "offer_id",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("task_id", String(ID), ForeignKey("tasks.task_id"), nullable=False),
    Column("teller_id", String(ID), nullable=False),
    # routing, designated, reassigned
    Column("via", String(16), nullable=False),
    # The principal who designated or reassigned ("" for routing).
    Column("offered_by", String(200), nullable=False),
    Column("offered_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    # None while open; then waiting, accepted, rejected, expired, withdrawn.
    Column("answer", String(16), nullable=True),
    Column("answered_at", UtcDateTime, nullable=True),
    Column("reason", Text, nullable=False),
    sqlite_autoincrement=True,
)
Index("ix_task_offers_task_id_teller_id", task_offers.c.task_id, task_offers.c.teller_id)

# Content-addressed: a photo uploaded for ten tasks is stored once.
material_blobs = Table(
    "material_blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

task_materials = Table(
    "task_materials",
    metadata,
    Column("task_id", String(ID), ForeignKey("tasks.task_id"), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("content_type", String(100), nullable=False),
    # No foreign key to material_blobs: the retention deletes a blob no task within its
    # retention refers to, and the task keeps the entry (migration 0013_material_audit).
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("uploaded_at", UtcDateTime, nullable=False),
    # When the retention deleted its bytes (None: still held).
    Column("deleted_at", UtcDateTime, nullable=True),
)
Index("ix_task_materials_sha256", task_materials.c.sha256)

# Every upload, read and retention deletion of a material, as recording_audit is for
# recordings: personal data, so who saw it stays in the database, not only in the logs.
material_audit = Table(
    "material_audit",
    metadata,
    Column(
        "audit_id",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("at", UtcDateTime, nullable=False),
    # "terminal MC-1", "teller T-1", "lobby manager L1", "operator ops", "retention"
    Column("actor", String(200), nullable=False),
    # uploaded, viewed, deleted
    Column("action", String(16), nullable=False),
    Column("task_id", String(ID), nullable=False),
    Column("name", String(200), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("detail", Text, nullable=False),
)
Index("ix_material_audit_task_id", material_audit.c.task_id)
Index("ix_material_audit_sha256", material_audit.c.sha256)

# Append-only: every state change of a task (and of a teller's duty or presence) with
# its time. Watch streams on every replica tail it by id; a client resumes after the last
# id it saw, so a server restart loses nothing.
dispatch_events = Table(
    "dispatch_events",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("task_id", String(ID), nullable=True),
    # The branch the event belongs to (a task's target branch): lobby managers watch it.
    Column("branch", String(ID), nullable=False),
    Column("origin_terminal", String(128), nullable=True),
    # The teller the event concerns (offered to, withdrawn from, ...): tellers watch it.
    Column("teller_id", String(ID), nullable=True),
    Column("kind", String(32), nullable=False),
    # The task's state after the event ("" for staff events).
    Column("state", String(16), nullable=False),
    Column("detail", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    sqlite_autoincrement=True,
)
Index("ix_dispatch_events_branch_id", dispatch_events.c.branch, dispatch_events.c.id)
Index("ix_dispatch_events_teller_id_id", dispatch_events.c.teller_id, dispatch_events.c.id)
Index(
    "ix_dispatch_events_origin_terminal_id",
    dispatch_events.c.origin_terminal,
    dispatch_events.c.id,
)
Index("ix_dispatch_events_task_id_id", dispatch_events.c.task_id, dispatch_events.c.id)
