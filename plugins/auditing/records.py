"""The records of an audit: a check's metadata, what a check reports about one resource (``Result``),
and the stored ``Finding`` (result + metadata + account + first/last seen + mute), with its JSON.

Finding JSON uses OCSF-compatible names where they fit (``severity_id``, ``status_detail``,
``class_name``/``class_uid`` of a Compliance Finding, ``cloud``/``resources``) besides the flat fields
a client relies on: ``check_id``, ``status``, ``severity``, ``provider``, ``resource_id``, ``region``,
``message``, ``remediation``, ``first_seen``, ``last_seen`` (ISO 8601, UTC).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from .constants import SEVERITIES, SEVERITY_ID, STATUSES
from .errors import CheckRegistryError

OCSF_CLASS_UID = 2003  # Compliance Finding
OCSF_CLASS_NAME = "Compliance Finding"


@dataclass(frozen=True)
class CheckMeta:
    """What a check is about.

    Attributes:
        id: ``<provider>.<service>.<name>`` (``aws.iam.console_user_without_mfa``).
        title: one line.
        severity: ``informational``, ``low``, ``medium``, ``high`` or ``critical`` (a result may raise it).
        provider: ``aws``, ``google``, ``github``, ``slack`` (or a third party's own).
        resource_type: what a finding's resource is (``AwsIamUser``).
        risk: why a failure matters.
        remediation: what to do about it.
        remediation_url: where that is documented.
        thresholds: the check's tunables and their defaults (``{"days": 45}``).
    """

    id: str
    title: str
    severity: str
    provider: str
    resource_type: str
    risk: str
    remediation: str
    remediation_url: str = ""
    thresholds: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parts = self.id.split(".")
        if len(parts) < 3 or not all(p and p.replace("_", "").isalnum() and p == p.lower() for p in parts):
            raise CheckRegistryError(f"check id {self.id!r}: use <provider>.<service>.<name> in lower case")
        if parts[0] != self.provider:
            raise CheckRegistryError(f"check {self.id}: its id must start with its provider {self.provider!r}")
        if self.severity not in SEVERITIES:
            raise CheckRegistryError(f"check {self.id}: severity {self.severity!r} is not one of {SEVERITIES}")
        for name in ("title", "resource_type", "risk", "remediation"):
            if not getattr(self, name).strip():
                raise CheckRegistryError(f"check {self.id}: {name} is empty")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "provider": self.provider,
            "resource_type": self.resource_type,
            "risk": self.risk,
            "remediation": self.remediation,
            "remediation_url": self.remediation_url,
            "thresholds": dict(self.thresholds),
        }


@dataclass(frozen=True)
class Result:
    """What a check says about one resource.

    Attributes:
        status: ``PASS``, ``FAIL`` or ``ERROR`` (``MUTED`` is decided later, by the mute list).
        resource_id: the resource (an ARN, an e-mail, ``org/login``); for an ERROR, what could not be read.
        message: one line for people.
        region: the resource's region (``global`` where it has none).
        severity: overrides the check's severity for this resource (empty: the check's).
        resource_type: overrides the check's resource type (empty: the check's).
        tags: the resource's tags (mute rules match them).
        owner: an e-mail address of the resource's owner, when known.
    """

    status: str
    resource_id: str
    message: str
    region: str = "global"
    severity: str = ""
    resource_type: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    owner: str = ""

    def __post_init__(self) -> None:
        if self.status not in ("PASS", "FAIL", "ERROR"):
            raise ValueError(f"a check result's status is PASS, FAIL or ERROR, not {self.status!r}")
        if self.severity and self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {SEVERITIES}")


@dataclass
class Finding:
    """A stored finding: one check's result about one resource of one account, in one run."""

    check_id: str
    status: str
    severity: str
    provider: str
    account: str
    resource_id: str
    resource_type: str
    region: str
    message: str
    title: str
    risk: str
    remediation: str
    remediation_url: str
    first_seen: str
    last_seen: str
    tags: dict[str, str] = field(default_factory=dict)
    owner: str = ""
    muted_reason: str = ""
    muted_by: str = ""
    new: bool = False

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"finding status {self.status!r} is not one of {STATUSES}")

    @property
    def key(self) -> str:
        """Stable across runs: check, account, region and resource."""
        return finding_key(self.check_id, self.account, self.region, self.resource_id)

    @property
    def failing(self) -> bool:
        """Open, whether muted or not."""
        return self.status in ("FAIL", "MUTED")

    def to_dict(self) -> dict[str, Any]:
        return {
            "check_id": self.check_id,
            "status": self.status,
            "severity": self.severity,
            "severity_id": SEVERITY_ID[self.severity],
            "provider": self.provider,
            "account": self.account,
            "resource_id": self.resource_id,
            "resource_type": self.resource_type,
            "region": self.region,
            "message": self.message,
            "status_detail": self.message,
            "title": self.title,
            "risk": self.risk,
            "remediation": self.remediation,
            "remediation_url": self.remediation_url,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "new": self.new,
            "tags": dict(self.tags),
            "owner": self.owner,
            "muted_reason": self.muted_reason,
            "muted_by": self.muted_by,
            "finding_uid": self.key,
            "class_uid": OCSF_CLASS_UID,
            "class_name": OCSF_CLASS_NAME,
            "cloud": {"provider": self.provider, "account": {"uid": self.account}, "region": self.region},
            "resources": [{"uid": self.resource_id, "type": self.resource_type, "region": self.region}],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in names})


def finding_key(check_id: str, account: str, region: str, resource_id: str) -> str:
    raw = "\x1f".join((check_id, account, region, resource_id))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


__all__ = ["OCSF_CLASS_NAME", "OCSF_CLASS_UID", "CheckMeta", "Finding", "Result", "finding_key"]
