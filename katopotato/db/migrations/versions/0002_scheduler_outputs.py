"""Sessions on the job scheduler, and their outputs (transcript sinks).

``sessions.job_id`` is the capture job of a session run on the scheduler; ``sessions.stream_cursor``
is the id of the last broker transcript entry recorded into the session's log, written in the same
transaction as the event, so a service that restarts resumes the broker stream exactly after it.
``session_outputs`` holds each sink a session asked for: its spec (with its secrets: never sent to
clients) and its durable state (the docsweb cursor), ``done`` once it delivered the ``end`` event.

Revision ID: 0002
Revises: 0001
Create Date: 2025-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sessions", sa.Column("job_id", sa.String(64), nullable=True))
    op.add_column("sessions", sa.Column("stream_cursor", sa.String(64), nullable=True))
    op.create_table(
        "session_outputs",
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("sink_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("state", sa.JSON, nullable=True),
        sa.Column("done", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("session_id", "sink_id"),
    )
    op.create_index("ix_session_outputs_done", "session_outputs", ["done", "session_id"])


def downgrade() -> None:
    op.drop_index("ix_session_outputs_done", "session_outputs")
    op.drop_table("session_outputs")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("stream_cursor")
        batch.drop_column("job_id")
