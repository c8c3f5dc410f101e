#!/usr/bin/env python3
"""Take the screenshots of docs/ui.md: the store of examples/ui_demo.py, served by
``labbook ui`` on a free port, photographed by headless chromium through Selenium.

    python tools/ui_screenshots.py [OUT_DIR]      # default: docs/

Needs the ``[ui]`` and ``[test]`` extras and Debian's chromium and chromium-driver.
"""
from __future__ import annotations

import os
import runpy
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "docs"))
    demo = runpy.run_path(os.path.join(ROOT, "examples", "ui_demo.py"))
    store = f"sqlite:///{os.path.join(tempfile.mkdtemp(prefix='labbook-shots-'), 'demo.db')}"
    demo["fill"](store)
    server = subprocess.Popen([sys.executable, "-m", "labbook.cli.main", "ui", store,
                               "--port", "0"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--window-size=1280,900", "--hide-scrollbars"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        base = server.stdout.readline().split(" at ", 1)[1].split()[0].rstrip("/")
        pages = {"ui-runs.png": "/?order=_id&col=config.lr&col=summary.loss",
                 "ui-run.png": "/run/4",
                 "ui-compare.png": "/compare?id=1,2,3"}
        for name, path in pages.items():
            driver.get(base + path)
            time.sleep(2)  # the charts fetch their data after the page loads
            driver.save_screenshot(os.path.join(out, name))
            print(os.path.join(out, name))
    finally:
        driver.quit()
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
