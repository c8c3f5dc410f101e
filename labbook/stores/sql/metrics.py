"""Metrics in the SQL store: appending points, reading series whole, sampled or page by
page, the last values and the counts.

One row per point in ``metrics`` (run_id, name, step, value, special, time_us): non-finite
values are ``value`` NULL plus ``special`` = 'nan' / 'inf' / '-inf' (MySQL has no NaN and
SQLite turns NaN into NULL), and so is -0.0 (``special`` '-0': SQLite and MariaDB keep no sign
of zero); times are integer microseconds since 1970-01-01 UTC, read back as
naive UTC datetimes. Each run's last values are kept in ``runs.last_metrics``.

:class:`MetricsMixin` is part of :class:`~labbook.stores.sql.store.SqlStore`; it uses the
store's transactions (``_read``/``_write``), its engine and its dialect.
"""
from __future__ import annotations

import array
import itertools
import math
import operator
import struct
from typing import Any, Iterable, Iterator

import sqlalchemy as sa

from labbook import clock
from labbook.errors import SqlStoreError
from labbook.stores.base import sample_positions
from labbook.stores.sql.engine import retry_deadlocks
from labbook.stores.sql.schema import metrics, runs
from labbook.stores.sql.values import as_run_id, in_chunks, short_name

__all__ = ["MetricsMixin"]


def _special(value: float) -> str | None:
    """The ``special`` column of a metric value: 'nan', 'inf', '-inf', '-0' (SQLite and
    MariaDB store -0.0 as 0) or None (finite)."""
    if value - value == 0.0:
        if value or math.copysign(1.0, value) > 0:
            return None
        return "-0"
    return "nan" if value != value else ("inf" if value > 0 else "-inf")


_SPECIAL_VALUES = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "-0": -0.0}
_NEGATIVE_ZERO = struct.pack("=d", -0.0)


def _has_negative_zero(values: list[float]) -> bool:
    """Whether -0.0 may be among ``values`` (at C speed; a rare false positive only costs the
    slow path)."""
    return 0.0 in values and array.array("d", values).tobytes().find(_NEGATIVE_ZERO) >= 0


_RUN_AND_NAME = operator.itemgetter(0, 1)


def _microseconds(stamps: list | None, n: int) -> Iterable[int | None]:
    """``time_us`` for ``n`` points: microseconds since the epoch, None where no time."""
    if not stamps:
        return itertools.repeat(None, n)
    if len(stamps) != n:
        raise SqlStoreError(f"{n} metric steps but {len(stamps)} timestamps.")
    try:
        return clock.to_microseconds(stamps)
    except TypeError as exc:
        raise SqlStoreError(f"A metric timestamp is no time: {exc}") from None


def _plain_rows(conn: sa.Connection, stmt: sa.Select, size: int = 2000
                ) -> Iterator[list[tuple]]:
    """The rows of ``stmt`` in lists of up to ``size``, as the driver returns them: tuples,
    no SQLAlchemy ``Row`` per row (for columns of plain numbers and strings, which need no
    result processing). Small lists, not all rows at once: tuples that die young never reach
    the old generation, so the garbage collector does not rescan a million of them (and the
    long series being built) over and over."""
    result = conn.execute(stmt)
    try:
        if result.cursor is None:
            return
        while True:
            rows = result.cursor.fetchmany(size)
            if not rows:
                return
            yield rows
    finally:
        result.close()


def _integral_step(name: str, step: Any) -> int:
    try:
        as_int = int(step)
        if as_int == step:
            return as_int
    except (TypeError, ValueError, OverflowError):
        pass
    raise SqlStoreError(f"Metric '{name}': steps must be integers, got {step!r:.80}.")


