"""The column types of the SQL store, defined once.

The tables in :mod:`labbook.stores.sql.schema` and the Alembic revisions in
``labbook/stores/sql/migrations/versions`` use these same objects. A revision must create the
same tables whatever later code does, so a type here never changes once a revision uses it: a
new kind of column gets a new name.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql as _mysql

__all__ = ["MYSQL_NAMES", "SHORT", "TABLE_OPTIONS", "name_type", "JSON", "LONG_TEXT", "BLOB",
           "TIME", "BIG_ID"]

#: SQLAlchemy's names of MariaDB/MySQL, which get their own variants of several types
MYSQL_NAMES = ("mysql", "mariadb")

#: longest status / command / experiment / metric name / tag stored in an indexed column
SHORT = 255

#: options of every table on MySQL: transactions and foreign keys, four-byte UTF-8
TABLE_OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def name_type(length: int) -> sa.types.TypeEngine:
    """A case-sensitive string (MySQL compares ``VARCHAR`` case-insensitively by default;
    names are case-sensitive keys)."""
    return sa.String(length).with_variant(
        _mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), *MYSQL_NAMES)


#: JSON, with Python's None stored as SQL NULL
JSON = sa.JSON(none_as_null=True)
#: text of any length (MySQL's TEXT stops at 64 KiB)
LONG_TEXT = sa.Text().with_variant(_mysql.LONGTEXT(), *MYSQL_NAMES)
#: bytes of any length (MySQL's BLOB stops at 64 KiB)
BLOB = sa.LargeBinary().with_variant(_mysql.LONGBLOB(), *MYSQL_NAMES)
#: a naive UTC datetime; MySQL's DATETIME drops the microseconds unless asked to keep them
TIME = sa.DateTime().with_variant(_mysql.DATETIME(fsp=6), *MYSQL_NAMES)
#: a 64-bit auto-numbered key; SQLite only auto-numbers a column declared exactly
#: INTEGER PRIMARY KEY (which is 64 bits there anyway)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
