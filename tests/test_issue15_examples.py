"""Every example of issue 15 ("One input contract"), replayed: each gives a correct result or a ValueError naming the argument."""
import math
import os
import subprocess
import sys

import pytest
import torch

from prefbench_lib import core, listwise, losses, nash, toy
from prefbench_lib.losses import LOSSES, Pair

INF = math.inf
pc, pr, rc, rr = (torch.tensor(v) for v in ([-5.0, -7.0], [-8.0, -6.5], [-6.0, -6.5], [-7.0, -7.0]))


def test_masked_vocabulary_gradients_are_finite_and_correct():
    "-inf logits (banned tokens): finite gradients, equal to autograd through log_softmax on the finite entries; a banned token's is 0."
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 5, 7, generator=g, dtype=torch.float64)
    banned = torch.rand(2, 5, 7, generator=g) < 0.3
    y = torch.randint(0, 7, (2, 5), generator=g)
    banned.scatter_(-1, y.roll(-1, 1)[..., None], False)  # the scored next token is never banned
    mask = torch.tensor([[0, 1, 1, 1, 1], [0, 0, 1, 1, 0]])
    zi = z.masked_fill(banned, -INF).requires_grad_()
    core.sequence_logps(zi, y, mask).sum().backward()
    zf = z.clone().requires_grad_()  # the peer: log_softmax over the finite entries only, position by position
    total = sum(torch.log_softmax(zf[b, t - 1][~banned[b, t - 1]], 0)[(~banned[b, t - 1]).cumsum(0)[y[b, t]] - 1]
                for b in range(2) for t in range(1, 5) if mask[b, t])
    total.backward()
    assert torch.isfinite(zi.grad).all()
    torch.testing.assert_close(zi.grad, zf.grad.masked_fill(banned, 0.0))


def test_all_neginf_row_and_posinf_logits_are_refused():
    z, y = torch.zeros(1, 3, 4), torch.tensor([[0, 1, 2]])
    dead = z.clone(); dead[0, 1] = -INF  # predicts labels[0, 2], which is scored
    with pytest.raises(ValueError, match=r"logits\[0, 1\] is -inf for every token"): core.sequence_logps(dead, y, torch.ones(1, 3))
    hot = z.clone(); hot[0, 0, 3] = INF
    with pytest.raises(ValueError, match=r"logits contains NaN or \+inf"): core.sequence_logps(hot, y, torch.ones(1, 3))


@pytest.mark.parametrize("fn", [listwise.lipo_lambda_loss, listwise.tpo_loss, listwise.listmle_loss])
def test_listwise_with_a_neginf_logp_is_not_nan(fn):
    pol = torch.tensor([[-1.0, -INF, -2.0]]); ref = torch.tensor([[-1.5, -1.0, -2.0]])
    out = fn(pol, ref, torch.tensor([[1.0, 0.0, 2.0]]), beta=0.5)
    assert not torch.isnan(out.losses).any()


@pytest.mark.parametrize("fn,kw", [(losses.kto_loss, dict(kl_ref_point=0.1)), (losses.bco_loss, dict(reward_shift=0.0))])
def test_unpaired_with_a_neginf_logp_is_not_nan(fn, kw):
    "Issue 24's -inf rule: a finite value (KTO is bounded), or a ValueError naming the entry (BCO's desirable side has no finite limit)."
    call = lambda: fn(torch.tensor([-INF, -1.0]), torch.tensor([-2.0, -1.0]), torch.tensor([1, 0]), beta=0.5, **kw)
    if fn is losses.bco_loss:
        with pytest.raises(ValueError, match=r"bco_loss has no finite value at index 0 \(inf\): policy_logps\[0\] = -inf"): call()
    else: assert torch.isfinite(call().losses).all()
    undesirable = fn(torch.tensor([-INF, -1.0]), torch.tensor([-2.0, -1.0]), torch.tensor([0, 0]), beta=0.5, **kw)  # the right tail: finite
    assert torch.isfinite(undesirable.losses).all()
    with pytest.raises(ValueError, match=r"policy_logps\[0\] and ref_logps\[0\] are both -inf"):
        fn(torch.tensor([-INF, -1.0]), torch.tensor([-INF, -1.0]), torch.tensor([1, 0]), beta=0.5, **kw)


