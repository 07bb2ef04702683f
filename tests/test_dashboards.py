"""The dashboards: their state classes driven directly, the server over HTTP, and every page in a real browser.

The browser tests drive Debian's Chromium with Playwright (`.ci/run` installs it when it is missing); nothing they load
may come from outside the loopback interface.
"""
import concurrent.futures
import os
import random
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import param
import pytest

from prefbench_lib import dashboards as D

SMALL = {"margins": dict(n_prompts=100, steps=20), "mode-seeking": dict(steps=30, seeds=2), "nash": dict(steps=100)}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def explorer(slug: str, **kw) -> D.Explorer:
    "The page's explorer at small sizes."
    return _explorer_class(slug)(**{**SMALL[slug], **kw})


def _explorer_class(slug: str) -> type[D.Explorer]:
    return D.PAGES[slug].dashboard.EXPLORER


def settings(p: param.Parameter) -> list:
    "A parameter's bounds and an interior value, or its options (and, for a multi-choice, a pair of them)."
    if isinstance(p, param.ListSelector): return [[o] for o in p.objects] + [p.objects[:2]]
    if isinstance(p, param.Selector): return list(p.objects)
    if isinstance(p, param.Integer): return [p.bounds[0], p.bounds[1], (p.bounds[0] + p.bounds[1]) // 2]
    if isinstance(p, param.Number): return [p.bounds[0], p.bounds[1], (p.bounds[0] + p.bounds[1]) / 2]
    raise AssertionError(f"no settings for {p.name}")


def assert_finite(fig, where) -> None:
    assert fig.layout.title.text, where
    for t in fig.data:
        for axis in ("x", "y", "z", "a", "b", "c"):
            vals = getattr(t, axis, None)
            if vals is not None and len(vals) and not isinstance(vals[0], str):
                assert np.isfinite(np.asarray(vals, dtype=float)).all(), (where, t.name, axis)


@pytest.mark.parametrize("slug", list(SMALL))
def test_every_parameter_at_its_bounds_and_inside(slug):
    "Each parameter in turn at its bounds, inside, or at each option: every panel is drawn without NaN, or says why not."
    cls, rendered, refused = _explorer_class(slug), 0, set()
    for name, p in cls.param.objects("existing").items():
        if name == "name": continue
        # the costly ends (many steps, many seeds) are checked at small sizes of the rest
        for v in settings(p):
            ex = cls(**{k: v for k, v in SMALL[slug].items() if k != name})
            setattr(ex, name, v)
            out = ex.render()
            assert sorted([*out.figures, *out.errors]) == sorted(ex.FIGURES), (name, v)
            for k, fig in out.figures.items(): assert_finite(fig, (name, v, k))
            rendered += not out.errors
            refused |= set(out.errors.values())
    assert rendered > 10, rendered
    # the only refusals are the library's own: SPPO/Hedge with beta > 0, and rock-paper-scissors with K != 3
    for msg in refused: assert re.search(r"hedge.*beta must be 0|'rps' game has K = 3|must hold at least one", msg), msg


def test_every_loss_hyperparameter_at_both_ends_of_its_slider():
    ex = explorer("margins")
    for loss, obj in ex.hparams.items():
        ex.losses = [loss]
        for name, p in obj.param.objects("existing").items():
            if name == "name" or p.softbounds is None: continue
            for v in p.softbounds:
                setattr(obj, name, v)
                out = ex.render(["shapes"])
                assert not out.errors, (loss, name, v, out.errors)
                assert_finite(out.figures["shapes"], (loss, name, v))
            setattr(obj, name, p.default)


@pytest.mark.parametrize("slug", list(SMALL))
def test_a_burst_of_concurrent_changes_ends_in_the_last_state(slug):
    "Changes from several threads at once (as the server dispatches them): the panes end showing the final settings."
    db = D.PAGES[slug].dashboard(explorer(slug))
    name = {"margins": "beta", "mode-seeking": "reward_center", "nash": "eta"}[slug]
    p = db.explorer.param[name]
    rng = random.Random(0)
    values = [rng.randint(*p.bounds) if isinstance(p, param.Integer) else round(rng.uniform(p.bounds[0], p.bounds[1] / 2), 3)
              for _ in range(12)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda v: setattr(db.explorer, name, v), values))
    final = _explorer_class(slug)(**{**SMALL[slug], name: getattr(db.explorer, name)}).render()
    for k, fig in final.figures.items():
        assert db.panes[k].object.to_plotly_json()["data"] == fig.to_plotly_json()["data"], (k, getattr(db.explorer, name))
        assert db.panes[k].loading is False


