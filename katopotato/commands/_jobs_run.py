"""``katopotato jobs run KIND [--FIELD VALUE …] [--output PATH …]``: run one job of any plugin here
and now, with a progress bar, without a service.

The job's parameters come from ``--params JSON`` and from one option per field of the kind's
parameter model (``--field-name VALUE``; a list field is repeatable, and a plural name also
answers to its singular: ``--watchlist A --watchlist B`` for ``watchlists``; a bool field is
``--flag``/``--no-flag``; a dict, model or JSON-looking value is parsed as JSON). A value naming an
existing local file is passed as its absolute path. ``katopotato jobs run KIND --help`` lists them.

The job runs on an embedded memory broker with an in-process worker (``--workers`` slots; the
child jobs it fans out run there too), or, with ``jobs --broker URL``, on that broker, with the
local worker beside any others. Blobs go to the service's blob store (``COUCHPOTATO_BLOBS``, by
default a directory under the data dir) or ``--blobs URL``. ``--output PATH`` copies one of the
job's output blobs to PATH: a job that produces files returns ``{"outputs": {name: blob key}}``;
the output named after PATH's extension (``csv`` for ``flagged.csv``) is copied, else the one with
PATH's file name, else the only one with its extension.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel

from ..blobs import blobs_from_url
from ..broker import broker_from_url
from ..constants import DEFAULT_CONCURRENCY
from ..errors import ConfigError, JobCancelled, JobFailed, UsageError
from ..jobs import JobStatus
from ..scheduler import Scheduler
from ..worker import Worker


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(message)


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the type without None, whether None was allowed)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
        return annotation, True
    return annotation, False


def _shape(annotation: Any) -> str:
    """How a field is given on the command line: text, flag, list or json."""
    t, _ = _unwrap(annotation)
    origin = typing.get_origin(t)
    if t is bool:
        return "flag"
    if origin in (list, tuple, set, frozenset):
        return "list"
    if origin in (dict,) or (isinstance(t, type) and issubclass(t, BaseModel | dict)):
        return "json"
    return "text"


def _value(raw: str, shape: str) -> Any:
    """A command-line value: JSON where the field wants it (or it looks like an object), a local
    file's absolute path, or the text."""
    text = raw.strip()
    if shape == "json" or text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            if shape == "json":
                raise ConfigError(f"{raw!r} is not JSON: {e}") from e
    if "://" not in raw and not raw.startswith("blob:") and raw and os.path.exists(raw):
        return os.path.abspath(raw)
    return raw


