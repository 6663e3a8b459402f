"""The database: one async SQLAlchemy engine, migrated on start.

SQLite (aiosqlite) is the embedded default, in WAL mode with full fsync so a committed event
survives a crash of the process or the machine; writes from this process are serialised by one
lock so that two sessions committing at once never meet ``database is locked``. PostgreSQL
(asyncpg) is used as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import warnings
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ..errors import ConfigError

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 10_000
MIGRATION_LOCK_KEY = 0x6B61746F  # PostgreSQL advisory lock held while migrating ("kato")
log = logging.getLogger(__name__)


class Database:
    """Owns the engine. ``await db.start()`` migrates; ``db.write()``/``db.read()`` give connections.

    Attributes:
        url: the SQLAlchemy async URL.
        dialect: ``sqlite`` or ``postgresql``.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ConfigError(f"unsupported database {url!r}: use SQLite or PostgreSQL")
        if self.dialect == "sqlite" and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "postgresql":
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    async def start(self, plugins: Mapping[str, Path] | None = None) -> None:
        """Bring the schema to the newest migration: the core's, and each plugin's in ``plugins``
        (name → its Alembic versions directory, a branch labelled with the plugin's name)."""
        await self.migrate(plugins=plugins)

    async def migrate(self, revision: str = "heads", *, plugins: Mapping[str, Path] | None = None) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.run_sync(_upgrade, revision, dict(plugins or {}))
        except (SQLAlchemyError, OSError, CommandError) as e:
            hint = ""
            if isinstance(e, CommandError) and "locate revision" in str(e):
                hint = " (a plugin that migrated this database is no longer loaded: install it again)"
            raise ConfigError(f"cannot open or migrate the database {self.safe_url}: {_first_line(e)}{hint}") from e

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside a transaction, committed on exit (rolled back on error)."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
    finally:
        cur.close()


def _upgrade(conn: Connection, revision: str, plugins: dict[str, Path]) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    locations = [MIGRATIONS / "versions", *plugins.values()]
    cfg.set_main_option("version_locations", os.pathsep.join(str(p).replace("%", "%%") for p in locations))
    cfg.attributes["connection"] = conn
    _check_branches(ScriptDirectory.from_config(cfg), plugins)
    if conn.dialect.name == "postgresql":  # processes starting at once: one migrates, the others then find it done
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    command.upgrade(cfg, revision)


def _check_branches(script: ScriptDirectory, plugins: dict[str, Path]) -> None:
    """Every revision in a plugin's directory is on the branch labelled with its name, its id prefixed
    with that name (no two plugins, nor a plugin and the core, share one); the core's on no plugin's branch."""
    where = {Path(p).resolve(): name for name, p in plugins.items()}
    for folder, name in where.items():
        if not folder.is_dir():
            raise ConfigError(f"plugin {name}: its migrations directory {folder} does not exist")
    with warnings.catch_warnings(record=True) as caught:  # Alembic only warns of a revision id seen twice
        warnings.simplefilter("always")
        try:
            revisions = list(script.walk_revisions())
        finally:  # also when the map it built is broken by the duplicate: the duplicate is the news
            for w in caught:
                if "more than once" in str(w.message):
                    raise ConfigError(f"migrations: {w.message} (the core's and a plugin's, or two plugins')")
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    for rev in revisions:
        owner = where.get(Path(rev.path).resolve().parent)
        labels = set(rev.branch_labels)
        if owner is None and labels & set(plugins):
            raise ConfigError(f"migration {rev.revision} of the core is on a plugin's branch {sorted(labels)}")
        if owner is not None and not rev.revision.startswith(f"{owner}_"):
            raise ConfigError(f"migration {rev.revision} of plugin {owner}: its revision id must start with {owner}_")
        if owner is not None and labels != {owner}:
            raise ConfigError(
                f"migration {rev.revision} of plugin {owner} must be on the branch labelled {owner!r} alone "
                f"(its first revision: down_revision = None, branch_labels = ({owner!r},)); it is on {sorted(labels)}"
            )


def _first_line(e: BaseException) -> str:
    text = str(getattr(e, "orig", None) or e)
    return text.splitlines()[0] if text else type(e).__name__


__all__ = ["Database"]
