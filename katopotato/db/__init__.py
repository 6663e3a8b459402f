"""The service's database: SQLAlchemy 2 async models, Alembic migrations run on start."""

from __future__ import annotations

from .database import Database
from .models import Base, EventRow, OutputRow, SegmentRow, SessionRow, TokenRow, UserRow, row_dict

__all__ = ["Base", "Database", "EventRow", "OutputRow", "SegmentRow", "SessionRow", "TokenRow", "UserRow", "row_dict"]
