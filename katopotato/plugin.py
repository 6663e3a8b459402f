"""The plugin host's public API: everything a plugin may import from CouchPotato.

A plugin is a ``Plugin`` object, registered under the entry-point group ``couchpotato.plugins``
(in the plugin package's ``pyproject.toml``: ``[project.entry-points."couchpotato.plugins"]
vetting = "couchpotato_vetting:plugin"``). It declares:

- its ``name`` and ``version``;
- its jobs: async callables ``async def fn(ctx: JobContext, params: MyParams) -> result`` with a
  pydantic parameter model, registered with ``@plugin.job(...)``; their kind is ``<plugin>.<job>``;
- its cron schedules (``plugin.schedule("nightly", "17 3 * * *", "purge")``);
- optional aiohttp routes (``plugin.routes``, a ``web.RouteTableDef``), mounted by the service
  under ``/v1/plugins/<name>/``; a handler reads its plugin's settings, the database, the blob store and
  the caller with ``route_context(request)`` (or only the caller with ``principal_of(request)``); routes named
  in ``plugin.public_routes`` authenticate their requests themselves (a webhook's signature, a page
  that loads before sign-in): the host checks no credentials on them; ``plugin.on_cleanup``
  callables run when the app stops (close a client's connection pool);
- its scopes (``scopes={"sms:text": "send texts"}``, each ``<plugin>:<name>``), which tokens and
  OIDC groups can be granted; a route that needs one says so with ``@plugin.requires("sms:text")``
  under its route decorator (a route that names none needs ``jobs:read`` for GET, ``jobs:write``
  otherwise);
- its settings (a pydantic model; values come from the service's configuration);
- its database tables: ``migrations`` names the plugin's own Alembic versions directory, applied by
  the service at start, with the core's, on a branch labelled with the plugin's name (its first
  revision ``down_revision = None``, ``branch_labels = ("<name>",)``; every revision id ``<name>_…``).

A job receives a ``JobContext``: its settings, the blob store, the notifier, the database (when the
service provides one), progress reporting, and fan-out (enqueue child jobs and wait for them).
Jobs are delivered at least once: a job must be safe to run again (a worker can die after doing
the work and before acknowledging it). ``raise Retry(defer_s=…)`` asks for another try later;
``raise Abort("why")`` fails the job for good; any other exception is retried with backoff until
the kind's ``max_tries``.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, get_type_hints, runtime_checkable

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from .auth import Principal
from .blobs import BlobStore
from .constants import (
    DEFAULT_MAX_TRIES,
    PRIORITY_BATCH,
    PRIORITY_INTERACTIVE,
    PRIORITY_LIVE,
    PRIORITY_NORMAL,
    RESULT_TTL_S,
)
from .errors import Abort, JobCancelled, JobFailed, PluginError, Retry
from .jobs import Job, JobStatus

if TYPE_CHECKING:
    from .broker import Broker

log = logging.getLogger("katopotato.plugin")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SCOPE_WORD = re.compile(r"^[a-z][a-z0-9_-]*$")
SCOPE_ATTRIBUTE = "__katopotato_scope__"
# where the host puts the request's principal (the API's guard sets it; ``principal_of`` reads it)
PRINCIPAL = web.RequestKey("katopotato.principal", Principal)
P = TypeVar("P", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])
JobFn = Callable[["JobContext", Any], Awaitable[Any]]


class NoParams(BaseModel):
    """The parameter model of a job that takes none."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class JobSpec:
    """A job kind a plugin declares.

    Attributes:
        name: the job's name inside its plugin (the kind is ``<plugin>.<name>``).
        fn: ``async def fn(ctx, params)``.
        params: the pydantic model its parameters are validated against (at enqueue and at run).
        max_tries: attempts before the job is dead-lettered.
        priority: default priority (lower runs first; ``PRIORITY_LIVE`` is 0).
        concurrency: jobs of this kind running at once across all workers (0: no limit).
        timeout_s: a try running longer than this fails (and is retried).
        long_running: handed back at once when its worker drains (a capture session), instead of
            being given the drain grace period to finish.
        result_ttl_s: how long its result is kept.
        description: one line for ``GET /v1/plugins`` (default: the function's docstring).
    """

    name: str
    fn: JobFn
    params: type[BaseModel] = NoParams
    max_tries: int = DEFAULT_MAX_TRIES
    priority: int = PRIORITY_NORMAL
    concurrency: int = 0
    timeout_s: float | None = None
    long_running: bool = False
    result_ttl_s: float = RESULT_TTL_S
    description: str = ""


