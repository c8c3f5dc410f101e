"""``labbook ui``'s app through Starlette's test client, over every store kind (the standard
runs of tests/api/conftest.py; the server stores skip with the reason when unreachable)."""
from __future__ import annotations

import datetime as dt
import html
import json
import math
import re

import pytest

pytest.importorskip("starlette", reason="labbook ui needs the [ui] extra (starlette)")
pytest.importorskip("httpx", reason="Starlette's test client needs httpx")

import warnings  # noqa: E402

with warnings.catch_warnings():  # Starlette's note that httpx2 would also do
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from labbook import Api, Experiment  # noqa: E402
from labbook.stores import open_store  # noqa: E402
from labbook.ui import app as ui_app  # noqa: E402
from labbook.ui.app import create_app  # noqa: E402
from labbook.ui.decimate import Decimator, decimate_series  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:starlette.*")

OPTS = {"--no-system-metrics": True, "--capture": "sys"}
ORIGIN = {"origin": "http://testserver"}


def client(url, **options) -> TestClient:
    return TestClient(create_app(url, **options))


def row_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-run="(\d+)"', page)]


# -- the runs table ----------------------------------------------------------------------------
def test_the_table_lists_every_run_with_its_status(standard_url):
    with client(standard_url) as c:
        page = c.get("/").text
    assert sorted(row_ids(page)) == [1, 2, 3, 4, 5]
    assert '<td class="status status-FAILED">FAILED</td>' in page
    assert ">lucky</a>" in page  # names link to their run pages
    assert 'href="/run/2"' in page


def test_the_filter_box_takes_the_query_language(standard_url):
    with client(standard_url) as c:
        page = c.get("/table", params={"q": "config.lr > 0.02 and status = 'COMPLETED'",
                                       "order": "_id"}).text
    assert row_ids(page) == [4, 5]


def test_a_bad_query_is_shown_inline_with_the_place(standard_url):
    with client(standard_url) as c:
        response = c.get("/table", params={"q": "config.lr >> 2"})
    assert response.status_code == 200
    error = re.search(r'<pre class="error" id="query-error">(.*?)</pre>', response.text, re.S)
    assert error and "column" in html.unescape(error.group(1))
    assert row_ids(response.text) == []


def test_a_misspelt_field_gets_the_close_matches(standard_url):
    with client(standard_url) as c:
        page = c.get("/table", params={"q": "config.lrr > 0.02"}).text
    hint = re.search(r'<p class="hint">(.*?)</p>', page, re.S)
    assert hint and "config.lrr" in html.unescape(hint.group(1))
    assert "Did you mean" in html.unescape(hint.group(1))
    assert "config.lr" in html.unescape(hint.group(1)).split("Did you mean", 1)[1]


def test_sorting_by_a_config_column_both_ways(standard_url):
    with client(standard_url) as c:
        up = row_ids(c.get("/table", params={"order": "config.lr"}).text)
        down = row_ids(c.get("/table", params={"order": "-config.lr"}).text)
    assert up == [1, 2, 4, 3, 5]
    assert down == [5, 3, 4, 2, 1]


def test_the_column_picker_offers_and_shows_config_and_summary(standard_url):
    with client(standard_url) as c:
        page = c.get("/").text
        assert 'value="config.batch"' in page and 'value="summary.acc"' in page
        assert 'value="group"' in page and 'value="host"' in page
        shown = c.get("/table", params=[("col", "config.batch"), ("col", "summary.acc"),
                                        ("order", "_id")]).text
    headers = re.findall(r'class="sort">([^<&]+)', shown)
    assert headers[-2:] == ["config.batch", "summary.acc"]
    first = re.search(r'<tr data-run="1">(.*?)</tr>', shown, re.S).group(1)
    cells = re.findall(r"<td>([^<]*)</td>", first)
    assert cells[-2:] == ["32", "0.7"]


