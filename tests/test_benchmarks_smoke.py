"""The benchmark command works (quick mode, labbook only); its figures are not asserted."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quick_benchmark_prints_a_table(tmp_path):
    report = tmp_path / "RESULTS.md"
    latest = tmp_path / "latest.json"
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "run.py"), "--quick", "--only-labbook",
         "--scratch", str(tmp_path), "--output", str(latest), "--results-md", str(report),
         "--note", "smoke test"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "benchmark" in out and "labbook" in out
    assert "log_scalar" in out and "empty ex.run()" in out
    # the read-back table: every store measured, or skipped with its reason
    for kind in ("file", "sqlite", "mongo"):
        assert f"{kind}: " in out
    assert "file: 100 runs: 1st page, config + summary filter" in out
    assert "sqlite: 100 runs: to_dataframe()" in out
    # the rows of the speed issue
    assert "first ex.run() of a process, file obs." in out
    assert "  first - warm" in out
    assert "file: 100 runs: to_dataframe() [vs plain json loop]" in out
    assert "MLflow search_runs of 100 runs: skipped (--only-labbook)" in out
    assert "sync() of 1e+04 points, file -> sqlite" in out
    assert "sync() of 1e+04 points, file -> file" in out
    assert "whole `labbook sync SRC DST` process" in out
    for kind in ("file", "sqlite", "postgresql", "mysql", "mongo"):  # measured or skipped
        assert f"{kind}: scan_history" in out
    for kind in ("file", "sqlite"):
        assert f"{kind}: peak RSS, run logging 1e+04 points" in out
        assert f"{kind}: 1e+04 points, whole ex.run()" in out
    # labbook ui: the table's first page and a long run's page, server time
    assert "sqlite: ui, 100 runs: 1st page (GET /), cold app" in out
    assert "server time to the first chart (page + sample)" in out

    # the Markdown report: the machine, the versions and the same table
    text = report.read_text()
    assert text.startswith("# Benchmark results")
    assert "CPUs" in text and "CPython" in text and "labbook 0." in text
    assert "MLflow: skipped (--only-labbook)" in text and "smoke test" in text
    assert "first ex.run() of a process, file obs." in text

    data = json.loads(latest.read_text())
    assert data["quick"] is True
    rss = [row for row in data["rows"] if row["group"] == "peak_rss"]
    assert rss and all(row["unit"] == "MB" for row in rss)
    # figures that say a store held every point were checked inside the workloads; a
    # measured peak is a positive number of megabytes
    assert all(row["labbook"] > 0 for row in rss if row["labbook"] is not None)


def test_a_failing_benchmark_is_reported_and_the_others_still_run(tmp_path, capsys,
                                                                  monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "labbook_bench_run", os.path.join(ROOT, "benchmarks", "run.py"))
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)

    def broken(pythons, size):
        raise run.BenchError("python workloads/x.py failed:\nTraceback (most recent call "
                             "last):\nValueError: the store held 3 points, not 4\n")

    monkeypatch.setitem(run.RUNNERS, "config", broken)
    monkeypatch.setitem(run.RUNNERS, "import", lambda pythons, size: {
        "labbook": {"importtime_cumulative_ms": 12.0, "wall_ms": 14.0}})
    monkeypatch.setenv("PYTHONPATH", ROOT)
    report = tmp_path / "RESULTS.md"
    status = run.main(["--quick", "--only-labbook", "--only", "config,import",
                       "--scratch", str(tmp_path), "--output", str(tmp_path / "latest.json"),
                       "--results-md", str(report)])
    out = capsys.readouterr().out
    assert status == 1
    assert "config: FAILED (ValueError: the store held 3 points, not 4)" in out
    assert "benchmarks FAILED: config" in out
    line = next(x for x in out.splitlines() if x.startswith("import: -X importtime cumulative"))
    assert "| 12.0 ms" in line
    assert "Benchmarks that FAILED (no figures): config." in report.read_text()
