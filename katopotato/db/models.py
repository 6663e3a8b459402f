"""The service's tables, as SQLAlchemy 2 declarative models.

Times ending in ``_at`` are Unix seconds (wall clock); ``start_s``/``end_s`` are media seconds
from the session's start. The schema itself is created and changed only by the Alembic
migrations in ``migrations/``; these models describe it to queries.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of every table."""


class SessionRow(Base):
    """A transcription session: what was asked, what was chosen, where it stands."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text, default="")
    mode: Mapped[str] = mapped_column(String(16), default="auto")
    realtime: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str] = mapped_column(String(16), default="en")
    latency: Mapped[str] = mapped_column(String(16), default="balanced", server_default="balanced")
    vocabulary: Mapped[list[str]] = mapped_column(JSON, default=list)
    keep_audio: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    health: Mapped[str] = mapped_column(String(16), default="unknown")
    source_kind: Mapped[str] = mapped_column(String(16), default="")
    source_reason: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    committed_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    segments: Mapped[int] = mapped_column(Integer, default=0)
    gaps: Mapped[int] = mapped_column(Integer, default=0)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    media_epoch: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_event_id: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stream_cursor: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (Index("ix_sessions_created", "created_at", "id"),)


class EventRow(Base):
    """One event of a session's durable log: ``data`` is the exact JSON line sent to clients."""

    __tablename__ = "session_events"

    session_id: Mapped[str] = mapped_column(String(32), ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(16))
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class SegmentRow(Base):
    """A committed segment, as the search index sees it (``id`` is the index's row id)."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(32), ForeignKey("sessions.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    emitted_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint("session_id", "seq", name="uq_segments_session_seq"),
        Index("ix_segments_emitted", "emitted_at"),
    )


class OutputRow(Base):
    """An output (transcript sink) of a session: its spec, secrets included, and its durable state."""

    __tablename__ = "session_outputs"

    session_id: Mapped[str] = mapped_column(String(32), ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    sink_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)  # the order the outputs were asked in
    type: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_session_outputs_done", "done", "session_id"),)


class TokenRow(Base):
    """An API token: only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(Text, default="")
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default="api", server_default="api")
    subject: Mapped[str] = mapped_column(Text, default="", server_default="")


class UserRow(Base):
    """A person who signed in with OIDC: ``id`` is a digest of issuer and subject; ``groups`` are
    the groups their last token named, ``assigned_groups`` those given here (the first-login group)."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    issuer: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(Text, default="", server_default="")
    name: Mapped[str] = mapped_column(Text, default="", server_default="")
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    assigned_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[float] = mapped_column(Float)
    last_login_at: Mapped[float | None] = mapped_column(Float, nullable=True)


def row_dict(row: Any) -> dict[str, Any]:
    """A SQLAlchemy ``Row`` as a plain dict."""
    return dict(row._mapping)


__all__ = ["Base", "EventRow", "OutputRow", "SegmentRow", "SessionRow", "TokenRow", "UserRow", "row_dict"]
