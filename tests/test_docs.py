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


# ---------------------------------------------------------------------------------------------------------------
# Docments: what the API reference is generated from

# Modules exported from notebooks being rewritten on main (issue 14); their test is expected to fail until then.
REWRITING: dict = {}  # module -> notebook, while a notebook is being rewritten elsewhere (its checks then xfail)
REWRITING_REASON = "being rewritten on main (issue 14)"


def _modules() -> list[str]:
    import pkgutil
    import prefbench_lib
    return sorted(m.name for m in pkgutil.iter_modules(prefbench_lib.__path__) if not m.name.startswith("_"))


def _comment_for(name: str, sources: list[str]) -> bool:
    "Is there a docment (a comment after the parameter, on its line) for `name` in any of `sources`?"
    pat = re.compile(rf"^\s*(?:def \w+\(|\*,\s*)?\**{re.escape(name)}\b[^#\n]*#\s*\S", re.M)
    return any(pat.search(s) for s in sources)


def undocumented(obj) -> list[str]:
    "What a public function or class lacks for the API reference: a one-line docstring, a docment per parameter."
    import dataclasses
    import inspect
    from fastcore.docments import docments
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
    problems = [] if doc and doc.strip() and "\n" not in doc.strip() else ["a one-line docstring"]
    sources = []
    for o in (*(obj.__mro__[:-1] if inspect.isclass(obj) else [obj]), getattr(obj, "__code__", None)):
        try: sources.append(inspect.getsource(o))
        except (TypeError, OSError): pass
    if inspect.isclass(obj):
        fields = getattr(obj, "_fields", None) or [f.name for f in dataclasses.fields(obj)] if dataclasses.is_dataclass(obj) \
            else getattr(obj, "_fields", None)
        if fields:  # NamedTuple, dataclass: a comment after each field
            return problems + [f"field {f!r} has no docment" for f in fields if not _comment_for(f, sources)]
        import param
        if parameterized := issubclass(obj, param.Parameterized):  # param.Parameterized: each parameter's doc=
            problems += [f"parameter {n!r} has no doc" for n, p in obj.param.objects("existing").items() if n != "name" and not p.doc]
        init = next((c.__dict__["__init__"] for c in obj.__mro__ if "__init__" in c.__dict__), None)
        if init is None or init is object.__init__ or (parameterized and init is param.Parameterized.__init__): return problems
        try: sources.append(inspect.getsource(init))
        except (TypeError, OSError): pass
        obj = init
    else: parameterized = False
    try: docs = docments(obj)
    except Exception: docs = {}
    for name, p in inspect.signature(obj).parameters.items():
        if name in ("self", "cls") or (parameterized and p.kind is p.VAR_KEYWORD):  # **params: the parameters above
            continue
        if not docs.get(name) and not _comment_for(name, sources): problems.append(f"parameter {name!r} has no docment")
    return problems


def _public(module: str) -> list[tuple[str, object]]:
    import importlib
    import inspect
    mod = importlib.import_module(f"prefbench_lib.{module}")
    return [(n, getattr(mod, n)) for n in getattr(mod, "__all__", [])
            if (inspect.isfunction(getattr(mod, n)) or inspect.isclass(getattr(mod, n))) and getattr(getattr(mod, n), "__module__", "") == mod.__name__]


@pytest.mark.parametrize("module", [pytest.param(m, marks=pytest.mark.xfail(reason=REWRITING_REASON, strict=False)) if m in REWRITING else m
                                    for m in _modules()])
def test_every_public_function_and_class_has_a_one_line_docstring_and_docments(module):
    problems = {name: p for name, obj in _public(module) if (p := undocumented(obj))}
    assert not problems, f"prefbench_lib.{module}:\n" + "\n".join(f"  {k}: needs {', '.join(v)}" for k, v in problems.items())


def test_the_docments_check_can_fail():
    def good(x: int,  # the input
            ) -> int:  # the output
        "Twice x."
        return 2 * x
    def bad(x, y):
        """Two
        lines."""
    assert undocumented(good) == []
    assert undocumented(bad) == ["a one-line docstring", "parameter 'x' has no docment", "parameter 'y' has no docment"]


# ---------------------------------------------------------------------------------------------------------------
# Page templates (prefbench_lib.docs.TEMPLATES; nbs/91_docs.ipynb says what each holds)

NUMBERED = [p for p in notebooks() if re.match(r"\d", p.name)]
WITH_EXERCISES = {"01_losses", "03_toy_bandit", "05_nash", "07_margins"}  # the loss, toy, Nash and margins pages


def _rewriting_xfail(paths: list[Path]) -> list:
    "The notebooks as parameters, those being rewritten on main expected to fail."
    rewriting = set(REWRITING.values())
    return [pytest.param(p, id=p.stem, marks=pytest.mark.xfail(reason=REWRITING_REASON, strict=False)) if p.stem in rewriting
            else pytest.param(p, id=p.stem) for p in paths]


