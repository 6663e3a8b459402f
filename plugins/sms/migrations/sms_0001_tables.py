"""The SMS plugin's tables: campaigns, texters, contacts, messages, the shared opt-out list and its
audit log, survey answers. The first revision of the ``sms`` branch (the host applies it with the
core's migrations when the plugin is loaded).

Revision ID: sms_0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "sms_0001"
down_revision = None
branch_labels = ("sms",)
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("sms_campaigns"):
        return  # made by the plugin's first version, which created these same tables on first use
    op.create_table(
        "sms_campaigns",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("script", sa.Text, nullable=False),
        sa.Column("questions", sa.JSON, nullable=False),
        sa.Column("canned", sa.JSON, nullable=False),
        sa.Column("custom_fields", sa.JSON, nullable=False),
        sa.Column("start_hour", sa.Integer, nullable=False),
        sa.Column("end_hour", sa.Integer, nullable=False),
        sa.Column("due_at", sa.Float),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "sms_texters",
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("sms_campaigns.id"), primary_key=True),
        sa.Column("texter_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
    )
    op.create_table(
        "sms_contacts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("sms_campaigns.id"), nullable=False),
        sa.Column("cell", sa.String(20), nullable=False),
        sa.Column("first_name", sa.String(200), nullable=False),
        sa.Column("last_name", sa.String(200), nullable=False),
        sa.Column("zip", sa.String(12), nullable=False),
        sa.Column("zone", sa.String(40)),
        sa.Column("custom", sa.JSON, nullable=False),
        sa.Column("texter_id", sa.String(64)),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("texted_at", sa.Float),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.UniqueConstraint("campaign_id", "cell", name="uq_sms_contacts_campaign_cell"),
    )
    op.create_index("ix_sms_contacts_assignment", "sms_contacts", ["campaign_id", "texter_id", "status"])
    op.create_index("ix_sms_contacts_cell", "sms_contacts", ["cell"])
    op.create_table(
        "sms_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.Integer, nullable=False),
        sa.Column("contact_id", sa.Integer, sa.ForeignKey("sms_contacts.id"), nullable=False),
        sa.Column("texter_id", sa.String(64)),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("sid", sa.String(64), unique=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("error_code", sa.Integer),
        sa.Column("send_before", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_sms_messages_contact", "sms_messages", ["contact_id"])
    op.create_table(
        "sms_opt_outs",
        sa.Column("phone", sa.String(20), primary_key=True),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_table(
        "sms_opt_out_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_table(
        "sms_answers",
        sa.Column("contact_id", sa.Integer, sa.ForeignKey("sms_contacts.id"), primary_key=True),
        sa.Column("question", sa.String(64), primary_key=True),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("texter_id", sa.String(64), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("sms_answers", "sms_opt_out_log", "sms_opt_outs", "sms_messages", "sms_contacts", "sms_texters"):
        op.drop_table(table)
    op.drop_table("sms_campaigns")
