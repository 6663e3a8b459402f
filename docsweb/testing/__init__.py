"""Test helpers of the sinks: a local stand-in for the Google APIs (``fake_google``).

Used by tests/ and benchmarks/; nothing in the product imports it.
"""

from __future__ import annotations

from .fake_google import FakeGoogle, Paragraph, wait_for

__all__ = ["FakeGoogle", "Paragraph", "wait_for"]
