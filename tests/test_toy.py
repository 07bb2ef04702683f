"""Properties of prefbench_lib.toy: every rule's update, reproducibility, the saved config, reliability."""
import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import assume, given, settings, strategies as st

import prefbench_lib.toy as toy
from prefbench_lib import core, losses
from prefbench_lib.core import save_frame
from prefbench_lib.losses import Pair, get_loss
from prefbench_lib.toy import bin_reward, reference_distribution, run_bandit
from toy_tables import ARGUMENT_ERRORS

REF = reference_distribution()
PAIRWISE = [n for n, c in toy.RULES.items() if c.family == "pair"]
NAMES = list(toy.RULES) + [f"{n}_no_neg" for n in PAIRWISE]  # every rule get_rule knows
# hyperparameters away from their defaults, so that passing them through the rule is exercised
HP = {"orpo": {"lambda_": 0.3}, "cdpo": {"label_smoothing": 0.2}, "rpo": {"alpha": 0.5}, "ppo": {"kl_coef": 0.2, "clip": 0.1},
      "sft_push_down": {"push_down": 0.5}, "rwr": {"temperature": 0.3}}


def make_rule(name, beta=0.1):
    "The rule `name` with HP's hyperparameters, and beta where it has one."
    cls = toy.get_rule(name)
    hp = {**HP.get(name.removesuffix("_no_neg"), {}), "beta": beta}
    return cls(**{k: v for k, v in hp.items() if k in cls.field_names()})


def logit_grad(rule, z, actions, reward, log_ref, pairs="best_worst", behaviour_z=None):
    "dL/dz [R, K] of `rule` on a batch of `actions` [R, N], as run_bandit's update computes it."
    logp = torch.log_softmax(z, -1)
    b = toy.make_batch(actions, reward, logp, log_ref, pairs=pairs,
                       behaviour_logp=None if behaviour_z is None else torch.log_softmax(behaviour_z, -1))
    return toy.logit_gradient(logp.exp(), b.actions, rule.coefficients(b), logp=logp, log_ref=log_ref, kl_coef=rule.kl_penalty())


@settings(max_examples=80, deadline=None)
@given(name=st.sampled_from(NAMES), seed=st.integers(0, 2**31 - 1), center=st.sampled_from([20.0, 70.0]), N=st.integers(2, 12),
       pairs=st.sampled_from(list(toy.PAIRINGS)), stale=st.booleans())
def test_logit_gradient_is_shift_invariant_and_finite(name, seed, center, N, pairs, stale):
    "Adding a constant to every logit leaves pi unchanged, so every rule's logit gradient sums to 0 in each row."
    g = torch.Generator().manual_seed(seed)
    z = REF.log() + torch.randn(3, 100, generator=g)
    acts = torch.randint(0, 100, (3, N), generator=g)
    old = z + 0.3 * torch.randn(3, 100, generator=g) if stale else None  # a reused batch: drawn by an older policy
    grad = logit_grad(make_rule(name), z, acts, bin_reward(center=center), REF.log(), pairs, old)
    assert torch.isfinite(grad).all()
    assert grad.sum(-1).abs().max() < 1e-5


