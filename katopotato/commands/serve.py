"""``katopotato serve [--host 127.0.0.1] [--port 8080] [--workers N] [--config FILE]``: the API, the
console, the job scheduler with its cron, and N embedded job workers (sessions run as capture and
ASR jobs on them), on the embedded defaults unless settings say otherwise.

With ``COUCHPOTATO_BROKER=redis://…`` the jobs are shared: ``katopotato worker`` processes on any
machine take capture, ASR and plugin work too, and ``--workers 0`` leaves all of it to them.
SIGTERM/SIGINT: the API stops taking requests; with the memory broker running sessions end like a
stop (their in-flight segments are committed) and are marked interrupted; with Redis they are left
running (their capture jobs go back to the queue, or keep running on other workers) and the next
start re-attaches to them. Then the workers drain."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web

from couchpotato import __version__

from ..api import Service, create_app
from ..errors import ConfigError
from ..settings import Settings

SHUTDOWN_TIMEOUT_S = 5.0
# aiohttp answers a request line or header longer than its 8190 bytes with a text/plain 400 before
# the app sees it; with room for about 20 times the longest documented parameter (a 512-character cursor,
# each character up to 12 bytes percent-encoded), such a request reaches the app and gets its JSON error.
MAX_REQUEST_LINE_BYTES = 128 * 1024


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the API and the web console",
        description="Run the HTTP API, the web console and the session runner in one process.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="embedded job workers (capture, ASR, plugins; default: COUCHPOTATO_WORKERS or 1); "
        "0 runs the API only, with the jobs left to katopotato worker processes on a Redis broker",
    )
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML settings file (also $COUCHPOTATO_CONFIG)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(config=args.config)
    if args.workers is not None:
        if args.workers < 0:
            raise ConfigError("--workers must be 0 or more")
        settings = settings.with_overrides(workers=args.workers)
    return asyncio.run(serve(settings, args.host, args.port))


def console_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/"


async def serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    out: TextIO = sys.stdout,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[int], None] | None = None,
) -> int:
    """Serve until SIGINT/SIGTERM (or ``stop``); returns the exit status."""
    settings.core().asr_model()  # a bad COUCHPOTATO_ASR fails here, in one line
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with Service.open(settings) as service:
        if settings.workers > 0:
            await _load_asr_model(service)
        admin_token = await service.tokens.ensure_admin()
        app = create_app(service)
        runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
            max_line_size=MAX_REQUEST_LINE_BYTES,
            max_field_size=MAX_REQUEST_LINE_BYTES,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            try:
                await site.start()
            except OSError as e:
                print(f"katopotato: error: cannot listen on {host}:{port}: {e.strerror or e}", file=sys.stderr)
                return 1
            bound = port
            server = getattr(site, "_server", None)
            if port == 0 and server is not None and server.sockets:
                bound = int(server.sockets[0].getsockname()[1])
            _banner(out, settings, service, host, bound, admin_token)
            if on_ready is not None:
                on_ready(bound)
            await stop.wait()
        finally:
            await runner.cleanup()
    return 0


async def _load_asr_model(service: Service) -> None:
    """Load the embedded workers' ASR model now, so the first segment does not wait for it."""
    from ..asr_pool import asr_pool
    from ..transcription import TranscriptionSettings

    ts = service.registry.settings_for("transcription")
    if isinstance(ts, TranscriptionSettings):
        await asr_pool(ts.asr_model, ts.asr_threads)


def _banner(out: TextIO, settings: Settings, service: Service, host: str, port: int, admin_token: str | None) -> None:
    url = console_url(host, port)
    broker = settings.broker_url.split("?")[0]
    workers = (
        f"{settings.workers} embedded job worker(s) + capture ×{settings.capture_slots}"
        if settings.workers
        else "none embedded: jobs run on katopotato worker processes"
    )
    lines = [
        f"KatoPotato {__version__} is serving on {url}",
        f"  console : {url}",
        f"  API     : {url}openapi.json   (Authorization: Bearer <token>)",
        f"  data    : {settings.data_dir}  (database {service.db.safe_url}, search {service.search.name})",
        f"  jobs    : broker {_safe_url(broker)}, {workers}; sessions run as scheduler jobs",
    ]
    if service.recovered:
        lines.append(f"  marked {len(service.recovered)} session(s) left running by the last run as interrupted")
    attached = service.runner.running()
    if attached:
        lines.append(f"  re-attached to {len(attached)} session(s) still running on the scheduler")
    if service.settings.oidc.console_sign_in:
        lines.append(f"  sign-in : OIDC at {service.settings.oidc.issuer} (the console's sign-in button; bearer JWTs)")
    elif service.settings.oidc.enabled:
        lines.append(f"  bearer JWTs of {service.settings.oidc.issuer} accepted (no console sign-in: no client id)")
    if admin_token:
        lines += [
            "",
            "  An admin token was generated. It is shown this once: keep it now.",
            f"    {admin_token}",
            "  Sign in to the console with it, or send it as Authorization: Bearer <token>.",
        ]
    elif settings.api_token:
        lines.append("  authenticate with the token in COUCHPOTATO_API_TOKEN (admin)")
    else:
        lines.append("  authenticate with a token; make more with: katopotato tokens create --scope sessions:read …")
    out.write("\n".join(lines) + "\n")
    out.flush()


def _safe_url(url: str) -> str:
    """A URL without its password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
