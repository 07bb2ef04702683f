"""prefbench_lib.metrics against plain loops, the flip theorem on random data, and bad input."""
import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from prefbench_lib.losses import LOSSES, Pair
from prefbench_lib.metrics import (dpo_flip_threshold, idealized_ranking_accuracy, list_ranking_accuracy, ranking_accuracy,
                                   reward_accuracy, reward_margins)

logps = st.lists(st.floats(-200, 0, allow_nan=False, width=32), min_size=1, max_size=12)


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_ranking_and_reward_accuracy_match_loops(data):
    w = data.draw(logps); n = len(w)
    l, rw, rl = (data.draw(st.lists(st.floats(-200, 0, width=32), min_size=n, max_size=n)) for _ in range(3))
    t = [torch.tensor(v, dtype=torch.float64) for v in (w, l, rw, rl)]
    assert ranking_accuracy(t[0], t[1]) == pytest.approx(sum(a >= b for a, b in zip(w, l)) / n)
    out = LOSSES["dpo"](Pair(*t), beta=0.3)
    loop = sum((a - c) - (b - d) > 0 for a, b, c, d in zip(w, l, rw, rl)) / n  # TRL: mean(chosen_rewards > rejected_rewards)
    assert reward_accuracy(out) == pytest.approx(loop)
    torch.testing.assert_close(reward_margins(out), 0.3 * ((t[0] - t[2]) - (t[1] - t[3])))


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.01, 0.1, 1.0, 5.0]))
def test_flip_theorem_on_random_pairs(seed, beta):
    g = torch.Generator().manual_seed(seed)
    pw, pl, rw, rl = (-(torch.randn(64, generator=g, dtype=torch.float64) * 30).abs() for _ in range(4))  # log-probs <= 0
    loss = LOSSES["dpo"](Pair(pw, pl, rw, rl), beta=beta).losses
    thr = dpo_flip_threshold(rw, rl, beta=beta)
    # where -log sigma underflows to 0 on both sides (beta * margin > ~745), float64 cannot tell the two apart
    ok = (loss > 0) & (thr > 0)
    assert ok.float().mean() > 0.5
    assert torch.equal((loss <= thr)[ok], (pw >= pl)[ok])


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_idealized_accuracy_matches_its_definition_in_a_loop(seed):
    g = torch.Generator().manual_seed(seed)
    rw, rl = (-(torch.randn(32, generator=g, dtype=torch.float64) * 10).abs() for _ in range(2))  # log-probs <= 0
    alpha = torch.rand(32, generator=g, dtype=torch.float64)
    beta = 0.2
    loop = sum((a - b) + math.log(min(max(p, 1e-3), 1 - 1e-3) / (1 - min(max(p, 1e-3), 1 - 1e-3))) / beta > 0
               for a, b, p in zip(rw.tolist(), rl.tolist(), alpha.tolist())) / 32
    assert idealized_ranking_accuracy(rw, rl, alpha, beta) == pytest.approx(loop)


def test_list_ranking_accuracy_is_exact_match():
    lp = torch.tensor([[-1.0, -2.0, -3.0, -4.0], [-1.0, -2.0, -4.0, -3.0], [-4.0, -3.0, -2.0, -1.0]])
    sc = torch.tensor([[4.0, 3.0, 2.0, 1.0]] * 3)
    assert list_ranking_accuracy(lp, sc) == pytest.approx(1 / 3)
    assert list_ranking_accuracy(lp, sc.flip(1)) == pytest.approx(1 / 3)  # only the third list matches the reversed order


@pytest.mark.parametrize("call,msg", [
    (lambda: idealized_ranking_accuracy(torch.zeros(2), torch.zeros(2), torch.tensor([0.5, -0.1]), 0.1), "alpha must be in [0.0, 1.0]"),
    (lambda: idealized_ranking_accuracy(torch.zeros(2), torch.zeros(2), 0.5, -1.0), "beta must be a finite number > 0"),
    (lambda: dpo_flip_threshold(torch.zeros(2), torch.zeros(3), 0.1), "ref_rejected_logps has shape (3,)"),
    (lambda: ranking_accuracy(torch.tensor([0.0, math.nan]), torch.zeros(2)), "policy_chosen_logps must hold log-probabilities <= 0 (-inf allowed, no NaN), got policy_chosen_logps[1] = nan"),
    (lambda: ranking_accuracy(torch.zeros(2), torch.zeros(2), torch.tensor([1.0, 0.0]), torch.ones(2)), "chosen_lengths must be positive whole token counts, got chosen_lengths[1] = 0.0"),
    (lambda: list_ranking_accuracy(torch.zeros(2, 3), torch.zeros(2, 3), mask=torch.full((2, 3), 2)), "mask must hold only 0 and 1"),
    (lambda: reward_accuracy(torch.zeros(3)), "out must be a LossOutput"),
])
def test_bad_input_names_the_argument(call, msg):
    with pytest.raises(ValueError, match=None) as e: call()
    assert msg in str(e.value), str(e.value)