class MetricsMixin:
    """The points of metric series, one row each."""

    #: append_metrics takes timestamps as clock.Micros (what the table holds)
    takes_micros = True

    @retry_deadlocks
    def append_metrics(self, run_id: Any, metrics_by_name: dict[str, dict[str, list]]) -> None:
        rid = self._existing_id(run_id)
        # (has a special value, rows) per metric, in the order given
        parts: list[tuple[bool, Iterable[tuple]]] = []
        last: dict[str, float] = {}
        for name, series in metrics_by_name.items():
            short_name("metric name", name)
            steps = series["steps"]
            n = len(steps)
            if not n:
                continue
            if set(map(type, steps)) != {int}:
                steps = [_integral_step(name, step) for step in steps]
            values = list(map(float, series["values"]))
            if len(values) != n:
                raise SqlStoreError(f"Metric '{name}': {n} steps but {len(values)} values.")
            times = _microseconds(series.get("timestamps"), n)
            last[name] = values[-1]
            # NaN and +-inf make the sum non-finite (a finite overflow only costs the slow path)
            if math.isfinite(sum(values)) and not _has_negative_zero(values):
                parts.append((False, zip(itertools.repeat(rid, n), itertools.repeat(name, n),
                                         steps, values, times)))
            else:
                specials = [_special(value) for value in values]
                values = [None if special else value
                          for value, special in zip(values, specials)]
                parts.append((True, zip(itertools.repeat(rid, n), itertools.repeat(name, n),
                                        steps, values, specials, times)))
        if not parts:
            return
        with self._write() as conn:
            for special, group in itertools.groupby(parts, operator.itemgetter(0)):
                columns = (("run_id", "name", "step", "value", "special", "time_us") if special
                           else ("run_id", "name", "step", "value", "time_us"))
                self._insert_metric_rows(conn, columns, itertools.chain.from_iterable(
                    rows for _, rows in group))
            # the summary of the run, in the same transaction as its points
            current = conn.execute(sa.select(runs.c.last_metrics)
                                   .where(runs.c.id == rid)).scalar()
            conn.execute(runs.update().where(runs.c.id == rid)
                         .values(last_metrics={**(current or {}), **last}))

    def _insert_metric_rows(self, conn: sa.Connection, columns: tuple[str, ...],
                            rows: Iterable[tuple]) -> None:
        """Rows straight to the driver, with no per-row SQLAlchemy processing: ``COPY`` with
        psycopg 3, else one ``executemany`` (sqlite3 loops in C, PyMySQL rewrites it into
        multi-row INSERTs)."""
        mark = "?" if self.dialect_name == "sqlite" else "%s"
        sql = (f"INSERT INTO metrics ({', '.join(columns)}) "
               f"VALUES ({', '.join([mark] * len(columns))})")
        dbapi_error = self._engine.dialect.loaded_dbapi.Error
        cursor = conn.connection.cursor()
        try:
            if self.dialect_name == "postgresql" and hasattr(cursor, "copy"):
                sql = f"COPY metrics ({', '.join(columns)}) FROM STDIN"
                with cursor.copy(sql) as copy:
                    for row in rows:
                        copy.write_row(row)
            elif self._is_mysql and self._engine.dialect.driver == "pymysql":
                def quote(name: str) -> str:
                    return cursor.mogrify("%s", (name,))

                for sql in self._mysql_inserts(quote, columns, rows):
                    cursor.execute(sql)
            else:
                cursor.executemany(sql, rows)
        except dbapi_error as exc:
            raise sa.exc.DBAPIError.instance(sql, None, exc, dbapi_error,
                                             dialect=self._engine.dialect) from exc
        finally:
            cursor.close()

    def _mysql_inserts(self, quote: Any, columns: tuple[str, ...], rows: Iterable[tuple]
                       ) -> Iterator[str]:
        """Multi-row INSERT statements of at most ~1 MB for MySQL, written directly: what
        PyMySQL's ``executemany`` makes, without escaping every number through its generic
        encoders. Only the metric name is text (quoted by the driver's ``mogrify``, which
        knows the server's quoting mode, once per name); run ids, steps and times are
        ``int``, values ``float`` (finite: repr is exact), ``special`` one of three fixed
        words."""
        head = f"INSERT INTO metrics ({', '.join(columns)}) VALUES "
        limit = min(1_000_000, self._chunk_size * 2)
        quoted: dict[str, str] = {}
        parts: list[str] = []
        length = len(head)
        with_special = "special" in columns
        for row in rows:
            if with_special:
                rid, name, step, value, special, micros = row
            else:
                rid, name, step, value, micros = row
                special = None
            text = quoted.get(name)
            if text is None:
                text = quoted[name] = quote(name)
            if with_special:
                part = (f"({rid},{text},{step},{'NULL' if value is None else repr(value)},"
                        f"{'NULL' if special is None else repr(special)},"
                        f"{'NULL' if micros is None else micros})")
            else:
                part = (f"({rid},{text},{step},{'NULL' if value is None else repr(value)},"
                        f"{'NULL' if micros is None else micros})")
            if parts and length + len(part) > limit:
                yield head + ",".join(parts)
                parts, length = [], len(head)
            parts.append(part)
            length += len(part) + 1
        if parts:
            yield head + ",".join(parts)
    _SERIES_COLUMNS = (metrics.c.run_id, metrics.c.name, metrics.c.step, metrics.c.value,
                       metrics.c.special, metrics.c.time_us)

    @staticmethod
    def _collect(batches: Iterable[list[tuple]], out: dict[int, dict[str, dict[str, list]]]
                 ) -> None:
        """Add lists of ``(run_id, name, step, value, special, time_us)`` rows (in id order)
        to ``{run_id: {name: series}}``; timestamps stay microseconds until :func:`_finish`.
        A heartbeat's points of one metric are consecutive rows: handled a group at a time."""
        for rows in batches:
            for (rid, name), group in itertools.groupby(rows, _RUN_AND_NAME):
                _, _, steps, values, specials, micros = zip(*group)
                history = out.get(rid)
                if history is None:
                    history = out[rid] = {}
                series = history.get(name)
                if series is None:
                    series = history[name] = {"steps": [], "values": [], "timestamps": []}
                series["steps"].extend(steps)
                if any(specials):
                    values = tuple(_SPECIAL_VALUES[special] if special else value
                                   for value, special in zip(values, specials))
                series["values"].extend(values)
                series["timestamps"].extend(micros)

    @staticmethod
    def _finish(history: dict[str, dict[str, list]]) -> dict[str, dict[str, list]]:
        for series in history.values():
            series["timestamps"] = clock.from_microseconds(series["timestamps"])
        return history

    @staticmethod
    def _names(names: Iterable[str] | None) -> list[str] | None:
        return None if names is None else list(names)

    def history(self, run_id: Any, names: Iterable[str] | None = None
                ) -> dict[str, dict[str, list]]:
        return self._finish(self._history_micros(run_id, names))

    def history_for_copy(self, run_id: Any) -> dict[str, dict[str, list]]:
        """The stored microseconds go out as they are (:class:`~labbook.clock.Micros`)."""
        history = self._history_micros(run_id, None)
        for series in history.values():
            series["timestamps"] = clock.Micros(series["timestamps"])
        return history

    def _history_micros(self, run_id: Any, names: Iterable[str] | None
                        ) -> dict[str, dict[str, list]]:
        rid = as_run_id(run_id)
        names = self._names(names)
        if rid is None or names == []:
            return {}
        stmt = (sa.select(*self._SERIES_COLUMNS).where(metrics.c.run_id == rid)
                .order_by(metrics.c.id))
        if names is not None:
            stmt = stmt.where(metrics.c.name.in_(names))
        out: dict[int, dict[str, dict[str, list]]] = {}
        with self._read() as conn:
            self._collect(_plain_rows(conn, stmt), out)
        return out.get(rid, {})

    def history_many(self, run_ids: Iterable[Any], names: Iterable[str] | None = None
                     ) -> dict[Any, dict[str, dict[str, list]]]:
        """``{run_id: history}`` for many runs: one query per 500 run ids."""
        keys = list(run_ids)
        names = self._names(names)
        wanted = sorted({rid for rid in map(as_run_id, keys) if rid is not None})
        out: dict[int, dict[str, dict[str, list]]] = {}
        if wanted and names != []:
            with self._read() as conn:
                for chunk in in_chunks(wanted):
                    stmt = (sa.select(*self._SERIES_COLUMNS)
                            .where(metrics.c.run_id.in_(chunk))
                            .order_by(metrics.c.id))
                    if names is not None:
                        stmt = stmt.where(metrics.c.name.in_(names))
                    self._collect(_plain_rows(conn, stmt), out)
        result: dict[Any, dict[str, dict[str, list]]] = {}
        finished: set[int] = set()
        for key in keys:
            rid = as_run_id(key)
            history = out.get(rid, {}) if rid is not None else {}
            if rid is not None and rid not in finished:
                self._finish(history)
                finished.add(rid)
            result[key] = history
        return result

    def last_steps(self, run_id: Any) -> dict[str, int]:
        """One ``MAX(step) ... GROUP BY name`` on the (run, name, step) index."""
        rid = as_run_id(run_id)
        if rid is None:
            return {}
        stmt = (sa.select(metrics.c.name, sa.func.max(metrics.c.step))
                .where(metrics.c.run_id == rid).group_by(metrics.c.name))
        with self._read() as conn:
            return {name: int(step) for name, step in conn.execute(stmt) if step is not None}

    def last_values(self, run_ids: Iterable[Any]) -> dict[Any, dict[str, Any]]:
        """``{run_id: {metric: last value}}`` in one query per 500 runs, from the
        ``last_metrics`` column that every append of points keeps up to date."""
        keys = list(run_ids)
        wanted = sorted({rid for rid in map(as_run_id, keys) if rid is not None})
        found: dict[int, dict[str, Any]] = {}
        if wanted:
            with self._read() as conn:
                for chunk in in_chunks(wanted):
                    stmt = sa.select(runs.c.id, runs.c.last_metrics).where(
                        runs.c.id.in_(chunk))
                    for rid, last in conn.execute(stmt):
                        found[rid] = last or {}
        out: dict[Any, dict[str, Any]] = {}
        for key in keys:
            rid = as_run_id(key)
            out[key] = dict(found.get(rid, {})) if rid is not None else {}
        return out

    def iter_series(self, run_id: Any, name: str, page_size: int = 1000, *,
                    times: bool = True) -> Iterator[dict[str, list]]:
        """Pages of one metric by (step, id), each one query on the (run, name, step) index.
        A page starts with ``step >= last step`` (a range the index seeks to: the OR alone made
        SQLite and MariaDB scan the series from its start for every page, quadratic in its
        length) and then leaves out the points of that step already yielded. ``times``
        False: pages without ``timestamps`` (the column is not read)."""
        rid = as_run_id(run_id)
        if rid is None:
            return
        columns = [metrics.c.id, metrics.c.step, metrics.c.value, metrics.c.special]
        if times:
            columns.append(metrics.c.time_us)
        # two statements built once, their values bound at each page (building a statement
        # costs as much as the database's reading of a page of a thousand points)
        first = sa.select(*columns).where(metrics.c.run_id == rid, metrics.c.name == name)
        after_step, after_id = sa.bindparam("after_step"), sa.bindparam("after_id")
        rest = first.where(metrics.c.step >= after_step,
                           sa.or_(metrics.c.step > after_step, metrics.c.id > after_id))
        # MariaDB would take the index for (run_id, name) alone and walk the series from its
        # start on every page: the hint makes it a range on (..., step, id)
        first, rest = [stmt.order_by(metrics.c.step, metrics.c.id).limit(page_size).with_hint(
            metrics, "FORCE INDEX (ix_metrics_run_name_step_id)", "mysql").with_hint(
            metrics, "FORCE INDEX (ix_metrics_run_name_step_id)", "mariadb")
            for stmt in (first, rest)]
        stmt, params = first, None
        while True:
            with self._read() as conn:
                result = conn.execute(stmt, params)
                # the driver's tuples: these columns need no conversion, and SQLAlchemy's
                # Row objects cost as much again as the database's reading of the rows
                rows = result.cursor.fetchall()
                result.close()
            if not rows:
                return
            last = rows[-1]
            stmt, params = rest, {"after_step": last[1], "after_id": last[0]}
            columns = list(map(list, zip(*rows)))  # columns, at C speed
            values, specials = columns[2], columns[3]
            if any(specials):
                values = [_SPECIAL_VALUES[special] if special else value
                          for value, special in zip(values, specials)]
            page = {"steps": columns[1], "values": values}
            if times:
                page["timestamps"] = clock.from_microseconds(columns[4])
            yield page
            if len(rows) < page_size:
                return

    def metric_counts(self, run_ids: Iterable[Any]) -> dict[Any, dict[str, int]]:
        """``{run_id: {metric: points}}``, counted by the database (index only)."""
        keys = list(run_ids)
        wanted = sorted({rid for rid in map(as_run_id, keys) if rid is not None})
        found: dict[int, dict[str, int]] = {}
        with self._read() as conn:
            for chunk in in_chunks(wanted):
                stmt = (sa.select(metrics.c.run_id, metrics.c.name, sa.func.count())
                        .where(metrics.c.run_id.in_(chunk))
                        .group_by(metrics.c.run_id, metrics.c.name))
                for rid, name, count in conn.execute(stmt):
                    found.setdefault(rid, {})[name] = int(count)
        return {key: dict(found.get(as_run_id(key), {})) for key in keys}

    def history_sampled(self, run_id: Any, names: Iterable[str] | None = None,
                        samples: int | None = 500) -> dict[str, dict[str, list]]:
        """``history`` cut down to the points at :func:`~labbook.stores.base.sample_positions`
        (by position in write order), reading only those rows."""
        if samples is None:
            return self.history(run_id, names)
        rid = as_run_id(run_id)
        names = self._names(names)
        if rid is None or names == []:
            return {}
        count_stmt = (sa.select(metrics.c.name, sa.func.count(), sa.func.min(metrics.c.id),
                                sa.func.max(metrics.c.id))
                      .where(metrics.c.run_id == rid).group_by(metrics.c.name))
        if names is not None:
            count_stmt = count_stmt.where(metrics.c.name.in_(names))
        out: dict[int, dict[str, dict[str, list]]] = {}
        with self._read() as conn:
            counts = sorted(conn.execute(count_stmt).all(), key=lambda row: row[2])
            whole = [row[0] for row in counts if row[1] <= samples]
            picks = {name: (n, first, last) for name, n, first, last in counts if n > samples}
            if whole:
                self._collect(_plain_rows(
                    conn, sa.select(*self._SERIES_COLUMNS)
                    .where(metrics.c.run_id == rid, metrics.c.name.in_(whole))
                    .order_by(metrics.c.id)), out)
            for name, (n, first, last) in picks.items():
                positions = sample_positions(n, samples)
                if last - first + 1 == n:
                    # the series holds every id from its first to its last (a metric logged
                    # alone): the id at a position is its first id plus the position
                    chosen = [first + i for i in positions]
                    self._collect(self._rows_by_id(conn, chosen), out)
                else:
                    self._collect(self._sampled_rows(conn, rid, name, list(positions)), out)
        history = out.get(rid, {})
        # names in the order of their first point, as history() gives them
        return self._finish({row[0]: history[row[0]] for row in counts if row[0] in history})

    def _rows_by_id(self, conn: sa.Connection, chosen: list[int]) -> Iterator[list[tuple]]:
        """The rows of the ids ``chosen`` (sorted), in lists."""
        for chunk in in_chunks(chosen):
            yield from _plain_rows(
                conn, sa.select(*self._SERIES_COLUMNS)
                .where(metrics.c.id.in_(chunk))
                .order_by(metrics.c.id))

    def _sampled_rows(self, conn: sa.Connection, rid: int, name: str, positions: list[int]
                      ) -> Iterator[list[tuple]]:
        """The rows of one metric at ``positions`` (0-based, in id order), in lists."""
        if self.dialect_name == "sqlite":
            # the ids alone come from the (run_id, name, step) index, which also holds the
            # row id; sorting them is cheap (they nearly always come sorted already)
            cursor = conn.connection.cursor()
            try:
                ids = [row[0] for row in cursor.execute(
                    "SELECT id FROM metrics WHERE run_id = ? AND name = ?", (rid, name))]
            finally:
                cursor.close()
            ids.sort()
            chosen = [ids[i] for i in positions if i < len(ids)]
        else:
            # numbered on the server; only the ids go through the window (much faster on
            # MariaDB than numbering whole rows)
            position = (sa.func.row_number().over(order_by=metrics.c.id) - 1).label("position")
            ranked = (sa.select(metrics.c.id, position)
                      .where(metrics.c.run_id == rid, metrics.c.name == name).subquery())
            chosen = sorted(conn.execute(sa.select(ranked.c.id)
                                         .where(ranked.c.position.in_(positions))).scalars())
        yield from self._rows_by_id(conn, chosen)
