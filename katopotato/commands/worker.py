"""``katopotato worker``: run jobs from the shared broker, on this machine or any other.

    katopotato worker [--kinds capture,asr,plugins] [--concurrency N] [--cron]

Reads the broker and blob store from the service settings (``COUCHPOTATO_BROKER``,
``COUCHPOTATO_BLOBS``, or ``--broker``/``--blobs``). SIGTERM or SIGINT drains: no new jobs are
claimed, capture sessions are handed back at once (another worker continues them), other jobs get
``--drain-grace`` seconds to finish and are then handed back; the exit status is 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from typing import Any

from ..blobs import blobs_from_url
from ..broker import broker_from_url
from ..constants import DEFAULT_CONCURRENCY, DRAIN_GRACE_S, VISIBILITY_TIMEOUT_S
from ..cron import CronScheduler
from ..errors import ConfigError
from ..plugin_host import PluginRegistry, load_plugins
from ..scheduler import Scheduler
from ..worker import ASR_KINDS, Worker

log = logging.getLogger("katopotato.worker")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "worker",
        help="run jobs from the shared broker (capture sessions, ASR segments, plugin jobs)",
        description="Run jobs from the shared broker. SIGTERM drains gracefully; nothing is lost.",
    )
    p.add_argument(
        "--kinds",
        default="",
        metavar="LIST",
        help="comma-separated: capture, asr, plugins, plugin names or job kinds (default: all)",
    )
    p.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N", help="jobs run at once")
    p.add_argument("--broker", metavar="URL", help="broker URL (default: COUCHPOTATO_BROKER)")
    p.add_argument("--blobs", metavar="URL", help="blob store URL (default: COUCHPOTATO_BLOBS)")
    p.add_argument("--name", help="worker name (default: host-pid-random)")
    p.add_argument(
        "--plugin", action="append", default=[], metavar="MODULE:ATTR", help="load another plugin (repeatable)"
    )
    p.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="PLUGIN.KEY=VALUE",
        help="a plugin setting, VALUE as JSON or text (repeatable)",
    )
    p.add_argument("--cron", action="store_true", help="also fire cron schedules (once per tick cluster-wide)")
    p.add_argument("--burst", action="store_true", help="exit once no work is left")
    p.add_argument(
        "--visibility-timeout",
        type=float,
        default=VISIBILITY_TIMEOUT_S,
        metavar="S",
        help="a job whose worker stops renewing its lease this long is retried elsewhere",
    )
    p.add_argument(
        "--drain-grace", type=float, default=DRAIN_GRACE_S, metavar="S", help="on SIGTERM, time to finish jobs"
    )
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.set_defaults(handler=run)


def parse_settings(items: list[str]) -> dict[str, dict[str, Any]]:
    """``plugin.key=value`` items → {plugin: {key: value}}; values are JSON when they parse."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        name, eq, raw = item.partition("=")
        plugin, dot, key = name.partition(".")
        if not eq or not dot or not plugin or not key:
            raise ConfigError(f"--setting {item!r}: use PLUGIN.KEY=VALUE")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(plugin, {})[key] = value
    return out


def service_registry(args: argparse.Namespace) -> tuple[PluginRegistry, str, str]:
    """The registry, broker URL and blob URL from the service settings and the command line."""
    from ..settings import Settings

    settings = Settings.load()
    given = parse_settings(getattr(args, "setting", []))
    defaults = settings.plugin_settings()  # the same values the service's embedded workers run with
    merged = {name: {**defaults.get(name, {}), **given.get(name, {})} for name in {*defaults, *given}}
    registry = load_plugins(extra=getattr(args, "plugin", []), settings=merged)
    return registry, args.broker or settings.broker_url, getattr(args, "blobs", None) or settings.blobs_url


async def run(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    registry, broker_url, blobs_url = service_registry(args)
    if broker_url.startswith("memory:"):
        raise ConfigError(
            "katopotato worker needs a shared broker: set COUCHPOTATO_BROKER=redis://host:6379/0 "
            "(memory:// lives inside one process; use katopotato serve --workers N instead)"
        )
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()] or None
    async with broker_from_url(broker_url) as broker, blobs_from_url(blobs_url) as blobs:
        worker = Worker(
            broker,
            registry,
            blobs=blobs,
            kinds=kinds,
            concurrency=args.concurrency,
            name=args.name,
            visibility_s=args.visibility_timeout,
            drain_grace_s=args.drain_grace,
        )
        worker.handle_signals()
        if any(k in worker.kinds for k in ASR_KINDS):
            from ..asr_pool import asr_pool
            from ..transcription import TranscriptionSettings

            ts = registry.settings_for("transcription")
            assert isinstance(ts, TranscriptionSettings)
            await asr_pool(ts.asr_model, ts.asr_threads)  # load the model before taking segments
        cron: Any = contextlib.nullcontext()
        if args.cron:
            cron = CronScheduler(Scheduler(broker, registry), registry.schedules())
        async with cron:
            log.info("worker %s ready: %s ×%d", worker.name, ",".join(worker.kinds), worker.concurrency)
            print(f"katopotato: worker {worker.name} ready", file=sys.stderr, flush=True)
            await worker.run(burst=args.burst)
        s = worker.stats
        log.info(
            "worker %s stopped: %d succeeded, %d failed, %d retried, %d cancelled, %d handed back",
            worker.name,
            s.succeeded,
            s.failed,
            s.retried,
            s.cancelled,
            s.released,
        )
    return 0


__all__ = ["parse_settings", "register", "run", "service_registry"]
