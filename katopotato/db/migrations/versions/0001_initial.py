"""Sessions, their durable event logs, committed segments with full-text search, API tokens.

The full-text index lives in the database: an FTS5 table over ``segments`` on SQLite, a
generated ``tsvector`` column with a GIN index on PostgreSQL.

Revision ID: 0001
Revises:
Create Date: 2025-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False, server_default=""),
        sa.Column("mode", sa.String(16), nullable=False, server_default="auto"),
        sa.Column("realtime", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("language", sa.String(16), nullable=False, server_default="en"),
        sa.Column("vocabulary", sa.JSON, nullable=False),
        sa.Column("keep_audio", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("health", sa.String(16), nullable=False, server_default="unknown"),
        sa.Column("source_kind", sa.String(16), nullable=False, server_default=""),
        sa.Column("source_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("committed_seq", sa.Integer, nullable=True),
        sa.Column("segments", sa.Integer, nullable=False, server_default="0"),
        sa.Column("gaps", sa.Integer, nullable=False, server_default="0"),
        sa.Column("duration_s", sa.Float, nullable=False, server_default="0"),
        sa.Column("media_epoch", sa.Float, nullable=True),
        sa.Column("last_event_id", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_by", sa.String(64), nullable=False, server_default=""),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("ended_at", sa.Float, nullable=True),
    )
    op.create_index("ix_sessions_status", "sessions", ["status"])
    op.create_index("ix_sessions_created", "sessions", ["created_at", "id"])
    op.create_table(
        "session_events",
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("session_id", "id"),
    )
    op.create_table(
        "segments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("start_s", sa.Float, nullable=False),
        sa.Column("end_s", sa.Float, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("emitted_at", sa.Float, nullable=False),
        sa.UniqueConstraint("session_id", "seq", name="uq_segments_session_seq"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_segments_emitted", "segments", ["emitted_at"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.Text, nullable=False, server_default=""),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float, nullable=True),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        # External content: the text is stored once, in `segments`; the index holds the terms.
        op.execute(
            "CREATE VIRTUAL TABLE segments_fts USING fts5("
            "text, session_id, content='segments', content_rowid='id', "
            "tokenize='porter unicode61 remove_diacritics 2')"
        )
    elif dialect == "postgresql":
        op.execute(
            "ALTER TABLE segments ADD COLUMN tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED"
        )
        op.execute("CREATE INDEX ix_segments_tsv ON segments USING gin (tsv)")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TABLE IF EXISTS segments_fts")
    op.drop_table("api_tokens")
    op.drop_index("ix_segments_emitted", "segments")
    op.drop_table("segments")
    op.drop_table("session_events")
    op.drop_index("ix_sessions_created", "sessions")
    op.drop_index("ix_sessions_status", "sessions")
    op.drop_table("sessions")
