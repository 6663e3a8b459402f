"""The ``katopotato`` console script: ``serve``, ``tokens`` and every other command module.

Subcommands live in ``katopotato/commands/``, one module each; any module there that exposes
``register(subparsers)`` is loaded (see that package's docstring for the convention). Errors are
one line on stderr and a non-zero exit (1: a failure; 2: bad usage or configuration; 130:
interrupted), never a traceback unless ``--verbose``. Logs are JSON lines on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import logging
import pkgutil
import sys
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from couchpotato import __version__
from couchpotato.errors import ConfigError, CouchPotatoError

from . import commands
from .errors import KatoPotatoError, UsageError

log = logging.getLogger("katopotato")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: time, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        d: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        audit = getattr(record, "audit", None)
        if audit is not None:  # the API's audit line (katopotato.api.app): who did what, as fields
            d["audit"] = audit
        if record.exc_info:
            d["exc"] = self.formatException(record.exc_info)
        return json.dumps(d, ensure_ascii=False)


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    if root.level > logging.DEBUG:
        # a line per migration step or segment; botocore: "Found credentials in environment variables"
        for chatty in ("alembic", "faster_whisper", "aiohttp.access", "botocore", "boto3", "elastic_transport"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
    logging.Formatter.converter = time.gmtime


def command_modules() -> Iterator[ModuleType]:
    """Every module of ``katopotato.commands`` that has ``register``; one that fails to import is
    reported and skipped, so one broken command does not take the others down."""
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"{commands.__name__}.{info.name}")
        except Exception as e:
            print(f"katopotato: warning: cannot load command {info.name}: {e}", file=sys.stderr)
            continue
        if callable(getattr(module, "register", None)):
            yield module


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="katopotato", description="KatoPotato: the CouchPotato service and its job workers.")
    p.add_argument("--version", action="version", version=f"katopotato {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging, and tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in command_modules():
        module.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as e:
        print(f"katopotato: error: {e} (see katopotato --help)", file=sys.stderr)
        return 2
    setup_logging("debug" if args.verbose else getattr(args, "log_level", "warning"))
    handler = getattr(args, "handler", None)
    if handler is None:
        print(f"katopotato: error: the {args.command} command has no handler", file=sys.stderr)
        return 2
    try:
        result = handler(args)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        return int(result or 0)
    except (ConfigError, UsageError) as e:  # the core's ConfigError: katopotato's is a subclass
        print(f"katopotato: error: {e}", file=sys.stderr)
        return 2
    except (KatoPotatoError, CouchPotatoError) as e:
        print(f"katopotato: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("katopotato: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # the last line of defence: still one line
        if args.verbose:
            raise
        print(f"katopotato: error: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


async def _await(result: Any) -> Any:
    return await result


if __name__ == "__main__":
    sys.exit(main())
