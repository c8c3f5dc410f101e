"""The runs of the SQL store: creating, updating, claiming, deleting and reading their
documents, and finding them with filters (translated by :mod:`labbook.stores.sql.compiler`).

:class:`RunsMixin` is part of :class:`~labbook.stores.sql.store.SqlStore`; it uses the store's
transactions (``_read``/``_write``) and its dialect.
"""
from __future__ import annotations

from typing import Any, Iterable

import sqlalchemy as sa

from labbook import clock, serialize
from labbook.errors import (ArgumentError, RunExistsError, RunNotFoundError, SqlRunIdError,
                            SqlStoreError)
from labbook.stores import query as _query
from labbook.stores.base import LAST_KEY, RUN_FIELDS, claim_order, replaceable
from labbook.stores.sql.compiler import ORDERABLE, Translator, key_columns
from labbook.stores.sql.engine import retry_deadlocks
from labbook.stores.sql.schema import (DEFAULTS, JSON_FIELDS, KEEP_NULL, NAME_FIELDS,
                                       RUN_TABLES, TIME_FIELDS, experiments, run_resources,
                                       run_sources, runs, tags_table)
from labbook.stores.sql.types import SHORT
from labbook.stores.sql.values import as_run_id, in_chunks, short_name, to_time

__all__ = ["file_rows", "RunsMixin"]


def file_rows(rid: int, entries: Any) -> list[dict]:
    """``run_resources`` / ``run_sources`` rows of ``[[name, md5], ...]`` entries."""
    rows = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, list | tuple) and len(entry) >= 2 and isinstance(entry[1], str) \
                and len(entry[1]) == 32:
            rows.append({"run_id": rid, "name": str(entry[0])[:1024], "md5": entry[1]})
    return rows


