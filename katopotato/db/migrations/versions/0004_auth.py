"""Turbotots: token expiry and kind (an API token, or a console sign-in), and the users who signed
in with OIDC (the groups assigned to them here, e.g. the first-login group).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.Float, nullable=True))
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="api"))
        batch.add_column(sa.Column("subject", sa.Text, nullable=False, server_default=""))
    op.create_table(
        "users",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("issuer", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("email", sa.Text, nullable=False, server_default=""),
        sa.Column("name", sa.Text, nullable=False, server_default=""),
        sa.Column("groups", sa.JSON, nullable=False),
        sa.Column("assigned_groups", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_login_at", sa.Float, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("users")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("subject")
        batch.drop_column("kind")
        batch.drop_column("expires_at")
