"""Property and memory tests for prefbench_lib.core that do not fit in the notebook."""
import torch
from hypothesis import given, settings, strategies as st
from torch.profiler import ProfilerActivity, profile

from prefbench_lib.core import completion_lengths, sequence_logps, token_logps


def naive_token_logps(logits, labels, mask):
    "A Python loop over positions: log_softmax(logits[b, t-1])[labels[b, t]] where mask[b, t] and t >= 1."
    B, T, _ = logits.shape
    out = torch.zeros(B, T, dtype=torch.float64)
    for b in range(B):
        for t in range(1, T):
            if mask[b, t]: out[b, t] = torch.log_softmax(logits[b, t - 1].double(), -1)[labels[b, t]]
    return out


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
    # ours stays within a couple of [T, V] blocks, i.e. a 1/B fraction of the logits
    assert _largest_allocation(lambda: token_logps(logits, labels, mask)) <= 2 * T * V * logits.element_size()
