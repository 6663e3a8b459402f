"""Alembic environment: migrations run only through ``katopotato.db.Database.migrate``.

The caller hands over an open connection in ``config.attributes["connection"]``, so migrations
run on the service's own (async) engine, inside one transaction.
"""

from __future__ import annotations

from alembic import context

from katopotato.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the migrations with katopotato.db.Database.migrate (katopotato serve)")
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
