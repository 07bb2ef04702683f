"""Properties of prefbench_lib.toy: the update's gradient for every algorithm, reproducibility, reliability."""
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import prefbench_lib.toy as toy
from prefbench_lib.losses import LOSSES, get_loss
from prefbench_lib.toy import ALGORITHMS, batch_gradient, bin_reward, reference_distribution, run_bandit

REF = reference_distribution()
PAIRWISE = sorted(n for n in LOSSES if n != "kto")


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(ALGORITHMS) + PAIRWISE + ["sigmoid_no_neg", "ipo_no_neg"]),
       seed=st.integers(0, 2**31 - 1), center=st.sampled_from([20.0, 70.0]), N=st.integers(2, 12))
def test_logit_gradient_is_shift_invariant_and_finite(name, seed, center, N):
    "Adding a constant to every logit leaves pi unchanged, so every loss's logit gradient sums to 0 in each row."
    g = torch.Generator().manual_seed(seed)
    z = REF.log() + torch.randn(3, 100, generator=g)
    acts = torch.randint(0, 100, (3, N), generator=g)
    grad = batch_gradient(name, z, acts, bin_reward(center=center), REF.log(), **_hp(name))
    assert torch.isfinite(grad).all()
    assert grad.sum(-1).abs().max() < 1e-5


def _hp(name):
    return {"lambda_": 0.1} if name == "orpo" else {}


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(PAIRWISE), seed=st.integers(0, 2**31 - 1), keep_neg=st.booleans())
def test_pairwise_gradient_matches_finite_differences_of_the_loss(name, seed, keep_neg):
    "dL/dz from the batched machinery == a central difference of the loss evaluated directly, in float64."
    g = torch.Generator().manual_seed(seed)
    z = REF.log().double() + 0.5 * torch.randn(100, generator=g, dtype=torch.float64)
    r = bin_reward(center=70.0)
    acts = torch.randperm(100, generator=g)[:6]
    acts = acts[torch.sort(r[acts], descending=True, stable=True).indices]
    if r[acts[0]] == r[acts[-1]]: return
    c, w = int(acts[0]), int(acts[-1])
    lref = REF.log().double()
    one = torch.ones(1, dtype=torch.float64)

    def loss(zz, frozen_rejected):
        lp = torch.log_softmax(zz, -1)
        lr_ = frozen_rejected if frozen_rejected is not None else lp[w]
        return get_loss(name)(lp[c:c + 1], lr_.reshape(1), lref[c:c + 1], lref[w:w + 1], beta=0.1,
                              chosen_lengths=one, rejected_lengths=one, **_hp(name)).losses.sum()

    frozen = None if keep_neg else torch.log_softmax(z, -1)[w].detach()
    algo = name if keep_neg else f"{name}_no_neg"
    mine = batch_gradient(algo, z.float()[None], acts[None], r, REF.log(), beta=0.1, **_hp(name))[0].double()
    v = torch.randn(100, generator=g, dtype=torch.float64)
    h = 1e-5
    if not keep_neg:  # the rejected log-prob is held at its current value on both sides of the difference
        fd = (loss(z + h * v, frozen) - loss(z - h * v, frozen)) / (2 * h)
    else:
        fd = (loss(z + h * v, None) - loss(z - h * v, None)) / (2 * h)
    assert abs(float(mine @ v) - float(fd)) < 1e-3 * max(1.0, abs(float(fd)))


def test_same_call_same_frame_and_runs_do_not_depend_on_their_neighbours():
    kw = dict(regime=["offline", "on_policy"], reward_center=[20, 70], seeds=[4, 9], steps=30)
    a = run_bandit(["sft", "dpo", "ppo"], **kw)
    assert a.equals(run_bandit(["sft", "dpo", "ppo"], **kw))
    alone = run_bandit("ppo", regime="offline", reward_center=70, seeds=[9], steps=30)
    mine = a[(a.algorithm == "ppo") & (a.regime == "offline") & (a.reward_center == 70) & (a.seed == 9)]
    np.testing.assert_allclose(alone.expected_reward.values, mine.expected_reward.values, atol=1e-5)
    # the caller's order of algorithms, regimes, peaks and seeds is the frame's order
    assert list(a.algorithm.cat.categories) == ["sft", "dpo", "ppo"]
    assert list(a.drop_duplicates(["algorithm", "regime", "reward_center", "seed"]).seed[:2]) == [4, 9]