@dataclass(frozen=True)
class Schedule:
    """A cron schedule: enqueue ``job`` with ``params`` at every tick of ``cron``.

    Attributes:
        name: unique inside the plugin.
        cron: a croniter expression; five fields, or six with seconds last.
        job: the job's name in this plugin, or a full kind ``plugin.job``.
        params: the job's parameters.
    """

    name: str
    cron: str
    job: str
    params: dict[str, Any] = field(default_factory=dict)


class Plugin:
    """A plugin: name, version, jobs, schedules, routes, settings, migrations.

    Attributes:
        name: lower-case identifier; prefix of its job kinds and its URL path.
        version: the plugin's version string.
        description: one line.
        settings: pydantic model of its settings (None: it has none).
        routes: aiohttp routes mounted under ``/v1/plugins/<name>/``.
        scopes: the scopes it declares, name → one line saying what they allow.
        migrations: its Alembic versions directory (None: no tables).
        jobs: its job kinds by name.
        schedules: its cron schedules.
    """

    def __init__(
        self,
        name: str,
        version: str,
        *,
        description: str = "",
        settings: type[BaseModel] | None = None,
        migrations: str | Path | None = None,
        scopes: Mapping[str, str] | None = None,
    ) -> None:
        if not _NAME.match(name):
            raise PluginError(f"bad plugin name {name!r}: use lower-case letters, digits and _")
        for scope in scopes or {}:
            prefix, _, word = scope.partition(":")
            if prefix != name or not _SCOPE_WORD.match(word):
                raise PluginError(f"plugin {name}: scope {scope!r} must be {name}:<lower-case word>")
        self.scopes: dict[str, str] = dict(scopes or {})
        self.name = name
        self.version = version
        self.description = description
        self.settings = settings
        self.migrations = Path(migrations) if migrations else None
        self.routes = web.RouteTableDef()
        self.public_routes: set[str] = set()
        self.on_cleanup: list[Callable[[], Awaitable[None]]] = []  # run when the service's app stops
        # OpenAPI of its routes: {"paths": {route path: path item}, "schemas": {name: schema}}, added
        # to /openapi.json under /v1/plugins/<name>/ (routes without it are mounted, not described)
        self.openapi: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, JobSpec] = {}
        self.schedules: list[Schedule] = []

    def requires(self, scope: str) -> Callable[[F], F]:
        """Decorator of a route handler (under its route decorator): the route needs ``scope``, one
        this plugin declares."""
        if scope not in self.scopes:
            raise PluginError(f"plugin {self.name}: route scope {scope!r} is not one it declares ({self.scopes})")

        def mark(handler: F) -> F:
            setattr(handler, SCOPE_ATTRIBUTE, scope)
            return handler

        return mark

    def public(self, method: str, path: str) -> None:
        """Mark ``METHOD path`` (a path of ``routes``) as authenticating its requests itself."""
        self.public_routes.add(f"{method.upper()} /{path.lstrip('/')}")

    def kind(self, job: str) -> str:
        return job if "." in job else f"{self.name}.{job}"

    def add_job(self, spec: JobSpec) -> JobSpec:
        if not _NAME.match(spec.name):
            raise PluginError(f"bad job name {spec.name!r} in plugin {self.name}")
        if spec.name in self.jobs:
            raise PluginError(f"plugin {self.name} declares job {spec.name} twice")
        if spec.max_tries < 1:
            raise PluginError(f"job {self.kind(spec.name)}: max_tries must be at least 1")
        if not inspect.iscoroutinefunction(spec.fn):
            raise PluginError(f"job {self.kind(spec.name)} must be an async function")
        self.jobs[spec.name] = spec
        return spec

    def job(
        self,
        name: str | None = None,
        *,
        params: type[BaseModel] | None = None,
        max_tries: int = DEFAULT_MAX_TRIES,
        priority: int = PRIORITY_NORMAL,
        concurrency: int = 0,
        timeout_s: float | None = None,
        long_running: bool = False,
        result_ttl_s: float = RESULT_TTL_S,
    ) -> Callable[[JobFn], JobFn]:
        """Decorator: declare ``fn`` as a job. The parameter model defaults to the annotation of
        ``fn``'s second parameter."""

        def register(fn: JobFn) -> JobFn:
            model = params or _params_model(fn)
            self.add_job(
                JobSpec(
                    name=name or fn.__name__,
                    fn=fn,
                    params=model,
                    max_tries=max_tries,
                    priority=priority,
                    concurrency=concurrency,
                    timeout_s=timeout_s,
                    long_running=long_running,
                    result_ttl_s=result_ttl_s,
                    description=(inspect.getdoc(fn) or "").split("\n")[0],
                )
            )
            return fn

        return register

    def schedule(self, name: str, cron: str, job: str, params: Mapping[str, Any] | None = None) -> Schedule:
        from croniter import croniter

        if not croniter.is_valid(cron):
            raise PluginError(f"schedule {self.name}.{name}: bad cron expression {cron!r}")
        if any(s.name == name for s in self.schedules):
            raise PluginError(f"plugin {self.name} declares schedule {name} twice")
        sched = Schedule(name, cron, job, dict(params or {}))
        self.schedules.append(sched)
        return sched

    def __repr__(self) -> str:
        return f"Plugin({self.name!r}, {self.version!r}, jobs={sorted(self.jobs)})"


