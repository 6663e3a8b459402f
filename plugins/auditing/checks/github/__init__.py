"""The GitHub checks (REST), one module each."""

from __future__ import annotations

from . import org_member_without_2fa, org_two_factor_not_required, repo_outside_collaborator_admin

CHECKS = [
    org_two_factor_not_required.CHECK,
    org_member_without_2fa.CHECK,
    repo_outside_collaborator_admin.CHECK,
]

__all__ = ["CHECKS"]
