"""The plugin host: the registry of plugins, their job kinds, schedules and settings.

``load_plugins`` builds a registry from the entry-point group ``couchpotato.plugins`` (the built-in
plugins ``core`` and ``transcription``, registered in this project's ``pyproject.toml``, and the
plugins installed with pip) and explicit ``module:attribute`` specs. An entry point names a
``Plugin`` or a callable returning one. The host imports no plugin itself.
Settings of each plugin come from a mapping ``{plugin name: {field: value}}`` and are validated
against the plugin's settings model when it is added, so a bad setting fails at start-up in one line.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import ConfigError, InvalidParams, PluginError, UnknownKind
from .plugin import JobSpec, Plugin, Schedule

ENTRY_POINT_GROUP = "couchpotato.plugins"
BUILTIN_PLUGINS = ("core", "transcription")  # entry points of this project itself
log = logging.getLogger("katopotato.plugins")


@dataclass(frozen=True)
class ScheduledJob:
    """A schedule with the kind it enqueues: ``name`` is ``<plugin>.<schedule>``."""

    name: str
    cron: str
    kind: str
    params: dict[str, Any]


def _one_line(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


class PluginRegistry:
    """Plugins by name; job kinds by ``plugin.job``."""

    def __init__(
        self, plugins: Iterable[Plugin] = (), *, settings: Mapping[str, Mapping[str, Any]] | None = None
    ) -> None:
        self._plugins: dict[str, Plugin] = {}
        self._settings_in = {k: dict(v) for k, v in (settings or {}).items()}
        self._settings: dict[str, BaseModel | None] = {}
        for p in plugins:
            self.add(p)

    def add(self, plugin: Plugin) -> Plugin:
        if not isinstance(plugin, Plugin):
            raise PluginError(f"{plugin!r} is not a katopotato.plugin.Plugin")
        if plugin.name in self._plugins:
            raise PluginError(f"two plugins are named {plugin.name}")
        values = self._settings_in.get(plugin.name, {})
        if plugin.settings is None:
            if values:
                raise ConfigError(f"plugin {plugin.name} has no settings, got {', '.join(sorted(values))}")
            self._settings[plugin.name] = None
        else:
            try:
                self._settings[plugin.name] = plugin.settings.model_validate(values)
            except ValidationError as e:
                raise ConfigError(f"settings of plugin {plugin.name}: {_one_line(e)}") from e
        for sched in plugin.schedules:
            kind = plugin.kind(sched.job)
            if kind.partition(".")[0] == plugin.name and kind.partition(".")[2] not in plugin.jobs:
                raise PluginError(f"schedule {plugin.name}.{sched.name} names unknown job {sched.job}")
        self._plugins[plugin.name] = plugin
        return plugin

    @property
    def plugins(self) -> list[Plugin]:
        return list(self._plugins.values())

    def get(self, name: str) -> Plugin:
        try:
            return self._plugins[name]
        except KeyError:
            raise PluginError(f"no plugin named {name}; registered: {', '.join(self._plugins)}") from None

    def kinds(self) -> list[str]:
        return [p.kind(j) for p in self._plugins.values() for j in p.jobs]

    def spec(self, kind: str) -> tuple[Plugin, JobSpec]:
        plugin_name, _, job = kind.partition(".")
        plugin = self._plugins.get(plugin_name)
        if plugin is None or job not in plugin.jobs:
            raise UnknownKind(f"unknown job kind {kind!r}; known kinds: {', '.join(self.kinds()) or 'none'}")
        return plugin, plugin.jobs[job]

    def settings_for(self, plugin: str) -> BaseModel | None:
        return self._settings.get(plugin)

    def validate(self, kind: str, params: BaseModel | Mapping[str, Any] | None) -> dict[str, Any]:
        """Parameters checked against the kind's model, as JSON-ready values."""
        _, spec = self.spec(kind)
        try:
            if isinstance(params, spec.params):
                model = params
            elif isinstance(params, BaseModel):
                model = spec.params.model_validate(params.model_dump())
            else:
                model = spec.params.model_validate(dict(params or {}))
        except ValidationError as e:
            raise InvalidParams(f"bad parameters for {kind}: {_one_line(e)}") from e
        return model.model_dump(mode="json")

    def schedules(self) -> list[ScheduledJob]:
        return [
            ScheduledJob(f"{p.name}.{s.name}", s.cron, p.kind(s.job), dict(s.params))
            for p in self._plugins.values()
            for s in p.schedules
        ]

    def migrations(self) -> dict[str, Path]:
        """The plugins' own Alembic versions directories, by plugin name (its branch label)."""
        return {p.name: p.migrations for p in self._plugins.values() if p.migrations is not None}

    def scopes(self) -> dict[str, str]:
        """Every scope the plugins declare, name → what it allows."""
        return {scope: text for p in self._plugins.values() for scope, text in p.scopes.items()}

    def describe(self) -> list[dict[str, Any]]:
        """What ``GET /v1/plugins`` shows: plugins, their jobs with parameter schemas, schedules."""
        out = []
        for p in self._plugins.values():
            out.append(
                {
                    "name": p.name,
                    "version": p.version,
                    "description": p.description,
                    "jobs": [
                        {
                            "kind": p.kind(j.name),
                            "description": j.description,
                            "params_schema": j.params.model_json_schema(),
                            "max_tries": j.max_tries,
                            "priority": j.priority,
                            "concurrency": j.concurrency,
                        }
                        for j in p.jobs.values()
                    ],
                    "schedules": [_describe_schedule(p, s) for s in p.schedules],
                    "has_routes": len(p.routes) > 0,
                    "scopes": dict(p.scopes),
                    "settings_schema": p.settings.model_json_schema() if p.settings else None,
                }
            )
        return out


