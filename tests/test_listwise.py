"""Property tests for prefbench_lib.listwise (hypothesis): finiteness, ListMLE against a Python loop, masked entries."""
import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from prefbench_lib.listwise import LIST_LOSSES, ListLossOutput, adaptive_step_rewards, listmle_loss, tpo_loss

BETAS = st.sampled_from([0.01, 0.1, 1.0, 10.0])
# scores are grades: a few integers (many ties) or reals of either sign
SCORES = st.one_of(st.integers(0, 4).map(float), st.floats(-8, 8, allow_nan=False, width=32))
GARBAGE = st.sampled_from([-math.inf, math.inf, -1e30, 1e30, 0.0, 12345.0])


@st.composite
def list_mask(draw, B, K):
    "A [B, K] bool mask with at least two responses present in every row."
    rows = []
    for _ in range(B):
        row = draw(st.lists(st.booleans(), min_size=K, max_size=K))
        i, j = draw(st.lists(st.integers(0, K - 1), min_size=2, max_size=2, unique=True))
        row[i] = row[j] = True
        rows.append(row)
    return torch.tensor(rows)


@st.composite
def list_batch(draw, dtype, lo=-1e4, hi=0.0):
    "policy_logps, ref_logps, scores, mask ([B, K]) and beta; masked entries may hold garbage."
    B, K = draw(st.integers(1, 4)), draw(st.integers(2, 6))
    vals = st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=32)
    pol, ref = (torch.tensor(draw(st.lists(vals, min_size=B * K, max_size=B * K)), dtype=torch.float64).reshape(B, K)
                for _ in range(2))
    scores = torch.tensor(draw(st.lists(SCORES, min_size=B * K, max_size=B * K)), dtype=torch.float64).reshape(B, K)
    mask = draw(list_mask(B, K))
    if draw(st.booleans()):  # garbage where masked
        pol = pol.masked_fill(~mask, draw(GARBAGE))
        scores = scores.masked_fill(~mask, draw(GARBAGE))
    return pol.to(dtype), ref.to(dtype), scores, mask, draw(BETAS)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("name", sorted(LIST_LOSSES))
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_finite_value_and_gradient(name, dtype, data):
    pol, ref, scores, mask, beta = data.draw(list_batch(dtype))
    pol, ref = pol.requires_grad_(), ref.requires_grad_()
    out = LIST_LOSSES[name](pol, ref, scores, beta=beta, mask=mask)
    assert isinstance(out, ListLossOutput) and out.losses.shape == pol.shape[:1] and out.rewards.shape == pol.shape
    assert torch.isfinite(out.losses).all(), (name, out.losses)
    assert not out.rewards.requires_grad and out.rewards[~mask].isnan().all() and out.rewards[mask].isfinite().all()
    out.losses.sum().backward()
    for x in (pol, ref):
        assert torch.isfinite(x.grad.float()).all(), (name, x.grad)
        assert (x.grad[~mask] == 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_tpo_adaptive_step_reward_finite(dtype, data):
    pol, ref, scores, mask, beta = data.draw(list_batch(dtype))
    B, K = pol.shape
    S, D = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5))
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    # per-step log-probs in [-1e4, 0], embeddings of any scale, some steps missing
    ps = (-torch.rand(B, K, S, generator=g) * 1e4).to(dtype).requires_grad_()
    qs = (-torch.rand(B, K, S, generator=g) * 1e4).to(dtype).requires_grad_()
    emb = (torch.randn(B, K, S, D, generator=g) * 10 ** data.draw(st.integers(-6, 4))).to(dtype)
    step_mask = torch.rand(B, K, S, generator=g) > 0.3
    out = tpo_loss(ps, qs, scores, beta=beta, mask=mask, step_embeddings=emb, step_mask=step_mask)
    assert torch.isfinite(out.losses).all(), out.losses
    out.losses.sum().backward()
    assert torch.isfinite(ps.grad.float()).all() and torch.isfinite(qs.grad.float()).all()
    _, w = adaptive_step_rewards(ps.detach(), qs.detach(), emb, beta=beta, step_mask=step_mask, return_weights=True)
    assert ((w >= 0) & (w <= 2)).all() and (w[~step_mask] == 0).all()


