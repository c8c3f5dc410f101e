"""``labbook ui`` end to end in a real headless browser: Debian's chromium driven by Selenium
through chromium-driver. The server is the ``labbook ui`` command itself, on a free port; a
screenshot of each page is kept under ``$LABBOOK_TEST_ARTIFACTS/ui`` (default
``.test-artifacts/ui`` in the checkout). Skips, saying why, without chromium or Selenium."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time

import pytest

pytest.importorskip("starlette", reason="labbook ui needs the [ui] extra (starlette)")
webdriver = pytest.importorskip("selenium.webdriver", reason="the browser tests need selenium")

import labbook  # noqa: E402
from labbook import Api  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHROMIUM = os.environ.get("LABBOOK_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("LABBOOK_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT = 30  # seconds a page may take to show what is waited for (a slow, shared machine)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def artifacts_dir() -> str:
    base = os.environ.get("LABBOOK_TEST_ARTIFACTS") or os.path.join(ROOT, ".test-artifacts")
    path = os.path.join(base, "ui")
    os.makedirs(path, exist_ok=True)
    return path


@pytest.fixture
def browser():
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.exists(path) or shutil.which(path)):
            reason = f"no {path}: apt-get install {package}"
            if os.environ.get("LABBOOK_TEST_REQUIRE_SERVERS"):  # CI installs both
                pytest.fail(f"{reason} (required: LABBOOK_TEST_REQUIRE_SERVERS)")
            print(f"skipped: {reason}")
            pytest.skip(reason)
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1400,1100"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def server(tmp_path):
    """``labbook ui`` on a free port over a store with three finished runs; yields (base URL,
    store URL)."""
    url = f"sqlite:///{tmp_path / 'ui.db'}"
    for i, lr in enumerate((0.1, 0.03, 0.3)):
        with labbook.start_run("train", config={"lr": lr, "depth": 2 + i}, tags=["sweep"],
                               store=url, system_metrics=False):
            for step in range(40):
                labbook.log({"loss": 1.0 / (1 + lr * step), "acc": 1 - 1.0 / (1 + lr * step)})
            if i == 2:  # longer than a chart's 2,000 points, with a one-point spike
                for step in range(5000):
                    labbook.log_metric("grad", 9.0 if step == 4321 else 1.0 + step % 7)
            print(f"done lr={lr}")
    with serving(url) as base:
        yield base, url


@contextlib.contextmanager
def serving(url: str):
    """``labbook ui URL --port 0`` running; yields its base address."""
    process = subprocess.Popen(
        [sys.executable, "-m", "labbook.cli.main", "ui", url, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = process.stdout.readline()
        if "http://" not in line:
            process.kill()
            pytest.fail(f"labbook ui did not start: {line}{process.stderr.read()}")
        yield line.split(" at ", 1)[1].split()[0].rstrip("/")
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(driver, condition, what: str, timeout: float = WAIT):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        lambda d: condition(d), message=f"waited {timeout} s for {what}")


#: per chart: the number of pixels close to the first series' colour (#0072B2) on its canvas
DRAWN_PIXELS = """
return Array.from(document.querySelectorAll('figure.chart')).map(function (f) {
  var c = f.querySelector('canvas');
  if (!c) return [f.dataset.metric, 0, f.dataset.total || null];
  var d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, n = 0;
  for (var i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 200 && Math.abs(d[i]) < 60 && Math.abs(d[i + 1] - 114) < 60
        && Math.abs(d[i + 2] - 178) < 60) n++;
  }
  return [f.dataset.metric, n, f.dataset.total || null];
});
"""


def drawn(driver) -> dict:
    return {name: (pixels, total) for name, pixels, total in driver.execute_script(DRAWN_PIXELS)}


def rows(driver) -> list[str]:
    """The ids in the table (read in one script: the live table may be swapped meanwhile)."""
    return driver.execute_script("return Array.from(document.querySelectorAll("
                                 "'tr[data-run]')).map(function (r) { return r.dataset.run; });")


def text(driver, element_id: str) -> str | None:
    """An element's text, read in one script (htmx may swap it meanwhile)."""
    return driver.execute_script("var e = document.getElementById(arguments[0]);"
                                 "return e && e.textContent;", element_id)


