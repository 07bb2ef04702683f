"""The documentation: offline pages in a real browser, page templates, docments, internal links.

The render test runs `make html`'s renderer (tools/html_pages.py) into a temporary directory and opens the pages in
Debian's Chromium through Playwright with every request outside file:// aborted, as a reader without a network would
open them. It skips itself where there is no Chromium, unless CI is set (`.ci/run` installs Chromium).
"""
import importlib.util
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def notebooks() -> list[Path]:
    "Every notebook the docs render (nbdev's rule: names starting with _ or . are not pages)."
    return sorted(p for p in NBS.glob("*.ipynb") if not p.name.startswith(("_", ".")))


def read(path: Path) -> dict:
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------------------------------------------
# Offline pages in Chromium

def _need_chromium():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"): pytest.fail(f"CI is set but there is no Chromium at {CHROMIUM}")
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian's chromium package)")


# Raw TeX left in the text a reader sees (code, scripts and typeset math excluded).
_RAW_MATH_JS = r"""() => {
  const c = document.body.cloneNode(true);
  c.querySelectorAll('pre, code, script, style, .MathJax, .MathJax_Display, .MathJax_Preview, .MJX_Assistive_MathML, .plotly-graph-div')
   .forEach(e => e.remove());
  return (c.textContent.match(/\$[^$\s][^$]*?\$|\\\(|\\\[/g) || []).slice(0, 5);
}"""
_FIGURES_DRAWN_JS = "[...document.querySelectorAll('.plotly-graph-div')].every(d => d.querySelector('.main-svg'))"


def test_offline_pages_typeset_math_and_draw_every_figure(tmp_path):
    "Every page from `make html`, opened from disk with the network blocked: no error, math typeset, figures drawn."
    _need_chromium()
    from playwright.sync_api import sync_playwright
    t0 = time.time()
    pages = _load_tool("html_pages").render(out=tmp_path / "_html")
    rendered = time.time() - t0
    assert sorted(p.stem for p in pages) == sorted(p.stem for p in notebooks())
    problems, shots = {}, tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for path in pages:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                errors, failed, outside = [], [], []
                page.on("console", lambda m: m.type == "error" and errors.append(m.text))
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})"))
                def route(r, outside=outside):
                    if r.request.url.startswith("file://"): r.continue_()
                    else: outside.append(r.request.url); r.abort()
                page.route("**/*", route)
                page.goto(path.as_uri())
                found = []
                try:
                    page.wait_for_selector("body[data-mathjax=done]", state="attached", timeout=120_000)
                    page.wait_for_function(_FIGURES_DRAWN_JS, timeout=60_000)
                except Exception as e: found.append(f"did not finish: {type(e).__name__}: {str(e)[:200]}")
                src = path.with_suffix(".ipynb").name
                has_math = bool(re.search(r"\$[^$\n]+\$", (NBS / src).read_text()))
                n_math = page.locator(".MathJax, .MathJax_Display").count()
                if has_math and not n_math: found.append("the notebook has math but the page shows no typeset math")
                if raw := page.evaluate(_RAW_MATH_JS): found.append(f"raw TeX left in the text: {raw}")
                n_figs = page.locator(".plotly-graph-div").count()
                n_drawn = page.locator(".plotly-graph-div .main-svg").count()
                if n_drawn < n_figs: found.append(f"{n_figs - n_drawn} of {n_figs} figures not drawn")
                found += [f"console error: {e}" for e in errors] + [f"failed request: {f}" for f in failed]
                found += [f"request outside file://: {u}" for u in outside]
                page.screenshot(path=shots / f"{path.stem}.png")
                if found: problems[path.stem] = found
                page.close()
        finally:
            browser.close()
    print(f"rendered {len(pages)} pages in {rendered:.0f} s; opened them in {time.time() - t0 - rendered:.0f} s; "
          f"screenshots in {shots}")
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items())


def test_renderer_turns_notebook_links_into_page_links_and_adds_the_sites_heading_anchors(tmp_path):
    tool = _load_tool("html_pages")
    assert tool.pandoc_id("1. Regularised game: EGPO converges linearly, OMD and Nash-MD need small steps") == \
        "regularised-game-egpo-converges-linearly-omd-and-nash-md-need-small-steps"
    assert tool.pandoc_id("4. DPO's population optimum is $\\pi^*$") == "dpos-population-optimum-is-pi"
    assert tool.pandoc_id("`run_bandit`: the common call") == "run_bandit-the-common-call"
    nb = {"cells": [{"id": "c1", "cell_type": "markdown", "metadata": {}, "source": "# A page\n\n## Two words\n\nSee [toy](03_toy_bandit.ipynb#checks) and [here](#two-words)."},
                    {"id": "c2", "cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": "#| hide\nsecret = 1"},
                    {"id": "c3", "cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                     "source": "#| code-fold: true\n#| code-summary: \"Solution\"\nassert 1 + 1 == 2"}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "nbs").mkdir()
    (tmp_path / "nbs" / "a_page.ipynb").write_text(json.dumps(nb))
    tool.NBS = tmp_path / "nbs"
    page = tool.render(["a_page"], out=tmp_path / "out")[0].read_text()
    assert 'href="03_toy_bandit.html#checks"' in page and 'id="two-words"' in page
    assert "secret" not in page and "#|" not in page
    assert re.search(r'<details class="code-fold"><summary>Solution</summary>.*assert', page, re.S)
    assert "plotly.min.js" not in page  # no figures, no plotly.js
