"""The checks the plugin ships, one module per check under ``checks/<provider>/``."""

from __future__ import annotations

from ..check import Check
from .aws import CHECKS as AWS_CHECKS
from .github import CHECKS as GITHUB_CHECKS
from .google import CHECKS as GOOGLE_CHECKS
from .slack import CHECKS as SLACK_CHECKS

BUILTIN_CHECKS: list[Check] = [*AWS_CHECKS, *GOOGLE_CHECKS, *GITHUB_CHECKS, *SLACK_CHECKS]

__all__ = ["BUILTIN_CHECKS"]
