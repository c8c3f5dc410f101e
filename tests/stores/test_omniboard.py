"""Omniboard 2.16.1 shows the runs labbook writes to MongoDB as it shows the runs Sacred 0.8.7
writes: the same script (only its import differs) records into two databases of the test
MongoDB server, and Omniboard's REST API (what its web pages ask) answers the same for both.

``setup_omniboard.sh`` installs Omniboard with npm and Sacred with pymongo into caches under
the repository (``.ci/run`` calls it first). Without Node.js, npm or the network the test skips
and says why, unless ``LABBOOK_TEST_REQUIRE_SERVERS`` is set: then it fails.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from typing import Any, Iterator

import pytest

pytest.importorskip("pymongo", reason="pymongo is not installed (pip install pymongo)")

from tests.stores.mongo_server import MongoServer, _free_port, mongo_server  # noqa: E402,F401

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SETUP = os.path.join(HERE, "setup_omniboard.sh")
OMNIBOARD_DIR = os.environ.get("LABBOOK_OMNIBOARD_DIR") or os.path.join(ROOT, ".omniboard")
SACRED_VENV = (os.environ.get("LABBOOK_SACRED_MONGO_VENV")
               or os.path.join(ROOT, ".venv-sacred-mongo"))
POINTS = 60_000


def loss(i: int) -> float:
    """The series: its maximum (a spike) and its minimum far from both ends."""
    return abs(i - 45_000) / 10_000 + (9.0 if i == 30_001 else 0.0)


LOSS = "abs(i - 45_000) / 10_000 + (9.0 if i == 30_001 else 0.0)"

#: the experiment, written once; only the package it imports differs
SCRIPT = '''
from {package} import Experiment

ex = Experiment("omniboard_compare")


@ex.config
def config():
    lr = 0.01
    layers = [32, 64]
    points = {points}


@ex.automain
def main(_run, lr, points):
    for i in range(points):
        _run.log_scalar("loss", {loss}, i)
    for i in range(3):
        _run.log_scalar("acc", 0.25 * (i + 1), i)
    if hasattr(_run, "set_tag"):  # labbook's; a Sacred user adds the tag in Omniboard
        _run.set_tag("best")
    print("trained")
    return {{"lr": lr, "best": 0.75}}
'''


def _skip(reason: str) -> None:
    print(f"\nOmniboard comparison skipped: {reason}", file=sys.stderr)
    if os.environ.get("LABBOOK_TEST_REQUIRE_SERVERS"):  # CI: Omniboard must be there
        pytest.fail(f"Omniboard is required (LABBOOK_TEST_REQUIRE_SERVERS): {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def tools() -> None:
    try:
        proc = subprocess.run(["bash", SETUP], capture_output=True, text=True, timeout=900,
                              env=dict(os.environ, LABBOOK_OMNIBOARD_DIR=OMNIBOARD_DIR,
                                       LABBOOK_SACRED_MONGO_VENV=SACRED_VENV))
    except (OSError, subprocess.TimeoutExpired) as exc:
        _skip(f"cannot run {SETUP}: {exc}")
    if proc.returncode != 0:
        _skip((proc.stderr.strip().splitlines() or ["setup_omniboard.sh failed"])[-1])


def _host_port(server: MongoServer) -> str:
    netloc = urllib.parse.urlsplit(server.base_url).netloc
    return netloc.rsplit("@", 1)[-1]


def _record(python: str, package: str, server: MongoServer, db: str, tmp_path, *options: str
            ) -> subprocess.Popen:
    """Start the script with ``package`` recording into database ``db``."""
    script = tmp_path / f"{package}_experiment.py"
    script.write_text(SCRIPT.format(package=package, points=POINTS, loss=LOSS), encoding="utf-8")
    host, port = _host_port(server).split(":")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABBOOK_")}
    env["PYTHONPATH"] = ROOT if package == "labbook" else ""
    return subprocess.Popen([python, str(script), "with", "seed=1", "lr=0.02",
                             "-m", f"{host}:{port}:{db}", "--comment", "first try", *options],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, env=env)


def _finish(package: str, proc: subprocess.Popen) -> str:
    """The run's log (its stderr), once it has ended well."""
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, f"{package} run failed:\n{out}\n{err}"
    return err


