"""``labbook show`` and ``compare`` list the user's metrics first and the sampled ``system.*``
metrics in a block of their own (they no longer lead every summary)."""
from __future__ import annotations

import datetime as dt

import pytest

from labbook import Api
from labbook.cli.main import main
from labbook.stores import open_store

T0 = dt.datetime(2024, 5, 1, 10, 0, 0)


def _record(url: str, run_id: int, acc: float) -> None:
    store = open_store(url)
    doc = {"experiment": {"name": "sys", "sources": []}, "command": "main",
           "host": {"hostname": "box"}, "start_time": T0, "config": {"lr": 0.1 * run_id},
           "meta": {"command": "main"}, "status": "RUNNING", "resources": [], "artifacts": [],
           "captured_out": "", "info": {}, "heartbeat": T0, "result": None}
    store.create_run(doc, run_id)
    series = {"acc": [0.5, acc], "zloss": [2.0, 1.0], "system.cpu_percent": [10.0, 12.5],
              "system.memory_percent": [40.0, 41.0]}
    store.append_metrics(run_id, {name: {"steps": [0, 1], "values": values,
                                         "timestamps": [T0, T0]}
                                  for name, values in series.items()})
    store.update_run(run_id, {"status": "COMPLETED", "stop_time": T0 + dt.timedelta(seconds=5),
                              "heartbeat": T0 + dt.timedelta(seconds=5), "result": acc})


@pytest.fixture(params=["file", "mongo"])
def url(request, tmp_path):
    if request.param == "mongo":  # system metrics in their own collection, read back the same
        pytest.importorskip("pymongo")
        url = request.getfixturevalue("server_databases").new("mongo", request)
    else:
        url = f"file://{tmp_path / 'runs'}"
    _record(url, 1, 0.8)
    _record(url, 2, 0.9)
    return url


def test_show_lists_the_users_metrics_first_and_system_metrics_apart(url, capsys):
    assert main(["show", "1", "--store", url]) == 0
    out = capsys.readouterr().out.splitlines()
    start = out.index("  metrics (last value, points):")
    assert out[start:start + 6] == [
        "  metrics (last value, points):",
        "    acc = 0.8  (2 points)",
        "    zloss = 1.0  (2 points)",
        "  system metrics (last value, points):",
        "    system.cpu_percent = 12.5  (2 points)",
        "    system.memory_percent = 41.0  (2 points)"]


def test_compare_puts_system_metrics_in_their_own_block(url, capsys):
    assert main(["compare", "1", "2", "--store", url]) == 0
    out = capsys.readouterr().out
    summary = out.split("summary:\n", 1)[1].split("\n\n", 1)[0]
    assert [line.split()[:2] for line in summary.splitlines()[1:]] == [
        ["*", "acc"], ["zloss", "1"]]
    system = out.split("system metrics:\n", 1)[1].split("\n\n", 1)[0]
    assert [line.split()[0] for line in system.splitlines()[1:]] == [
        "system.cpu_percent", "system.memory_percent"]
    assert out.index("summary:") < out.index("system metrics:")
    # nothing dropped: the stored series are all still there
    assert sorted(Api(url).run(1).summary) == ["acc", "system.cpu_percent",
                                               "system.memory_percent", "zloss"]


def test_html_comparison_has_a_separate_system_metrics_table(url):
    pytest.importorskip("matplotlib")
    from labbook.report import compare_runs

    api = Api(url)
    page = compare_runs(api.run(1), api.run(2))
    summary = page.split("<h2>Summary</h2>", 1)[1].split("<h2>", 1)[0]
    assert "<th>acc</th>" in summary and "system.cpu_percent" not in summary
    system = page.split("<h2>System metrics</h2>", 1)[1].split("<h2>", 1)[0]
    assert "<th>system.cpu_percent</th>" in system and "<th>acc</th>" not in system
