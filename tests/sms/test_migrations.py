"""The host applies the plugin's own Alembic branch ``sms`` with the core's migrations at start."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from katopotato.db import Database
from katopotato.db.database import MIGRATIONS
from katopotato.errors import ConfigError
from plugins.sms import plugin

from .conftest import Sms, start_sms
from .standin import Standin

SMS_TABLES = {
    "sms_campaigns", "sms_texters", "sms_contacts", "sms_messages", "sms_opt_outs", "sms_opt_out_log", "sms_answers",
}  # fmt: skip


def core_head() -> str:
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def sms_head() -> str:
    assert plugin.migrations is not None
    [head] = ScriptDirectory(str(MIGRATIONS), version_locations=[str(plugin.migrations)]).get_heads()
    return head


async def schema_of(sms: Sms) -> tuple[set[str], set[str]]:
    """The database's tables and its Alembic version rows."""
    async with sms.service.db.read() as conn:
        tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        versions = {str(v) for v in (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars()}
    return tables, versions


async def started_twice(tmp_path: Path, standin: Standin, url: str = "") -> None:
    async with start_sms(tmp_path, standin, url) as sms:
        tables, versions = await schema_of(sms)
        assert tables >= SMS_TABLES and "api_tokens" in tables
        assert versions == {core_head(), sms_head()} and sms_head().startswith("sms_")
        status, c = await sms.call("POST", "campaigns", json={"title": "kept", "script": "hi"})
        assert status == 201
    async with start_sms(tmp_path, standin, url) as sms:  # the same database: nothing to do, nothing lost
        assert await schema_of(sms) == (tables, versions)
        status, got = await sms.call("GET", f"campaigns/{c['id']}")
        assert status == 200 and got["title"] == "kept"


async def test_a_service_with_the_plugin_has_its_tables_on_its_branch(tmp_path: Path, standin: Standin) -> None:
    await started_twice(tmp_path, standin)


async def test_the_same_on_postgresql(tmp_path: Path, standin: Standin) -> None:
    from tests.servers import server_missing
    from tests.service.conftest import _pg_available, pg_database

    why = _pg_available()
    if why:
        server_missing(why)
    async with pg_database() as url:
        await started_twice(tmp_path, standin, url)


async def test_without_the_plugin_the_database_says_which_is_missing(tmp_path: Path) -> None:
    assert plugin.migrations is not None
    url = f"sqlite+aiosqlite:///{tmp_path / 'kp.db'}"
    db = Database(url)
    try:
        await db.start({"sms": plugin.migrations})
        await db.start({"sms": plugin.migrations})  # again: idempotent
        with pytest.raises(ConfigError, match="no longer loaded"):
            await db.start()
    finally:
        await db.close()


async def test_a_plugin_revision_off_its_branch_is_refused(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "x_0001.py").write_text(
        'revision = "x_0001"\ndown_revision = None\nbranch_labels = None\ndepends_on = None\n\n\n'
        "def upgrade() -> None:\n    pass\n"
    )
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'kp.db'}")
    try:
        with pytest.raises(ConfigError, match="branch labelled 'x'"):
            await db.start({"x": versions})
        (versions / "x_0001.py").write_text(
            'revision = "0001"\ndown_revision = None\nbranch_labels = ("x",)\ndepends_on = None\n\n\n'
            "def upgrade() -> None:\n    pass\n"
        )
        with pytest.raises(ConfigError, match="0001 is present more than once"):  # the core's 0001
            await db.start({"x": versions})
        (versions / "x_0001.py").write_text(
            'revision = "x0001"\ndown_revision = None\nbranch_labels = ("x",)\ndepends_on = None\n\n\n'
            "def upgrade() -> None:\n    pass\n"
        )
        with pytest.raises(ConfigError, match="must start with x_"):
            await db.start({"x": versions})
        with pytest.raises(ConfigError, match="does not exist"):
            await db.start({"x": tmp_path / "nowhere"})
    finally:
        await db.close()


START = """
import asyncio, sys
from pathlib import Path
from katopotato.db import Database

async def main() -> None:
    db = Database(sys.argv[1])
    try:
        await db.start({"sms": Path(sys.argv[2])})
    finally:
        await db.close()

asyncio.run(main())
"""


async def test_three_processes_starting_at_once_on_postgresql_all_start(tmp_path: Path) -> None:
    """API processes starting at once on one empty database: one migrates, the others wait for it and
    find it done (a PostgreSQL advisory lock), instead of failing on each other's CREATE TABLE."""
    import asyncio
    import sys

    from tests.servers import server_missing
    from tests.service.conftest import _pg_available, pg_database

    why = _pg_available()
    if why:
        server_missing(why)
    assert plugin.migrations is not None
    async with pg_database() as url:
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-c", START, url, str(plugin.migrations), stderr=asyncio.subprocess.PIPE
            )
            for _ in range(3)
        ]
        results = await asyncio.gather(*(p.communicate() for p in procs))
        assert [p.returncode for p in procs] == [0, 0, 0], [err.decode()[-2000:] for _, err in results]
        db = Database(url)
        try:
            async with db.read() as conn:
                rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
            assert sorted(rows) == sorted([core_head(), sms_head()])
        finally:
            await db.close()