class Omniboard:
    """Omniboard serving several databases (one path each), asked as its web pages ask."""

    def __init__(self, databases: dict[str, str], tmp_path) -> None:
        config = tmp_path / "omniboard.json"
        config.write_text(json.dumps({key: {"mongodbURI": uri, "path": f"/{key}"}
                                      for key, uri in databases.items()}))
        env = dict(os.environ, OMNIBOARD_CONFIG=str(config), PORT=str(_free_port()))
        self.log = open(tmp_path / "omniboard.log", "w+")
        self.process = subprocess.Popen(
            [os.path.join(OMNIBOARD_DIR, "node_modules", ".bin", "omniboard")],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
        self.base = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.log.seek(0)
            text = self.log.read()
            if "listening on port" in text and not self.base:
                port = text.split("listening on port ", 1)[1].split("!", 1)[0]
                self.base = f"http://127.0.0.1:{port}"
            if self.base and text.count("established successfully") >= len(databases):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"Omniboard did not start:\n{text[-3000:]}")

    def get(self, db: str, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode(params)
        url = f"{self.base}/{db}/api/v1/{path}" + (f"?{query}" if query else "")
        with urllib.request.urlopen(url, timeout=60) as reply:
            return json.loads(reply.read())

    def send(self, db: str, method: str, path: str, body: dict) -> Any:
        request = urllib.request.Request(f"{self.base}/{db}/api/v1/{path}", method=method,
                                         data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as reply:
            return json.loads(reply.read())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture
def databases(mongo_server: MongoServer) -> Iterator[dict[str, str]]:  # noqa: F811
    suffix = uuid.uuid4().hex[:8]
    names = {key: f"omni_{key}_{suffix}" for key in ("sacred", "labbook", "summary")}
    yield names
    client = mongo_server.client()
    try:
        for name in names.values():
            client.drop_database(name)
    finally:
        client.close()


def _summary_run(url: str) -> int:
    """A labbook run whose series outgrows the document Omniboard reads (here at 2,000 whole
    points, then documents of 20,000; in production 82,241 and 50,000): that document then
    ends in a summary of the rest."""
    from labbook.stores.mongo import MongoStore

    # the test server also takes the two recordings' 60,000 points meanwhile: on a busy machine
    # its answer to the client's periodic check can take longer than labbook's default 10 s,
    # after which pymongo cancels the write under way
    url += ("&" if "?" in url else "?") + "connectTimeoutMS=120000&socketTimeoutMS=300000"
    store = MongoStore(url, bucket_size=20_000, series_points=2_000)
    t0 = dt.datetime(2024, 1, 1)
    run_id = store.create_run({"experiment": {"name": "omniboard_compare", "sources": []},
                               "command": "main", "host": {}, "start_time": t0,
                               "config": {"seed": 1}, "meta": {}, "status": "RUNNING",
                               "resources": [], "artifacts": [], "captured_out": "",
                               "info": {}, "heartbeat": t0, "result": None})
    for first in range(0, POINTS, 13_000):  # batches across document borders
        steps = list(range(first, min(first + 13_000, POINTS)))
        store.append_metrics(run_id, {"loss": {
            "steps": steps, "values": [loss(i) for i in steps],
            "timestamps": [t0 + dt.timedelta(milliseconds=i) for i in steps]}})
    store.update_run(run_id, {"status": "COMPLETED", "stop_time": t0, "info": {}})
    assert store.history(run_id)["loss"]["steps"] == list(range(POINTS))
    store.close()
    return run_id


def _comparable(run: dict) -> dict:
    """A run as Omniboard lists it, without what differs between any two recordings."""
    out = dict(run)
    for key in ("_id", "start_time", "stop_time", "heartbeat", "host", "captured_out",
                "experiment", "meta", "info", "labbook_last", "resources", "format", "__v"):
        out.pop(key, None)
    return out


def test_omniboard_shows_labbook_runs_as_it_shows_sacred_runs(
        tools, mongo_server, databases, tmp_path):  # noqa: F811
    sacred_python = os.path.join(SACRED_VENV, "bin", "python")
    # the two recordings and the third run at once: the server serves them in turn
    sacred = _record(sacred_python, "sacred", mongo_server, databases["sacred"], tmp_path)
    labbook = _record(sys.executable, "labbook", mongo_server, databases["labbook"], tmp_path,
                      "--tag", "cli", "--notes", "wide net")
    try:
        summary_id = _summary_run(mongo_server.url(databases["summary"]))
    finally:
        _finish("sacred", sacred)
        labbook_log = _finish("labbook", labbook)
    root = f"mongodb://{_host_port(mongo_server)}"
    board = Omniboard({key: f"{root}/{name}" for key, name in databases.items()}, tmp_path)
    try:
        # -- the runs table: the same columns, config and result ------------------------------
        (sacred_run,) = board.get("sacred", "Runs")
        (labbook_run,) = board.get("labbook", "Runs")
        # Sacred writes no tags: they are added in Omniboard, which stores them in the run
        board.send("sacred", "PUT", f"Runs/{sacred_run['_id']}",
                   {"omniboard": {"tags": ["cli", "best"], "notes": "wide net"}})
        (sacred_run,) = board.get("sacred", "Runs")
        assert sorted(set(labbook_run) - {"labbook_last"}) == sorted(sacred_run), (
            labbook_run.get("status"), labbook_log[-2000:])
        assert _comparable(labbook_run) == _comparable(sacred_run)
        assert labbook_run["config"] == {"lr": 0.02, "layers": [32, 64], "points": POINTS,
                                         "seed": 1}
        assert labbook_run["result"] == {"lr": 0.02, "best": 0.75}
        # Omniboard's config columns in the scope's order: the updates move no key
        assert list(labbook_run["config"]) == list(sacred_run["config"]) == [
            "lr", "layers", "points", "seed"]
        # tags (--tag, then set_tag during the run) and notes where Omniboard shows them, and
        # the comment it falls back to
        assert labbook_run["omniboard"] == sacred_run["omniboard"] == {
            "tags": ["cli", "best"], "notes": "wide net"}
        assert labbook_run["meta"]["comment"] == sacred_run["meta"]["comment"] == "first try"
        assert [m["name"] for m in labbook_run["info"]["metrics"]] == \
            [m["name"] for m in sacred_run["info"]["metrics"]]

        # -- the metric names Omniboard offers for columns: no system metrics -----------------
        names = {key: sorted(board.get(key, "Metrics", distinct="name")) for key in databases}
        assert names["labbook"] == names["sacred"] == ["acc", "loss"]
        # labbook sampled them (its own reads have them), in a collection Omniboard skips
        client = mongo_server.client()
        try:
            system = client[databases["labbook"]]["system_metrics"].distinct("name")
        finally:
            client.close()
        assert "system.cpu_percent" in system
        assert names["summary"] == ["loss"]

        # -- the metrics plot: every series whole, the same points ----------------------------
        plots = {}
        for key, run_id in (("sacred", sacred_run["_id"]), ("labbook", labbook_run["_id"]),
                            ("summary", summary_id)):
            docs = board.get(key, "Metrics", query=json.dumps({"run_id": str(run_id)}))
            assert len({d["name"] for d in docs}) == len(docs)  # one document per series
            plots[key] = {d["name"]: d for d in docs}
        assert sorted(plots["labbook"]) == sorted(plots["sacred"]) == ["acc", "loss"]
        for name in ("acc", "loss"):
            for field in ("steps", "values"):
                assert plots["labbook"][name][field] == plots["sacred"][name][field]
        assert plots["labbook"]["loss"]["steps"] == list(range(POINTS))
        # past the document's whole points the plot goes on through the summary points
        summary = plots["summary"]["loss"]
        assert summary["steps"][:2_000] == list(range(2_000))
        assert summary["steps"][-1] == POINTS - 1 and summary["steps"] == sorted(summary["steps"])
        assert len(summary["steps"]) == 2_000 + 3 * 3  # three points per overflow document

        # -- metric columns: last, max and min as Omniboard computes them ---------------------
        columns = {"loss_last": "last", "loss_max": "max", "loss_min": "min"}
        for key in databases:
            for column, extrema in columns.items():
                board.send(key, "POST", "omniboard.metric.columns",
                           {"name": column, "metric_name": "loss", "extrema": extrema})
        shown = {}
        for key in databases:
            (row,) = board.get(key, "Runs", select="_id," + ",".join(columns))
            shown[key] = {column: row[column] for column in columns}
        values = [loss(i) for i in range(POINTS)]
        expected = {"loss_last": values[-1], "loss_max": max(values), "loss_min": min(values)}
        assert expected == {"loss_last": loss(POINTS - 1), "loss_max": loss(30_001),
                            "loss_min": 0.0}
        assert shown["sacred"] == expected
        assert shown["labbook"] == expected
        assert shown["summary"] == expected

        # -- tags and notes edited in Omniboard are what labbook.Api shows and filters, and an
        # edit through labbook.Api is what Omniboard shows -----------------------------------
        import labbook

        run_id = labbook_run["_id"]
        board.send("labbook", "PUT", f"Runs/{run_id}", {"omniboard": {
            "tags": ["cli", "best", "keeper"], "notes": "edited in omniboard"}})
        api = labbook.Api(mongo_server.url(databases["labbook"]))
        view = api.run(run_id)
        assert view.tags == ["cli", "best", "keeper"] and view.notes == "edited in omniboard"
        assert [r.id for r in api.runs("tags = 'keeper'")] == [run_id]
        assert [r.id for r in api.runs({"notes": "edited in omniboard"})] == [run_id]
        view.tags = ["keeper"]
        view.notes = "from the api"
        view.update()
        (row,) = board.get("labbook", "Runs", select="_id,omniboard")
        assert row["omniboard"] == {"tags": ["keeper"], "notes": "from the api"}
    finally:
        board.stop()
