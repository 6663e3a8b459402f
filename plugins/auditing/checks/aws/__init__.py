"""The AWS checks, one module each."""

from __future__ import annotations

from . import (
    ec2_security_group_open_ingress,
    elb_internet_facing,
    iam_console_user_without_mfa,
    iam_credentials_unused,
    iam_policy_admin_star,
    iam_root_access_keys,
    iam_root_mfa,
    s3_account_public_access_block,
    s3_bucket_public,
)

CHECKS = [
    iam_console_user_without_mfa.CHECK,
    iam_credentials_unused.CHECK,
    iam_root_access_keys.CHECK,
    iam_root_mfa.CHECK,
    iam_policy_admin_star.CHECK,
    ec2_security_group_open_ingress.CHECK,
    elb_internet_facing.CHECK,
    s3_bucket_public.CHECK,
    s3_account_public_access_block.CHECK,
]

__all__ = ["CHECKS"]
