"""Column types shared by the migrations, frozen: a revision must create the same tables
whatever later code does, so these never change (a new type gets a new name here)."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql as _mysql

MYSQL_NAMES = ("mysql", "mariadb")
SHORT = 255
TABLE_OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def name_type(length: int) -> sa.types.TypeEngine:
    """A case-sensitive string (MySQL compares ``VARCHAR`` case-insensitively by default)."""
    return sa.String(length).with_variant(
        _mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), *MYSQL_NAMES)


JSON = sa.JSON(none_as_null=True)
LONG_TEXT = sa.Text().with_variant(_mysql.LONGTEXT(), *MYSQL_NAMES)
BLOB = sa.LargeBinary().with_variant(_mysql.LONGBLOB(), *MYSQL_NAMES)
TIME = sa.DateTime().with_variant(_mysql.DATETIME(fsp=6), *MYSQL_NAMES)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
