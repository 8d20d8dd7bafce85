"""Call queues: the queue index in queue order, and the branch's ended calls by end time.

The index of a branch's queue of one business type ends with the queue's tie-break
(``call_id``) after ``created_at``: the oldest call a free teller takes is the first index
entry of its queue, and a waiting call's position is a range count over the index. It
replaces the index it extends. The branch's last ended calls (the expected call length in
every position push) are read in ``ended_at`` order from their own index instead of
sorting every ended call of the branch.

On the calls branch, after 0006_tube; the task queue's index is 0007_task_queue_index.

Revision ID: 0008_call_queue_indexes
Revises: 0006_tube
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision: str = "0008_call_queue_indexes"
down_revision: str | None = "0006_tube"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_calls_branch_state_business_type_created_at_call_id",
        "calls",
        ["branch", "state", "business_type", "created_at", "call_id"],
    )
    op.drop_index("ix_calls_branch_state_business_type_created_at", table_name="calls")
    op.create_index("ix_calls_branch_state_ended_at", "calls", ["branch", "state", "ended_at"])


def downgrade() -> None:
    op.drop_index("ix_calls_branch_state_ended_at", table_name="calls")
    op.create_index(
        "ix_calls_branch_state_business_type_created_at",
        "calls",
        ["branch", "state", "business_type", "created_at"],
    )
    op.drop_index("ix_calls_branch_state_business_type_created_at_call_id", table_name="calls")
