"""Alembic's environment for labbook's SQL store.

The store runs the migrations itself, on its own connection and inside its cross-process
init lock (see ``labbook.stores.sql.migrations.upgrade``); the connection arrives in
``config.attributes["connection"]``. There is no offline (SQL script) mode.
"""
from alembic import context

from labbook.stores.sql.migrations import VERSION_TABLE

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("labbook's SQL migrations run from labbook.stores.sql.SqlStore, which "
                       "passes its connection in config.attributes['connection'].")
context.configure(connection=connection, target_metadata=None, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