@pytest.mark.parametrize("call,name", [
    (lambda: LOSSES["soft_dpo"](Pair(pc, pr, rc, rr), beta=0.1, p=torch.full((2, 1), 0.5)), "p"),
    (lambda: losses.kto_loss(pc, rc, torch.tensor([1, 0]), beta=0.1, kl_ref_point=torch.full((2, 1), 0.1)), "kl_ref_point"),
    (lambda: LOSSES["ipo"](Pair(pc, pr, rc, rr, chosen_lengths=torch.tensor([0.0, 3.0]), rejected_lengths=torch.ones(2)), beta=0.1), "chosen_lengths"),
    (lambda: LOSSES["simpo"](Pair(pc, pr, chosen_lengths=torch.tensor([-2.0, 3.0]), rejected_lengths=torch.ones(2)), beta=0.1), "chosen_lengths"),
    (lambda: toy.run_bandit("simpo", hyperparameters={"simpo": {"gamma": float("nan")}}, steps=1, seeds=1), "gamma"),
    (lambda: toy.run_bandit("simpo", gamma=0.5, steps=1, seeds=1), "gamma"),  # a rule setting as a plain keyword: refused, naming it
    (lambda: LOSSES["simpo"](Pair(pc, pr, chosen_lengths=torch.ones(2), rejected_lengths=torch.ones(2)), beta=0.1, gamma=INF), "gamma"),
    (lambda: LOSSES["orpo"](Pair(pc, pr, chosen_lengths=torch.ones(2), rejected_lengths=torch.ones(2)), beta=0.1, lambda_=float("nan")), "lambda_"),
    (lambda: LOSSES["bco_pair"](Pair(pc, pr, rc, rr), beta=0.1, reward_shift=-INF), "reward_shift"),
    (lambda: losses.bco_loss(pc, rc, torch.tensor([1, 0]), beta=0.1, reward_shift=float("nan")), "reward_shift"),
    (lambda: LOSSES["dpo"](Pair(pc, pr, rc, rr), beta=0.1, tau=1.0), "tau"),
    (lambda: losses.kto_loss(pc, rc, torch.tensor([1, 0]), beta=0.1, kl_ref_point=0.1, tau=1.0), "tau"),
    (lambda: Pair(pc[:0], pr[:0], rc[:0], rr[:0]), "policy_chosen_logps"),
    (lambda: core.token_logps(torch.zeros(1, 0, 4), torch.zeros(1, 0, dtype=torch.long)), "logits"),
    (lambda: core.token_logps(torch.zeros(1, 3, 4), torch.tensor([[0, 1, 9]])), "labels"),
    (lambda: core.get_device("mps") if not torch.backends.mps.is_available() else core.get_device("bogus"), "device"),
])
def test_refused_by_name(call, name):
    with pytest.raises(ValueError, match=rf"(?<![\w]){name}(?![\w])"): call()


@pytest.mark.parametrize("fn", [listwise.listmle_loss, listwise.lipo_lambda_loss, listwise.tpo_loss])
def test_an_empty_list_batch_gives_an_empty_loss(fn):
    out = fn(torch.zeros(0, 3), torch.zeros(0, 3), torch.zeros(0, 3), beta=0.1)
    assert out.losses.shape == (0,) and out.rewards.shape == (0, 3)


def test_bf16_preference_matrix_gives_a_result():
    P = nash.rps_game().to(torch.bfloat16)
    pi = nash.regularized_nash(P, beta=0.1)
    assert pi.dtype == torch.float32 and torch.isfinite(pi).all()
    torch.testing.assert_close(pi, torch.full((3,), 1 / 3), atol=1e-3, rtol=0)


def test_prefbench_device_mps_is_refused_when_unavailable(monkeypatch):
    if torch.backends.mps.is_available(): pytest.skip("this machine has MPS")
    monkeypatch.setenv("PREFBENCH_DEVICE", "mps")
    with pytest.raises(ValueError, match="MPS is not available"): core.get_device()


def test_info_into_a_closed_pipe_is_quiet():
    cli = os.path.join(os.path.dirname(sys.executable), "prefbench")
    out = subprocess.run(f"{cli} info --json | head -c 0", shell=True, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in out.stderr and "BrokenPipeError" not in out.stderr, out.stderr[-2000:]
