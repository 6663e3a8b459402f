"""Supervision: a health probe every second, published under ``health:<session>``, judged by
HotPotato's ``Supervisor``; a broken capture starts a failover."""

from __future__ import annotations

import logging

from couchpotato.constants import SAMPLE_RATE_HZ
from hotpotato import constants as HC
from hotpotato.supervisor import HealthProbe, Verdict

from ..keys import health_key
from .constants import HEALTH_TTL_S
from .old_side import OldSide

log = logging.getLogger("katopotato.capture")


class Supervision(OldSide):
    """Supervision: a health probe every second, published under ``health:<session>``, judged by
    HotPotato's ``Supervisor``; a broken capture starts a failover."""

    def probe(self, now: float) -> HealthProbe:
        cap = self.inst.cap
        assert cap is not None
        health = cap.health
        errors_total, last_error = cap.errors()
        return HealthProbe(
            at=now,
            started_at=self.inst.started_at,
            audio_at=self.inst.audio_at,
            media_s=self.inst.pushed_end / SAMPLE_RATE_HZ,
            bytes_total=self.inst.bytes_total,
            rms_dbfs=health.rms_dbfs if health is not None else None,
            silent_s=cap.monitor.silent_s if cap.monitor is not None else 0.0,
            alive=cap.alive() if self.inst.capture_error is None else {**cap.alive(), "capture": False},
            errors_total=errors_total,
            last_error=last_error or (str(self.inst.capture_error) if self.inst.capture_error else ""),
            since_segment_s=None if self.inst.last_segment_at is None else now - self.inst.last_segment_at,
            live=self.inst.live,
            fault=cap.fault(),
        )

    async def _supervise(self, now: float) -> None:
        probe = self.probe(now)
        previous = self.inst.verdict
        self.inst.verdict = self.supervisor.observe(probe)
        if previous is None or previous.state != self.inst.verdict.state:
            quiet = {previous.state if previous else "ok", self.inst.verdict.state} <= {"ok", "silent", "starting"}
            log.log(logging.DEBUG if quiet else logging.INFO, "session %s: health %s: %s", self.sid,
                    self.inst.verdict.state, self.inst.verdict.reason)  # fmt: skip
        if now - self.inst.last_health >= HC.HEALTH_PUBLISH_INTERVAL_S:
            self.inst.last_health = now
            await self._publish_health(probe, self.inst.verdict)
        if (
            self.inst.verdict.broken
            and self.settings.supervise
            and self.inst.capture_error is None
            and (self.inst.swap is None or (self.inst.swap.mode == "overlap" and not self.inst.gate.closed))
            and now >= self.inst.next_failover_at
            and self.inst.failovers < HC.FAILOVER_ATTEMPTS
        ):
            await self._failover("supervisor", self.inst.verdict.reason, evidence_at=self.inst.verdict.evidence_at)

    async def _publish_health(self, probe: HealthProbe, verdict: Verdict) -> None:
        value = {
            "session_id": self.sid,
            "instance": self.host.job_id,
            "worker": self.host.worker,
            "epoch": self.store.state.epoch,
            "source_kind": self.inst.kind,
            "probe": probe.to_dict(),
            "verdict": verdict.to_dict(),
            "swap": self.inst.swap.id if self.inst.swap else None,
        }
        key = health_key(self.sid)
        for _ in range(2):
            if self.inst.health_version is None:
                cur = await self.broker.kv_get(key)
                self.inst.health_version = cur.version if cur is not None else 0
            if await self.broker.kv_cas(key, self.inst.health_version, value, ttl_s=HEALTH_TTL_S) is not None:
                self.inst.health_version += 1
                return
            self.inst.health_version = None


__all__ = ["Supervision"]