# ---------------------------------------------------------------------------------------------------------------
# Served: the `prefbench dashboard` command on a free loopback port

def _free_port() -> int:
    return D._free_port("127.0.0.1")


def _wait_for_url(proc: subprocess.Popen, timeout: float = 120) -> str:
    "The URL the command prints, read from its stdout."
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if m := re.search(r"(http://\S+/)", line or ""): return m.group(1)
        if proc.poll() is not None: raise AssertionError(f"prefbench dashboard exited: {proc.stderr.read()}")
    raise AssertionError("prefbench dashboard printed no URL")


def _wait_until_serving(url: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=60) as r:
                if r.status == 200: return
        except OSError: time.sleep(0.3)
    raise AssertionError(f"nothing served at {url}")


TINY_RUN = dict(hidden_size=32, heads=2, sft_examples=256, pairs=256, sft_steps=20, steps=12, batch_size=16, eval_every=4, eval_prompts=16,
                checkpoint_every=0)  # a real tiny-LM run in a few seconds


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    "A runs directory with two tiny runs, ipo and sigmoid, for the Runs page."
    from prefbench_lib.lm_train import TrainConfig, train
    root = tmp_path_factory.mktemp("runs")
    for loss in ("ipo", "sigmoid"): train(TrainConfig(**TINY_RUN, loss_type=[loss]), root / loss, progress=False)
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory, runs_root):
    "`prefbench dashboard` in a subprocess, its Runs page on `runs_root`; yields (base URL, path of its log)."
    log = tmp_path_factory.mktemp("server") / "stderr.log"
    exe = Path(sys.executable).with_name("prefbench")
    with open(log, "w") as err:
        proc = subprocess.Popen([str(exe), "dashboard", "--port", str(_free_port())], stdout=subprocess.PIPE, stderr=err, text=True,
                                env={**os.environ, "PREFBENCH_RUNS": str(runs_root)})
        try:
            url = _wait_for_url(proc)
            _wait_until_serving(url)
            yield url, log
        finally:
            proc.terminate()
            proc.wait(30)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=120) as r:
        assert r.status == 200, url
        return r.read().decode()


def test_the_server_serves_the_index_and_every_page_from_loopback(server):
    url, log = server
    assert url.startswith("http://127.0.0.1:")
    index = _get(url)
    assert "<title>prefbench dashboards</title>" in index
    for slug, page in D.PAGES.items():
        html = _get(url + slug)
        assert f"<title>prefbench · {page.dashboard.TITLE}</title>" in html
        # every script and stylesheet the page names is served by this server (a relative or loopback URL)
        for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert not re.match(r"(https?:)?//", ref) or ref.startswith(url[:-1]), (slug, ref)
    assert "Traceback" not in log.read_text()