def naive_listmle(pol, ref, scores, mask, beta):
    "Plackett-Luce NLL, one row and one position at a time: order by score, ties by reward (both descending)."
    out = []
    for p, q, s, m in zip(pol.tolist(), ref.tolist(), scores.tolist(), mask.tolist()):
        r = {k: beta * (p[k] - q[k]) for k in range(len(p)) if m[k]}
        left = sorted(r, key=lambda k: (-s[k], -r[k]))
        nll = 0.0
        for pos, k in enumerate(left):
            rest = [r[j] for j in left[pos:]]
            top = max(rest)
            nll += top + math.log(sum(math.exp(x - top) for x in rest)) - r[k]  # -log P(k is next among the rest)
        out.append(nll)
    return torch.tensor(out, dtype=torch.float64)


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_listmle_matches_plackett_luce_loop(data):
    pol, ref, scores, mask, _ = data.draw(list_batch(torch.float64, lo=-20.0))
    beta = data.draw(st.sampled_from([0.1, 1.0, 5.0]))
    got = listmle_loss(pol, ref, scores, beta=beta, mask=mask).losses
    torch.testing.assert_close(got, naive_listmle(pol, ref, scores, mask, beta), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", sorted(LIST_LOSSES) + ["tpo_steps"])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_masked_entries_have_no_effect(name, data):
    "Each ragged row gives the loss and gradient of the same row with its masked responses removed."
    pol, ref, scores, mask, beta = data.draw(list_batch(torch.float64, lo=-50.0))
    beta = min(beta, 1.0)
    B, K = pol.shape
    pol = pol.masked_fill(~mask, data.draw(GARBAGE))
    ref = ref.masked_fill(~mask, data.draw(GARBAGE))
    kw = {}
    if name == "tpo_steps":  # per-step log-probs, embeddings and a step mask; missing paths hold garbage in all three
        g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
        S = data.draw(st.integers(1, 3))
        pol = pol[..., None] - torch.rand(B, K, S, generator=g, dtype=torch.float64)  # still <= 0
        ref = ref[..., None].expand(B, K, S).clone()
        kw = dict(step_embeddings=torch.randn(B, K, S, 4, generator=g, dtype=torch.float64).masked_fill(~mask[..., None, None], 1e300),
                  step_mask=(torch.rand(B, K, S, generator=g) > 0.3) | ~mask[..., None])
    loss = LIST_LOSSES["tpo" if name == "tpo_steps" else name]

    def run(b, idx, row_mask):
        "Loss on row b restricted to responses idx, and the gradient with respect to its policy log-probs."
        p = pol[b:b + 1, idx].clone().requires_grad_()
        out = loss(p, ref[b:b + 1, idx], scores[b:b + 1, idx], beta=beta, mask=row_mask,
                   **{k: v[b:b + 1, idx] for k, v in kw.items()})
        out.losses.sum().backward()
        return out, p.grad

    for b in range(B):
        keep = mask[b].nonzero()[:, 0]
        full, full_grad = run(b, slice(None), mask[b:b + 1])
        cut, cut_grad = run(b, keep, None)
        torch.testing.assert_close(full.losses, cut.losses, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(full.rewards[:, keep], cut.rewards, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(full_grad[:, keep], cut_grad, rtol=1e-12, atol=1e-12)
        assert (full_grad[:, ~mask[b]] == 0).all()


@pytest.mark.parametrize("name", sorted(LIST_LOSSES))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_neginf_logps_never_nan(name, data):
    """The -inf rule (issue 24) with -inf log-probs (probability 0) drawn anywhere: a finite limit with a finite gradient, or a
    ValueError about the -inf entries (naming one that has no finite limit, -inf - (-inf), or two responses of one list both at an
    infinite reward)."""
    pol, ref, scores, mask, beta = data.draw(list_batch(torch.float32))
    B, K = pol.shape
    holes = lambda: torch.tensor(data.draw(st.lists(st.booleans(), min_size=B * K, max_size=B * K))).view(B, K)
    pol, ref = pol.masked_fill(holes(), -math.inf).requires_grad_(), ref.masked_fill(holes(), -math.inf)
    try: out = LIST_LOSSES[name](pol, ref, scores, beta=beta, mask=mask)
    except ValueError as e:
        assert "-inf" in str(e) or "infinite" in str(e), str(e)
        return
    assert torch.isfinite(out.losses).all(), out.losses
    (g,) = torch.autograd.grad(out.losses.sum(), pol)
    assert torch.isfinite(g).all(), g


def test_a_listwise_loss_registered_after_import_is_a_loss_like_any_other():
    "Issue 25: one `@listwise` registration after the library and the labs are imported: in LIST_LOSSES, its hyperparameter checked at the door, computed correctly."
    from prefbench_lib import core, listwise as LW, metrics, toy  # noqa: F401  (the labs: imported before the loss exists)

    @LW.listwise("scratch_top1", temperature=core.in_interval(0, math.inf, "neither"))
    def scratch_top1(policy_logps: torch.Tensor,  # [B, K] s_theta(y_k)
                     ref_logps: torch.Tensor,  # [B, K] s_ref(y_k)
                     scores: torch.Tensor,  # [B, K] psi_k
                     *, beta: float,  # beta > 0
                     temperature: float = 1.0,  # T in (0, inf)
                     mask: torch.Tensor | None = None,  # [B, K] (unused here)
                    ) -> ListLossOutput:
        "A scratch listwise loss: -log softmax(r / T) of the best-scored response."
        r = beta * (policy_logps - ref_logps)
        return ListLossOutput(-torch.log_softmax(r / temperature, 1).gather(1, scores.argmax(1, keepdim=True))[:, 0], r.detach())

    try:
        assert LW.LIST_LOSSES["scratch_top1"] is scratch_top1 and scratch_top1.steps is False
        pol, ref = torch.tensor([[-1.0, -2.0, -3.0]], dtype=torch.float64), torch.tensor([[-1.5, -1.5, -1.5]], dtype=torch.float64)
        sc = torch.tensor([[0.0, 2.0, 1.0]])
        out = LW.LIST_LOSSES["scratch_top1"](pol, ref, sc, beta=2.0, temperature=0.5)
        z = [2.0 * (p - q) / 0.5 for p, q in zip(pol[0].tolist(), ref[0].tolist())]  # r / T = (2, -2, -6), written out
        want = -(z[1] - math.log(sum(math.exp(v) for v in z)))  # the best-scored response is 1
        torch.testing.assert_close(out.losses, torch.tensor([want], dtype=torch.float64))
        with pytest.raises(ValueError, match=r"temperature must be in \(0, inf\), got temperature=0\.0"):
            LW.LIST_LOSSES["scratch_top1"](pol, ref, sc, beta=2.0, temperature=0.0)
        with pytest.raises(ValueError, match="beta must be a finite number > 0, got beta=0"):
            LW.LIST_LOSSES["scratch_top1"](pol, ref, sc, beta=0)
        with pytest.raises(ValueError, match="listwise loss 'scratch_top2' declares no check for temperature"):
            LW.listwise("scratch_top2")(scratch_top1.__wrapped__)  # a hyperparameter without a declared check: refused when defined
        assert "scratch_top2" not in LW.LIST_LOSSES
    finally:
        LW.LIST_LOSSES.pop("scratch_top1", None)