def test_pages_of_runs(standard_url, monkeypatch):
    monkeypatch.setattr(ui_app, "PER_PAGE", 2)
    with client(standard_url) as c:
        first = c.get("/table", params={"order": "_id"}).text
        last = c.get("/table", params={"order": "_id", "page": "2"}).text
    assert row_ids(first) == [1, 2] and 'id="next"' in first
    assert row_ids(last) == [5] and 'id="next"' not in last and "previous" in last


def test_a_dead_run_shows_died_and_a_running_one_refreshes_the_table(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    ex = Experiment("beats")

    @ex.main
    def main():
        return 1

    ex.run(options={**OPTS, "--store": url})
    ex.run(options={**OPTS, "--store": url})
    store = open_store(url)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    store.update_run(1, {"status": "RUNNING", "heartbeat": now - dt.timedelta(seconds=600)})
    with client(url) as c:
        page = c.get("/").text
        assert '<td class="status status-DIED">DIED</td>' in page
        assert "hx-trigger" not in page.split('id="table-inner"', 1)[1].split(">", 1)[0]
        store.update_run(2, {"status": "RUNNING", "heartbeat": now})
        page = c.get("/table").text
        assert '<td class="status status-RUNNING">RUNNING</td>' in page
        # a running run on the page: the table asks for itself again
        assert re.search(r'id="table-inner" hx-get="/table\?[^"]*" hx-trigger="every', page)
        assert c.get("/table", params={"q": "status = 'DIED'"}).text.count("<tr data-run") == 1
    store.close()


# -- the run page ------------------------------------------------------------------------------
def test_the_run_page_shows_config_changes_output_artifacts_and_charts(standard_url):
    with client(standard_url) as c:
        page = c.get("/run/1").text
    config = re.search(r'<table class="kv" id="config">(.*?)</table>', page, re.S).group(1)
    changed = set(re.findall(r'<tr class="changed"><th>([^<]+)</th>', config))
    assert {"lr", "batch", "acc", "optimizer.name", "optimizer.momentum"} <= changed
    assert "layers" not in changed and "<th>layers</th>" in config  # a default, shown plain
    assert "training with acc target 0.7" in page
    assert '<img src="/run/1/artifact/curve.png"' in page
    assert "<pre class=\"preview\">artifact text\n</pre>" in page
    assert re.findall(r'<figure class="chart" data-metric="([^"]+)"', page) == ["acc", "loss"]
    assert 'href="/run/1/metric/acc.csv"' in page
    assert "hostname" in page


def test_a_failed_run_shows_its_trace(standard_url):
    with client(standard_url) as c:
        page = c.get("/run/3").text
    assert "RuntimeError: diverged" in page and "status-FAILED" in page


def test_an_unknown_run_is_a_404_naming_it(standard_url):
    with client(standard_url) as c:
        response = c.get("/run/99")
    assert response.status_code == 404 and "No run with id 99" in response.text


def test_series_and_csv(standard_url):
    with client(standard_url) as c:
        found = c.get("/run/1/series").json()
        csv_text = c.get("/run/1/metric/loss.csv").text
        missing = c.get("/run/1/metric/nope.csv")
    assert found["status"] == "COMPLETED" and set(found["metrics"]) == {"acc", "loss"}
    acc = found["metrics"]["acc"]
    assert acc["step"] == [0, 1] and acc["value"] == [0.35, 0.7] and acc["total"] == 2
    assert all(isinstance(t, float) for t in acc["time"])
    lines = csv_text.splitlines()
    assert lines[0] == "step,value,timestamp"
    assert [line.split(",")[:2] for line in lines[1:]] == [["0", "1.0"], ["1", "0.3"]]
    assert missing.status_code == 404


def test_artifacts_are_served_sandboxed(standard_url):
    with client(standard_url) as c:
        image = c.get("/run/1/artifact/curve.png")
        text = c.get("/run/1/artifact/notes.txt", params={"download": "1"})
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
    assert image.headers["content-security-policy"] == "sandbox"
    assert text.text == "artifact text\n"
    assert "attachment" in text.headers["content-disposition"]


# -- edits -------------------------------------------------------------------------------------
def test_tags_and_notes_are_written_through_the_store(standard_url):
    app = create_app(standard_url)
    with TestClient(app) as c:
        form = {"tags": "keep, baseline,  keep", "csrf": app.state.csrf}
        response = c.post("/run/1/tags", data=form, headers={**ORIGIN, "hx-request": "true"})
        assert response.status_code == 200 and '<span class="tag">keep</span>' in response.text
        response = c.post("/run/1/notes", data={"notes": "looked good", "csrf": app.state.csrf},
                          headers=ORIGIN, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/run/1"
    run = Api(standard_url).run(1)
    assert run.tags == ["keep", "baseline"] and run.notes == "looked good"
    assert [r.id for r in Api(standard_url).runs("tags = 'keep'")] == [1]
    run.tags, run.notes = ["baseline"], None  # the module's store is shared: put it back
    run.update()


@pytest.mark.parametrize("headers, csrf, why", [
    ({"origin": "http://evil.example"}, True, "another site"),
    ({"referer": "http://evil.example/page"}, True, "another site"),
    ({}, True, "another site"),
    (ORIGIN, False, "CSRF token"),
])
def test_cross_site_edits_are_refused(standard_url, headers, csrf, why):
    app = create_app(standard_url)
    with TestClient(app) as c:
        form = {"tags": "pwned", "csrf": app.state.csrf if csrf else "guess"}
        response = c.post("/run/1/tags", data=form, headers=headers)
    assert response.status_code == 403 and why in response.text
    assert "pwned" not in Api(standard_url).run(1).tags


def test_read_only_shows_no_forms_and_refuses_edits(standard_url):
    app = create_app(standard_url, read_only=True)
    with TestClient(app) as c:
        page = c.get("/run/1").text
        response = c.post("/run/1/tags", data={"tags": "x", "csrf": app.state.csrf},
                          headers=ORIGIN)
    assert "<form" not in page and "read-only" in page
    assert response.status_code == 403 and "read-only" in response.text


# -- compare -----------------------------------------------------------------------------------
def test_compare_shows_the_config_and_summary_differences(standard_url):
    with client(standard_url) as c:
        page = c.get("/compare", params=[("id", "1"), ("id", "2,4")]).text
        empty = c.get("/compare")
    assert empty.status_code == 400
    config = re.search(r'<table class="cmp" id="config-diff">(.*?)</table>', page, re.S).group(1)
    rows = dict(re.findall(r'<tr class="(diff|same)"><th>([^<]+)</th>', config)[i][::-1]
                for i in range(len(re.findall(r"<tr class=", config))))
    assert rows["lr"] == "diff" and rows["optimizer.name"] == "diff"
    assert rows["crash"] == "same"
    summary = re.search(r'id="summary-diff">(.*?)</table>', page, re.S).group(1)
    assert "<th>acc</th><td>0.7</td><td>0.9</td><td>0.8</td>" in summary
    assert json.loads(html.unescape(re.search(r'data-runs="([^"]+)"', page).group(1))) == \
        [1, 2, 4]


# -- escaping ----------------------------------------------------------------------------------
def test_everything_from_the_store_is_escaped(tmp_path):
    url = f"sqlite:///{tmp_path / 'xss.db'}"
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    ex = Experiment("x<script>")
    ex.add_config({"lr": evil, evil: 1})

    @ex.main
    def main(_run):
        print(evil)
        _run.log_scalar(evil, 1.0)
        _run.log_scalar(evil, 2.0)
        return 1

    ex.run(options={**OPTS, "--store": url, "--tag": [evil], "--name": evil, "--notes": evil})
    ex.run(options={**OPTS, "--store": url})
    with client(url) as c:
        pages = [c.get("/").text, c.get("/table", params=[("col", "config.lr")]).text,
                 c.get("/run/1").text, c.get("/compare", params={"id": "1,2"}).text,
                 c.get("/table", params={"q": evil}).text]
    for page in pages:
        assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[2]


# -- safety: token and Host --------------------------------------------------------------------
def test_a_token_guards_every_request(standard_url):
    with client(standard_url, token="s3cret") as c:
        assert c.get("/").status_code == 401
        assert c.get("/static/app.js").status_code == 401
        assert c.get("/", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/", headers={"authorization": "Bearer s3cret"}).status_code == 200
        first = c.get("/run/1", params={"token": "s3cret"}, follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/run/1"
        assert "httponly" in first.headers["set-cookie"].lower()
        assert c.get("/run/1").status_code == 200  # the cookie now


def test_a_loopback_dashboard_refuses_other_host_names(standard_url):
    with client(standard_url, allowed_hosts=ui_app.LOOPBACK_HOSTS) as c:
        assert c.get("/", headers={"host": "127.0.0.1:5000"}).status_code == 200
        assert c.get("/", headers={"host": "localhost"}).status_code == 200
        assert c.get("/", headers={"host": "[::1]:5000"}).status_code == 200
        refused = c.get("/", headers={"host": "attacker.example:5000"})
    assert refused.status_code == 421 and "attacker.example" in refused.text


def test_vendored_scripts_are_served(standard_url):
    with client(standard_url) as c:
        for name in ("htmx.min.js", "uPlot.iife.min.js", "uPlot.min.css", "app.js", "app.css"):
            response = c.get(f"/static/{name}")
            assert response.status_code == 200 and len(response.content) > 500, name


# -- decimation --------------------------------------------------------------------------------
def test_decimation_keeps_extremes_first_and_last():
    n = 100_000
    values = [math.sin(i / 1000) for i in range(n)]
    values[12_345] = 50.0   # a spike an even sample would miss
    values[54_321] = -50.0
    steps = list(range(n))
    decimator = Decimator(n, 1000)
    for start in range(0, n, 7_777):  # pages that do not line up with buckets
        decimator.add(steps[start:start + 7_777], values[start:start + 7_777], None)
    out = decimator.result()
    assert len(out["step"]) <= 1000 and out["total"] == n
    assert out["step"][0] == 0 and out["step"][-1] == n - 1
    assert out["step"] == sorted(out["step"])
    assert 12_345 in out["step"] and 54_321 in out["step"]
    assert max(out["value"]) == 50.0 and min(out["value"]) == -50.0


def test_decimation_keeps_a_short_series_whole_and_gaps_for_non_numbers():
    values = [1.0, float("nan"), "text", None, float("inf"), True, 3]
    out = Decimator(len(values), 100).feed(
        [{"steps": list(range(7)), "values": values}]).result()
    assert out["step"] == list(range(7))
    assert out["value"] == [1.0, None, None, None, None, 1.0, 3.0]


def test_quick_series_first_then_the_exact_one(tmp_path):
    url = f"sqlite:///{tmp_path / 'quick.db'}"
    ex = Experiment("quick")

    @ex.main
    def main(_run):
        for i in range(3000):
            _run.log_scalar("x", 100.0 if i == 1234 else float(i % 10))
        _run.log_scalar("short", 1.0)

    ex.run(options={**OPTS, "--store": url})
    with client(url) as c:
        quick = c.get("/run/1/series", params={"quick": "1", "points": "100"}).json()["metrics"]
        exact = c.get("/run/1/series", params={"points": "100"}).json()["metrics"]
        again = c.get("/run/1/series", params={"quick": "1", "points": "100"}).json()["metrics"]
    # the store's even sample: quick, marked, and blind to a one-point spike
    assert quick["x"]["sampled"] is True and quick["x"]["total"] == 3000
    assert len(quick["x"]["step"]) == 100 and 1234 not in quick["x"]["step"]
    assert "sampled" not in quick["short"]  # short series come whole
    # min/max per bucket keeps the spike
    assert "sampled" not in exact["x"] and 1234 in exact["x"]["step"]
    # once the exact one was read, quick requests get it
    assert again["x"] == exact["x"]


def test_decimate_series_reads_a_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'long.db'}"
    ex = Experiment("long")

    @ex.main
    def main(_run):
        for i in range(5000):
            _run.log_scalar("x", float(i % 100))

    ex.run(options={**OPTS, "--store": url})
    store = open_store(url)
    out = decimate_series(store, 1, "x", 5000, 200)
    store.close()
    assert 100 < len(out["step"]) <= 200
    assert min(out["value"]) == 0.0 and max(out["value"]) == 99.0


# -- the command -------------------------------------------------------------------------------
def test_loopback_names():
    from labbook.cli.ui import is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.4", "::", "example.org"))


def test_a_busy_port_is_one_line(standard_url, capsys):
    import socket

    from labbook.cli.main import main

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        status = main(["ui", standard_url, "--port", str(busy.getsockname()[1])])
    finally:
        busy.close()
    err = capsys.readouterr().err
    assert status != 0 and err.startswith("Error: Cannot listen on 127.0.0.1:")
    assert len(err.strip().splitlines()) == 1


def test_a_missing_store_is_one_line(tmp_path, capsys):
    from labbook.cli.main import main

    status = main(["ui", f"sqlite:///{tmp_path / 'nothing.db'}", "--port", "0"])
    err = capsys.readouterr().err
    assert status != 0 and err.startswith("Error: ") and len(err.strip().splitlines()) == 1


def test_another_interface_gets_a_generated_token(standard_url, monkeypatch, capsys):
    import uvicorn

    from labbook.cli import ui as cli_ui
    from labbook.cli.main import main

    served = {}
    monkeypatch.setattr(cli_ui, "is_loopback", lambda host: False)  # binds 127.0.0.1 still
    monkeypatch.setattr(uvicorn.Server, "run",
                        lambda self, sockets=None: served.update(app=self.config.app))
    assert main(["ui", standard_url, "--port", "0", "--read-only"]) == 0
    out, err = capsys.readouterr()
    token = re.search(r"\?token=([\w-]+) \(read-only\)$", out.strip()).group(1)
    assert len(token) >= 24 and "anyone with the token" in err
    with TestClient(served["app"]) as c:
        assert c.get("/").status_code == 401
        assert c.get("/", params={"token": token}).status_code == 200


def test_too_few_points_is_a_clear_error():
    from labbook.errors import ArgumentError

    with pytest.raises(ArgumentError, match="points must be at least 4, got 2"):
        Decimator(100, 2)


def test_a_growing_series_is_read_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'grow.db'}"
    ex = Experiment("grow")

    @ex.main
    def main(_run):
        for i in range(3):
            _run.log_scalar("loss", 1.0 / (i + 1))

    ex.run(options={**OPTS, "--store": url})
    with client(url) as c:
        assert c.get("/run/1/series").json()["metrics"]["loss"]["total"] == 3
        store = open_store(url)
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        store.append_metrics(1, {"loss": {"steps": [3], "values": [0.1], "timestamps": [now]}})
        store.close()
        loss = c.get("/run/1/series").json()["metrics"]["loss"]
    assert loss["total"] == 4 and loss["step"] == [0, 1, 2, 3] and loss["value"][-1] == 0.1


def test_templates_and_vendored_files_ship_in_the_wheel():
    import fnmatch
    import os
    import tomllib

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "pyproject.toml"), "rb") as fh:
        patterns = tomllib.load(fh)["tool"]["setuptools"]["package-data"]["labbook.ui"]
    base = os.path.join(root, "labbook", "ui")
    files = [f"{d}/{n}" for d in ("templates", "static") for n in os.listdir(f"{base}/{d}")]
    unshipped = [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert not unshipped
    # the vendored libraries come with their licences
    assert {"static/htmx.LICENSE", "static/uPlot.LICENSE"} <= set(files)


def test_a_store_written_by_sacred(tmp_path):
    import os
    import shutil

    fixture = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "fixtures", "sacred_0_8_7", "file_store")
    shutil.copytree(fixture, tmp_path / "sacred")
    url = f"file://{tmp_path / 'sacred'}"
    ids = sorted(r.id for r in Api(url).runs())
    with client(url) as c:
        assert sorted(row_ids(c.get("/").text)) == ids
        for run_id in ids:
            page = c.get(f"/run/{run_id}")
            assert page.status_code == 200 and "<h2>Config</h2>" in page.text
            assert c.get(f"/run/{run_id}/series").status_code == 200
        assert c.get("/compare", params={"id": ",".join(map(str, ids))}).status_code == 200