class RunsMixin:
    """Run documents in the ``runs`` table, with the rows that mirror their fields (the
    experiment's name, tags, resources and sources)."""

    # -- write side ------------------------------------------------------------------------------
    def _columns(self, fields: dict) -> tuple[dict, dict]:
        """Column values for run fields, and the fields without a column of their own."""
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in fields.items():
            if key == "_id":
                continue
            if key in JSON_FIELDS:
                values[key] = serialize.flatten(value)
                if key == "experiment":
                    name = value.get("name") if isinstance(value, dict) else None
                    # the column mirrors the name for indexing; NULL when it cannot
                    values["experiment_name"] = (
                        name if isinstance(name, str) and len(name) <= SHORT else None)
            elif key in TIME_FIELDS:
                values[key] = to_time(value)
            elif key in NAME_FIELDS:
                values[key] = short_name(key, value)
            elif key == "captured_out":
                text = value or ""
                if self.dialect_name == "postgresql" and "\x00" in text:
                    text = text.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL
                values[key] = text
            else:
                extra[key] = serialize.flatten(value)
        return values, extra

    def _ensure_experiment(self, conn: sa.Connection, name: str | None) -> None:
        if name is None:
            return
        found = conn.execute(sa.select(experiments.c.id)
                             .where(experiments.c.name == name)).first()
        if found is None:
            conn.execute(self._insert_ignore(experiments, {"name": name,
                                                           "created": clock.utcnow()}))

    @retry_deadlocks
    def create_run(self, doc: dict, run_id: Any = None, *, overwrite: bool = False) -> Any:
        values, extra = self._columns(doc)
        values["extra"] = extra or None
        if run_id is not None:
            wanted = as_run_id(run_id)
            if wanted is None:
                raise SqlRunIdError(f"The SQL store numbers runs with integers; cannot use the "
                                    f"run id {run_id!r}.")
            return self._create_with_id(values, wanted, overwrite)
        # deadlocks (many processes starting at once) are made again by retry_deadlocks
        try:
            return self._insert_run(values)
        except SqlStoreError as exc:
            # PostgreSQL: a run inserted with an explicit id can meet the sequence
            if not isinstance(exc.__cause__, sa.exc.IntegrityError):
                raise
        with self._write() as conn:
            self._sync_sequence(conn)
        return self._insert_run(values)

    def _insert_run(self, values: dict) -> int:
        with self._write() as conn:
            self._ensure_experiment(conn, values.get("experiment_name"))
            result = conn.execute(runs.insert().values(**values))
            rid = int(result.inserted_primary_key[0])
            self._write_related(conn, rid, values)
            return rid

    def _create_with_id(self, values: dict, run_id: int, overwrite: bool) -> int:
        full = {c.name: None for c in runs.columns if c.name != "id"}
        full.update(values)
        with self._write() as conn:
            self._ensure_experiment(conn, values.get("experiment_name"))
            exists = conn.execute(sa.select(runs.c.status, runs.c.start_time, runs.c.meta)
                                  .where(runs.c.id == run_id)).first()
            if exists:
                if not overwrite and not replaceable(exists._asdict()):
                    raise RunExistsError(
                        f"A run with id {run_id} already exists in {self._redacted}. Choose "
                        "another id, or leave the id out to get the next free one.")
                # the new run starts clean: the old one's points, files and tags go
                for table in RUN_TABLES:
                    conn.execute(table.delete().where(table.c.run_id == run_id))
                conn.execute(runs.update().where(runs.c.id == run_id).values(**full))
            else:
                conn.execute(runs.insert().values(id=run_id, **full))
                self._sync_sequence(conn)
            self._info_tag_keys.pop(run_id, None)
            self._write_related(conn, run_id, values)
        return run_id

    # -- rows that mirror a run's fields (tags, resources, sources) -------------------------------
    def _write_related(self, conn: sa.Connection, rid: int, doc: dict) -> None:
        """The tags, resources and sources rows of a new run."""
        self._write_tags(conn, rid, doc.get("meta"), doc.get("info"), fresh=True)
        for table, entries in ((run_resources, doc.get("resources")),
                               (run_sources, (doc.get("experiment") or {}).get("sources")
                                if isinstance(doc.get("experiment"), dict) else None)):
            rows = file_rows(rid, entries)
            if rows:
                conn.execute(table.insert(), rows)

    def _write_tags(self, conn: sa.Connection, rid: int, meta: Any, info: Any,
                    fresh: bool = False) -> None:
        """Make the run's rows of the tags table those of ``meta`` and ``info``."""
        def key(tag: str) -> str:
            # MySQL's PAD SPACE collations take 'a' and 'a ' for one key
            return tag.rstrip(" ") if self._is_mysql else tag

        wanted: dict[str, str] = {}
        for tag in _query.run_tags({"meta": meta, "info": info}):
            if len(tag) <= SHORT:
                wanted.setdefault(key(tag), tag)
        stored: dict[str, str] = {}
        if not fresh:
            stored = {key(t): t for t in conn.execute(
                sa.select(tags_table.c.tag).where(tags_table.c.run_id == rid)).scalars()}
        # row by row, never "delete where run_id": on InnoDB a delete that finds nothing
        # locks the gap, and runs created at the same time then deadlock on it
        for gone in stored.keys() - wanted.keys():
            conn.execute(tags_table.delete().where(tags_table.c.run_id == rid,
                                                   tags_table.c.tag == stored[gone]))
        new = [{"run_id": rid, "tag": tag} for k, tag in wanted.items() if k not in stored]
        if new:
            conn.execute(tags_table.insert(), new)
        valued = info.get("tags") if isinstance(info, dict) else None
        self._info_tag_keys[rid] = sorted(map(str, valued)) if isinstance(valued, dict) else []

    def _update_related(self, conn: sa.Connection, rid: int, fields: dict) -> None:
        """Keep the tags, resources and sources rows in step with changed fields."""
        if "meta" in fields or "info" in fields:
            info = fields.get("info")
            valued = info.get("tags") if isinstance(info, dict) else None
            keys = sorted(map(str, valued)) if isinstance(valued, dict) else []
            # a heartbeat (info only) with the same tags as before changes nothing
            if "meta" in fields or self._info_tag_keys.get(rid) != keys:
                stored = conn.execute(sa.select(runs.c.meta, runs.c.info)
                                      .where(runs.c.id == rid)).first()
                if stored is not None:
                    self._write_tags(conn, rid, fields.get("meta", stored.meta),
                                     fields.get("info", stored.info))
        for table, name in ((run_resources, "resources"), (run_sources, "experiment")):
            if name not in fields:
                continue
            entries = fields[name]
            if name == "experiment":
                entries = entries.get("sources") if isinstance(entries, dict) else None
            conn.execute(table.delete().where(table.c.run_id == rid))
            rows = file_rows(rid, entries)
            if rows:
                conn.execute(table.insert(), rows)

    def _sync_sequence(self, conn: sa.Connection) -> None:
        # PostgreSQL's sequence does not see explicit ids; SQLite and MySQL move on by themselves
        if self.dialect_name == "postgresql":
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('runs', 'id'), "
                "(SELECT COALESCE(MAX(id), 0) + 1 FROM runs), false)")

    @retry_deadlocks
    def update_run(self, run_id: Any, fields: dict) -> None:
        rid = self._existing_id(run_id)
        values, extra = self._columns(fields)
        with self._write() as conn:
            if extra:
                current = conn.execute(sa.select(runs.c.extra).where(runs.c.id == rid)).scalar()
                values["extra"] = {**(current or {}), **extra}
            if "experiment_name" in values:
                self._ensure_experiment(conn, values["experiment_name"])
            if not values:
                return
            result = conn.execute(runs.update().where(runs.c.id == rid).values(**values))
            if result.rowcount == 0:
                raise SqlStoreError(f"There is no run {run_id!r} in {self._redacted}.")
            self._update_related(conn, rid, values)

    @retry_deadlocks
    def update_if(self, run_id: Any, expected: dict, fields: dict) -> bool:
        # one UPDATE ... WHERE id = ? AND <expected columns>: the database decides who wins
        rid = as_run_id(run_id)
        if rid is None:
            return False
        columns = {"status": runs.c.status, "start_time": runs.c.start_time,
                   "heartbeat": runs.c.heartbeat}
        unknown = set(expected) - set(columns)
        if unknown:
            raise ArgumentError(f"update_if compares {', '.join(columns)}, not "
                                f"{', '.join(sorted(unknown))}.")
        conditions = [runs.c.id == rid] + [
            columns[k].is_(None) if v is None else columns[k] == v for k, v in expected.items()]
        values, extra = self._columns(fields)
        with self._write() as conn:
            if extra:
                current = conn.execute(sa.select(runs.c.extra).where(runs.c.id == rid)).scalar()
                values["extra"] = {**(current or {}), **extra}
            won = conn.execute(runs.update().where(*conditions).values(**values)).rowcount
            if won != 1:
                return False
            self._update_related(conn, rid, values)
        return True

    @retry_deadlocks
    def claim_queued(self, worker: str, experiment: str | None = None) -> dict | None:
        # Compare-and-set: UPDATE ... WHERE status = 'QUEUED' changes a row for one transaction
        # only (PostgreSQL and InnoDB re-check the condition after waiting for the row's lock;
        # SQLite writes one transaction at a time), so the loser moves on to the next run.
        stmt = sa.select(runs.c.id, runs.c.queue_time, runs.c.meta).where(
            runs.c.status == "QUEUED")
        if experiment is not None:
            stmt = stmt.where(runs.c.experiment_name == experiment)
        with self._read() as conn:
            queued = [{"_id": row.id, "queue_time": row.queue_time, "meta": row.meta}
                      for row in conn.execute(stmt)]
        for candidate in sorted(queued, key=claim_order):
            rid = candidate["_id"]
            with self._write() as conn:
                won = conn.execute(runs.update().where(runs.c.id == rid,
                                                       runs.c.status == "QUEUED")
                                   .values(status="RUNNING", heartbeat=clock.utcnow())).rowcount
                if won != 1:
                    continue
                meta = conn.execute(sa.select(runs.c.meta).where(runs.c.id == rid)).scalar()
                meta = dict(meta or {}, worker=worker)
                conn.execute(runs.update().where(runs.c.id == rid).values(meta=meta))
            return self.get(rid)
        return None

    @retry_deadlocks
    def delete_run(self, run_id: Any) -> None:
        """Delete the run, its metrics and artifacts; a blob goes too once no artifact, resource
        or source refers to it any more."""
        rid = as_run_id(run_id)
        with self._write() as conn:
            found = None if rid is None else conn.execute(
                sa.select(runs.c.id).where(runs.c.id == rid)).first()
            if found is None:
                raise RunNotFoundError(f"No run with id {run_id!r} in {self._redacted}.")
            md5s = self._blobs_of_run(conn, rid)
            # explicit deletes: SQLite enforces ON DELETE CASCADE only with a pragma
            for table in RUN_TABLES:
                conn.execute(table.delete().where(table.c.run_id == rid))
            conn.execute(runs.delete().where(runs.c.id == rid))
            self._info_tag_keys.pop(rid, None)
            self._drop_unreferenced_blobs(conn, md5s)

    # -- read side -------------------------------------------------------------------------------
    def _document(self, row: sa.Row, with_last: bool = False) -> dict:
        """The run document of a row (of the columns the row has); with ``with_last``, the
        run's last values under ``LAST_KEY``."""
        mapping = row._mapping
        doc: dict[str, Any] = {"_id": mapping["id"]}
        if with_last:
            doc[LAST_KEY] = mapping.get("last_metrics") or {}
        if "experiment" not in mapping and mapping.get("experiment_name") is not None:
            # a query that looks at the experiment's name only reads the name's column
            doc["experiment"] = {"name": mapping["experiment_name"]}
        for field in RUN_FIELDS:
            if field not in mapping:
                continue
            value = mapping[field]
            if value is None:
                default = DEFAULTS.get(field)
                if default is not None:
                    value = default()
                elif field not in KEEP_NULL:
                    continue
            doc[field] = value
        for key, value in (mapping.get("extra") or {}).items():
            doc.setdefault(key, value)
        return doc

    def get(self, run_id: Any) -> dict | None:
        rid = as_run_id(run_id)
        if rid is None:
            return None
        with self._read() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == rid)).first()
        return None if row is None else self._document(row)

    def find(self, filter: dict | None = None, order: str | None = None,
             limit: int | None = None, *, exclude: Iterable[str] = (),
             with_last: bool = False) -> list[dict]:
        """Runs matching ``filter`` (the query model of :mod:`labbook.stores.query`: document
        fields plus name, tags, notes, summary and the reported status), sorted by ``order``.

        The filter becomes a SQL condition that keeps every match (exact where it can be);
        each candidate is then checked in Python, the one source of truth. When the database
        cannot answer alone, a first query reads only the columns the filter and the order
        look at, and the documents of the runs kept are read afterwards, ``exclude``'d
        top-level fields (such as ``captured_out``) left out."""
        node = _query.parse(filter)
        order = _query.canonical_order(order)  # wandb's spellings (-created_at)
        where, exact = Translator(self.dialect_name, strings_exact=not self._is_mysql
                                  ).node(node)
        path = order.lstrip("+-") if order else None
        descending = bool(order) and order.startswith("-")
        column = ORDERABLE.get(path) if path else None
        if limit is not None and limit < 0:  # Python's slice meaning, as in the file store
            return self.find(filter, order, exclude=exclude, with_last=with_last)[:limit]
        wanted_heads = _query.heads(node, order)
        columns = self._document_columns(exclude, wanted_heads, with_last)
        if column is not None:
            # missing values last in both directions, ties by id: what sort_runs does
            key = column.desc() if descending else column.asc()
            ordering: tuple = (column.is_(None), key, runs.c.id)
        else:
            ordering = (runs.c.id,)
        now = clock.utcnow()
        if exact and (order is None or column is not None):
            # the database answers alone: documents straight away, limited
            stmt = sa.select(*columns).where(where).order_by(*ordering)
            if limit is not None:
                stmt = stmt.limit(limit)
            with self._read() as conn:
                docs = [self._document(row, with_last) for row in conn.execute(stmt)]
            # checked even when the SQL was exact: cheap, and the one source of truth
            return [d for d in docs if _query.evaluate_run(node, d, None, now)]
        # 1. the runs kept, from the columns the filter and the order need
        needed = key_columns(wanted_heads)
        stmt = sa.select(*needed).where(where).order_by(*ordering)
        kept: list[tuple[int, dict]] = []
        summary = "summary" in wanted_heads
        with self._read() as conn:
            for row in conn.execute(stmt):
                partial = self._document(row)
                view = _query.query_view(partial, row._mapping.get("last_metrics") if summary
                                         else None, now)
                if _query.evaluate(node, view):
                    kept.append((partial["_id"], view))
                    if column is not None and limit is not None and len(kept) >= limit:
                        break
        if order and column is None:
            kept = _query.sort_runs(kept, order, view=lambda item: item[1])
        ids = [rid for rid, _ in kept]
        if limit is not None:
            ids = ids[:limit]
        # 2. their documents
        found: dict[int, dict] = {}
        with self._read() as conn:
            for chunk in in_chunks(ids):
                stmt = sa.select(*columns).where(runs.c.id.in_(chunk))
                for row in conn.execute(stmt):
                    found[row._mapping["id"]] = self._document(row, with_last)
        return [found[rid] for rid in ids if rid in found]

    @staticmethod
    def _document_columns(exclude: Iterable[str], needed: set[str], with_last: bool) -> list:
        """The columns of a run's document, without the excluded fields nobody looks at (and
        the run's last values for ``with_last``)."""
        skip = {f for f in exclude if f not in needed and f in runs.c and f != "id"}
        return [c for c in runs.columns if c.name not in skip
                and (c.name != "last_metrics" or with_last)]
