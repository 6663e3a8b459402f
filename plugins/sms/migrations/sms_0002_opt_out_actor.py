"""Who changed the opt-out list by hand: the audit log's ``actor_id`` (the caller's token id, or
``oidc:<subject>``) and ``actor_name``; empty for the changes the person (START/STOP) or the carrier made.

Revision ID: sms_0002
Revises: sms_0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "sms_0002"
down_revision = "sms_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sms_opt_out_log") as batch:
        batch.add_column(sa.Column("actor_id", sa.String(200), nullable=False, server_default=""))
        batch.add_column(sa.Column("actor_name", sa.String(200), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("sms_opt_out_log") as batch:
        batch.drop_column("actor_name")
        batch.drop_column("actor_id")
