"""Property and memory tests for prefbench_lib.core that do not fit in the notebook."""
import math

import torch
from hypothesis import given, settings, strategies as st
from torch.profiler import ProfilerActivity, profile

from prefbench_lib.core import completion_lengths, kl, sequence_logps, token_logps
from scipy.special import rel_entr


def naive_token_logps(logits, labels, mask):
    "A Python loop over positions: log_softmax(logits[b, t-1])[labels[b, t]] where mask[b, t] and t >= 1."
    B, T, _ = logits.shape
    rows = [[torch.log_softmax(logits[b, t - 1].double(), -1)[labels[b, t]] if t > 0 and mask[b, t]
             else logits.new_zeros((), dtype=torch.float64) for t in range(T)] for b in range(B)]
    return torch.stack([torch.stack(r) for r in rows])


@st.composite
def lm_batch(draw):
    B, T, V = draw(st.integers(1, 4)), draw(st.integers(1, 9)), draw(st.integers(1, 17))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    scale = draw(st.sampled_from([0.1, 1.0, 30.0]))
    logits = torch.randn(B, T, V, generator=g, dtype=torch.float64) * scale
    labels = torch.randint(0, V, (B, T), generator=g)
    mask = torch.randint(0, 2, (B, T), generator=g)
    return logits, labels, mask


@settings(max_examples=60, deadline=None)
@given(lm_batch())
def test_matches_naive_loop(batch):
    logits, labels, mask = batch
    want = naive_token_logps(logits, labels, mask)
    torch.testing.assert_close(token_logps(logits, labels, mask), want, rtol=0, atol=1e-10)
    s = sequence_logps(logits, labels, mask)
    torch.testing.assert_close(s, want.sum(-1), rtol=0, atol=1e-10)
    n = completion_lengths(mask)
    avg = sequence_logps(logits, labels, mask, average=True)
    assert not torch.isnan(avg).any()
    assert (s <= 0).all() and (avg[n == 0] == 0).all()
    torch.testing.assert_close(avg[n > 0], (want.sum(-1) / n)[n > 0], rtol=0, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(lm_batch(), st.integers(0, 2**31 - 1))
def test_gradient_matches_naive_loop(batch, seed):
    "The hand-written backward against autograd through the loop, for a random upstream gradient."
    logits, labels, mask = batch
    w = torch.randn(labels.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    ours, ref = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    (token_logps(ours, labels, mask) * w).sum().backward()
    ((naive_token_logps(ref, labels, mask) * w).sum() + 0 * ref.sum()).backward()  # T = 1: no position is scored
    torch.testing.assert_close(ours.grad, ref.grad, rtol=0, atol=1e-10)


def _largest_allocation(fn) -> int:
    "Bytes of the largest single CPU allocation any op makes while `fn` runs."
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof: fn()
    return max(e.cpu_memory_usage for e in prof.events())


def test_no_full_log_softmax_copy():
    B, T, V = 8, 64, 2000
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(B, T, V, generator=g), torch.randint(0, V, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    full = B * (T - 1) * V * logits.element_size()
    # the measurement itself can see a full [B, T, V] temporary: log_softmax makes one
    assert _largest_allocation(lambda: torch.log_softmax(logits[:, :-1], -1).gather(-1, labels[:, 1:, None])) >= full
    # ours stays within one [T, V] block, i.e. a 1/B fraction of the logits
    assert _largest_allocation(lambda: token_logps(logits, labels, mask)) <= T * V * logits.element_size()


@st.composite
def distribution_pairs(draw):
    "Two probability vectors over K actions, each with some exact zeros (never all)."
    K = draw(st.integers(1, 9))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    def one(zero_rate):
        w = torch.rand(K, generator=g, dtype=torch.float64) ** 3 * (torch.rand(K, generator=g) >= zero_rate)
        if w.sum() == 0: w[torch.randint(0, K, (1,), generator=g)] = 1.0
        return w / w.sum()
    return one(draw(st.sampled_from([0.0, 0.3, 0.7]))), one(draw(st.sampled_from([0.0, 0.3, 0.7])))


@settings(max_examples=150, deadline=None)
@given(distribution_pairs())
def test_kl_matches_scipy_rel_entr(pq):
    "KL(p || q) from log-probabilities against SciPy's elementwise p log(p / q): 0 log 0 = 0, and +inf where p > 0 = q."
    p, q = pq
    want = float(rel_entr(p.numpy(), q.numpy()).sum())
    got = float(kl(p.log(), q.log()))
    if math.isinf(want): assert got == math.inf
    else: assert abs(got - want) <= 1e-12 * max(1.0, abs(want)), (got, want)