def principal_of(request: web.Request) -> Principal | None:
    """Who is asking, in a plugin's route handler: the token's or the signed-in user's principal
    (``token_id``, ``name``, ``scopes``, ``kind``, the OIDC ``subject`` and ``email``), for the
    plugin's own records of who did what."""
    return request.get(PRINCIPAL)


def _params_model(fn: JobFn) -> type[BaseModel]:
    try:
        hints = get_type_hints(fn)
    except Exception as e:  # unresolvable forward references
        raise PluginError(f"job {fn.__name__}: cannot read its annotations ({e}); pass params=") from e
    names = list(inspect.signature(fn).parameters)
    model = hints.get(names[1]) if len(names) > 1 else NoParams
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise PluginError(f"job {fn.__name__}: annotate its second parameter with a pydantic model")
    return model


@dataclass(frozen=True)
class RouteContext:
    """What a plugin's route handler gets besides the request (``route_context(request)``).

    Attributes:
        plugin: the plugin that declares the route.
        settings: the plugin's settings (an instance of ``plugin.settings``), or None.
        database: the service's database (``write()``/``read()`` give SQLAlchemy async connections).
        principal: who made the request (``token_id``, ``name``, ``scopes``, ``allows(scope)``);
            None on a public route.
        blobs: the service's blob store (where jobs keep their outputs), or None.
    """

    plugin: Plugin
    settings: BaseModel | None
    database: Any
    principal: Any
    blobs: BlobStore | None = None


ROUTE_CONTEXT = web.RequestKey("katopotato.plugin.route", RouteContext)


def route_context(request: web.Request) -> RouteContext:
    """The context the host put on a plugin route's request."""
    return request[ROUTE_CONTEXT]


@runtime_checkable
class Notifier(Protocol):
    """Where jobs send messages for people (chat, e-mail, …); the service provides one."""

    async def notify(self, message: str, *, subject: str = "", level: str = "info", **fields: Any) -> None: ...


