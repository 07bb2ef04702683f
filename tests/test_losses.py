"""Stability and contract properties of every loss in prefbench_lib.losses (hypothesis)."""
import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from prefbench_lib.losses import EXAMPLE_HPARAMS, LOSSES, LossOutput, bco_loss, kto_loss

HPARAMS = EXAMPLE_HPARAMS  # one non-trivial setting per loss, shared with the notebook and the benchmark
# log-probabilities are <= 0; ORPO's odds are only defined there, the other losses take any real input
NONPOSITIVE = {"orpo"}


@st.composite
def batch(draw, dtype, nonpositive=False):
    B = draw(st.integers(1, 6))
    hi = 0.0 if nonpositive else 1e4
    vals = st.floats(-1e4, hi, allow_nan=False, allow_infinity=False, width=32)
    xs = [torch.tensor(draw(st.lists(vals, min_size=B, max_size=B)), dtype=dtype) for _ in range(4)]
    lens = [torch.tensor(draw(st.lists(st.integers(1, 2048), min_size=B, max_size=B)), dtype=torch.float32) for _ in range(2)]
    beta = draw(st.sampled_from([0.01, 0.1, 1.0, 10.0]))
    return xs, lens, beta


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("name", sorted(LOSSES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_finite_value_and_gradient(name, dtype, data):
    xs, lens, beta = data.draw(batch(dtype, name in NONPOSITIVE))
    xs = [x.requires_grad_() for x in xs]
    out = LOSSES[name](*xs, beta=beta, chosen_lengths=lens[0], rejected_lengths=lens[1], **HPARAMS.get(name, {}))
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


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-50, 50), min_size=1, max_size=8), st.floats(0.01, 5.0))
def test_swapping_chosen_and_rejected_mirrors_dpo(deltas, beta):
    "-log sigma(h) - (-log sigma(-h)) = -h: the loss difference under a swap is exactly -beta * Delta."
    d = torch.tensor(deltas, dtype=torch.float64)
    z = torch.zeros_like(d)
    fwd = LOSSES["dpo"](d, z, z, z, beta=beta).losses
    swp = LOSSES["dpo"](z, d, z, z, beta=beta).losses
    torch.testing.assert_close(fwd - swp, -beta * d)


def test_every_required_name_is_registered():
    required = {"sigmoid", "dpo", "cdpo", "robust", "rdpo", "hinge", "ipo", "exo_pair", "nca_pair", "bco_pair", "sppo_hard",
                "aot", "aot_unpaired", "apo_zero", "apo_down", "discopop", "sigmoid_norm", "simpo", "orpo", "npo", "soft_dpo",
                "sigmoid_attenuated"}
    assert required <= set(LOSSES), required - set(LOSSES)