def test_the_command_refuses_a_public_address_without_origins():
    exe = Path(sys.executable).with_name("prefbench")
    r = subprocess.run([str(exe), "dashboard", "--address", "0.0.0.0"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "is not loopback" in r.stderr, r.stderr


# ---------------------------------------------------------------------------------------------------------------
# In a real browser

@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"): pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Watch:
    "What a page did: console errors, failed requests, and requests that left the loopback interface."
    def __init__(self, page, base: str):
        self.errors, self.failed, self.external = [], [], []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url}: {r.failure}"))
        page.on("request", lambda r: None if r.url.startswith((base, "blob:", "data:", base.replace("http", "ws"))) else
                self.external.append(r.url))

    def check(self) -> None:
        assert not self.errors, self.errors
        assert not self.failed, self.failed
        assert not self.external, self.external


def _figure_data(page, i: int = 0) -> str:
    "The i-th Plotly figure's traces, as JSON."
    return page.locator(".js-plotly-plot").nth(i).evaluate("el => JSON.stringify(el.data)")


def _figure_title(page, i: int) -> str:
    return page.locator(".js-plotly-plot").nth(i).evaluate("el => el.layout.title.text")


def _wait_for_change(page, before: str, i: int = 0, timeout: float = 60) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        now = _figure_data(page, i)
        if now != before: return now
        page.wait_for_timeout(200)
    raise AssertionError("the figure did not change")


# per page: the slider to move (by its position among the page's sliders), the figure that shows it, and what that
# figure shows of the slider's value
PAGE_CASES = {
    "margins": dict(slider=0, figure=0, shows=lambda page, v: f"β = {float(v):g}" in _figure_title(page, 0)),
    "mode-seeking": dict(slider=0, figure=0, shows=lambda page, v: f"bin {int(float(v))}" in _figure_title(page, 0)),
    "nash": dict(slider=0, figure=0, shows=lambda page, v: page.locator(".js-plotly-plot").nth(0).evaluate(
        "el => el.data[0].z.length") == int(float(v))),  # K: the heatmap is K x K
}


@pytest.mark.parametrize("slug", list(PAGE_CASES))
def test_each_page_in_chromium(slug, server, browser, tmp_path):
    "Load, wait for a figure, move a widget, see the figure change; then a burst of moves, and the last one wins."
    url, log = server
    case = PAGE_CASES[slug]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    watch = Watch(page, url[:-1])
    page.goto(url + slug)
    page.wait_for_selector(".js-plotly-plot", timeout=120_000)
    if slug == "nash":  # a select first: a game that takes any K
        before = _figure_data(page, 0)
        page.locator("select").first.select_option("cyclic")
        _wait_for_change(page, before, 0)
    before = _figure_data(page, case["figure"])
    handle = page.locator(".noUi-handle").nth(case["slider"])
    handle.focus(); handle.press("ArrowRight")
    _wait_for_change(page, before, case["figure"])
    # a burst of moves: ten key presses at once; the figure ends showing the last value
    for _ in range(10): handle.press("ArrowLeft" if slug != "nash" else "ArrowRight")
    value = handle.get_attribute("aria-valuenow")
    deadline = time.time() + 90
    while not case["shows"](page, value):
        assert time.time() < deadline, (_figure_title(page, case["figure"]), value)
        page.wait_for_timeout(200)
    if slug == "nash":  # a setting the library refuses: its message shows in the page
        page.locator("select").first.select_option("rps")
        page.wait_for_selector(f"text='rps' game has K = 3 actions (rock, paper, scissors), got K={int(float(value))}", timeout=60_000)
    page.screenshot(path=tmp_path / f"{slug}.png", full_page=True)
    watch.check()
    assert "Traceback" not in log.read_text() and "ERROR" not in log.read_text(), log.read_text()[-3000:]
    page.close()


def _legend(page, i: int) -> list[str]:
    "The names in the i-th Plotly figure's legend."
    return page.locator(".js-plotly-plot").nth(i).evaluate("el => el.data.filter(t => t.showlegend !== false).map(t => t.name)")


def _wait_for(check, what: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, what
        time.sleep(0.2)


def test_the_runs_page_draws_every_run_follows_new_ones_and_says_when_there_is_none(server, runs_root, browser, tmp_path):
    "Two runs on every panel, one colour each; a run that appears shows after a refresh; an empty root shows how to make a run."
    url, log = server
    n = len(D.RunsExplorer.FIGURES)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    watch = Watch(page, url[:-1])
    page.goto(url + "runs")
    page.locator(".js-plotly-plot").nth(n - 1).wait_for(timeout=120_000)
    titles = [_figure_title(page, i) for i in range(n)]
    assert all(titles) and len(set(titles)) == n, titles
    for i in range(n):
        assert _legend(page, i) == ["ipo", "sigmoid"], (titles[i], _legend(page, i))
        colours = page.locator(".js-plotly-plot").nth(i).evaluate("el => el.data.map(t => t.line.color)")
        assert len(set(colours)) == 2, (titles[i], colours)
        assert page.locator(".js-plotly-plot").nth(i).evaluate("el => el.data.every(t => t.x.length > 0)"), titles[i]
    assert not page.get_by_text("could not read").count() and not page.get_by_text("No runs found").count()
    aside = tmp_path / "aside"
    try:
        shutil.copytree(runs_root / "ipo", runs_root / "ipo-again")  # a run appears while the page is open
        (runs_root / "broken").mkdir(); (runs_root / "broken" / "config.json").write_text("{")
        page.get_by_role("button", name="refresh now").click()
        _wait_for(lambda: _legend(page, 0) == ["ipo", "ipo-again", "sigmoid"], "the new run is drawn")
        page.get_by_text("could not read broken").wait_for(timeout=30_000)
        shutil.move(runs_root, aside)  # the root is gone: nothing to show, and the page says how to make a run
        runs_root.mkdir()
        page.get_by_role("button", name="refresh now").click()
        page.get_by_text("No runs found").wait_for(timeout=30_000)
        assert page.get_by_text(f"prefbench train loss_type=ipo steps=100 --run-dir {runs_root / 'ipo'}").count()
        page.goto(url + "runs")  # a fresh page on the empty root says the same
        page.get_by_text("No runs found").wait_for(timeout=60_000)
        watch.check()
    finally:
        if aside.exists():
            shutil.rmtree(runs_root)
            shutil.move(aside, runs_root)
        for extra in ("ipo-again", "broken"): shutil.rmtree(runs_root / extra, ignore_errors=True)
    assert "Traceback" not in log.read_text() and "ERROR" not in log.read_text(), log.read_text()[-3000:]
    page.close()


def test_index_page_links_every_dashboard(server, browser):
    url, _ = server
    page = browser.new_page()
    watch = Watch(page, url[:-1])
    page.goto(url)
    for slug, p in D.PAGES.items():
        link = page.get_by_role("link", name=p.dashboard.TITLE).first
        assert link.get_attribute("href").endswith(slug)
    watch.check()
    page.close()


# ---------------------------------------------------------------------------------------------------------------
# Inline, in a real JupyterLab

def test_the_notebook_draws_a_dashboard_in_jupyterlab(browser, tmp_path):
    """Open 11_dashboards in JupyterLab on loopback, run all cells, and see a dashboard's Plotly figure drawn in an output.

    The notebook loads Panel's and Plotly's JavaScript inline (`pn.extension("plotly", inline=True)`), so the figures draw
    offline; JupyterLab's own extensions may still try CDNs at start-up, which is theirs, not the notebook's, and not checked.
    """
    root = Path(__file__).resolve().parents[1]
    shutil.copy(root / "nbs" / "11_dashboards.ipynb", tmp_path / "dashboards.ipynb")  # a copy: JupyterLab saves what it runs
    settings = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')  # render every cell, not just those in view
    port = _free_port()
    lab = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1", "--allow-root",
                            "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={tmp_path}",
                            f"--LabApp.user_settings_dir={tmp_path / 'settings'}"],
                           stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "w"))
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_serving(base + "/lab")
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{base}/lab/tree/dashboards.ipynb")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        page.locator(".jp-StatusBar-Widget", has_text="Idle").first.wait_for(timeout=120_000)  # the kernel is up
        page.get_by_role("menuitem", name="Run").click()
        page.get_by_text("Run All Cells", exact=True).click()
        plot = page.locator(".jp-OutputArea .js-plotly-plot").first
        plot.wait_for(state="attached", timeout=300_000)
        plot.scroll_into_view_if_needed()
        assert plot.evaluate("el => el.data.length") > 0  # Plotly drew traces
        page.screenshot(path=tmp_path / "jupyterlab.png")
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
        assert not any("Traceback" in e or "Error" in e for e in errors), errors
    finally:
        lab.terminate()
        try: lab.wait(10)
        except subprocess.TimeoutExpired: lab.kill(); lab.wait(10)
