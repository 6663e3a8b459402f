"""A session's latency profile (``couchpotato.segmenter.LATENCY_PROFILES``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sessions", sa.Column("latency", sa.String(16), nullable=False, server_default="balanced"))


def downgrade() -> None:
    op.drop_column("sessions", "latency")