def test_the_dashboard_in_a_browser(browser, server):
    base, url = server
    # a run still running, started here (the test feeds it; its output is captured
    # while the test runs)
    running = labbook.start_run("train", config={"lr": 0.05, "depth": 9}, store=url,
                                system_metrics=False, beat_interval=0.5)
    try:
        for step in range(10):
            labbook.log({"loss": 1.0 / (1 + step)})
        check_the_dashboard(browser, base, url, running)
    finally:
        running.finish()


def check_the_dashboard(browser, base: str, url: str, running) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    shots = artifacts_dir()

    # the table, then a filter in the query language
    browser.get(base + "/")
    wait_for(browser, lambda d: len(rows(d)) == 4, "the four runs")
    browser.save_screenshot(os.path.join(shots, "runs.png"))
    box = browser.find_element(By.ID, "q")
    box.send_keys("config.lr > 0.05 and status = 'COMPLETED'", Keys.ENTER)
    wait_for(browser, lambda d: sorted(rows(d)) == ["1", "3"], "the filtered runs 1 and 3")
    browser.save_screenshot(os.path.join(shots, "runs-filtered.png"))
    assert "q=config.lr+%3E+0.05" in browser.current_url  # a reload keeps the filter
    box.clear()
    box.send_keys("config.lrr > 1", Keys.ENTER)
    hint = wait_for(browser, lambda d: d.execute_script(
        "var p = document.querySelector('p.hint'); return p && p.textContent;"),
        "the close-match hint")
    assert "config.lrr" in hint and "config.lr'" in hint

    # a finished run: every chart draws its line
    browser.get(base + "/run/1")
    wait_for(browser, lambda d: d.find_element(By.ID, "charts").get_attribute("data-ready"),
             "the charts")
    found = drawn(browser)
    assert set(found) == {"acc", "loss"}
    assert all(pixels > 50 for pixels, _ in found.values()), found
    browser.save_screenshot(os.path.join(shots, "run.png"))

    # a long series: a quick sample first, then the min/max chart with the spike
    browser.get(base + "/run/3")
    wait_for(browser, lambda d: d.find_element(By.ID, "charts").get_attribute("data-complete"),
             "the exact charts of run 3")
    long = drawn(browser)
    assert long["grad"][1] == "5000" and long["grad"][0] > 50, long
    assert browser.execute_script("var s = window.labbookCharts.data[3].metrics.grad;"
                                  "return [!!s.sampled, Math.max.apply(null, s.value)];") == \
        [False, 9.0]
    browser.save_screenshot(os.path.join(shots, "run-long.png"))
    browser.get(base + "/run/1")
    wait_for(browser, lambda d: d.find_element(By.ID, "charts").get_attribute("data-ready"),
             "the charts")

    # log scale, time axis and smoothing redraw without losing the line
    browser.find_element(By.ID, "log-scale").click()
    browser.execute_script("var s = document.getElementById('x-axis'); s.value = 'relative';"
                           "s.dispatchEvent(new Event('change'));")
    assert all(pixels > 50 for pixels, _ in drawn(browser).values())

    # edit a tag; `labbook ls` finds the run by it
    field = browser.find_element(By.ID, "tags-input")
    field.clear()
    field.send_keys("sweep, e2e-picked")
    browser.find_element(By.ID, "save-tags").click()
    wait_for(browser, lambda d: "e2e-picked" in (text(d, "tags") or ""),
             "the saved tag")
    listed = subprocess.run([sys.executable, "-m", "labbook.cli.main", "ls", url, "--filter",
                             "tags = 'e2e-picked'", "--columns", "id,tags"],
                            capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert listed.split("\n")[1].split()[0] == "1" and "e2e-picked" in listed
    assert "e2e-picked" in Api(url).run(1).tags

    # the running run: a point logged now shows up in its chart
    browser.get(base + f"/run/{running._id}")
    wait_for(browser, lambda d: drawn(d).get("loss", (0, None))[1] == "10", "10 points")
    assert drawn(browser)["loss"][0] > 10
    for step in range(10, 15):
        labbook.log({"loss": 2.0})
    print("epoch 15 of the running run")  # captured: the output box follows the run
    wait_for(browser, lambda d: drawn(d)["loss"][1] == "15", "the new points in the chart")
    wait_for(browser, lambda d: "epoch 15 of the running run" in (text(d, "output") or ""),
             "the new output")
    assert text(browser, "run-status") == "RUNNING"
    browser.save_screenshot(os.path.join(shots, "run-live.png"))

    # select two runs, compare them
    browser.get(base + "/?order=_id")
    wait_for(browser, lambda d: len(rows(d)) == 4, "the table")
    for run_id in ("1", "2"):
        browser.find_element(By.CSS_SELECTOR, f"tr[data-run='{run_id}'] input").click()
    # run 4 is running: the table refreshes itself, and the ticked runs stay ticked
    browser.execute_script("document.getElementById('table-inner').dataset.mark = 'old';")
    wait_for(browser, lambda d: d.execute_script(
        "var t = document.getElementById('table-inner'); return t && !t.dataset.mark;"),
        "the live table to refresh")
    ticked = browser.execute_script(
        "return Array.from(document.querySelectorAll('#select-form input[name=id]:checked'))"
        ".map(function (b) { return b.value; });")
    assert sorted(ticked) == ["1", "2"]
    browser.find_element(By.ID, "compare").click()
    wait_for(browser, lambda d: "/compare" in d.current_url, "the compare view")
    wait_for(browser, lambda d: d.find_element(By.ID, "charts").get_attribute("data-ready"),
             "the compare charts")
    compared = drawn(browser)
    assert set(compared) == {"acc", "loss"} and all(p > 50 for p, _ in compared.values())
    diff = text(browser, "config-diff")
    assert "lr" in diff and "0.1" in diff and "0.03" in diff
    browser.save_screenshot(os.path.join(shots, "compare.png"))


def test_hostile_names_stay_text_in_the_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By

    """Names, tags, notes, config and metric names that are markup: shown as text by the
    pages and by the charts' script; no script of theirs runs."""
    evil = "<img src=x onerror=\"window.pwned=1\"><script>window.pwned=2</script>"
    url = f"sqlite:///{tmp_path / 'hostile.db'}"
    key = evil.replace(".", "_")  # config keys take no dots
    with labbook.start_run("x", config={"lr": evil, key: 1}, name=evil, tags=[evil],
                           notes=evil, store=url, system_metrics=False):
        for step in range(5):
            labbook.log({evil: float(step), "loss": 1.0 / (step + 1)})
        print(evil)
    with serving(url) as base:
        for path in ("/", "/run/1", "/compare?id=1", "/?col=config.lr"):
            browser.get(base + path)
            if path != "/" and "col" not in path:
                wait_for(browser, lambda d: d.find_element(By.ID, "charts").get_attribute(
                    "data-ready"), f"the charts of {path}")
            assert browser.execute_script("return window.pwned === undefined;"), path
            assert not browser.find_elements(By.CSS_SELECTOR, "main img[src='x']"), path
        browser.get(base + "/run/1")
        wait_for(browser, lambda d: d.find_element(By.ID, "charts").get_attribute("data-ready"),
                 "the charts")
        captions = browser.execute_script(
            "return Array.from(document.querySelectorAll('figure.chart')).map("
            "function (f) { return f.dataset.metric; });")
        assert evil in captions and evil in (text(browser, "tags") or "")
