"""Task queues: the queue index in queue order, so routing reads the head of a queue.

The index of a branch's queue of one business type ends with the queue's tie-break
(``task_id``) after ``created_at``: the oldest task a free teller takes is the first index
entry of its queue, with no sort of a queue of thousands. It replaces the index it extends.

On the dispatch branch (``tasks`` is created by 0002_dispatch); the call queue's index is
0008_call_queue_indexes, on the calls branch.

Revision ID: 0007_task_queue_index
Revises: 0002_dispatch
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision: str = "0007_task_queue_index"
down_revision: str | None = "0002_dispatch"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_tasks_target_branch_business_type_state_created_at_task_id",
        "tasks",
        ["target_branch", "business_type", "state", "created_at", "task_id"],
    )
    op.drop_index("ix_tasks_target_branch_business_type_state_created_at", table_name="tasks")


def downgrade() -> None:
    op.create_index(
        "ix_tasks_target_branch_business_type_state_created_at",
        "tasks",
        ["target_branch", "business_type", "state", "created_at"],
    )
    op.drop_index(
        "ix_tasks_target_branch_business_type_state_created_at_task_id", table_name="tasks"
    )