@pytest.mark.parametrize("kwargs, message", [
    (dict(algorithms="nope"), "unknown algorithm name='nope'"),
    (dict(algorithms=[]), "algorithms must not be empty"),
    (dict(algorithms=["sft", "sft"]), "algorithms has duplicates"),
    (dict(steps=0), "steps must be an integer >= 1, got steps=0"),
    (dict(steps=2.5), "steps must be an integer >= 1"),
    (dict(seeds=0), "seeds must be an integer >= 1"),
    (dict(seeds=[1, -2]), "seeds must be an integer >= 0, got seeds=-2"),
    (dict(reward_center=-0.5), "reward_center must be in [0, K=100)"),
    (dict(reward_center=150, K=100), "got reward_center=150"),
    (dict(reward_width=-1), "reward_width must be"),
    (dict(lr=-1e-3), "lr must be"),
    (dict(lr=0), "lr must be"),
    (dict(beta=0), "beta must be"),
    (dict(regime="online"), "regime must be one of"),
    (dict(policy="transformer"), "policy must be one of"),
    (dict(optimizer="lion"), "optimizer must be one of"),
    (dict(pairs="random"), "pairs must be one of"),
    (dict(reuse=0), "reuse must be an integer >= 1"),
    (dict(dataset_size=5), "dataset_size must be an integer >= 10"),
    (dict(kl_coef=-1), "kl_coef must be >= 0"),
    (dict(clip=0), "clip must be"),
    (dict(K=1), "K must be an integer >= 2"),
    (dict(algorithms="simpo", gamma_ratio=0.5), "unknown keyword argument gamma_ratio=0.5"),
])
def test_bad_arguments_are_refused_by_name(kwargs, message):
    kwargs = {"algorithms": "sft", **kwargs}
    with pytest.raises(ValueError, match=None) as e:
        run_bandit(kwargs.pop("algorithms"), **kwargs)
    assert message in str(e.value), str(e.value)


def test_loss_hyperparameters_reach_the_loss():
    a = run_bandit("simpo", seeds=1, steps=20, gamma_beta_ratio=0.0)
    b = run_bandit("simpo", seeds=1, steps=20, gamma_beta_ratio=2.0)
    assert not np.allclose(a.expected_reward.values, b.expected_reward.values)


def test_recorded_policies_are_distributions_and_match_the_metrics():
    df = run_bandit(["sft", "ipo"], seeds=2, steps=10, record_policy=True)
    pi = df.filter(like="pi_").values
    np.testing.assert_allclose(pi.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(pi @ bin_reward().numpy(), df.expected_reward.values, atol=1e-5)


def test_an_interrupted_run_returns_the_steps_it_finished(monkeypatch):
    real, calls = toy._RunSet.coefficients, {"n": 0}

    def flaky(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 8: raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(toy._RunSet, "coefficients", flaky)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        df = run_bandit("sft", seeds=2, steps=50)
    assert sorted(df.step.unique()) == list(range(7)) and any("interrupted at step 7" in str(x.message) for x in w)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_matches_cpu():
    kw = dict(reward_center=[20, 70], seeds=3, steps=50)
    cpu = run_bandit(["sft", "dpo"], device="cpu", **kw)
    gpu = run_bandit(["sft", "dpo"], device="cuda", **kw)
    np.testing.assert_allclose(cpu.expected_reward.values[:10], gpu.expected_reward.values[:10], atol=1e-4)
