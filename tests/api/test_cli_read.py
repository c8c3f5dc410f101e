"""The ``labbook`` reading commands, as exact output over a store written by hand.

The store is three runs in the file-store layout with fixed times, so every line is known:
1 COMPLETED, 2 FAILED, 3 RUNNING with an old heartbeat (reported as DIED).
"""
from __future__ import annotations

import io
import json

import pytest

from labbook.cli.main import main


def write_run(base, run_id: int, config: dict, metrics: dict, info: dict | None = None,
              png: bytes = b"", **fields) -> None:
    d = base / str(run_id)
    d.mkdir(parents=True)
    doc = {"experiment": {"name": "mnist", "base_dir": "/src",
                          "sources": [["train.py", "_sources/train_0123.py"]]},
           "command": "train", "host": {"hostname": "box"}, "resources": [], "artifacts": [],
           "meta": {"command": "train", "options": {}, "tags": []}, "result": None,
           "heartbeat": None, "stop_time": None}
    doc.update(fields)
    (d / "run.json").write_text(json.dumps(doc))
    (d / "config.json").write_text(json.dumps(config))
    (d / "info.json").write_text(json.dumps(info or {}))
    (d / "metrics.json").write_text(json.dumps(
        {name: {"steps": list(range(len(values))), "values": values,
                "timestamps": [fields["start_time"]] * len(values)}
         for name, values in metrics.items()}))
    for name in doc["artifacts"]:
        (d / name).write_bytes(png if name.endswith(".png") else b"weights")


@pytest.fixture
def store(tmp_path, make_png):
    base = tmp_path / "runs"
    write_run(base, 1, {"lr": 0.01, "batch": 64, "optimizer": {"name": "sgd"}},
              {"loss": [1.0, 0.5, 0.25], "acc": [0.5, 0.8, 0.91]},
              status="COMPLETED", start_time="2024-05-01T10:00:00",
              stop_time="2024-05-01T10:05:30", heartbeat="2024-05-01T10:05:30", result=0.91,
              artifacts=["model.pt", "plot.png"], png=make_png(),
              meta={"command": "train", "options": {}, "tags": ["baseline"]})
    write_run(base, 2, {"lr": 0.1, "batch": 64, "optimizer": {"name": "adam"}},
              {"loss": [1.0, 2.0], "acc": [0.5, 0.1]},
              status="FAILED", start_time="2024-05-02T09:00:00",
              stop_time="2024-05-02T09:01:05", heartbeat="2024-05-02T09:01:05",
              fail_trace=["Traceback (most recent call last):\n", "RuntimeError: nan loss\n"],
              meta={"command": "train", "options": {}, "tags": [], "name": "wild"})
    write_run(base, 3, {"lr": 0.01, "batch": 128, "optimizer": {"name": "sgd"}},
              {"loss": [0.9]}, info={"tags": {"long": None}},
              status="RUNNING", start_time="2024-05-03T07:00:00",
              heartbeat="2024-05-03T08:00:00")
    (base / "_sources").mkdir()
    (base / "_sources" / "train_0123.py").write_text("print('train')\n")
    return base


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- ls ------------------------------------------------------------------------------------------
LS_ALL = """\
ID  NAME   STATUS     START                DURATION  RESULT
3   mnist  DIED       2024-05-03 07:00:00  -         -
2   wild   FAILED     2024-05-02 09:00:00  0:01:05   -
1   mnist  COMPLETED  2024-05-01 10:00:00  0:05:30   0.91
"""

LS_COLUMNS = """\
ID  NAME   config.lr  summary.loss  TAGS
1   mnist  0.01       0.25          baseline
3   mnist  0.01       0.9           long
"""


def test_ls_snapshots(store, capsys):
    assert run_cli(capsys, "ls", str(store)) == (0, LS_ALL, "")
    assert run_cli(capsys, "ls", "--store", f"file://{store}") == (0, LS_ALL, "")
    assert run_cli(capsys, "ls", str(store), "--filter", "config.lr < 0.05",
                   "--order", "start_time",
                   "--columns", "id,name,config.lr,summary.loss,tags") == (0, LS_COLUMNS, "")
    code, out, _ = run_cli(capsys, "ls", str(store), "--limit", "1")
    assert out.splitlines()[1].split()[:3] == ["3", "mnist", "DIED"]
    assert len(out.splitlines()) == 2