def test_the_command_serves_until_interrupted(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    url = f"sqlite:///{tmp_path / 'served.db'}"
    ex = Experiment("served")
    ex.main(lambda: 1)
    ex.run(options={**OPTS, "--store": url})
    process = subprocess.Popen([sys.executable, "-m", "labbook.cli.main", "ui", url,
                                "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=root)
    try:
        line = process.stdout.readline()
        address = re.search(r" at (http://127\.0\.0\.1:\d+/)$", line.strip()).group(1)
        with urllib.request.urlopen(address) as response:
            assert response.status == 200 and b'<tr data-run="1">' in response.read()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "Traceback" not in err and "labbook ui: stopped." in err


def test_the_address_follows_the_table(standard_url):
    with client(standard_url) as c:
        response = c.get("/table", params=[("q", "config.lr > 0.02"), ("order", "_id"),
                                           ("col", "config.batch")])
        again = c.get(response.headers["hx-replace-url"])
    assert response.headers["hx-replace-url"] == \
        "/?q=config.lr+%3E+0.02&order=_id&page=0&col=config.batch"
    assert row_ids(again.text) == row_ids(response.text) == [3, 4, 5]


def test_the_filter_box_takes_json_too(standard_url):
    with client(standard_url) as c:
        page = c.get("/table", params={"q": '{"config.batch": {"$gte": 64}}',
                                       "order": "_id"}).text
        broken = c.get("/table", params={"q": '{"config.batch": '}).text
    assert row_ids(page) == [2, 3, 4]
    assert "not valid JSON" in broken and row_ids(broken) == []


def test_previews_of_html_json_and_text_artifacts(tmp_path):
    url = f"sqlite:///{tmp_path / 'files.db'}"
    files = {"page.html": "<h1>hi</h1><script>parent.alert(1)</script>",
             "data.json": '{"b": 1, "a": [1, 2]}', "log.txt": "line one\n"}
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    ex = Experiment("files")

    @ex.main
    def main(_run):
        for name in files:
            _run.add_artifact(str(tmp_path / name))

    ex.run(options={**OPTS, "--store": url})
    with client(url) as c:
        page = c.get("/run/1").text
        served = c.get("/run/1/artifact/page.html")
    # HTML in a sandboxed frame (no scripts), served under a sandbox policy as well
    assert '<iframe sandbox src="/run/1/artifact/page.html"' in page
    assert served.headers["content-security-policy"] == "sandbox"
    assert served.headers["content-type"].startswith("text/html")
    assert "<script>parent.alert" not in page
    # JSON pretty-printed with sorted keys, text as it is
    assert '{\n  &#34;a&#34;: [\n    1,\n    2\n  ],\n  &#34;b&#34;: 1\n}' in page
    assert '<pre class="preview">line one\n</pre>' in page


@pytest.mark.parametrize("column", sorted(c for c, f in ui_app.SORT_FIELDS.items() if f))
def test_every_sortable_column_sorts(standard_url, column):
    field = ui_app.SORT_FIELDS[column]
    with client(standard_url) as c:
        up = c.get("/table", params={"order": field})
        down = c.get("/table", params={"order": "-" + field})
    for response in (up, down):
        assert response.status_code == 200 and 'id="query-error"' not in response.text
        assert sorted(row_ids(response.text)) == [1, 2, 3, 4, 5]
