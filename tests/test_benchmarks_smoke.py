"""The benchmark command works (quick mode, labbook only); its figures are not asserted."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quick_benchmark_prints_a_table(tmp_path):
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "run.py"), "--quick", "--only-labbook",
         "--scratch", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "benchmark" in proc.stdout and "labbook" in proc.stdout
    assert "log_scalar" in proc.stdout and "empty ex.run()" in proc.stdout
    # the read-back table: every store measured, or skipped with its reason
    for kind in ("file", "sqlite", "mongo"):
        assert f"{kind}: " in proc.stdout
    assert "file: 100 runs: 1st page, config + summary filter" in proc.stdout
    assert "sqlite: 100 runs: to_dataframe()" in proc.stdout
