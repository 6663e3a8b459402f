"""The auditing plugin (Tattletale): standing checks of cloud and SaaS accounts — findings with
severity and remediation, a mute list, and notifications that escalate (docs/auditing.md).

Registered with the host under the entry point ``couchpotato.plugins: auditing = plugins.auditing:plugin``;
third-party checks register under ``couchpotato.auditing.checks``.
"""

from __future__ import annotations

from .check import Check, CheckContext
from .jobs import plugin
from .mutelist import Mute, Mutelist
from .records import CheckMeta, Finding, Result
from .registry import CheckRegistry, load_checks
from .routes import routes
from .runner import run_checks
from .settings import AuditingSettings, RunParams

__all__ = [
    "AuditingSettings",
    "Check",
    "CheckContext",
    "CheckMeta",
    "CheckRegistry",
    "Finding",
    "Mute",
    "Mutelist",
    "Result",
    "RunParams",
    "load_checks",
    "plugin",
    "routes",
    "run_checks",
]