def params_parser(kind: str, model: type[BaseModel]) -> tuple[argparse.ArgumentParser, dict[str, str]]:
    """The parser of ``jobs run KIND``: the common options and one per field of ``model``."""
    p = _Parser(
        prog=f"katopotato jobs run {kind}",
        description=(model.__doc__ or "").strip().split("\n")[0] or None,
        add_help=False,
    )
    p.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    p.add_argument("--params", default="{}", metavar="JSON", help="parameters as a JSON object (fields override)")
    p.add_argument(
        "--output", action="append", default=[], metavar="PATH", help="copy the job's output ending like PATH there"
    )
    p.add_argument("--workers", type=int, default=DEFAULT_CONCURRENCY, metavar="N", help="local worker slots")
    p.add_argument("--blobs", metavar="URL", help="blob store URL (default: COUCHPOTATO_BLOBS)")
    p.add_argument("--timeout", type=float, metavar="S", help="give up after S seconds")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE:ATTR", help="load another plugin")
    p.add_argument("--setting", action="append", default=[], metavar="PLUGIN.KEY=VALUE", help="a plugin setting")
    shapes: dict[str, str] = {}
    taken = {a for action in p._actions for a in action.option_strings}
    group = p.add_argument_group(f"parameters of {kind}")
    for name, info in model.model_fields.items():
        shape = _shape(info.annotation)
        shapes[name] = shape
        flags = [f"--{name.replace('_', '-')}"]
        if "_" in name:
            flags.append(f"--{name}")
        if shape == "list" and name.endswith("s") and len(name) > 2:
            flags.append(f"--{name[:-1].replace('_', '-')}")
        flags = [f for f in dict.fromkeys(flags) if f not in taken]
        if not flags:
            continue
        help_text = info.description or ""
        if shape == "flag":
            group.add_argument(*flags, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif shape == "list":
            group.add_argument(*flags, dest=name, action="append", default=None, metavar="VALUE", help=help_text)
        else:
            group.add_argument(*flags, dest=name, default=None, metavar="JSON" if shape == "json" else "VALUE",
                               help=help_text)  # fmt: skip
    return p, shapes


def build_params(ns: argparse.Namespace, shapes: dict[str, str]) -> dict[str, Any]:
    try:
        params = json.loads(ns.params)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--params is not JSON: {e}") from e
    if not isinstance(params, dict):
        raise ConfigError("--params must be a JSON object")
    for name, shape in shapes.items():
        given = getattr(ns, name, None)
        if given is None:
            continue
        if shape == "list":
            params[name] = [_value(v, "text") for v in given]
        elif shape == "flag":
            params[name] = bool(given)
        else:
            params[name] = _value(given, shape)
    return params


def pick_output(result: Any, path: str) -> str:
    """The blob key of the output that ``path`` asks for: the output named after its extension
    (``{"outputs": {"csv": …}}`` for ``flagged.csv``), else the one with its file name, else the only
    one ending like it, else the only one."""
    outputs = result.get("outputs") if isinstance(result, dict) else None
    if not isinstance(outputs, dict) or not outputs:
        raise ConfigError("--output: this job's result names no outputs")
    keys = {str(k): str(v) for k, v in outputs.items()}
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix[1:] in keys:
        return keys[suffix[1:]]
    named = [v for v in keys.values() if Path(v).name == p.name]
    matching = [v for v in keys.values() if suffix and v.lower().endswith(suffix)]
    for candidates in (named, matching, list(keys.values())):
        if len(candidates) == 1:
            return candidates[0]
    raise ConfigError(f"--output {path}: which output? the job produced {', '.join(keys.values())}")


async def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """``katopotato jobs run KIND …``"""
    from .worker import service_registry

    pre = _Parser(add_help=False)
    pre.add_argument("--plugin", action="append", default=[])
    pre.add_argument("--setting", action="append", default=[])
    pre.add_argument("--blobs")
    known, _ = pre.parse_known_args(args.run_args)
    scope = argparse.Namespace(plugin=known.plugin, setting=known.setting, blobs=known.blobs, broker=args.broker)
    registry, _, blobs_url = service_registry(scope)
    _, spec = registry.spec(args.kind)
    parser, shapes = params_parser(args.kind, spec.params)
    try:
        ns = parser.parse_args(args.run_args)
    except UsageError as e:
        raise UsageError(f"jobs run {args.kind}: {e} (see katopotato jobs run {args.kind} --help)") from None
    if ns.help:
        parser.print_help(out)
        return 0
    if ns.workers < 1:
        raise ConfigError("--workers must be at least 1")
    params = build_params(ns, shapes)
    broker_url = args.broker or "memory://"
    async with broker_from_url(broker_url) as broker, blobs_from_url(ns.blobs or blobs_url) as blobs:
        sched = Scheduler(broker, registry)
        job = await sched.enqueue(args.kind, params)
        async with Worker(broker, registry, blobs=blobs, concurrency=ns.workers):
            await _follow(sched, job.id, err, progress=not ns.no_progress, timeout_s=ns.timeout)
        final = await sched.get(job.id)
        if final.status is JobStatus.CANCELLED:
            raise JobCancelled(f"job {job.id} ({args.kind}) was cancelled")
        if final.status is not JobStatus.SUCCEEDED:
            raise JobFailed(f"job {job.id} ({args.kind}) {final.status.value}: {final.error or 'no error recorded'}")
        result = await sched.result(job.id)
        for path in ns.output:
            data = await blobs.get(pick_output(result, path))
            await asyncio.to_thread(Path(path).write_bytes, data)
            print(f"wrote {path} ({len(data):,} bytes)", file=err)
    if ns.json or getattr(args, "json", False):
        print(json.dumps(result), file=out)
    else:
        _print_result(result, out)
    return 0


async def _follow(sched: Scheduler, job_id: str, err: TextIO, *, progress: bool, timeout_s: float | None) -> None:
    """Wait for the job to finish, drawing its progress reports as a bar on ``err``."""

    async def follow() -> None:
        if not progress:
            await sched.wait(job_id)
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

        console = Console(file=err)
        columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task("queued", total=None)
            async for ev in sched.events(job_id):
                if ev.progress is not None:
                    p = ev.progress
                    bar.update(task, completed=p.done, total=p.total, description=p.message or ev.status.value)
                elif ev.terminal:
                    bar.update(task, description=ev.status.value)

    try:
        await asyncio.wait_for(follow(), timeout_s)
    except TimeoutError:
        raise JobFailed(f"job {job_id} did not finish within {timeout_s:g} s") from None


def _print_result(result: Any, out: TextIO) -> None:
    if isinstance(result, dict):
        for k, v in result.items():
            if v in (None, "", [], {}):
                continue
            text = json.dumps(v) if isinstance(v, dict | list) else str(v)
            print(f"{k:20} {text}", file=out)
    else:
        print(json.dumps(result), file=out)


__all__ = ["build_params", "params_parser", "pick_output", "run"]
