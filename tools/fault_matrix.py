#!/usr/bin/env python3
"""Print the outage matrix and the secret grep of every store, measured by the fault tests.

    python tools/fault_matrix.py [--points N] [--only outages|secrets] [-k EXPR] [--json FILE]

Runs ``tests/faults/test_outages.py`` (every store taken away at the start, in the middle of a
run, recovering or not, frozen, and at the end; then ``labbook sync``) and
``tests/faults/test_secrets_not_stored.py`` (a password in the store URL, in an option and in a
config key, then every stored byte searched) against the real servers the tests use
(PostgreSQL, MariaDB, MongoDB through mongoeco; SQLite and the file store locally), with
``LABBOOK_TEST_REQUIRE_SERVERS=1`` so a missing server fails instead of skipping. The tests
append what they measured to a JSON-lines file; this script prints it as two tables:

- outages: store x moment x whether the store comes back during the run -> metric points
  logged, points journaled at the end (waiting for ``labbook sync``), points stored after the
  sync, and whether the stored run equals, field by field, the run an undisturbed store holds;
- secrets: per store, the bytes searched (files, every row of every table, every document,
  the journal) and the occurrences of the secret found in them.

``--points`` sets the metric points per series and phase of the outage script (50 by default;
the script logs two series in three phases); ``-k`` passes a selection to pytest (``-k mongo``).
The exit status is pytest's.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = {
    "outages": ["tests/faults/test_outages.py::test_network_store_outage",
                "tests/faults/test_outages.py::test_sqlite_locked_longer_than_the_busy_timeout",
                "tests/faults/test_outages.py::test_file_store_directory_unwritable"],
    "secrets": ["tests/faults/test_secrets_not_stored.py"],
}
STORE_ORDER = ["file", "sqlite", "postgresql", "mysql", "mongo"]
WHEN_ORDER = ["start", "mid", "mid (locked)", "mid (unwritable)", "mid (frozen)", "mid (-m/-s)",
              "end"]


def run_tests(which: list[str], points: int, figures: Path, select: str | None = None) -> int:
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    for name in which:
        args += TESTS[name]
    if select:
        args += ["-k", select]
    env = dict(os.environ, LABBOOK_FAULT_FIGURES=str(figures), LABBOOK_TEST_REQUIRE_SERVERS="1",
               LABBOOK_OUTAGE_POINTS_PER_PHASE=str(points))
    return subprocess.call(args, cwd=ROOT, env=env)


def _rank(order: list[str], value: str) -> tuple[int, str]:
    return (order.index(value) if value in order else len(order), value)


def outage_table(rows: list[dict]) -> list[str]:
    lines = ["| store | when | store back during the run | points logged | journaled at end "
             "| stored after `labbook sync` | run = undisturbed run |",
             "|---|---|---|---:|---:|---:|---|"]
    rows = sorted(rows, key=lambda r: (_rank(STORE_ORDER, r["store"]),
                                       _rank(WHEN_ORDER, r["when"]), r["recovers"]))
    for r in rows:
        lines.append(f"| {r['store']} | {r['when']} | {r['recovers']} | {r['logged']:,} | "
                     f"{r['journaled']:,} | {r['stored']:,} | "
                     f"{'yes' if r['same_as_undisturbed'] else 'NO'} |")
    lost = sum(r["logged"] - r["stored"] for r in rows)
    lines.append(f"\n{len(rows)} outages, {sum(r['logged'] for r in rows):,} points logged, "
                 f"{lost:,} lost.")
    return lines


def secret_table(rows: list[dict]) -> list[str]:
    lines = ["| store (how it was named) | bytes searched | occurrences of the secret |",
             "|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['secret']} | {r['bytes']:,} | {r['hits']} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=50,
                        help="metric points per series and phase of the outage script")
    parser.add_argument("--only", choices=sorted(TESTS), help="run one of the two")
    parser.add_argument("-k", dest="select", help="pytest's -k: which tests")
    parser.add_argument("--json", help="also write the measured rows to this JSON-lines file")
    args = parser.parse_args(argv)
    which = [args.only] if args.only else ["outages", "secrets"]
    with tempfile.TemporaryDirectory() as tmp:
        figures = Path(tmp) / "figures.jsonl"
        figures.touch()
        status = run_tests(which, args.points, figures, args.select)
        rows = [json.loads(line) for line in figures.read_text().splitlines() if line]
    if args.json:
        Path(args.json).write_text("".join(json.dumps(r) + "\n" for r in rows))
    outages = [r for r in rows if "store" in r]
    secrets = [r for r in rows if "secret" in r]
    if outages:
        print("\n".join(["", "Outage matrix"] + outage_table(outages)))
    if secrets:
        print("\n".join(["", "Secret grep"] + secret_table(secrets)))
    return status


if __name__ == "__main__":
    sys.exit(main())