@pytest.mark.parametrize("path", _rewriting_xfail(NUMBERED))
def test_every_numbered_notebook_declares_a_template_and_follows_it(path):
    from prefbench_lib.docs import EXERCISES, check_page, sections
    nb = read(path)
    problems = check_page(nb)
    if path.stem in WITH_EXERCISES and EXERCISES not in [h for h, _ in sections(nb)]:
        problems.append(f"no '{EXERCISES}' section (the loss, toy, Nash and margins pages end with exercises)")
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


# ---------------------------------------------------------------------------------------------------------------
# Internal links

_LINK = re.compile(r"(!?)\[[^\]]*\]\(([^)\s]+)\)")
_NOTEBOOK_NAME = re.compile(r"`((?:\d\d[a-z]?_\w+)|index)`")
_SYMBOL = re.compile(r"`(prefbench_lib(?:\.\w+)+)`")


def anchors(nb: dict) -> set[str]:
    "What `#name` can point to on a notebook's page: explicit anchors and the site's (Pandoc's) heading identifiers."
    pandoc_id = _load_tool("html_pages").pandoc_id
    found = set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown": continue
        text = "".join(cell["source"])
        found |= set(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", text))
        for m in re.finditer(r"^#{1,6}\s+(.*?)\s*(?:\{#([\w.-]+)\})?\s*$", text, re.M):
            found.add(m.group(2) or pandoc_id(m.group(1)))
    return found


def link_problems(path: Path) -> list[str]:
    "Internal links of one notebook that lead nowhere: notebook to notebook, to a heading or anchor, to an image, to a symbol."
    import importlib
    problems, own = [], anchors(read(path))
    for cell in read(path)["cells"]:
        if cell["cell_type"] != "markdown": continue
        text = "".join(cell["source"])
        for image, target in _LINK.findall(text):
            if re.match(r"[a-z]+:", target): continue  # http(s), mailto: outside the site
            page, _, anchor = target.partition("#")
            if image or not page.endswith(".ipynb") and page:
                if not (path.parent / page).exists(): problems.append(f"{target}: no such file")
                continue
            if page and not (path.parent / page).exists(): problems.append(f"{target}: no such notebook"); continue
            if anchor and anchor not in (anchors(read(path.parent / page)) if page else own):
                problems.append(f"{target}: no heading or anchor #{anchor} in {page or path.name}")
        for name in _NOTEBOOK_NAME.findall(text):
            if not (path.parent / f"{name}.ipynb").exists(): problems.append(f"`{name}`: no such notebook")
        for dotted in _SYMBOL.findall(text):
            mod, _, attr = dotted.rpartition(".")
            try:
                importlib.import_module(dotted)
            except ImportError:
                try: getattr(importlib.import_module(mod), attr)
                except (ImportError, AttributeError): problems.append(f"`{dotted}`: no such module or symbol")
    return problems


@pytest.mark.parametrize("path", notebooks(), ids=[p.stem for p in notebooks()])
def test_internal_links_lead_somewhere(path):
    problems = link_problems(path)
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


def test_the_link_check_can_fail(tmp_path):
    (tmp_path / "a.ipynb").write_text(json.dumps({"cells": [{"cell_type": "markdown", "metadata": {}, "source":
        "# A\n\n## Two words\n\n[ok](#two-words) [ok](b.ipynb#the-end) [no](#three-words) [no](c.ipynb) [no](b.ipynb#nowhere) "
        "`b` `09_nothing` `prefbench_lib.losses.LOSSES` `prefbench_lib.losses.NOTHING` ![no](images/none.png)"}]}))
    (tmp_path / "b.ipynb").write_text(json.dumps({"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# B\n\n## The end"}]}))
    assert link_problems(tmp_path / "a.ipynb") == [
        "#three-words: no heading or anchor #three-words in a.ipynb", "c.ipynb: no such notebook",
        "b.ipynb#nowhere: no heading or anchor #nowhere in b.ipynb", "images/none.png: no such file",
        "`09_nothing`: no such notebook", "`prefbench_lib.losses.NOTHING`: no such module or symbol"]


# ---------------------------------------------------------------------------------------------------------------
# Stored outputs: small, each figure once

def test_notebook_outputs_stay_small():
    total = sum(len(json.dumps(c.get("outputs", []))) for p in notebooks() for c in read(p)["cells"] if c["cell_type"] == "code")
    assert total < 5 * 2**20, f"stored outputs take {total / 2**20:.1f} MiB (at most 5 MiB)"


@pytest.mark.parametrize("path", _rewriting_xfail(notebooks()))
def test_each_figure_is_stored_once_as_plotly_json(path):
    "Plotly's JSON only: no figure also stored as HTML, no CDN loader (re-execute after `setup_figures`)."
    from prefbench_lib.docs import FIGURE_MIME
    outputs = [o for c in read(path)["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    twice = [o for o in outputs if FIGURE_MIME in o.get("data", {}) and len(o["data"]) > 1]
    loaders = [o for o in outputs if "cdn.plot.ly" in str(o.get("data", {}).get("text/html", ""))]
    assert not twice and not loaders, f"{path.name}: {len(twice)} figures stored twice, {len(loaders)} CDN loaders"
