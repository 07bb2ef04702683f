"""How fast the dashboards answer: a parameter change to recomputed figures, and a page load to its first figure.

1. Update: for each dashboard at its default sizes, the time from setting a parameter to the moment every pane it
   affects holds its recomputed figure (`Panes.refresh` runs synchronously in the setter when there is no
   server). Each change goes to a value not seen before, so nothing comes from the cache: margins retrains its three
   losses (beta), mode seeking reruns its three algorithms in both regimes (reward peak), Nash reruns its three
   self-play algorithms (eta). A change of a parameter that only one cheap panel depends on, and a revisit of a
   cached setting, are reported beside them. Goal: under 300 ms.
2. First render: `prefbench dashboard` on a free loopback port (it warms its caches at start-up), each page opened
   in a fresh Chromium page through Playwright; the time from navigation to the first Plotly figure with data, and
   to the last one.
Timings on a busy machine swing widely: the load average is printed with the results.
Run: .venv/bin/python benchmarks/dashboards.py [--quick] [--no-browser]
Last line: max_update_ms=<x> max_first_render_ms=<x> (max over dashboards of the median uncached update, and over
pages of the time to the first figure; with --no-browser the second is nan).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import torch
from _common import stable_allocator

from prefbench_lib import dashboards as D
from prefbench_lib.core import get_device

# per dashboard: a parameter whose change recomputes the costly panels, fresh values for it, and a cheap parameter
CHANGES = {"margins": ("beta", [0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45], ("margin_range", [10.0, 12.0, 14.0])),
           "mode-seeking": ("reward_center", [65, 60, 55, 50, 45, 40, 35], (None, None)),
           "nash": ("eta", [0.2, 0.25, 0.35, 0.4, 0.45, 0.5, 0.55], (None, None))}


def timed_set(obj, name, value) -> float:
    t = time.perf_counter(); setattr(obj, name, value)
    return time.perf_counter() - t


def update_times(reps: int) -> dict:
    out = {}
    for slug, (name, values, (cheap, cheap_values)) in CHANGES.items():
        db = D.PAGES[slug].dashboard()  # computes the defaults (warm-up)
        fresh = [timed_set(db.explorer, name, v) for v in values[:reps]]
        revisit = timed_set(db.explorer, name, values[0])  # cached runs: only the figures are rebuilt
        cheap_t = [timed_set(db.explorer, cheap, v) for v in cheap_values] if cheap_values else []
        out[slug] = dict(param=name, median_ms=1e3 * statistics.median(fresh), max_ms=1e3 * max(fresh), revisit_ms=1e3 * revisit,
                         cheap=cheap, cheap_ms=1e3 * statistics.median(cheap_t) if cheap_t else float("nan"))
    return out


def first_render_times() -> dict:
    from playwright.sync_api import sync_playwright
    port = D._claim_port("127.0.0.1", 0)
    proc = subprocess.Popen([str(Path(sys.executable).with_name("prefbench")), "dashboard", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = {}
    try:
        url = re.search(r"(http://\S+/)", proc.stdout.readline()).group(1)
        for _ in range(240):  # until the server, which warms its caches first, answers
            try: urllib.request.urlopen(url, timeout=60).close(); break
            except OSError: time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            for slug in D.PAGES:
                n = len(D.PAGES[slug].dashboard.EXPLORER.panels())
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                t0 = time.perf_counter()
                page.goto(url + slug, wait_until="commit")
                first = page.locator(".js-plotly-plot").first
                first.wait_for(state="attached", timeout=120_000)
                page.wait_for_function("el => el.data && el.data.length > 0", arg=first.element_handle(), timeout=120_000)
                t_first = time.perf_counter() - t0
                page.locator(".js-plotly-plot").nth(n - 1).wait_for(state="attached", timeout=120_000)
                t_all = time.perf_counter() - t0
                out[slug] = dict(first_ms=1e3 * t_first, all_ms=1e3 * t_all)
                page.close()
            browser.close()
    finally:
        proc.terminate(); proc.wait(30)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: two updates per dashboard")
    ap.add_argument("--no-browser", action="store_true", help="skip the Chromium part")
    a = ap.parse_args()
    print(stable_allocator())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {get_device()}, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    up = update_times(2 if a.quick else 7)
    for slug, r in up.items():
        cheap = f"; {r['cheap']} (one panel, no training) {r['cheap_ms']:.0f} ms" if r["cheap"] else ""
        print(f"update {slug:>12}: {r['param']} (uncached) median {r['median_ms']:.0f} ms, max {r['max_ms']:.0f} ms; "
              f"cached revisit {r['revisit_ms']:.0f} ms{cheap}")
    first = {} if a.no_browser else first_render_times()
    for slug, r in first.items():
        print(f"first render {slug:>12}: first figure {r['first_ms']:.0f} ms, all figures {r['all_ms']:.0f} ms")
    print(f"load average after {os.getloadavg()[0]:.2f}")
    max_first = max((r["first_ms"] for r in first.values()), default=float("nan"))
    print(f"max_update_ms={max(r['median_ms'] for r in up.values()):.0f} max_first_render_ms={max_first:.0f}")


if __name__ == "__main__":
    main()
