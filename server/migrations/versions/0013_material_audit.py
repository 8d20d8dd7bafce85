"""Task materials kept only as long as configured, every access audited: ``material_audit``,
``task_materials.deleted_at``, and no foreign key from ``task_materials`` to
``material_blobs`` (the retention deletes a blob once no task within its retention refers
to it; the task keeps its entry, marked deleted).

On the dispatch branch (after 0007_task_queue_index).

Revision ID: 0013_material_audit
Revises: 0007_task_queue_index
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0013_material_audit"
down_revision: str | None = "0007_task_queue_index"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

FK = "fk_task_materials_sha256_material_blobs"


def upgrade() -> None:
    # Batch: SQLite drops a foreign key by copying the table.
    with op.batch_alter_table("task_materials") as batch:
        batch.drop_constraint(FK, type_="foreignkey")
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_task_materials_sha256", ["sha256"])
    op.create_table(
        "material_audit",
        sa.Column(
            "audit_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("audit_id", name="pk_material_audit"),
    )
    op.create_index("ix_material_audit_task_id", "material_audit", ["task_id"])
    op.create_index("ix_material_audit_sha256", "material_audit", ["sha256"])


def downgrade() -> None:
    op.drop_index("ix_material_audit_sha256", table_name="material_audit")
    op.drop_index("ix_material_audit_task_id", table_name="material_audit")
    op.drop_table("material_audit")
    # Entries whose blob the retention deleted cannot point at one again: they go.
    op.execute(
        sa.text(
            "DELETE FROM task_materials WHERE sha256 NOT IN (SELECT sha256 FROM material_blobs)"
        )
    )
    with op.batch_alter_table("task_materials") as batch:
        batch.drop_index("ix_task_materials_sha256")
        batch.drop_column("deleted_at")
        batch.create_foreign_key(FK, "material_blobs", ["sha256"], ["sha256"])
