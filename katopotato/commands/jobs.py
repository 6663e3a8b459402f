"""``katopotato jobs list|show|cancel|requeue|enqueue|run``: look at and steer jobs on the broker, or run one
here and now (``run``, see ``_jobs_run``)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, TextIO

from ..broker import broker_from_url
from ..errors import ConfigError
from ..jobs import Job
from ..scheduler import Scheduler


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("jobs", help="list, show, cancel, requeue, enqueue or run jobs")
    p.add_argument("--broker", metavar="URL", help="broker URL (default: COUCHPOTATO_BROKER)")
    p.add_argument("--json", action="store_true", help="JSON output (one object per line for list)")
    sub = p.add_subparsers(dest="jobs_command", required=True)
    ls = sub.add_parser("list", help="jobs, newest first")
    ls.add_argument("--kind", help="only this kind (plugin.job)")
    ls.add_argument("--status", help="queued, running, succeeded, failed or cancelled")
    ls.add_argument("--dead", action="store_true", help="the dead-letter list (failed for good)")
    ls.add_argument("--limit", type=int, default=50)
    show = sub.add_parser("show", help="one job, with its result when it succeeded")
    show.add_argument("id")
    cancel = sub.add_parser("cancel", help="cancel a queued job, or stop a running one")
    cancel.add_argument("id")
    requeue = sub.add_parser("requeue", help="run a failed (dead-lettered) or cancelled job again")
    requeue.add_argument("id")
    enq = sub.add_parser("enqueue", help="enqueue a job of KIND")
    enq.add_argument("kind")
    enq.add_argument("--params", default="{}", help="parameters as a JSON object")
    enq.add_argument("--priority", type=int)
    enq.add_argument("--key", help="idempotency key")
    enq.add_argument("--setting", action="append", default=[], help=argparse.SUPPRESS)
    enq.add_argument("--plugin", action="append", default=[], metavar="MODULE:ATTR")
    here = sub.add_parser(
        "run",
        help="run a job of KIND here and now (embedded broker, in-process worker), with a progress bar",
        description="Run a job here and now; KIND --help lists its parameters as options.",
        add_help=False,
    )
    here.add_argument("kind")
    here.add_argument("run_args", nargs=argparse.REMAINDER, help="--FIELD VALUE …, --output PATH, --workers N")
    p.set_defaults(handler=run)


async def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from .worker import service_registry

    if args.jobs_command == "run":
        from . import _jobs_run

        return await _jobs_run.run(args, out)
    registry, broker_url, _ = service_registry(args)
    if broker_url.startswith("memory:"):
        raise ConfigError("katopotato jobs needs the shared broker: set COUCHPOTATO_BROKER=redis://host:6379/0")
    async with broker_from_url(broker_url) as broker:
        sched = Scheduler(broker, registry)
        cmd = args.jobs_command
        if cmd == "list":
            jobs = (
                await sched.dead_letters(limit=args.limit)
                if args.dead
                else await sched.list(kind=args.kind, status=args.status, limit=args.limit)
            )
            if args.json:
                for job in jobs:
                    print(json.dumps(job.to_dict()), file=out)
            else:
                _table(jobs, out)
            return 0
        if cmd == "show":
            job = await sched.get(args.id)
            d = job.to_dict()
            if job.result_ref:
                found, value = await broker.result(job.id)
                d["result"] = value if found else None
                d["result_expired"] = not found
            if args.json:
                print(json.dumps(d), file=out)
            else:
                for k, v in d.items():
                    if v not in (None, "", {}, []) and k != "v":
                        print(f"{k:16} {_fmt(k, v)}", file=out)
            return 0
        if cmd == "enqueue":
            try:
                params = json.loads(args.params)
            except json.JSONDecodeError as e:
                raise ConfigError(f"--params is not JSON: {e}") from e
            job = await sched.enqueue(args.kind, params, priority=args.priority, idempotency_key=args.key)
        elif cmd == "cancel":
            job = await sched.cancel(args.id)
        else:
            job = await sched.requeue(args.id)
        print(json.dumps(job.to_dict()) if args.json else f"{job.id} {job.kind} {job.status.value}", file=out)
        return 0


def _fmt(key: str, v: Any) -> str:
    if key.endswith("_at") and isinstance(v, int | float):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v))
    return json.dumps(v) if isinstance(v, dict | list) else str(v)


def _table(jobs: list[Job], out: TextIO) -> None:
    print(f"{'ID':32}  {'KIND':28} {'STATUS':10} {'TRIES':5} {'CREATED':19}  ERROR", file=out)
    for j in jobs:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j.created_at))
        status = j.status.value + ("*" if j.cancel_requested else "")
        tries = f"{j.tries}/{j.max_tries}"
        print(f"{j.id:32}  {j.kind:28} {status:10} {tries:5} {created:19}  {j.error or ''}", file=out)


__all__ = ["register", "run"]
