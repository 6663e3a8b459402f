"""The Slack checks (Web API), one module each."""

from __future__ import annotations

from . import users_member_without_2fa

CHECKS = [users_member_without_2fa.CHECK]

__all__ = ["CHECKS"]
