"""Properties of the widget helpers' pure parts (hypothesis): slider ranges the losses accept, finite explorer frames, escaped text;
and which UI toolkit each module loads."""
import html
import inspect
import math
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from prefbench_lib.losses import LOSSES, Hyperparameter
from prefbench_lib.views import distinct_losses, escape_text, hparam_range, loss_frame
from prefbench_lib.widgets import hyperparameter_controls

NAMES = distinct_losses()
gap = st.one_of(st.just(0.0), st.floats(1e-3, 100.0))  # distance from the default to a finite end (0: the end is the default)


@st.composite
def hyperparameter(draw):
    "A Hyperparameter whose documented range holds its default (strictly inside at an open end)."
    d = draw(st.floats(-100.0, 100.0))
    below, above = draw(gap), draw(gap)
    low = d - below if draw(st.booleans()) else None
    high = d + above if draw(st.booleans()) else None
    assume(low is None or high is None or high > low)
    closed = draw(st.sampled_from(["both", "left", "right", "neither"]))
    assume(low is None or low < d or closed in ("both", "left"))  # a default at an end must be inside the range
    assume(high is None or high > d or closed in ("both", "right"))
    return Hyperparameter("x", d, low, high, closed, "")


@settings(max_examples=500, deadline=None)
@given(hyperparameter())
def test_hparam_range_lies_in_the_documented_range_and_holds_the_default(h):
    lo, hi = hparam_range(h)
    assert lo < hi and lo <= h.default <= hi, (h, lo, hi)
    if h.low is not None:
        assert lo > h.low if h.closed in ("right", "neither") else lo >= h.low, (h, lo)
    if h.high is not None:
        assert hi < h.high if h.closed in ("left", "neither") else hi <= h.high, (h, hi)
    if h.low is not None and h.high is not None and h.closed == "both":
        assert (lo, hi) == (h.low, h.high)


@pytest.mark.parametrize("name", NAMES)
def test_every_control_starts_at_the_default_and_the_loss_accepts_its_ends(name):
    defaults = {p.name: p.default for p in inspect.signature(LOSSES[name]).parameters.values()}
    for c in hyperparameter_controls(name):
        if not hasattr(c, "min"): continue  # a label: the loss picks the value itself
        assert c.value == defaults[c.description] and c.min < c.max and not c.continuous_update, (name, c)
        for end in (c.min, c.max):
            f = loss_frame(name, beta=0.5, **{c.description: end})  # raises if the loss refuses the value
            assert np.isfinite(f[["loss", "gradient_weight"]].to_numpy()).all(), (name, c.description, end)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_frame_is_finite_anywhere_the_controls_reach(data):
    name = data.draw(st.sampled_from(NAMES), label="loss")
    beta = 10 ** data.draw(st.floats(-2.0, 1.0), label="log10 beta")  # the beta slider's range
    hp = {c.description: data.draw(st.floats(c.min, c.max), label=c.description)
          for c in hyperparameter_controls(name) if hasattr(c, "min")}
    f = loss_frame(name, beta=beta, margin_range=data.draw(st.floats(1.0, 60.0), label="margin_range"), **hp)
    assert np.isfinite(f[["loss", "gradient_weight"]].to_numpy()).all(), (name, beta, hp)


def test_distinct_losses_cover_every_registered_loss_once():
    assert len(NAMES) == len(set(LOSSES.values()))
    assert {LOSSES[n] for n in NAMES} == set(LOSSES.values())
    assert all(LOSSES[n].names[0] == n for n in NAMES)


def test_frame_matches_dpo_closed_form_for_any_beta():
    for beta in (0.01, 0.3, 3.0, 10.0):
        f = loss_frame("dpo", beta=beta)
        d = f.margin.to_numpy()
        # -dL/dDelta = beta sigma(-beta Delta); L = log(1 + e^{-beta Delta})
        np.testing.assert_allclose(f.gradient_weight, beta / (1 + np.exp(beta * d)), rtol=1e-10, atol=1e-300)
        np.testing.assert_allclose(f.loss, np.logaddexp(0, -beta * d), rtol=1e-10)
        assert math.isclose(f.attrs["config"]["beta"], beta)


# ---------------------------------------------------------------------------------------------------------------
# escape_text: outside text shown, never interpreted

_PLOTLY_NAMED = {"mu": "μ", "amp": "&", "lt": "<", "gt": ">", "nbsp": "\xa0", "times": "×", "plusmn": "±", "deg": "°"}


def plotly_shows(label: str) -> str:
    "The text Plotly.js shows for a label without markup: its convertEntities (svg_text_utils), written out in Python."
    def one(m):
        ref = m.group(1)
        if ref.startswith("#x"): return chr(int(ref[2:], 16))
        if ref.startswith("#"): return chr(int(ref[1:]))
        return _PLOTLY_NAMED.get(ref, m.group(0))
    return re.sub(r"&(#\d+|#x[\da-fA-F]+|[a-z]+);", one, label)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, exclude_categories=["Cs"]), max_size=40) |
       st.lists(st.sampled_from(["<", ">", "&", '"', "'", "%{x}", "$", "&amp;", "&lt;", "&mu;", "&#60;", "<img src=x onerror=alert(1)>",
                                 "</script>", "[x](javascript:alert(1))", "a"]), max_size=8).map("".join))
def test_escape_text_is_read_back_as_the_text_by_a_browser_and_by_plotly(s):
    out = escape_text(s)
    assert html.unescape(out) == s  # what a browser's HTML parser shows (the standard library's decoder as the peer)
    assert plotly_shows(out) == s  # what Plotly shows in a legend, a title or a hover label
    assert not set("<>\"'%$") & set(out), out  # no tag, no attribute quote, no hover-template field, no LaTeX delimiter


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["\udcff", "\ud800", "\udfff", "<", "&", "é"]) | st.characters(exclude_categories=()), max_size=20).map("".join))
def test_escape_text_of_any_python_string_is_utf8(s):
    "A name read from a file system that is not UTF-8 holds lone surrogates: shown as their escapes, in text a page's JSON can carry."
    out = escape_text(s)
    out.encode("utf-8")
    assert html.unescape(out) == s.encode("utf-8", "backslashreplace").decode("utf-8")


# ---------------------------------------------------------------------------------------------------------------
# One UI toolkit per module: the shared helpers (views) load none, the widgets no Panel, the dashboards no ipywidgets

def _loaded_by(module: str) -> set[str]:
    "The top-level packages a fresh interpreter has loaded after importing `module`."
    code = f"import sys, {module}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    return set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())


@pytest.mark.parametrize("module,loads,never", [("prefbench_lib.views", "torch", {"panel", "bokeh", "ipywidgets"}),
                                                ("prefbench_lib.widgets", "ipywidgets", {"panel", "bokeh"}),
                                                ("prefbench_lib.dashboards", "panel", {"ipywidgets"})])
def test_each_module_loads_only_its_own_ui_toolkit(module, loads, never):
    loaded = _loaded_by(module)
    assert loads in loaded, sorted(loaded)  # the probe sees what the module imports ...
    assert not never & loaded, never & loaded  # ... and no other UI toolkit


def test_the_widgets_reach_the_shared_helpers_through_views():
    "The names the widgets and the dashboards share are one set of functions, defined in views."
    from prefbench_lib import dashboards, views, widgets
    for name in views.__all__:
        assert getattr(widgets, name, views.__dict__[name]) is views.__dict__[name], name
        assert getattr(dashboards, name, views.__dict__[name]) is views.__dict__[name], name
