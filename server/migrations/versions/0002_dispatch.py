"""Dispatch core: branches, tellers, lobby managers, tasks, offers, materials, events.

Revision ID: 0002_dispatch
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002_dispatch"
down_revision: str | None = "0001"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_ID = 64


def _big_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "branches",
        sa.Column("branch_id", sa.String(_ID), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("routing_strategy", sa.String(32), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("branch_id", name="pk_branches"),
    )
    op.create_table(
        "tellers",
        sa.Column("teller_id", sa.String(_ID), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("branch_id", sa.String(_ID), nullable=False),
        sa.Column("on_duty", sa.Boolean(), nullable=False),
        sa.Column("away", sa.Boolean(), nullable=False),
        sa.Column("load", sa.Integer(), nullable=False),
        sa.Column("idle_since", _time(), nullable=False),
        sa.Column("handled", sa.Integer(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("teller_id", name="pk_tellers"),
        sa.ForeignKeyConstraint(
            ["branch_id"], ["branches.branch_id"], name="fk_tellers_branch_id_branches"
        ),
    )
    op.create_index(
        "ix_tellers_branch_id_on_duty_load_idle_since",
        "tellers",
        ["branch_id", "on_duty", "load", "idle_since"],
    )
    op.create_table(
        "teller_skills",
        sa.Column("teller_id", sa.String(_ID), nullable=False),
        sa.Column("skill", sa.String(_ID), nullable=False),
        sa.PrimaryKeyConstraint("teller_id", "skill", name="pk_teller_skills"),
        sa.ForeignKeyConstraint(
            ["teller_id"],
            ["tellers.teller_id"],
            name="fk_teller_skills_teller_id_tellers",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_teller_skills_skill_teller_id", "teller_skills", ["skill", "teller_id"])
    op.create_table(
        "lobby_managers",
        sa.Column("manager_id", sa.String(_ID), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("branch_id", sa.String(_ID), nullable=False),
        sa.Column("on_duty", sa.Boolean(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("manager_id", name="pk_lobby_managers"),
        sa.ForeignKeyConstraint(
            ["branch_id"], ["branches.branch_id"], name="fk_lobby_managers_branch_id_branches"
        ),
    )
    op.create_index("ix_lobby_managers_branch_id", "lobby_managers", ["branch_id"])
    op.create_table(
        "tasks",
        sa.Column("task_id", sa.String(_ID), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("origin_terminal", sa.String(128), nullable=False),
        sa.Column("origin_branch", sa.String(128), nullable=False),
        sa.Column("target_branch", sa.String(_ID), nullable=False),
        sa.Column("business_type", sa.String(_ID), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("customer_ref", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("teller_id", sa.String(_ID), nullable=True),
        sa.Column("offer_id", _big_id(), nullable=True),
        sa.Column("offer_expires_at", _time(), nullable=True),
        sa.Column("lobby_manager_id", sa.String(_ID), nullable=True),
        sa.Column("wait_estimate_seconds", sa.Integer(), nullable=True),
        sa.Column("result_outcome", sa.String(16), nullable=True),
        sa.Column("result_reason", sa.Text(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("task_id", name="pk_tasks"),
        sa.ForeignKeyConstraint(
            ["target_branch"], ["branches.branch_id"], name="fk_tasks_target_branch_branches"
        ),
        sa.UniqueConstraint(
            "origin_terminal", "request_id", name="uq_tasks_origin_terminal_request_id"
        ),
    )
    op.create_index(
        "ix_tasks_target_branch_business_type_state_created_at",
        "tasks",
        ["target_branch", "business_type", "state", "created_at"],
    )
    op.create_index("ix_tasks_teller_id_state", "tasks", ["teller_id", "state"])
    op.create_index(
        "ix_tasks_origin_terminal_created_at", "tasks", ["origin_terminal", "created_at"]
    )
    op.create_index("ix_tasks_state_offer_expires_at", "tasks", ["state", "offer_expires_at"])
    op.create_table(
        "task_offers",
        sa.Column("offer_id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.String(_ID), nullable=False),
        sa.Column("teller_id", sa.String(_ID), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("offered_by", sa.String(200), nullable=False),
        sa.Column("offered_at", _time(), nullable=False),
        sa.Column("expires_at", _time(), nullable=False),
        sa.Column("answer", sa.String(16), nullable=True),
        sa.Column("answered_at", _time(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("offer_id", name="pk_task_offers"),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.task_id"], name="fk_task_offers_task_id_tasks"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_task_offers_task_id_teller_id", "task_offers", ["task_id", "teller_id"])
    op.create_table(
        "material_blobs",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_material_blobs"),
    )
    op.create_table(
        "task_materials",
        sa.Column("task_id", sa.String(_ID), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("uploaded_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("task_id", "name", name="pk_task_materials"),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.task_id"], name="fk_task_materials_task_id_tasks"
        ),
        sa.ForeignKeyConstraint(
            ["sha256"],
            ["material_blobs.sha256"],
            name="fk_task_materials_sha256_material_blobs",
        ),
    )
    op.create_table(
        "dispatch_events",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.String(_ID), nullable=True),
        sa.Column("branch", sa.String(_ID), nullable=False),
        sa.Column("origin_terminal", sa.String(128), nullable=True),
        sa.Column("teller_id", sa.String(_ID), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dispatch_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_dispatch_events_branch_id", "dispatch_events", ["branch", "id"])
    op.create_index("ix_dispatch_events_teller_id_id", "dispatch_events", ["teller_id", "id"])
    op.create_index(
        "ix_dispatch_events_origin_terminal_id", "dispatch_events", ["origin_terminal", "id"]
    )
    op.create_index("ix_dispatch_events_task_id_id", "dispatch_events", ["task_id", "id"])


def downgrade() -> None:
    op.drop_table("dispatch_events")
    op.drop_table("task_materials")
    op.drop_table("material_blobs")
    op.drop_table("task_offers")
    op.drop_table("tasks")
    op.drop_table("lobby_managers")
    op.drop_table("teller_skills")
    op.drop_table("tellers")
    op.drop_table("branches")
