"""The Google Workspace checks (Admin SDK Directory), one module each."""

from __future__ import annotations

from . import (
    directory_super_admin_without_2sv,
    directory_suspended_admin,
    directory_user_inactive,
    directory_user_without_2sv,
)

CHECKS = [
    directory_user_without_2sv.CHECK,
    directory_user_inactive.CHECK,
    directory_super_admin_without_2sv.CHECK,
    directory_suspended_admin.CHECK,
]

__all__ = ["CHECKS"]
