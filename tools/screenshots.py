"""Take the screenshots of the served dashboards that the docs and the README show (nbs/images/dashboard_<page>.png).

Starts `prefbench dashboard` on a free loopback port, opens each page in Debian's Chromium through Playwright,
waits for every Plotly figure to draw, and saves a screenshot. Run it after changing what a dashboard shows:

    .venv/bin/python tools/screenshots.py            # every page
    .venv/bin/python tools/screenshots.py runs       # only the named pages

The Runs page shows the run directories under $PREFBENCH_RUNS (or the data directory): point it at a few runs first,
e.g. ones `prefbench train` wrote.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "nbs" / "images"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main(pages: list[str] | None = None, width: int = 1400, height: int = 1000) -> None:
    from playwright.sync_api import sync_playwright
    from prefbench_lib.dashboards import PAGES, _claim_port
    port = _claim_port("127.0.0.1", 0)
    proc = subprocess.Popen([str(Path(sys.executable).with_name("prefbench")), "dashboard", "--port", str(port)],
                            stdout=subprocess.PIPE, text=True)
    try:
        # `prefbench dashboard` prints its URL once the server answers it and has built every page (dashboards.serve's on_ready)
        url = next((m.group(1) for line in proc.stdout if (m := re.search(r"(http://\S+/)", line))), None)
        if url is None: raise SystemExit(f"prefbench dashboard exited (status {proc.wait()}) without printing its URL")
        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": width, "height": height})
            for slug in pages or PAGES:
                page.goto(url + slug)
                n = len(PAGES[slug].dashboard.EXPLORER.panels())
                page.locator(".js-plotly-plot").nth(n - 1).wait_for(timeout=120_000)
                page.wait_for_timeout(1500)  # let Plotly finish its transitions
                path = OUT / f"dashboard_{slug}.png"
                page.screenshot(path=path)
                print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main(sys.argv[1:] or None)
