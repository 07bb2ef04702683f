"""Stability and contract properties of every loss in prefbench_lib.losses (hypothesis)."""
import inspect
import math
import re
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings, strategies as st

from prefbench_lib.losses import (EXAMPLE_HPARAMS, LOSSES, LossOutput, Pair, apo_zero_unpaired_loss, bco_loss, kto_loss, loss_mixture,
                                  pairwise)

HPARAMS = EXAMPLE_HPARAMS  # one non-trivial setting per loss, shared with the notebook and the benchmark
LOGP = st.floats(-1e4, 0.0, allow_nan=False, allow_infinity=False, width=32)  # log-probabilities: <= 0 (the contract)


@st.composite
def batch(draw, dtype, neginf=False):
    "Four [B] log-prob tensors in [-1e4, 0] (with neginf, some entries -inf: probability 0), two length tensors and a beta."
    B = draw(st.integers(1, 6))
    vals = st.one_of(LOGP, st.just(-math.inf)) if neginf else LOGP
    xs = [torch.tensor(draw(st.lists(vals, min_size=B, max_size=B)), dtype=dtype) for _ in range(4)]
    lens = [torch.tensor(draw(st.lists(st.integers(1, 2048), min_size=B, max_size=B)), dtype=torch.float32) for _ in range(2)]
    beta = draw(st.sampled_from([0.01, 0.1, 1.0, 10.0]))
    return xs, lens, beta


