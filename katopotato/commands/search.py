"""``katopotato search reindex``: rebuild the Elasticsearch index from the database.

The next generation of the index is built from the ``segments`` table while searches go on on the
current one; the alias then moves to it in one step and the old one is dropped. Safe while the
service runs (its indexer adds what is committed meanwhile). Only for an Elasticsearch
``COUCHPOTATO_SEARCH``: the FTS5 and PostgreSQL indexes live in the database's own transactions.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ..db import Database
from ..errors import ConfigError
from ..search.elasticsearch import ElasticsearchSearch
from ..settings import Settings


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("search", help="maintain the search index", description=__doc__)
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML settings file (also $COUCHPOTATO_CONFIG)")
    sub = p.add_subparsers(dest="search_command", required=True)
    r = sub.add_parser("reindex", help="rebuild the Elasticsearch index from the database")
    r.set_defaults(handler=reindex)


async def reindex(args: argparse.Namespace) -> int:
    settings = Settings.load(config=args.config)
    if not settings.search_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"COUCHPOTATO_SEARCH={settings.search_url}: only an Elasticsearch index is rebuilt; "
            "the database's own index is always whole"
        )
    db = Database(settings.database_url)
    es = ElasticsearchSearch(settings.search_url, db, run_indexer=False)
    began = time.monotonic()
    try:
        await db.start()
        await es.start()
        index = await es.reindex()
    finally:
        await es.close()
        await db.close()
    print(f"katopotato: the search index is now {index} ({time.monotonic() - began:.1f} s)", file=sys.stderr)
    return 0