def _describe_schedule(p: Plugin, s: Schedule) -> dict[str, Any]:
    return {"name": s.name, "cron": s.cron, "kind": p.kind(s.job), "params": s.params}


def load_object(spec: str) -> Plugin:
    """A plugin from ``module:attribute`` (the attribute a Plugin or a callable returning one)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise PluginError(f"bad plugin spec {spec!r}: use module:attribute")
    try:
        obj: Any = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise PluginError(f"cannot load plugin {spec}: {e}") from e
    return _as_plugin(obj, spec)


def _as_plugin(obj: Any, where: str) -> Plugin:
    if callable(obj) and not isinstance(obj, Plugin):
        obj = obj()
    if not isinstance(obj, Plugin):
        raise PluginError(f"{where} is not a katopotato.plugin.Plugin (got {type(obj).__name__})")
    return obj


def _load_entry_point(ep: EntryPoint) -> Plugin:
    try:
        obj = ep.load()
    except Exception as e:
        raise PluginError(f"cannot load plugin entry point {ep.name} ({ep.value}): {e}") from e
    return _as_plugin(obj, f"entry point {ep.name} ({ep.value})")


def builtin_plugins() -> list[Plugin]:
    """The built-in plugins, from their entry points."""
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name in BUILTIN_PLUGINS}
    missing = [name for name in BUILTIN_PLUGINS if name not in found]
    if missing:
        raise PluginError(
            f"built-in plugin entry point(s) {', '.join(missing)} not registered:"
            " reinstall the package (pip install -e .)"
        )
    return [_load_entry_point(found[name]) for name in BUILTIN_PLUGINS]


def load_plugins(
    *,
    builtins: bool = True,
    installed: bool = True,
    extra: Iterable[str] = (),
    settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> PluginRegistry:
    """The registry: built-ins, then installed entry points, then ``extra`` ``module:attr`` specs.
    A broken installed plugin is an error (it would otherwise vanish from the service silently)."""
    registry = PluginRegistry(settings=settings)
    if builtins:
        for p in builtin_plugins():
            registry.add(p)
    if installed:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name not in BUILTIN_PLUGINS:
                registry.add(_load_entry_point(ep))
    for spec in extra:
        registry.add(load_object(spec))
    unknown = set(settings or {}) - {p.name for p in registry.plugins}
    if unknown:
        raise ConfigError(f"settings given for unknown plugin(s): {', '.join(sorted(unknown))}")
    return registry


__all__ = [
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginRegistry",
    "ScheduledJob",
    "builtin_plugins",
    "load_object",
    "load_plugins",
]