@pytest.mark.parametrize("flt, expected", [
    ('{"status": "FAILED"}', ["2"]),
    ("status = 'FAILED'", ["2"]),
    ("status = 'DIED'", ["3"]),
    ("config.optimizer.name = 'sgd' and config.batch > 100", ["3"]),
    ("tags contains 'baseline' or name = 'wild'", ["2", "1"]),
    ("summary.acc >= 0.9", ["1"]),
    ("config.lr > 1", []),
])
def test_ls_filters_json_or_text(store, capsys, flt, expected):
    code, out, err = run_cli(capsys, "ls", str(store), "--filter", flt)
    assert code == 0 and err == ""
    if not expected:
        assert out == "No runs.\n"
    else:
        assert [line.split()[0] for line in out.splitlines()[1:]] == expected


def test_ls_bad_filters(store, capsys):
    code, out, err = run_cli(capsys, "ls", str(store), "--filter", "config.lr >")
    assert code == 2 and out == ""
    assert err == ("Error: --filter: Expected a value, found the end of the filter at column 12:"
                   "\n  config.lr >\n             ^\n")
    code, _, err = run_cli(capsys, "ls", str(store), "--filter", "{nope")
    assert code == 2 and "--filter is not valid JSON" in err
    code, _, err = run_cli(capsys, "ls", str(store), "--limit", "ten")
    assert code == 2 and err == "Error: --limit takes a whole number, got 'ten'.\n"


# -- show, compare, open --------------------------------------------------------------------------
SHOW_3 = """\
Run 3 of mnist (train): DIED
  started  2024-05-03 07:00:00
  stopped  -  (after -)
  result   null
  config:
    batch = 128
    lr = 0.01
    optimizer:
      name = 'sgd'
  metrics (last value, points):
    loss = 0.9  (1 points)
"""

COMPARE = """\
Comparing runs 1, 2

            1                    2
  name      mnist                wild
  status    COMPLETED            FAILED
  start     2024-05-01 10:00:00  2024-05-02 09:00:00
  duration  0:05:30              0:01:05

config:
                  1     2
  batch           64    64
* lr              0.01  0.1
* optimizer.name  sgd   adam

summary:
        1     2
* acc   0.91  0.1
* loss  0.25  2

* = differs between the runs
"""


def test_show_snapshot(store, capsys):
    assert run_cli(capsys, "show", "3", "--store", str(store)) == (0, SHOW_3, "")


def test_compare_snapshot_and_html(store, capsys, tmp_path):
    assert run_cli(capsys, "compare", "1", "2", "--store", str(store)) == (0, COMPARE, "")
    html = tmp_path / "cmp.html"
    code, out, _ = run_cli(capsys, "compare", "1", "2", "3", "--store", str(store),
                           "--html", str(html))
    assert code == 0 and out.endswith(f"Wrote {html}\n")
    page = html.read_text()
    assert "<tr class='diff'><th>lr</th><td>0.01</td><td>0.1</td><td>0.01</td></tr>" in page
    assert "RuntimeError: nan loss" in page


def test_open_snapshot(store, capsys):
    expected = f"""\
Run 1 in {store}
  directory  {store}/1
  artifacts:
    model.pt  {store}/1/model.pt
    plot.png  {store}/1/plot.png
  sources:
    train.py  {store}/_sources/train_0123.py
"""
    assert run_cli(capsys, "open", "1", "--store", str(store)) == (0, expected, "")


@pytest.mark.parametrize("argv", [
    ("show", "9"), ("compare", "1", "9"), ("open", "9"), ("plot", "9", "--metric", "loss"),
    ("rm", "9", "--yes"),
])
def test_unknown_ids_are_a_clear_error(store, capsys, argv):
    code, out, err = run_cli(capsys, *argv, "--store", str(store))
    assert (code, out, err) == (1, "", f"Error: No run with id 9 in {store}.\n")


# -- export ----------------------------------------------------------------------------------------
EXPORT_CSV = """\
id,name,status,start_time,duration,config.batch,config.lr,config.optimizer.name,summary.acc,\
summary.loss
3,mnist,DIED,2024-05-03 07:00:00,,128,0.01,sgd,,0.9
2,wild,FAILED,2024-05-02 09:00:00,65.0,64,0.1,adam,0.1,2.0
1,mnist,COMPLETED,2024-05-01 10:00:00,330.0,64,0.01,sgd,0.91,0.25
"""