def no_nan_or_named(call, xs: list) -> None:
    """The -inf rule (issue 24): a finite loss with a finite gradient (the loss's limit), or a ValueError naming an input that holds
    the -inf (where the limit is not finite, or -inf - (-inf) has no log-ratio). Never NaN, never +-inf returned."""
    try: out = call()
    except ValueError as e:
        assert re.search(r"\w+_logps\[\d+\] = -inf", str(e)) or "are both -inf" in str(e), str(e)
        return
    losses = out.losses if hasattr(out, "losses") else out.output.losses
    assert torch.isfinite(losses).all(), losses
    if losses.requires_grad:
        for g in torch.autograd.grad(losses.sum(), [x for x in xs if x.requires_grad], allow_unused=True):
            assert g is None or torch.isfinite(g).all(), g


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("name", sorted(LOSSES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_finite_value_and_gradient(name, dtype, data):
    xs, lens, beta = data.draw(batch(dtype))
    xs = [x.requires_grad_() for x in xs]
    out = LOSSES[name](Pair(*xs, chosen_lengths=lens[0], rejected_lengths=lens[1]), beta=beta, **HPARAMS.get(name, {}))
    assert isinstance(out, LossOutput) and all(t.shape == xs[0].shape for t in out)
    assert torch.isfinite(out.losses).all(), (name, out.losses)
    assert not out.chosen_rewards.requires_grad and not out.rejected_rewards.requires_grad
    out.losses.sum().backward()
    for x in xs:
        assert x.grad is None or torch.isfinite(x.grad.float()).all(), (name, x.grad)


@pytest.mark.parametrize("fn,kw", [(kto_loss, dict(kl_ref_point=0.5)), (bco_loss, dict(reward_shift=0.5))], ids=["kto", "bco"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_unpaired_finite(fn, kw, dtype, data):
    xs, _, beta = data.draw(batch(dtype))
    pol, ref = xs[0].requires_grad_(), xs[1]
    desirable = torch.tensor(data.draw(st.lists(st.booleans(), min_size=len(pol), max_size=len(pol))))
    out = fn(pol, ref, desirable, beta=beta, **kw)
    assert torch.isfinite(out.losses).all()
    out.losses.sum().backward()
    assert torch.isfinite(pol.grad.float()).all()


@pytest.mark.parametrize("name", sorted(LOSSES))
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_neginf_logps_never_nan(name, data):
    "The -inf rule over the whole registry with -inf log-probs drawn: a finite limit with a finite gradient, or a ValueError naming the input."
    xs, lens, beta = data.draw(batch(torch.float32, neginf=True))
    xs = [x.requires_grad_() for x in xs]
    no_nan_or_named(lambda: LOSSES[name](Pair(*xs, chosen_lengths=lens[0], rejected_lengths=lens[1]), beta=beta, **HPARAMS.get(name, {})), xs)


@pytest.mark.parametrize("fn,kw", [(kto_loss, dict(kl_ref_point=0.5)), (bco_loss, dict(reward_shift=0.5)), (apo_zero_unpaired_loss, {})],
                         ids=["kto", "bco", "apo_zero_unpaired"])
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_unpaired_neginf_never_nan(fn, kw, data):
    xs, _, beta = data.draw(batch(torch.float32, neginf=True))
    pol, ref = xs[0].requires_grad_(), xs[1]
    desirable = torch.tensor(data.draw(st.lists(st.booleans(), min_size=len(pol), max_size=len(pol))))
    no_nan_or_named(lambda: fn(pol, ref, desirable, beta=beta, **kw), [pol])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-50, 50), min_size=1, max_size=8), st.floats(0.01, 5.0))
def test_swapping_chosen_and_rejected_mirrors_dpo(deltas, beta):
    "-log sigma(h) - (-log sigma(-h)) = -h: the loss difference under a swap is exactly -beta * Delta."
    d = torch.tensor(deltas, dtype=torch.float64) - 60  # log-probs <= 0, against a reference at -60: Delta = deltas
    z = torch.full_like(d, -60.0)
    fwd = LOSSES["dpo"](Pair(d, z, z, z), beta=beta).losses
    swp = LOSSES["dpo"](Pair(z, d, z, z), beta=beta).losses
    torch.testing.assert_close(fwd - swp, -beta * (d - z))


def test_every_required_name_is_registered():
    required = {"sigmoid", "dpo", "cdpo", "robust", "rdpo", "hinge", "ipo", "exo_pair", "nca_pair", "bco_pair", "sppo_hard",
                "aot", "aot_unpaired", "apo_zero", "apo_down", "discopop", "sigmoid_norm", "simpo", "orpo", "npo", "soft_dpo",
                "sigmoid_attenuated"}
    assert required <= set(LOSSES), required - set(LOSSES)


F_LOSSES = sorted(n for n, f in LOSSES.items() if f.f_divergence)  # the losses that read the log-ratios


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("kind,coef", [("forward_kl", 0.5), ("js_divergence", 0.5), ("alpha_divergence", 0.3),
                                       ("alpha_divergence", 3.0)], ids=["forward_kl", "js", "alpha0.3", "alpha3"])
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_f_divergences_finite_value_and_gradient(kind, coef, dtype, data):
    "Every f-divergence with every loss that reads the log-ratios: finite for log-probs in [-1e4, 0], gradients included."
    name = data.draw(st.sampled_from(F_LOSSES))
    xs, lens, beta = data.draw(batch(dtype))
    xs = [x.requires_grad_() for x in xs]
    pair = Pair(*xs, chosen_lengths=lens[0], rejected_lengths=lens[1], f_divergence_type=kind, f_alpha_divergence_coef=coef)
    out = LOSSES[name](pair, beta=beta, **HPARAMS.get(name, {}))
    assert torch.isfinite(out.losses).all(), (name, kind, out.losses)
    out.losses.sum().backward()
    for x in xs:
        assert x.grad is None or torch.isfinite(x.grad.float()).all(), (name, kind, x.grad)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_mixtures_finite_and_equal_to_their_weighted_terms(data):
    "loss_mixture: finite, and exactly the weighted sum of its terms (the 'sft' term included)."
    names = data.draw(st.lists(st.sampled_from(sorted({f.names[0] for f in LOSSES.values()}) + ["sft"]), min_size=1, max_size=3, unique=True))
    weights = data.draw(st.lists(st.floats(0.0, 5.0), min_size=len(names), max_size=len(names)))
    xs, lens, beta = data.draw(batch(torch.float32))
    pair = Pair(*xs, chosen_lengths=lens[0], rejected_lengths=lens[1])
    mix = loss_mixture(pair, names, beta=beta, loss_weights=weights)  # each term at its defaults
    assert torch.isfinite(mix.output.losses).all()
    want = sum(w * mix.components[n] for n, w in zip(names, weights))
    torch.testing.assert_close(mix.output.losses.detach(), want)


def test_math_modules_import_without_pandas():
    "core, losses, listwise, metrics and nash need only torch and numpy (pandas and fastcore blocked in a fresh process)."
    code = ("import sys\nfor m in ('pandas', 'fastcore', 'scipy'): sys.modules[m] = None\n"
            "import prefbench_lib.core, prefbench_lib.losses, prefbench_lib.listwise, prefbench_lib.metrics, prefbench_lib.nash\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_every_loss_has_an_honest_signature():
    "What you read is what you call: (pair, *, beta, its hyperparameters) -> LossOutput, and re-registering replaces."
    for name, fn in LOSSES.items():
        params = list(inspect.signature(fn).parameters.values())
        assert [p.name for p in params[:2]] == ["pair", "beta"] and params[1].kind is params[1].KEYWORD_ONLY, name
        assert tuple(p.name for p in params[2:]) == fn.hyperparameter_names and all(p.kind is p.KEYWORD_ONLY for p in params[2:])
        assert inspect.signature(fn).return_annotation in (LossOutput, "LossOutput"), name
    with pytest.raises(ValueError, match="takes no hyperparameter"): LOSSES["dpo"](Pair(torch.zeros(1), torch.zeros(1), torch.zeros(1), torch.zeros(1)), beta=0.1, tau=1.0)
    with pytest.raises(ValueError, match="takes a Pair"): LOSSES["dpo"](torch.zeros(1), beta=0.1)
    before = dict(LOSSES)
    pairwise("sigmoid", "dpo")(LOSSES["sigmoid"].__wrapped__)  # the cell run again: replaced, not refused
    assert set(LOSSES) == set(before)
    LOSSES.update(before)
    def sigmoid_loss(pair, *, beta): ...  # another function under a taken name
    with pytest.raises(ValueError, match="already registered"): pairwise("sigmoid")(sigmoid_loss)


@pytest.mark.parametrize("name", ["dpo", "ipo", "simpo", "hinge"])
def test_deferred_scans_as_on_an_accelerator(name, monkeypatch):
    "With the input scans deferred to one sync (as on a GPU), a good batch gives the same loss and every bad input is still named."
    from prefbench_lib import core
    pc, pr, rc, rr = (torch.tensor(v) for v in ([-5.0, -7.0], [-8.0, -6.5], [-6.0, -6.5], [-7.0, -7.0]))
    lc, lr = torch.tensor([3.0, 4.0]), torch.tensor([2.0, 5.0])
    call = lambda *xs, lc=lc: LOSSES[name](Pair(*xs, chosen_lengths=lc, rejected_lengths=lr), beta=0.5, **HPARAMS.get(name, {}))
    want = call(pc, pr, rc, rr).losses
    syncs = []
    monkeypatch.setattr(core, "_defer", lambda x: True)
    monkeypatch.setattr(core, "settle_checks", lambda later, *s, f=core.settle_checks: syncs.append(len(later)) or f(later, *s))
    import prefbench_lib.losses as L
    monkeypatch.setattr(L, "settle_checks", core.settle_checks)
    torch.testing.assert_close(call(pc, pr, rc, rr).losses, want)
    assert syncs and syncs[-1] >= 2  # the scans were deferred, then read together in one settle
    with pytest.raises(ValueError, match=r"policy_rejected_logps must hold log-probabilities <= 0 .* = 0\.5"):
        call(pc, pr.clone().fill_(0.5), rc, rr)
    with pytest.raises(ValueError, match=r"policy_chosen_logps must hold log-probabilities <= 0 .* = nan"):
        call(pc.clone().fill_(math.nan), pr, rc, rr)
    if name in ("ipo", "simpo"):
        with pytest.raises(ValueError, match=r"chosen_lengths must be positive whole token counts, got chosen_lengths\[0\] = 2\.5"):
            call(pc, pr, rc, rr, lc=torch.tensor([2.5, 4.0]))


def test_a_loss_registered_after_import_is_a_loss_like_any_other():
    "Issue 25: one `@pairwise` registration, made after the library and the labs are imported, and the new loss is in LOSSES, has its range checked at the door, and computes."
    import prefbench_lib.losses as L
    from prefbench_lib import metrics, toy  # noqa: F401  (the labs: imported before the loss exists)

    @L.pairwise("scratch_margin_sq", margin="[0, 10]")
    def scratch_margin_sq(pair: Pair,  # the batch of pairs
                          *, beta: float,  # beta > 0
                          margin: float = 1.0,  # the target of beta * Delta, in [0, 10]
                         ) -> LossOutput:
        "A scratch loss: (beta Delta - margin)^2."
        return pair.output((beta * pair.delta - margin) ** 2, beta)

    try:
        assert L.LOSSES["scratch_margin_sq"] is scratch_margin_sq and L.get_loss("scratch_margin_sq") is scratch_margin_sq
        pc, pr, rc, rr = (torch.tensor(v, dtype=torch.float64) for v in ([-5.0, -9.0], [-7.0, -6.0], [-6.0, -6.5], [-6.0, -4.0]))
        delta = (pc - rc) - (pr - rr)  # the margin, written out: (1, -2.5) - (-1, -2) = (2, -0.5)
        out = L.LOSSES["scratch_margin_sq"](Pair(pc, pr, rc, rr), beta=0.5, margin=2.0)
        torch.testing.assert_close(out.losses, torch.tensor([(0.5 * 2 - 2.0) ** 2, (0.5 * -0.5 - 2.0) ** 2], dtype=torch.float64))
        torch.testing.assert_close(out.losses, (0.5 * delta - 2.0) ** 2)
        torch.testing.assert_close(out.chosen_rewards, 0.5 * (pc - rc))
        # its declared range, checked at the door before the body runs
        with pytest.raises(ValueError, match=r"margin must be in \[0\.0, 10\.0\], got margin=11\.0"):
            L.LOSSES["scratch_margin_sq"](Pair(pc, pr, rc, rr), beta=0.5, margin=11.0)
        with pytest.raises(ValueError, match=r"margin must be a number or a 0-d tensor, got a tensor of shape \(2,\)"):
            L.LOSSES["scratch_margin_sq"](Pair(pc, pr, rc, rr), beta=0.5, margin=torch.ones(2))
        with pytest.raises(ValueError, match=r"loss 'scratch_margin_sq' takes no hyperparameter\(s\) tau"):
            L.LOSSES["scratch_margin_sq"](Pair(pc, pr, rc, rr), beta=0.5, tau=1.0)
        with pytest.raises(ValueError, match="beta must be a finite number > 0"):
            L.LOSSES["scratch_margin_sq"](Pair(pc, pr, rc, rr), beta=-0.5)
        with pytest.raises(ValueError, match="loss 'scratch_margin_sq' needs ref_chosen_logps, got ref_chosen_logps=None"):
            L.LOSSES["scratch_margin_sq"](Pair(pc, pr), beta=0.5)
        # what reads the registry sees it: its knobs, its push along the margin line, a mixture with it
        [h] = L.loss_hyperparameters("scratch_margin_sq")
        assert (h.name, h.default, h.low, h.high, h.closed) == ("margin", 1.0, 0.0, 10.0, "both")
        m = torch.tensor([-2.0, 0.0, 4.0], dtype=torch.float64)
        torch.testing.assert_close(L.gradient_weight("scratch_margin_sq", m, beta=0.5, margin=2.0), 2 * (0.5 * m - 2.0) * 0.5)  # d/dm (beta m - c)^2
        mix = L.loss_mixture(Pair(pc, pr, rc, rr), ["sigmoid", "scratch_margin_sq"], beta=0.5, loss_weights=[1.0, 0.5], margin=2.0)
        torch.testing.assert_close(mix.output.losses, torch.log1p(torch.exp(-0.5 * delta)) + 0.5 * (0.5 * delta - 2.0) ** 2)
    finally:
        L.LOSSES.pop("scratch_margin_sq", None)


def test_a_pair_is_never_written_to_by_the_losses_that_read_it():
    "Issue 25: `pairwise` names the loss in its errors without storing it in the caller's Pair; one Pair goes to several losses."
    pc, pr = torch.tensor([-5.0, -9.0]), torch.tensor([-7.0, -6.0])
    pair = Pair(pc, pr)  # no reference, no lengths
    for name, missing in (("sigmoid", "ref_chosen_logps"), ("simpo", "chosen_lengths"), ("npo", "ref_rejected_logps")):
        with pytest.raises(ValueError, match=rf"loss '{name}' needs {missing}"):
            LOSSES[name](pair, beta=0.5)
    assert not hasattr(pair, "reader")
    assert set(vars(pair)) <= {"_raw", "shape", "f_divergence_type", "f_alpha_divergence_coef", "_t", "_later", "log_ratio_c", "log_ratio_r",
                               "rho_c", "rho_r", "delta", "delta_bar", "avg_c", "avg_r"}  # inputs and the formula's cached quantities only
