"""Prometheus: a gauge of findings per check, severity and status of the run
(``couchpotato_audit_findings``), plus how many are new and how long a run took. A run is a batch
job, so the metrics are pushed to a Pushgateway when one is configured (grouped by provider and
account, replacing the previous run's), and always stored with the run as ``metrics.prom`` (text
format, for node_exporter's textfile collector)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import push_to_gateway

from ..errors import NotifyError
from ..records import Finding

JOB_NAME = "couchpotato_auditing"


def build_registry(findings: Sequence[Finding], *, elapsed_s: float, api_calls: int) -> CollectorRegistry:
    reg = CollectorRegistry()
    labels = ("provider", "account", "check_id", "severity", "status")
    g = Gauge("couchpotato_audit_findings", "Findings of the last audit run", labels, registry=reg)
    new = Gauge("couchpotato_audit_new_failures", "New failures in the last audit run", labels[:4], registry=reg)
    counts = Counter((f.provider, f.account, f.check_id, f.severity, f.status) for f in findings)
    for key, n in counts.items():
        g.labels(*key).set(n)
    for f in findings:
        if f.new and f.status == "FAIL":
            new.labels(f.provider, f.account, f.check_id, f.severity).inc()
    Gauge("couchpotato_audit_run_seconds", "Duration of the last audit run", registry=reg).set(elapsed_s)
    Gauge("couchpotato_audit_api_calls", "Provider API calls of the last audit run", registry=reg).set(api_calls)
    return reg


def exposition(reg: CollectorRegistry) -> bytes:
    return generate_latest(reg)


def push(gateway: str, reg: CollectorRegistry, grouping: dict[str, str]) -> None:
    """Replace this group's metrics on the Pushgateway (blocking)."""
    try:
        push_to_gateway(gateway, job=JOB_NAME, registry=reg, grouping_key=grouping, timeout=15)
    except OSError as e:
        raise NotifyError(f"cannot push metrics to {gateway}: {' '.join(str(e).split())}") from e


__all__ = ["JOB_NAME", "build_registry", "exposition", "push"]
