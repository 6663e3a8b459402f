"""DocsWeb: transcript sinks that deliver committed segments in order, exactly once in effect.

Google Docs (``gdoc``), webhooks (``webhook``) and files in the blob store (``file``), each with
its own durable cursor, so a restart of the sink, the worker or the service resumes where it
stopped. See docs/docsweb.md.
"""

from __future__ import annotations

from .base import BatchPolicy, Item, Sink, SinkContext, SinkState, SinkStatus, event_order
from .cursors import CursorStore, KeyedStateCursorStore, MemoryCursorStore, SqliteCursorStore
from .errors import CursorStoreError, DocsWebError, DuplicateSink, SinkConfigError, SinkRetry
from .files import FileSink
from .gdoc import GDocSink
from .manager import SinkManager, build_sink, stored_statuses, target_of, validate_outputs
from .runner import EventSource, SinkRunner
from .settings import DocsWebSettings
from .specs import (
    OUTPUTS,
    FileSpec,
    GDocSpec,
    GoogleUserToken,
    SinkSpec,
    WebhookSpec,
    parse_outputs,
    public_dict,
    storage_dict,
    with_ids,
)
from .webhook import WebhookSink, sign, verify_signature

__all__ = [
    "OUTPUTS",
    "BatchPolicy",
    "CursorStore",
    "CursorStoreError",
    "DocsWebError",
    "DocsWebSettings",
    "DuplicateSink",
    "EventSource",
    "FileSink",
    "FileSpec",
    "GDocSink",
    "GDocSpec",
    "GoogleUserToken",
    "Item",
    "KeyedStateCursorStore",
    "MemoryCursorStore",
    "Sink",
    "SinkConfigError",
    "SinkContext",
    "SinkManager",
    "SinkRetry",
    "SinkRunner",
    "SinkSpec",
    "SinkState",
    "SinkStatus",
    "SqliteCursorStore",
    "WebhookSink",
    "WebhookSpec",
    "build_sink",
    "event_order",
    "parse_outputs",
    "public_dict",
    "sign",
    "storage_dict",
    "stored_statuses",
    "target_of",
    "validate_outputs",
    "verify_signature",
    "with_ids",
]
