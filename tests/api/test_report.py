"""compare_runs: one self-contained HTML page, checked as text and rendered by Chromium."""
from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess

import pytest

import labbook
from labbook import Api, Experiment, compare_runs
from labbook.report import plot_metric

OPTS = {"--no-system-metrics": True, "--capture": "sys"}

SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">'
       '<rect width="40" height="20" fill="#123456"/></svg>')


@pytest.fixture
def report_runs(empty_url, tmp_path, make_png):
    """Three runs: lr differs, depth is the same, only run 3 has 'extra'; images attached."""
    png = tmp_path / "confusion.png"
    png.write_bytes(make_png(8, 8, (10, 200, 10)))
    svg = tmp_path / "diagram.svg"
    svg.write_text(SVG)
    ex = Experiment("report")
    ex.add_config(lr=0.1, depth=3, extra=None, note="<b>not bold</b>")

    @ex.main
    def main(lr, _run):
        for step in range(50):
            _run.log_scalar("loss", lr * 10 / (step + 1))
            _run.log_scalar("acc", 1 - 1 / (step + 2) - lr)
        if lr == 0.2:
            _run.log_scalar("only_here", 1.0)
            _run.add_artifact(str(png))
            _run.add_artifact(str(svg))
        return lr

    for lr in (0.1, 0.2, 0.05):
        updates = {"lr": lr, "extra": "x"} if lr == 0.05 else {"lr": lr}
        ex.run(config_updates=updates, options={**OPTS, "--store": empty_url})
    api = Api(empty_url)
    return [api.run(i) for i in (1, 2, 3)]


def test_html_highlights_differences_and_embeds_everything(report_runs, tmp_path, make_png):
    out = tmp_path / "cmp.html"
    page = compare_runs(*report_runs, path=out)
    assert out.read_text(encoding="utf-8") == page
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # a differing param is highlighted, an equal one is not
    assert "<tr class='diff'><th>lr</th><td>0.1</td><td>0.2</td><td>0.05</td></tr>" in page
    assert "<tr class='same'><th>depth</th><td>3</td><td>3</td><td>3</td></tr>" in page
    assert "<tr class='diff'><th>extra</th><td>null</td><td>null</td><td>x</td></tr>" in page
    # summaries side by side
    assert re.search(r"<th>acc</th>(<td>[0-9.e-]+</td>){3}", page)
    # one plot per shared metric; "only_here" is logged by one run and is not plotted
    plots = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([\w.]+)">',
                       page)
    assert [alt for _, alt in plots] == ["acc", "loss", "confusion.png"]
    for data, _ in plots:
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")
    # image artifacts are inline, whatever their type
    assert base64.b64encode(make_png(8, 8, (10, 200, 10))).decode() in page
    assert "data:image/svg+xml;base64," + base64.b64encode(SVG.encode()).decode() in page
    assert "<code>diagram.svg</code>" in page
    # self-contained, and user values are escaped
    assert not re.search(r"https?://", page)
    assert "<b>not bold</b>" not in page and "&lt;b&gt;not bold&lt;/b&gt;" in page
    assert "<script" not in page


def test_one_run_lists_and_plots_its_own_metrics(report_runs):
    page = compare_runs(report_runs[1])
    assert "Comparison of runs 2" in page
    alts = re.findall(r'<img src="data:image/[\w+]+;base64,[^"]+" alt="([\w.]+)">', page)
    assert alts == ["acc", "loss", "only_here", "confusion.png", "diagram.svg"]
    assert "class='diff'" not in page  # nothing to differ from


def test_accepts_a_runs_collection_and_refuses_other_things(report_runs):
    api = Api(report_runs[0]._store)
    page = labbook.compare_runs(api.runs(order="_id"), title="All of them")
    assert "<h1>All of them</h1>" in page and "3 run(s)" in page
    with pytest.raises(TypeError, match="takes RunView objects"):
        compare_runs(1, 2)
    with pytest.raises(ValueError, match="at least one run"):
        compare_runs()


def test_plot_metric_is_a_png(report_runs):
    data = plot_metric(report_runs, "loss")
    assert data.startswith(b"\x89PNG") and len(data) > 5000


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_chromium_renders_the_report(report_runs, tmp_path):
    browser = _chromium()
    if browser is None:
        reason = ("chromium is not installed (apt-get update && apt-get install -y chromium); "
                  "the headless rendering check is skipped")
        print(reason)
        if os.environ.get("LABBOOK_TEST_REQUIRE_SERVERS"):  # CI installs chromium
            pytest.fail(f"chromium is required (LABBOOK_TEST_REQUIRE_SERVERS): {reason}")
        pytest.skip(reason)
    page = tmp_path / "report.html"
    compare_runs(*report_runs, path=page)
    shot = tmp_path / "report.png"
    profile = tmp_path / "profile"
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", f"--screenshot={shot}",
         "--window-size=1200,1600", f"file://{page}"],
        capture_output=True, text=True, timeout=180)
    assert shot.exists(), f"no screenshot; chromium said:\n{proc.stderr[-2000:]}"
    assert os.path.getsize(shot) > 20_000  # a blank 1200x1600 PNG is a few kB

    import matplotlib.image
    import numpy as np

    pixels = matplotlib.image.imread(str(shot))[..., :3]
    assert pixels.shape[:2] == (1600, 1200)
    colours = np.unique((pixels * 255).round().astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50, "the page rendered nearly blank"
    # the diff highlight (#fff3c4) and the first run's curve colour (#0072B2) are on screen
    as_int = (pixels * 255).round().astype(int)
    highlight = np.all(np.abs(as_int - [255, 243, 196]) <= 2, axis=-1).sum()
    curve = np.all(np.abs(as_int - [0, 114, 178]) <= 30, axis=-1).sum()
    assert highlight > 500, "no highlighted row visible"
    assert curve > 200, "no plotted curve visible"