def positions(N, pairing):
    "The (chosen, rejected) positions each pairing compares in a batch sorted best first, written out."
    if pairing == "best_worst": return [(0, N - 1)]
    if pairing == "nested": return [(i, N - 1 - i) for i in range(N // 2)]
    return [(i, j) for i in range(N) for j in range(i + 1, N)]


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(PAIRWISE), seed=st.integers(0, 2**31 - 1), keep_neg=st.booleans(), N=st.integers(2, 8),
       pairs=st.sampled_from(list(toy.PAIRINGS)))
def test_pairwise_gradient_matches_finite_differences_of_the_loss(name, seed, keep_neg, N, pairs):
    "dL/dz from the batched machinery == a central difference of the loss evaluated directly, in float64."
    g = torch.Generator().manual_seed(seed)
    z = REF.log().double() + 0.5 * torch.randn(100, generator=g, dtype=torch.float64)
    r = bin_reward(center=70.0)
    acts = torch.randperm(100, generator=g)[:N]
    acts = acts[torch.sort(r[acts], descending=True, stable=True).indices]
    ci, ri = (list(x) for x in zip(*positions(N, pairs)))
    ac, ar = acts[ci], acts[ri]
    valid = r[ac] > r[ar]  # a tie carries no preference
    assume(bool(valid.any()))
    lref, ones = REF.log().double(), torch.ones(len(ci), dtype=torch.float64)
    rule = make_rule(name if keep_neg else f"{name}_no_neg")
    hp = {h.name: getattr(rule, h.name) for h in rule.loss_hyperparameters}  # the loss's own (not beta, RPO's alpha, negative_gradient)
    frozen = torch.log_softmax(z, -1).detach()  # without the negative gradient, l_r is held here

    def loss(zz):  # the mean over valid pairs of the loss of each pair
        lp = torch.log_softmax(zz, -1)
        lc, lr_ = lp[ac], (lp if keep_neg else frozen)[ar]
        out = get_loss("sigmoid" if name == "rpo" else name)(Pair(lc, lr_, lref[ac], lref[ar], chosen_lengths=ones, rejected_lengths=ones), beta=0.1, **hp).losses
        if name == "rpo": out = out - rule.alpha * lc  # RPO: DPO - alpha l_c
        return out[valid].mean()

    mine = logit_grad(rule, z.float()[None], acts[None], r, REF.log(), pairs)[0].double()
    v, h = torch.randn(100, generator=g, dtype=torch.float64), 1e-5
    fd = (loss(z + h * v) - loss(z - h * v)) / (2 * h)
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


@pytest.mark.parametrize("kwargs, message", ARGUMENT_ERRORS)  # tests/toy_tables.py; 03_toy_bandit shows a few of them
def test_bad_arguments_are_refused_by_name(kwargs, message):
    kwargs = {"algorithms": "sft", **kwargs}
    with pytest.raises(ValueError) as e:
        run_bandit(kwargs.pop("algorithms"), **kwargs)
    assert message in str(e.value), str(e.value)


def test_hyperparameters_reach_the_rule():
    hp = lambda a, **kw: {"hyperparameters": {a: kw}}
    a = run_bandit("simpo", seeds=1, steps=20, **hp("simpo", gamma_beta_ratio=0.0))
    b = run_bandit("simpo", seeds=1, steps=20, **hp("simpo", gamma_beta_ratio=2.0))
    assert not np.allclose(a.expected_reward.values, b.expected_reward.values)
    # the config records the rule's every field
    assert b.attrs["config"]["hyperparameters"] == {"simpo": {"beta": 0.1, "negative_gradient": True, "gamma": None, "gamma_beta_ratio": 2.0}}
    # beta goes to every selected rule that has the field, and to no other; a rule's own hyperparameters only to that rule
    d = run_bandit(["ppo", "sft", "sigmoid"], seeds=1, steps=20, beta={"sigmoid": 0.5}, **hp("ppo", kl_coef=1.0))
    assert d.attrs["config"]["hyperparameters"] == {"ppo": {"clip": 0.2, "kl_coef": 1.0}, "sft": {},
                                                    "sigmoid": {"beta": 0.5, "negative_gradient": True}}
    e = run_bandit("ppo", seeds=1, steps=20, **hp("ppo", kl_coef=0.0))
    assert not np.allclose(d[d.algorithm == "ppo"].kl_reverse.values, e.kl_reverse.values)
    # PPO's clip acts only on a reused batch (the ratio is 1 on a fresh one)
    loose, tight = (run_bandit("ppo", seeds=1, steps=20, reuse=4, **hp("ppo", clip=c)).expected_reward.values for c in (10.0, 0.01))
    assert not np.allclose(loose, tight)
    # the negative-gradient ablation is a field: `dpo_no_neg` and dpo with negative_gradient=False are one run
    f = run_bandit(["dpo_no_neg", "dpo"], seeds=1, steps=20, hyperparameters={"dpo": {"negative_gradient": False}})
    np.testing.assert_array_equal(f[f.algorithm == "dpo_no_neg"].expected_reward.values, f[f.algorithm == "dpo"].expected_reward.values)


@pytest.mark.parametrize("options", [
    dict(algorithms=["ppo", "simpo", "rpo"], reward_center=[20, 70], regime=["offline", "on_policy"], seeds=[3, 5],
         lr={"ppo": 0.1, "simpo": 0.02, "rpo": 0.05}, beta=0.3,
         hyperparameters={"rpo": {"alpha": 0.5}, "ppo": {"clip": 0.3}, "simpo": {"gamma_beta_ratio": 0.5}}, pairs="all_pairs",
         min_reward_gap=0.05, logp_floor=-16.0, exact_reference=True),
    dict(algorithms=["sigmoid_no_neg", "rwr"], reward_center=30, K=50, reward_width=5.0, policy="mlp", contexts=3, hidden=8,
         context_dim=4, optimizer="adam", reuse=2, n_samples=6, dataset_size=60, pairs="nested", hyperparameters={"rwr": {"temperature": 0.5}}),
])
def test_config_round_trips_through_save_frame(tmp_path, options):
    "The JSON that save_frame writes beside a frame is a BanditConfig that reruns the frame exactly."
    df = run_bandit(**options, steps=6, device="cpu")
    path = save_frame(df, tmp_path / "toy" / "run.parquet")
    cfg = toy.BanditConfig.from_json(path.with_suffix(".json"))
    assert cfg.to_dict() == df.attrs["config"]
    assert cfg.rules() == {a: toy.get_rule(a)(**hp) for a, hp in df.attrs["config"]["hyperparameters"].items()}
    pd.testing.assert_frame_equal(toy.bandit_frame(toy.train(cfg, progress=False), cfg), df)
    pd.testing.assert_frame_equal(pd.read_parquet(path), df, check_categorical=False)


def test_recorded_policies_are_distributions_and_match_the_metrics():
    df = run_bandit(["sft", "ipo"], seeds=2, steps=10, record_policy=True)
    pi = df.filter(like="pi_").values
    np.testing.assert_allclose(pi.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(pi @ bin_reward().numpy(), df.expected_reward.values, atol=1e-5)


def interrupt_on_call(monkeypatch, n):
    "Make SFT's coefficients raise KeyboardInterrupt on their n-th call (one call per step)."
    real, calls = toy.SFT.coefficients, {"n": 0}

    def flaky(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == n: raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(toy.SFT, "coefficients", flaky)


def test_an_interrupted_run_returns_the_steps_it_finished(monkeypatch):
    interrupt_on_call(monkeypatch, 8)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        df = run_bandit("sft", seeds=2, steps=50)
    assert sorted(df.step.unique()) == list(range(7)) and any("interrupted at step 7" in str(x.message) for x in w)


def test_an_interrupt_before_the_first_step_is_raised(monkeypatch):
    interrupt_on_call(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):  # nothing to return: the interrupt itself, not an error of the cleanup
        run_bandit("sft", seeds=2, steps=50)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_matches_cpu():
    kw = dict(reward_center=[20, 70], seeds=3, steps=50)
    cpu = run_bandit(["sft", "dpo", "ppo"], device="cpu", **kw)
    gpu = run_bandit(["sft", "dpo", "ppo"], device="cuda", **kw)
    np.testing.assert_allclose(cpu.expected_reward.values[:10], gpu.expected_reward.values[:10], atol=1e-4)


# ------------------------------------------------------------------------------------------------------------------------
# Issue 25: every registry is read when asked; a loss, a toy rule and an optimizer can each be added after import in one cell
# ------------------------------------------------------------------------------------------------------------------------

def test_a_loss_registered_after_import_is_a_toy_rule():
    "A loss added to LOSSES with losses.pairwise after toy was imported: get_rule and run_bandit use it with no other change."
    name = "_scratch_cubic_hinge"
    assert name not in toy.RULES

    @losses.pairwise(name)
    def _scratch(pair: Pair,  # the batch of pairs
                 *, beta: float,  # beta > 0
                ) -> losses.LossOutput:
        "relu(1 - beta Delta)^3: a loss toy has never seen."
        return pair.output(torch.relu(1 - beta * pair.delta) ** 3, beta)
    try:
        assert name in toy.RULES and issubclass(toy.get_rule(name), toy.PairwiseRule)
        # its update against the formula written out here, differentiated by autograd
        z = REF.log() + 0.3 * torch.randn(2, 100, generator=torch.Generator().manual_seed(0))
        acts, r = torch.tensor([[70, 60, 45, 30, 15, 0], [21, 18, 30, 9, 50, 99]]), bin_reward(center=70.0)
        b = toy.make_batch(acts, r, torch.log_softmax(z, -1), REF.log())
        lp = b.logps.detach().requires_grad_()
        m = (lp[:, 0] - b.ref_logps[:, 0]) - (lp[:, -1] - b.ref_logps[:, -1])  # best against worst
        want = torch.autograd.grad((torch.relu(1 - 0.3 * m) ** 3).sum(), lp)[0]
        torch.testing.assert_close(toy.get_rule(name)(beta=0.3).coefficients(b), want, atol=1e-6, rtol=1e-5)
        assert want.abs().max() > 0.1  # the check has something to compare
        # the batched loop against the reader's loop (autograd through the loss, one run at a time)
        cfg = toy.BanditConfig([name, f"{name}_no_neg"], regime=["offline", "on_policy"], seeds=[0], steps=15)
        h = toy.train(cfg)
        for i, run in enumerate(h.runs):
            np.testing.assert_allclose(toy.reference_run(cfg, run).numpy(), h.metrics[:, i, 0].numpy(), atol=1e-4)
        df = run_bandit(name, seeds=2, steps=30, beta=0.5)
        assert df.attrs["config"]["hyperparameters"] == {name: {"beta": 0.5, "negative_gradient": True}}
    finally:
        del losses.LOSSES[name]
    assert name not in toy.RULES


def test_a_toy_rule_registered_after_import_is_used_by_run_bandit():
    "One cell: a rule with a hyperparameter and only a loss (coefficients by autograd); run_bandit reaches it by name."
    @toy.rule("_scratch_weighted_best")
    class _WeightedBest(toy.Rule):
        "Maximise w l_(1) - l_(2): the best sample up, the second down."
        weight: float = 1.0  # w
        family = "ml"
        def loss(self, b): return -(self.weight * b.logps[:, 0] - b.logps[:, 1])
    try:
        assert toy.get_rule("_scratch_weighted_best") is _WeightedBest
        cfg = toy.BanditConfig(["_scratch_weighted_best"], regime=["offline", "on_policy"], seeds=[0, 1], steps=12,
                               hyperparameters={"_scratch_weighted_best": {"weight": 2.0}})
        h = toy.train(cfg)
        for i, run in enumerate(h.runs):  # each run against the reader's loop
            np.testing.assert_allclose(toy.reference_run(cfg, run).numpy(), h.metrics[:, i, 0].numpy(), atol=1e-4)
        # its coefficients (autograd through `loss`) against the closed form: -w at the best, +1 at the second
        b = toy.make_batch(torch.tensor([[70, 60, 45]]), bin_reward(), torch.log_softmax(REF.log(), -1)[None], REF.log())
        torch.testing.assert_close(_WeightedBest(weight=2.0).coefficients(b), torch.tensor([[-2.0, 1.0, 0.0]]))
        df = run_bandit("_scratch_weighted_best", seeds=1, steps=5, hyperparameters={"_scratch_weighted_best": {"weight": 3.0}})
        assert df.attrs["config"]["hyperparameters"] == {"_scratch_weighted_best": {"weight": 3.0}}
        with pytest.raises(ValueError, match=r"weight=3.0 is a hyperparameter of _scratch_weighted_best"):
            run_bandit("_scratch_weighted_best", seeds=1, steps=5, weight=3.0)
    finally:
        del toy._OWN_RULES["_scratch_weighted_best"]
    assert "_scratch_weighted_best" not in toy.RULES


def test_an_optimizer_registered_after_import_is_used_by_run_bandit():
    "A sign-SGD step added to core.OPTIMIZERS: each logit moves by exactly +-lr a step, which no built-in optimizer does twice."
    calls = []

    @core.optimizer("_scratch_sign_sgd")
    def _sign_sgd(theta, grad, state, t, lr):
        calls.append(t)
        # theta <- theta - eta sign(g)
        theta.sub_(lr * grad.sign())
    try:
        lr, steps = 0.5, 2
        df = run_bandit("sft", seeds=2, steps=steps, lr=lr, optimizer="_scratch_sign_sgd", record_policy=True)
        assert calls == [1, 2]  # one batched call per step, every run at once
        pis = df.filter(like="pi_").to_numpy().reshape(2, steps + 1, 100)
        for pi in pis:  # z_t - z_0 = log pi_t - log pi_0 + const, and every entry of z_2 - z_0 is in lr {-2, 0, 2}
            d = np.log(pi[2]) - np.log(pi[0])
            d = d - d.min()
            np.testing.assert_allclose(d / (2 * lr), np.round(d / (2 * lr)), atol=1e-3)
            assert set(np.round(d / (2 * lr)).astype(int)) <= {0, 1, 2}
        # the same check fails for the built-in per-coordinate Adam, whose second step is not +-lr
        adam = run_bandit("sft", seeds=1, steps=steps, lr=lr, optimizer="adam", record_policy=True).filter(like="pi_").to_numpy()
        d = np.log(adam[2]) - np.log(adam[0]); d = d - d.min()
        assert not np.allclose(d / (2 * lr), np.round(d / (2 * lr)), atol=1e-3)
    finally:
        del core.OPTIMIZERS["_scratch_sign_sgd"]
    with pytest.raises(ValueError, match="optimizer must be one of"):
        run_bandit("sft", seeds=1, steps=2, optimizer="_scratch_sign_sgd")


def test_toy_chooses_nothing_by_comparing_a_name():
    "Algorithms, losses, optimizers, policies, samplers and pairings are looked up in registries, never compared by name."
    import inspect
    import re
    src = inspect.getsource(toy)
    for pattern in [r'==\s*"', r'!=\s*"', r'\bin \("', r'getattr\([^)]*f"', r'\.endswith\(', r'\.removesuffix\(']:
        assert not re.search(pattern, src), (pattern, [l for l in src.splitlines() if re.search(pattern, l)])
    assert "ARGUMENT_ERRORS" not in toy.__all__ and "OPTIMIZERS" not in toy.__all__  # test tables and core's registry stay out


def test_the_mlp_sweep_is_the_per_run_loop():
    "Batched MLP runs match the same runs trained one at a time (the benchmark times this pair), with the normalised step."
    kw = dict(policy="mlp", hidden=16, context_dim=8, contexts=2, pairs="all_pairs", steps=8, device="cpu")
    cfg = toy.BanditConfig(["ipo", "sft"], reward_center=[20.0, 70.0], seeds=[0, 3], **kw)
    h = toy.train(cfg)
    for i, run in enumerate(h.runs):
        one = toy.BanditConfig([run.algorithm], reward_center=[run.reward_center], seeds=[run.seed], **kw)
        np.testing.assert_allclose(toy.train(one).metrics[:, 0].numpy(), h.metrics[:, i].numpy(), atol=1e-5, rtol=1e-5)
