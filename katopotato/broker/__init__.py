"""Brokers: one interface (``base.Broker``), chosen by URL (``memory://``, ``redis://…``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import ConfigError
from .base import Broker, BrokerStats, Lease, LeaseState, StreamEntry, Versioned
from .memory import MemoryBroker


def broker_from_url(url: str) -> Broker:
    """``memory://`` (this process) or ``redis://host:port/db[?prefix=kp:]`` (``rediss://`` for TLS).

    The broker is not connected yet: use it as ``async with broker_from_url(url) as broker``.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return MemoryBroker(url)
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisBroker

        return RedisBroker(url)
    raise ConfigError(f"unsupported broker URL {url!r}: use memory:// or redis://host:port/db")


__all__ = [
    "Broker",
    "BrokerStats",
    "Lease",
    "LeaseState",
    "MemoryBroker",
    "StreamEntry",
    "Versioned",
    "broker_from_url",
]