def test_export_csv_snapshot(store, capsys, tmp_path):
    assert run_cli(capsys, "export", "--store", str(store)) == (0, EXPORT_CSV, "")
    out_file = tmp_path / "runs.csv"
    code, out, _ = run_cli(capsys, "export", "--store", str(store), "--out", str(out_file))
    assert (code, out) == (0, f"Wrote 3 run(s) to {out_file}\n")
    assert out_file.read_text() == EXPORT_CSV


def test_export_json_and_filter(store, capsys):
    code, out, _ = run_cli(capsys, "export", "--store", str(store), "--format", "json",
                           "--filter", "status != 'DIED'", "--order", "_id")
    assert code == 0
    rows = json.loads(out)
    assert [r["id"] for r in rows] == [1, 2]
    assert rows[0]["config.optimizer.name"] == "sgd" and rows[0]["summary.acc"] == 0.91
    assert rows[0]["start_time"].startswith("2024-05-01T10:00:00")


def test_export_parquet(store, capsys, tmp_path):
    pytest.importorskip("pyarrow")
    import pandas

    target = tmp_path / "runs.parquet"
    code, out, _ = run_cli(capsys, "export", "--store", str(store), "--format", "parquet",
                           "--out", str(target))
    assert (code, out) == (0, f"Wrote 3 run(s) to {target}\n")
    frame = pandas.read_parquet(target)
    assert frame["id"].tolist() == [3, 2, 1]
    assert frame["config.lr"].tolist() == [0.01, 0.1, 0.01]


def test_export_refuses_bad_formats(store, capsys):
    code, _, err = run_cli(capsys, "export", "--store", str(store), "--format", "xml")
    assert code == 2 and err == "Error: --format must be csv, json or parquet, not 'xml'.\n"
    code, _, err = run_cli(capsys, "export", "--store", str(store), "--format", "parquet")
    assert code == 2 and "needs --out FILE" in err


# -- plot ------------------------------------------------------------------------------------------
def test_plot_writes_a_png(store, capsys, tmp_path, monkeypatch):
    target = tmp_path / "loss.png"
    code, out, _ = run_cli(capsys, "plot", "1", "2", "--metric", "loss", "--out", str(target),
                           "--store", str(store))
    assert (code, out) == (0, f"Wrote {target}\n")
    assert target.read_bytes().startswith(b"\x89PNG")
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "plot", "1", "3", "--metric", "acc", "--store", str(store))
    assert (code, out) == (0, "Wrote acc.png (runs without it: 3)\n")
    assert (tmp_path / "acc.png").exists()
    code, _, err = run_cli(capsys, "plot", "3", "--metric", "acc", "--store", str(store))
    assert (code, err) == (1, "Error: No run among 3 logged a metric 'acc' (logged: loss).\n")


# -- rm --------------------------------------------------------------------------------------------
class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_rm_refuses_without_a_terminal(store, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", Pipe("y\n"))
    code, out, err = run_cli(capsys, "rm", "2", "--store", str(store))
    assert (code, out) == (1, "")
    assert err == ("Error: Refusing to delete run 2 (wild, FAILED) without --yes: standard "
                   "input is not a terminal to confirm on.\n")
    assert (store / "2").is_dir()


def test_rm_asks_on_a_terminal(store, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", FakeTTY("n\n"))
    code, out, err = run_cli(capsys, "rm", "2", "--store", str(store))
    assert (code, out) == (0, "Nothing deleted.\n")
    assert err == "Delete run 2 (wild, FAILED) with its metrics and artifacts? [y/N] "
    assert (store / "2").is_dir()
    monkeypatch.setattr("sys.stdin", FakeTTY("y\n"))
    code, out, _ = run_cli(capsys, "rm", "2", "--store", str(store))
    assert (code, out) == (0, "Deleted run 2 (wild, FAILED).\n")
    assert not (store / "2").exists()


def test_rm_with_yes(store, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", Pipe(""))
    code, out, _ = run_cli(capsys, "rm", "1", "--yes", "--store", str(store))
    assert (code, out) == (0, "Deleted run 1 (mnist, COMPLETED).\n")
    assert not (store / "1").exists() and (store / "_sources").is_dir()
    code, out, _ = run_cli(capsys, "ls", str(store))
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["3", "2"]


def test_usage_lists_the_reading_commands(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for command in ("ls", "show", "compare", "export", "plot", "rm", "open", "sync"):
        assert f"  labbook {command} " in out