class LogNotifier:
    """The default notifier: a log line."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.log = logger or logging.getLogger("katopotato.notify")

    async def notify(self, message: str, *, subject: str = "", level: str = "info", **fields: Any) -> None:
        lvl = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        self.log.log(lvl, "%s%s", f"{subject}: " if subject else "", message, extra={"fields": fields})


class JobQueue(Protocol):
    """What a job's context needs of the scheduler (``katopotato.scheduler.Scheduler`` is one):
    enqueue, cancel, wait for and read jobs, on a broker."""

    @property
    def broker(self) -> Broker: ...

    async def enqueue(
        self,
        kind: str,
        params: BaseModel | Mapping[str, Any] | None = None,
        *,
        priority: int | None = None,
        idempotency_key: str | None = None,
        defer_s: float = 0.0,
        parent_id: str | None = None,
    ) -> Job: ...

    async def cancel(self, job_id: str) -> Job: ...

    async def wait_all(self, job_ids: Sequence[str], *, timeout_s: float | None = None) -> list[Job]: ...

    async def result(self, job_id: str) -> Any: ...

    async def dead_letters(self, *, limit: int = 100) -> list[Job]: ...


class _SlotLender(Protocol):
    def lend_slot(self) -> Any: ...


class JobContext:
    """What a running job gets besides its parameters.

    Attributes:
        job: the job record as claimed (``job.tries`` is this try's number, from 1).
        plugin: the plugin that declares the job.
        settings: the plugin's settings (an instance of ``plugin.settings``), or None.
        blobs: the blob store.
        notifier: where to send messages for people.
        database: the service's database (an async session factory), or None in a bare worker.
        broker: the broker (keyed state and streams; first-party jobs use it, plugins rarely).
        scheduler: the job queue (a ``JobQueue``; ``enqueue``, ``wait`` and ``map`` use it).
        log: a logger named after the job kind.
    """

    def __init__(
        self,
        job: Job,
        plugin: Plugin,
        *,
        scheduler: JobQueue,
        blobs: BlobStore,
        notifier: Notifier,
        settings: BaseModel | None = None,
        database: Any = None,
        report: Callable[[float, float | None, str], Awaitable[None]] | None = None,
        slots: _SlotLender | None = None,
        last_try: bool = False,
    ) -> None:
        self.job = job
        self.plugin = plugin
        self.settings = settings
        self.blobs = blobs
        self.notifier = notifier
        self.database = database
        self.scheduler = scheduler
        self.broker: Broker = scheduler.broker
        self.log = logging.getLogger(f"katopotato.jobs.{job.kind}")
        self.last_try = last_try
        self._report = report
        self._slots = slots
        self._children = 0

    async def progress(self, done: float, total: float | None = None, message: str = "") -> None:
        """Report progress (seen by ``GET /v1/jobs/{id}`` and its event stream)."""
        if self._report is not None:
            await self._report(done, total, message)

    async def enqueue(
        self,
        kind: str,
        params: BaseModel | Mapping[str, Any] | None = None,
        *,
        priority: int | None = None,
        idempotency_key: str | None = None,
        defer_s: float = 0.0,
    ) -> Job:
        """Enqueue a child job. Its idempotency key defaults to this job's id and the child's
        position, so a retried parent that enqueues the same children does not double them."""
        self._children += 1
        key = idempotency_key or f"{self.job.id}/child/{self._children}"
        return await self.scheduler.enqueue(
            self.plugin.kind(kind),
            params,
            priority=priority,
            idempotency_key=key,
            defer_s=defer_s,
            parent_id=self.job.id,
        )

    async def wait(self, jobs: Sequence[Job | str], *, timeout_s: float | None = None) -> list[Job]:
        """Wait until every job has finished; returns their final records. While it waits, this
        job's worker slot is lent out, so children can run on the same worker."""
        ids = [j if isinstance(j, str) else j.id for j in jobs]
        if self._slots is None:
            return await self.scheduler.wait_all(ids, timeout_s=timeout_s)
        with self._slots.lend_slot():
            return await self.scheduler.wait_all(ids, timeout_s=timeout_s)

    async def map(
        self,
        kind: str,
        params: Sequence[BaseModel | Mapping[str, Any]],
        *,
        timeout_s: float | None = None,
        priority: int | None = None,
    ) -> list[Any]:
        """Fan out: one child job per parameter set, wait for all, return their results in order.
        Raises JobFailed (or JobCancelled) naming the first child that did not succeed."""
        children = [await self.enqueue(kind, p, priority=priority) for p in params]
        done = await self.wait(children, timeout_s=timeout_s)
        for job in done:
            if job.status is JobStatus.CANCELLED:
                raise JobCancelled(f"child job {job.id} ({job.kind}) was cancelled")
            if job.status is not JobStatus.SUCCEEDED:
                raise JobFailed(f"child job {job.id} ({job.kind}) failed: {job.error}")
        return [await self.scheduler.result(job.id) for job in done]


__all__ = [
    "PRINCIPAL",
    "PRIORITY_BATCH",
    "PRIORITY_INTERACTIVE",
    "PRIORITY_LIVE",
    "PRIORITY_NORMAL",
    "ROUTE_CONTEXT",
    "Abort",
    "BlobStore",
    "JobContext",
    "JobQueue",
    "JobSpec",
    "LogNotifier",
    "NoParams",
    "Notifier",
    "Plugin",
    "Principal",
    "Retry",
    "RouteContext",
    "Schedule",
    "principal_of",
    "route_context",
]
