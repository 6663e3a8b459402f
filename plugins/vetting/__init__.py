"""The donor-vetting plugin: every contribution checked against lobbyist, foreign-agent and block lists
and the FEC rules, daily, with a short, explained list for compliance reviewers (docs/vetting.md).

Registered with the host under the entry point ``couchpotato.plugins: vetting = plugins.vetting:plugin``.
"""

from __future__ import annotations

from .engine import collate, compile_watchlists, vet_chunk, vet_rows
from .jobs import RunParams, VettingSettings, WatchlistParams, plugin
from .matching import WatchlistIndex
from .names import PersonName, parse_person_name
from .options import VetOptions
from .records import Contribution, Decision, Flag, MalformedRow, WatchEntry
from .routes import routes

__all__ = [
    "Contribution",
    "Decision",
    "Flag",
    "MalformedRow",
    "PersonName",
    "RunParams",
    "VetOptions",
    "VettingSettings",
    "WatchEntry",
    "WatchlistIndex",
    "WatchlistParams",
    "collate",
    "compile_watchlists",
    "parse_person_name",
    "plugin",
    "routes",
    "vet_chunk",
    "vet_rows",
]