# ---------------------------------------------------------------------------------------------------------------------------
# train_pairs steps with whatever core.OPTIMIZERS holds when it is called (issue 25)
# ---------------------------------------------------------------------------------------------------------------------------

def _hand_loop(problem, loss, beta, steps, lr, step):
    "One run of `loss` in a plain loop, the update written out: `step(theta, grad, t)` changes theta [n, K] in place."
    x, w, l = problem.prompt, problem.chosen, problem.rejected
    ones = torch.ones(len(x), dtype=problem.ref_logits.dtype)
    theta, losses = problem.ref_logits.clone(), []
    for t in range(1, steps + 2):
        theta.requires_grad_(True)
        lp = torch.log_softmax(theta, 1)
        out = LOSSES[loss](Pair(lp[x, w], lp[x, l], problem.ref_logps[x, w], problem.ref_logps[x, l],
                                chosen_lengths=ones, rejected_lengths=ones), beta=beta).losses
        losses.append(out.mean().item())
        if t > steps: break
        (grad,) = torch.autograd.grad(out.sum(), theta)
        theta = theta.detach()
        step(theta, grad, t)
    return losses, torch.log_softmax(theta.detach(), 1)


def test_an_optimizer_registered_after_import_trains_pairs_like_a_hand_written_loop():
    from prefbench_lib import core
    from prefbench_lib.metrics import PairProblem, pair_problem, train_pairs
    mu, name = 0.8, "heavy_ball_test25"

    # heavy ball: v <- mu v + g; theta <- theta - eta v   (a state, carried per run, and the step number t unused)
    @core.optimizer(name, moments=lambda theta: (torch.zeros_like(theta),))
    def heavy_ball(theta, grad, state, t, lr):
        state[0].mul_(mu).add_(grad)
        theta.sub_(lr * state[0])
    try:
        pb = pair_problem(120, K=5, pairs_per_prompt=2, seed=7, device="cpu")
        pb = PairProblem(*(v.double() if v.is_floating_point() else v for v in pb))  # float64: the two paths agree to rounding
        run = train_pairs(pb, ["sigmoid", "ipo"], beta=0.5, steps=15, lr=0.05, optimizer=name, every=1)
        assert run.history.attrs["config"]["optimizer"] == name
        for j, loss in enumerate(["sigmoid", "ipo"]):
            v = torch.zeros_like(pb.ref_logits)
            def step(theta, grad, t):
                v.mul_(mu).add_(grad)  # the same update, one run at a time, written out
                theta.sub_(0.05 * v)
            losses, final = _hand_loop(pb, loss, 0.5, 15, 0.05, step)
            h = run.history[run.history.run == loss]
            assert h.loss_value.tolist() == pytest.approx(losses, rel=1e-9, abs=1e-10)
            torch.testing.assert_close(run.logps[j], final, rtol=1e-9, atol=1e-10)
        # and it is not plain SGD: momentum moved the policy further
        sgd = train_pairs(pb, ["sigmoid", "ipo"], beta=0.5, steps=15, lr=0.05, every=15)
        assert (sgd.logps - pb.ref_logps).abs().sum() < (run.logps - pb.ref_logps).abs().sum()
    finally:
        del core.OPTIMIZERS[name]
    with pytest.raises(ValueError, match=f"optimizer must be one of .*; got optimizer='{name}'"):
        train_pairs(pb, "sigmoid", steps=1, optimizer=name)  # gone from the registry: refused by name


def test_the_default_sgd_is_the_plain_update_and_a_model_only_optimizer_is_refused():
    from prefbench_lib.metrics import pair_problem, train_pairs
    pb = pair_problem(80, K=4, seed=3, device="cpu")
    run = train_pairs(pb, "dpo", beta=0.2, steps=10, lr=0.5, every=1)  # optimizer left at its default
    losses, final = _hand_loop(pb, "dpo", 0.2, 10, 0.5, lambda theta, grad, t: theta.sub_(0.5 * grad))
    assert run.history.loss_value.tolist() == pytest.approx(losses, rel=1e-5)
    torch.testing.assert_close(run.logps[0], final, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="optimizer must be one of sgd, adam, normalized.*; got optimizer='adamw'"):
        train_pairs(pb, "dpo", steps=1, optimizer="adamw")  # adamw has no batched step: the LM lab's, for models


def test_metrics_compares_no_optimizer_or_algorithm_name():
    import inspect
    import re
    from prefbench_lib import metrics
    src = inspect.getsource(metrics)
    assert not re.search(r'[=!]=\s*["\']|["\']\s*[=!]=|\bin\s*\(\s*["\']', src), "a name compared in metrics.py"
    assert "adam_step" not in src and "check_choice" not in src  # the optimizer comes from core.OPTIMIZERS, checked at the door
