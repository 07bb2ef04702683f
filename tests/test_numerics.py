"""Issue 24, "Numbers: no silent inf or NaN": each rule over the whole registry, and each numeric fix against an independent reference.

1. One rule for scalar hyperparameters (`core.check_scalar`, called by every loss's door): a number or a 0-d tensor, or, where the loss
   declares the hyperparameter "per example", exactly [B]; every other shape is a ValueError naming it, never a broadcast.
2. DiscoPOP and log1mexp in their stable forms: value and gradient on a dense grid of margins, temperatures and dtypes, against mpmath
   (50 digits) on the very same inputs.
3. The -inf rule: every loss, every log-prob argument at -inf in turn: a finite value with a finite gradient, or a ValueError naming it.
4. The smaller items: NumPy seeds, the meta device, integers too large for a float, integer labels of every width, adam_step's door,
   and sizes that cannot fit (`core.check_fits`).
"""
import math
import re

import mpmath
import numpy as np
import pytest
import torch

from prefbench_lib import core, listwise, losses, metrics, toy
from prefbench_lib.core import check_fits, check_scalar, get_device, seed_everything, token_logps
from prefbench_lib.losses import EXAMPLE_HPARAMS, EXP_CAP, LOSSES, TERMS, Pair, loss_hyperparameters

B = 4
ARGS = ("policy_chosen_logps", "policy_rejected_logps", "ref_chosen_logps", "ref_rejected_logps")
DISTINCT = sorted({f.names[0] for f in (*LOSSES.values(), *TERMS.values())})
ALL = {**LOSSES, **TERMS}


def batch(dtype=torch.float32) -> dict:
    "A valid batch of B pairs: every log-prob argument and the lengths."
    g = torch.Generator().manual_seed(0)
    xs = {k: -(torch.rand(B, generator=g, dtype=torch.float64) * 8 + 1).to(dtype) for k in ARGS}
    return dict(xs, chosen_lengths=torch.tensor([2.0, 3.0, 1.0, 4.0]), rejected_lengths=torch.tensor([1.0, 2.0, 5.0, 3.0]))


def inside(h) -> float:
    "A value inside hyperparameter h's declared range (its default where that is a number)."
    if isinstance(h.default, (int, float)) and not isinstance(h.default, bool): return float(h.default)
    if h.low is None: return 0.5 if h.high is None else h.high - 0.5
    return h.low + 0.5 if h.high is None else (h.low + h.high) / 2


# ---------------------------------------------------------------------------------------------------------------------------
# 1. One rule for scalar hyperparameters
# ---------------------------------------------------------------------------------------------------------------------------

HPARAM_CASES = [(n, h.name) for n in DISTINCT if n in LOSSES for h in loss_hyperparameters(n)]
SHAPES = {"0d": (), "B": (B,), "B1": (B, 1), "1": (1,), "B+1": (B + 1,), "2B": (2, B)}


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("name,hp", HPARAM_CASES, ids=[f"{n}-{h}" for n, h in HPARAM_CASES])
def test_scalar_hyperparameter_rule_over_the_registry(name, hp, shape):
    "Every loss x every declared hyperparameter x every shape: a 0-d tensor is the number; [B] only where declared per example."
    h = next(x for x in loss_hyperparameters(name) if x.name == hp)
    v = inside(h)
    call = lambda value: LOSSES[name](Pair(**batch()), beta=0.5, **{hp: value})
    value = torch.full(SHAPES[shape], v, dtype=torch.float64)
    if shape == "0d" or (shape == "B" and h.per_example):
        torch.testing.assert_close(call(value).losses, call(v).losses)  # the same as the number, shape [B]
        assert call(value).losses.shape == (B,)
    else:
        with pytest.raises(ValueError, match=rf"^{hp} must be a number or a 0-d tensor.*got a tensor of shape {re_shape(SHAPES[shape])}"):
            call(value)


def re_shape(s: tuple) -> str: return re.escape(str(tuple(s)))


def test_the_issue_case_and_the_boolean_value_cases():
    "cdpo's label_smoothing [4, 1] made a [4, 4] loss; cpo_alpha/alpha [B] died on 'Boolean value of Tensor is ambiguous'."
    pair = Pair(**batch())
    with pytest.raises(ValueError, match=r"label_smoothing must be a number or a 0-d tensor, got a tensor of shape \(4, 1\)"):
        LOSSES["cdpo"](pair, beta=0.1, label_smoothing=torch.full((4, 1), 0.1))
    for name, hp in (("cpo", "cpo_alpha"), ("alphapo", "alpha"), ("cpo_hinge", "cpo_alpha"), ("cpo_ipo", "cpo_alpha")):
        with pytest.raises(ValueError, match=rf"{hp} must be a number or a 0-d tensor, got a tensor of shape \(4,\)"):
            LOSSES[name](pair, beta=0.1, **{hp: torch.full((B,), 0.3)})
    # the same loss in a mixture: each term's door
    with pytest.raises(ValueError, match=r"label_smoothing must be a number or a 0-d tensor"):
        losses.loss_mixture(pair, ["cdpo", "sigmoid"], beta=0.1, label_smoothing=torch.full((B, 1), 0.1))


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("fn,hp,per_example", [(losses.kto_loss, "kl_ref_point", True), (losses.kto_loss, "desirable_weight", False),
                                                (losses.kto_loss, "undesirable_weight", False), (losses.bco_loss, "reward_shift", False),
                                                (losses.apo_zero_unpaired_loss, "desirable_weight", False),
                                                (losses.apo_zero_unpaired_loss, "undesirable_weight", False)],
                         ids=lambda x: getattr(x, "__name__", str(x)))
def test_scalar_rule_for_the_unpaired_losses(fn, hp, per_example, shape):
    xs = batch()
    base = dict(kl_ref_point=0.2) if fn is losses.kto_loss else dict(reward_shift=0.1) if fn is losses.bco_loss else {}
    call = lambda value: fn(xs["policy_chosen_logps"], xs["ref_chosen_logps"], torch.tensor([1, 0, 1, 0]), beta=0.5, **{**base, hp: value})
    value = torch.full(SHAPES[shape], 0.7, dtype=torch.float64)
    if shape == "0d" or (shape == "B" and per_example):
        torch.testing.assert_close(call(value).losses, call(0.7).losses)
    else:
        with pytest.raises(ValueError, match=rf"{hp} must be a number or a 0-d tensor.*got a tensor of shape {re_shape(SHAPES[shape])}"):
            call(value)


@pytest.mark.parametrize("call,name,per_example", [
    (lambda v: losses.lcpo_weights(torch.zeros(B), v), "noise_rate", False),
    (lambda v: losses.soft_bce(torch.zeros(B), v), "p", True),
    (lambda v: core.ld_sequence_logps(-torch.rand(B, 3), torch.ones(B, 3), -torch.rand(B, 2), torch.ones(B, 2), v), "ld_alpha", False),
    (lambda v: losses.f_divergence_score(torch.zeros(B), "alpha_divergence", v), "f_alpha_divergence_coef", False),
    (lambda v: losses.capped_expm1(torch.zeros(B), v), "cap", False),
    (lambda v: metrics.idealized_ranking_accuracy(-torch.rand(B), -torch.rand(B), v, beta=0.5), "alpha", True),
    (lambda v: toy.RPO(beta=0.1, alpha=v), "alpha", False),
], ids=["lcpo_weights", "soft_bce", "ld_sequence_logps", "f_divergence_score", "capped_expm1", "idealized_ranking_accuracy", "RPO"])
def test_scalar_rule_outside_the_registry(call, name, per_example):
    "The same rule wherever a scalar knob is taken (the same check_scalar): 0-d accepted, [B] only per example, the rest refused by name."
    for label, shape in SHAPES.items():
        value = torch.full(shape, 0.25, dtype=torch.float64)
        if label == "0d" or (label == "B" and per_example): call(value); continue
        with pytest.raises(ValueError, match=rf"{name} must be a number or a 0-d tensor.*got a tensor of shape {re_shape(shape)}"): call(value)


def test_beta_is_a_plain_number_and_huge_integers_are_named():
    "beta is a Python or NumPy number (check_positive): a tensor is refused by name; 10**400 is no float, refused by name everywhere."
    pair = Pair(**batch())
    for bad in (torch.tensor(0.5), torch.full((B,), 0.5)):
        with pytest.raises(ValueError, match=r"beta must be a finite number > 0, got beta=tensor"): LOSSES["dpo"](pair, beta=bad)
    torch.testing.assert_close(LOSSES["dpo"](pair, beta=np.float32(0.5)).losses, LOSSES["dpo"](pair, beta=0.5).losses)
    for name in DISTINCT:
        with pytest.raises(ValueError, match=r"beta must be a finite number > 0, got beta=100000000000\.\.\.\(401 digits\)"):
            ALL[name](Pair(**batch()), beta=10**400)
    for name, hp in HPARAM_CASES:
        with pytest.raises(ValueError, match=rf"{hp} must be a number in .* that a float holds, got {hp}=100000000000\.\.\.\(401 digits\)"):
            LOSSES[name](Pair(**batch()), beta=0.5, **{hp: 10**400})
    with pytest.raises(ValueError, match=r"beta must be a finite number > 0, got beta=-10000000000\.\.\.\(402 digits\)"):
        listwise.listmle_loss(-torch.rand(2, 3), -torch.rand(2, 3), torch.rand(2, 3), beta=-(10**400))
    assert core.check_positive("beta", 10**300) == 10**300  # a float holds it: fine
    with pytest.raises(ValueError, match="lr must be a finite number > 0"): toy.run_bandit("sft", lr=10**400, steps=1, seeds=1)


# ---------------------------------------------------------------------------------------------------------------------------
# 2. DiscoPOP and log1mexp, value and gradient, against mpmath
# ---------------------------------------------------------------------------------------------------------------------------

mpmath.mp.dps = 50
CAP = mpmath.mpf(EXP_CAP)


def discopop_mp(z, tau):
    "DiscoPOP's formula as printed, (1 - m)(-log sigma(z)) + m e^{-z}, in 50 digits, the blend term continued along its tangent past e^30."
    z, tau = mpmath.mpf(z), mpmath.mpf(tau)
    m = 1 / (1 + mpmath.exp(-z / tau))
    term = m * mpmath.exp(-z)
    u = mpmath.log(term)
    return (1 - m) * mpmath.log1p(mpmath.exp(-z)) + (term if u <= CAP else mpmath.exp(CAP) * (1 + u - CAP))


# margins exactly representable in bfloat16 (so every dtype sees the same z), both signs; temperatures over ten decades
MARGINS = sorted({s * v for s in (-1, 1) for v in (0.0, 2**-10, 2**-4, 0.25, 0.5, 1, 2, 3, 5, 8, 16, 24, 32, 48, 64, 96, 128, 200, 256,
                                                    512, 1024, 4096, 16384)})
TAUS = (1e-4, 1e-2, 0.05, 0.2, 0.5, 1.0, 2.0, 5.0, 100.0, 1e4, 1e6)
TOL = {torch.float32: (1e-5, 2e-5), torch.bfloat16: (1e-5, 2**-8), torch.float64: (1e-12, 1e-10)}  # (value, gradient) relative


@pytest.fixture(scope="module")
def discopop_reference():
    out = {}
    for tau in TAUS:
        for z in MARGINS:
            out[z, tau] = (float(discopop_mp(z, tau)), float(mpmath.diff(lambda x: discopop_mp(x, tau), mpmath.mpf(z))))
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64], ids=["float32", "bfloat16", "float64"])
@pytest.mark.parametrize("tau", TAUS)
def test_discopop_value_and_gradient_against_mpmath(tau, dtype, discopop_reference):
    "Delta = z exactly (z < 0 in the chosen log-prob, z > 0 in the rejected one, references 0); beta = 1; dL/dz from the input's gradient."
    z = torch.tensor(MARGINS, dtype=dtype)
    pc, pr = z.clamp(max=0).clone().requires_grad_(), (-z).clamp(max=0).clone().requires_grad_()
    out = LOSSES["discopop"](Pair(pc, pr, torch.zeros_like(z), torch.zeros_like(z)), beta=1.0, tau=tau).losses
    gc, gr = torch.autograd.grad(out.sum(), (pc, pr))
    g = torch.where(z <= 0, gc.double(), -gr.double())  # dL/dz = dL/d s_c = -dL/d s_r
    assert torch.isfinite(out).all() and torch.isfinite(g).all(), (out, g)
    ref = torch.tensor([discopop_reference[m, tau] for m in MARGINS], dtype=torch.float64)
    rv, rg = TOL[dtype]
    tiny = torch.finfo(out.dtype).tiny
    torch.testing.assert_close(out.double(), ref[:, 0], rtol=rv, atol=tiny)
    torch.testing.assert_close(g, ref[:, 1], rtol=rg, atol=tiny)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
def test_discopop_the_issue_cases(dtype):
    "Pair([-201.], [-1.], [-1.], [-1.]), beta = 1, tau = 2 was inf with a NaN gradient; so was tau = 1e4 at large margins."
    for args, tau in ((([-201.0], [-1.0], [-1.0], [-1.0]), 2.0), (([-501.0], [-1.0], [-1.0], [-1.0]), 1e4), (([-1.0], [-501.0], [-1.0], [-1.0]), 1e4)):
        xs = [torch.tensor(a, dtype=dtype, requires_grad=True) for a in args]
        out = LOSSES["discopop"](Pair(*xs), beta=1.0, tau=tau).losses
        grads = torch.autograd.grad(out.sum(), xs)
        assert torch.isfinite(out).all() and all(torch.isfinite(gg).all() for gg in grads), (args, tau, out, grads)
        z = float(xs[0].detach().double() - xs[1].detach().double())
        assert math.isclose(out.item(), float(discopop_mp(z, tau)), rel_tol=1e-5, abs_tol=1e-38)


@pytest.mark.parametrize("tau", [5e-324, 1e-300, 1e-40, 1e-30, 1e30, 1e300])
def test_discopop_extreme_temperatures_stay_finite(tau):
    "tau anywhere in (0, inf): a finite value and gradient for margins within +-1e6 (below float32's tiny, tau acts as tiny)."
    for dtype in (torch.float32, torch.float64):
        z = torch.tensor([-1e6, -30.0, -1e-3, 0.0, 1e-3, 30.0, 1e6], dtype=dtype)
        pc, pr = z.clamp(max=0).clone().requires_grad_(), (-z).clamp(max=0).clone().requires_grad_()
        out = LOSSES["discopop"](Pair(pc, pr, torch.zeros_like(z), torch.zeros_like(z)), beta=1.0, tau=tau).losses
        grads = torch.autograd.grad(out.sum(), (pc, pr))
        assert torch.isfinite(out).all() and all(torch.isfinite(gg).all() for gg in grads), (tau, dtype, out, grads)


def test_discopop_absurd_margins_overflow_by_name():
    "Past |z| ~ 1e25 even the tangent leaves float32: a ValueError saying so (beta names the way out), never a silent inf."
    with pytest.raises(ValueError, match=r"loss 'discopop' overflows to inf at index 0 although every input there is finite"):
        LOSSES["discopop"](Pair(torch.tensor([-1e30]), torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([0.0])), beta=1.0, tau=2.0)


def log1mexp_mp(a):
    a = mpmath.mpf(a)
    # log(1 - e^a), in the form that keeps 50 digits in mpmath (near 0 1 - e^a cancels; far below log of 1 - tiny), and its derivative
    value = mpmath.log(-mpmath.expm1(a)) if a > -1 else mpmath.log1p(-mpmath.exp(a))
    return value, -1 / mpmath.expm1(-a)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64], ids=["float32", "bfloat16", "float64"])
def test_log1mexp_value_and_gradient_against_mpmath(dtype):
    "From -1e-30 (float64: -1e-300) to -400, both branches and the split at -log 2: values and gradients finite and right."
    lo = -300 if dtype == torch.float64 else -30 if dtype == torch.float32 else -37
    a = torch.cat([-torch.logspace(lo, math.log10(400), 400, dtype=torch.float64), torch.tensor([-math.log(2), -0.6931, -0.6932])]).to(dtype)
    a = a[a < 0].unique()
    x = a.clone().requires_grad_()
    y = losses.log1mexp(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    assert y.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)  # computed in at least float32
    assert torch.isfinite(y).all() and torch.isfinite(g).all(), (a[~torch.isfinite(g)], g[~torch.isfinite(g)])
    ref = torch.tensor([[float(v) for v in log1mexp_mp(float(ai))] for ai in a.double()], dtype=torch.float64)
    rtol_v = 1e-13 if dtype == torch.float64 else 2e-6
    rtol_g = 1e-13 if dtype == torch.float64 else 2e-6 if dtype == torch.float32 else 2**-8  # the gradient comes back in bf16
    torch.testing.assert_close(y.double(), ref[:, 0], rtol=rtol_v, atol=torch.finfo(y.dtype).tiny)
    torch.testing.assert_close(g.double(), ref[:, 1], rtol=rtol_g, atol=torch.finfo(g.dtype).tiny)


def test_log1mexp_the_issue_cases_and_its_ends():
    for dtype, v in ((torch.float32, -1e-8), (torch.bfloat16, -1e-3)):
        x = torch.tensor([v], dtype=dtype, requires_grad=True)
        (g,) = torch.autograd.grad(losses.log1mexp(x).sum(), x)
        assert torch.isfinite(g).all(), (dtype, v, g)
    assert losses.log1mexp(torch.tensor([0.0])).item() == -math.inf  # log(1 - 1): the documented end (p = 1; ORPO clamps before)
    x = torch.tensor([-math.inf], requires_grad=True)
    y = losses.log1mexp(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    assert y.item() == 0.0 and g.item() == 0.0  # log(1 - 0), flat
    with pytest.raises(ValueError, match="a must hold log-probabilities <= 0"): losses.log1mexp(torch.tensor([0.5]))


# ---------------------------------------------------------------------------------------------------------------------------
# 3. The -inf rule, every loss, every argument
# ---------------------------------------------------------------------------------------------------------------------------

def neginf_check(call, xs: dict, arg: str, at: tuple = (0,)) -> str:
    "Put -inf at xs[arg][at]; the call must raise a ValueError naming arg[at], or give finite losses with finite gradients."
    xs = {k: v.detach().clone() for k, v in xs.items()}
    xs[arg][at] = -math.inf
    for k, v in xs.items():
        if k.endswith("logps"): v.requires_grad_()  # token counts are no variable: no gradient is asked of them
    try: out = call(**xs)
    except ValueError as e:
        assert f"{arg}[{', '.join(map(str, at))}] = -inf" in str(e), str(e)
        return "refused"
    loss = out.output.losses if hasattr(out, "output") else out.losses
    assert torch.isfinite(loss).all(), (arg, loss)
    ks = [k for k, v in xs.items() if v.requires_grad]
    grads = torch.autograd.grad(loss.sum(), [xs[k] for k in ks], allow_unused=True)
    for k, gr in zip(ks, grads): assert gr is None or torch.isfinite(gr).all(), (arg, k, gr)
    return "finite"


HP_SETTINGS = {n: [{}, EXAMPLE_HPARAMS.get(n, {})] for n in DISTINCT}
HP_SETTINGS["alphapo"].append(dict(alpha=-0.5))
HP_SETTINGS["chipo"].append(dict(r_max=0.5))
HP_SETTINGS["sigmoid_attenuated"].append(dict(gamma=0.0))
HP_SETTINGS["soft_dpo"].append(dict(p=torch.tensor([1.0, 0.0, 0.5, 1.0])))


@pytest.mark.parametrize("arg", ARGS)
@pytest.mark.parametrize("name", DISTINCT)
def test_neginf_rule_every_loss(name, arg):
    "Each loss, each log-prob argument at -inf at each index in turn, at its defaults and other settings, with every f-divergence that composes."
    fdivs = [("reverse_kl", 0.5)] + ([("forward_kl", 0.5), ("js_divergence", 0.5), ("alpha_divergence", 0.3)] if ALL[name].f_divergence else [])
    seen = set()
    for hp in HP_SETTINGS[name]:
        for kind, coef in fdivs:
            for i in range(B):
                call = lambda **xs: ALL[name](Pair(**xs, f_divergence_type=kind, f_alpha_divergence_coef=coef), beta=0.5, **hp)
                seen.add(neginf_check(call, batch(), arg, (i,)))
    assert seen


@pytest.mark.parametrize("arg", ARGS)
def test_neginf_rule_in_a_mixture(arg):
    call = lambda **xs: losses.loss_mixture(Pair(**xs), ["sigmoid", "bco_pair", "sft"], beta=0.5, loss_weights=[0.8, 0.2, 1.0])
    neginf_check(call, batch(), arg)


@pytest.mark.parametrize("arg", ["policy_logps", "ref_logps"])
@pytest.mark.parametrize("fn,kw", [(losses.kto_loss, dict(kl_ref_point=0.2)), (losses.bco_loss, dict(reward_shift=0.1)),
                                    (losses.apo_zero_unpaired_loss, {})], ids=["kto", "bco", "apo_zero_unpaired"])
def test_neginf_rule_unpaired(fn, kw, arg):
    xs = batch()
    base = dict(policy_logps=xs["policy_chosen_logps"], ref_logps=xs["ref_chosen_logps"])
    outcomes = [neginf_check(lambda **ys: fn(**ys, desirable=torch.tensor([1, 0, 1, 0]), beta=0.5, **kw), base, arg, (i,)) for i in range(B)]
    if fn is losses.bco_loss:  # the logistic loss's wrong tail: a desirable one impossible under the policy, an undesirable one under the reference
        assert outcomes == (["refused", "finite"] * 2 if arg == "policy_logps" else ["finite", "refused"] * 2), outcomes
    else: assert set(outcomes) == {"finite"}  # bounded


@pytest.mark.parametrize("arg", ["policy_logps", "ref_logps"])
@pytest.mark.parametrize("name", sorted(listwise.LIST_LOSSES))
def test_neginf_rule_listwise(name, arg):
    g = torch.Generator().manual_seed(1)
    xs = dict(policy_logps=-torch.rand(2, 4, generator=g) * 5 - 0.1, ref_logps=-torch.rand(2, 4, generator=g) * 5 - 0.1)
    scores = torch.tensor([[3.0, 1.0, 2.0, 0.0], [0.0, 1.0, 2.0, 3.0]])
    fn = listwise.LIST_LOSSES[name]
    for b in range(2):
        for k in range(4):
            for mask in (None, torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])):
                outcome = neginf_check(lambda **ys: fn(**ys, scores=scores, beta=0.5, mask=mask), xs, arg, (b, k))
                # the policy's worst present response may be impossible at no cost; a masked one is nobody's fault
                worst = (scores[b].masked_fill(mask[b] == 0, math.inf) if mask is not None else scores[b]).argmin().item()
                if arg == "policy_logps" and mask is not None and mask[b, k] == 0: assert outcome == "finite"  # masked: nobody's fault
                elif arg == "policy_logps" and k == worst: assert outcome == "finite", (b, k)


# ---------------------------------------------------------------------------------------------------------------------------
# 4. The smaller items
# ---------------------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [np.int64(0), np.int32(7), np.uint32(2**32 - 1), np.uint64(5), np.int8(3), 2**32 - 1])
def test_seed_everything_takes_numpy_integers(seed):
    import random
    a = (seed_everything(seed), random.random(), np.random.rand(), torch.rand(1).item())
    b = (seed_everything(int(seed)), random.random(), np.random.rand(), torch.rand(1).item())
    assert a == b and type(a[0]) is int


@pytest.mark.parametrize("seed", [np.int64(-1), 2**32, np.uint64(2**32), np.float64(1.0), np.bool_(True), True, 1.0, "1"])
def test_seed_everything_refuses_by_name(seed):
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32\), got seed="): seed_everything(seed)


def test_meta_device_is_refused_by_name():
    "get_device, every function that takes a device, every check helper and every loss: the meta device by name (the whole table: test_contract)."
    for dev in ("meta", torch.device("meta")):
        with pytest.raises(ValueError, match=r"is the meta device"): get_device(dev)
    with pytest.raises(ValueError, match=r"device='meta' is the meta device"): metrics.pair_problem(10, device="meta")
    with pytest.raises(ValueError, match=r"device='meta' is the meta device"): toy.BanditConfig(device="meta")
    m = torch.zeros(B, device="meta")
    xs = batch()
    for k in ARGS:
        with pytest.raises(ValueError, match=rf"{k} is on the meta device"): LOSSES["dpo"](Pair(**{**xs, k: m}), beta=0.1)
    with pytest.raises(ValueError, match=r"chosen_lengths is on the meta device"):
        LOSSES["ipo"](Pair(**{**xs, "chosen_lengths": m}), beta=0.1)
    with core.value_checks(False):  # not a value scan: refused with the scans off too
        with pytest.raises(ValueError, match=r"policy_chosen_logps is on the meta device"): LOSSES["dpo"](Pair(**{**xs, "policy_chosen_logps": m}), beta=0.1)
    with pytest.raises(ValueError, match=r"policy_logps is on the meta device"):
        losses.kto_loss(m, xs["ref_chosen_logps"], torch.ones(B), beta=0.1, kl_ref_point=0.0)
    with pytest.raises(ValueError, match=r"policy_logps is on the meta device"):
        listwise.listmle_loss(torch.zeros(2, 3, device="meta"), -torch.rand(2, 3), torch.rand(2, 3), beta=0.1)
    with pytest.raises(ValueError, match=r"label_smoothing is on the meta device"):
        LOSSES["cdpo"](Pair(**xs), beta=0.1, label_smoothing=torch.tensor(0.1, device="meta"))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64])
def test_integer_labels_of_every_width_are_token_ids(dtype):
    "uint8 labels were a RuntimeError from gather: every integer dtype is a token id, with the int64 result (and gradient)."
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=g, requires_grad=True)
    labels, mask = torch.randint(0, 7, (2, 5), generator=g), torch.tensor([[0, 1, 1, 1, 0], [0, 0, 1, 1, 1]])
    out = token_logps(logits, labels.to(dtype), mask)
    torch.testing.assert_close(out, token_logps(logits, labels, mask))
    (ga,) = torch.autograd.grad(out.sum(), logits)
    (gb,) = torch.autograd.grad(token_logps(logits, labels, mask).sum(), logits)
    torch.testing.assert_close(ga, gb)
    # a uint8 id out of range is named as any other
    with pytest.raises(ValueError, match=r"labels must be token ids in \[0, 7\)"):
        token_logps(logits.detach(), torch.full((2, 5), 200, dtype=torch.uint8), mask)


@pytest.mark.parametrize("dtype", [torch.bool, torch.float16, torch.float32, torch.complex64])
def test_non_integer_labels_are_refused_saying_what_labels_must_be(dtype):
    with pytest.raises(ValueError, match=rf"labels must hold integer token ids \(int64, int32, int16, int8 or uint8\), got dtype {dtype}"):
        token_logps(torch.randn(1, 3, 4), torch.tensor([[0, 1, 2]]).to(dtype), None)


def test_uint8_desirable_and_actions_are_accepted():
    "The other places integer labels come in: KTO's desirable flags and the bandit's action ids."
    xs = batch()
    for dt in (torch.uint8, torch.int8, torch.bool):
        torch.testing.assert_close(losses.kto_loss(xs["policy_chosen_logps"], xs["ref_chosen_logps"], torch.tensor([1, 0, 1, 1]).to(dt), beta=0.1,
                                                   kl_ref_point=0.0).losses,
                                   losses.kto_loss(xs["policy_chosen_logps"], xs["ref_chosen_logps"], torch.tensor([1, 0, 1, 1]), beta=0.1,
                                                   kl_ref_point=0.0).losses)
    with pytest.raises(ValueError, match=r"desirable must hold only 0 and 1, got desirable\[1\] = 2"):
        losses.bco_loss(xs["policy_chosen_logps"], xs["ref_chosen_logps"], torch.tensor([1, 2, 0, 1], dtype=torch.uint8), beta=0.1, reward_shift=0.0)
    lp = torch.log_softmax(torch.linspace(0, 1, 10), 0)
    a = toy.make_batch(torch.tensor([[1, 5, 7, 2]], dtype=torch.uint8), toy.bin_reward(10, 5.0, 2.0), lp[None], lp)
    b = toy.make_batch(torch.tensor([[1, 5, 7, 2]]), toy.bin_reward(10, 5.0, 2.0), lp[None], lp)
    assert torch.equal(a.actions, b.actions) and a.actions.dtype == torch.int64


def _adam_args(**change):
    z = torch.zeros(2, 5)
    return dict(theta=z.clone(), grad=torch.ones(2, 5), m=z.clone(), v=z.clone(), t=1, lr=0.1) | change


@pytest.mark.parametrize("change,message", [
    (dict(grad=torch.ones(2, 4)), r"grad has shape \(2, 4\) but theta has shape \(2, 5\)"),
    (dict(m=torch.zeros(3, 5)), r"m has shape \(3, 5\) but theta has shape \(2, 5\)"),
    (dict(v=torch.zeros(2, 1)), r"v must have shape \(2, 5\) \(per_run=False\), got shape \(2, 1\)"),
    (dict(per_run=True), r"v must have shape \(2, 1\) \(per_run=True\), got shape \(2, 5\)"),
    (dict(theta=torch.zeros(1, 2, 5), grad=torch.zeros(1, 2, 5), m=torch.zeros(1, 2, 5), v=torch.zeros(1, 2, 5)), r"theta must have shape \[R, P\] \(or \[P\], one run\), got shape \(1, 2, 5\)"),
    (dict(grad=torch.ones(2, 5, dtype=torch.float64)), r"grad must have theta's dtype and device"),
    (dict(theta=torch.zeros(2, 5, dtype=torch.long)), r"theta must be a floating-point torch.Tensor, got torch.int64"),
    (dict(grad=[[1.0] * 5] * 2), r"grad must be a floating-point torch.Tensor, got list"),
    (dict(t=0), r"t must be an integer >= 1, got t=0"), (dict(t=1.0), r"t must be an integer >= 1, got t=1.0"),
    (dict(t=np.int64(0)), r"t must be an integer >= 1"),
    (dict(lr=0.0), r"lr must be a finite number > 0, got lr=0.0"), (dict(lr=math.nan), r"lr must be a finite number > 0, got lr=nan"),
    (dict(lr=10**400), r"lr must be a finite number > 0"), (dict(lr=torch.ones(2)), r"lr must be a number or a float tensor of shape \[R, 1\]"),
    (dict(lr=torch.ones(2, 1, dtype=torch.long)), r"lr must be a number or a float tensor of shape \[R, 1\]"),
    (dict(betas=(0.9, 1.0)), r"betas\[1\] must be in \[0.0, 1.0\), got betas\[1\]=1.0"), (dict(betas=(-0.1, 0.9)), r"betas\[0\] must be in"),
    (dict(betas=(0.9,)), r"betas must be a pair \(beta_1, beta_2\)"), (dict(betas="0.9"), r"betas must be a pair"),
    (dict(eps=0.0), r"eps must be a finite number > 0, got eps=0.0"), (dict(eps=-1e-8), r"eps must be a finite number > 0"),
    (dict(per_run=1), r"per_run must be bool, got int"), (dict(theta=torch.zeros(2, 5, device="meta")), r"theta is on the meta device"),
])
def test_adam_step_checks_at_its_door(change, message):
    with pytest.raises(ValueError, match=message): core.adam_step(**_adam_args(**change))


def test_adam_step_still_adam():
    "The door changes nothing: the per-coordinate step against torch.optim.Adam (lr as a number, a 0-d tensor and [R, 1])."
    g = torch.Generator().manual_seed(0)
    th0, grads = torch.randn(2, 5, generator=g), torch.randn(3, 2, 5, generator=g)
    for lr in (0.05, torch.tensor(0.05), torch.full((2, 1), 0.05)):
        th, m, v = th0.clone(), torch.zeros(2, 5), torch.zeros(2, 5)
        for t in range(3): core.adam_step(th, grads[t], m, v, np.int64(t + 1), lr)
        p = torch.nn.Parameter(th0.clone()); opt = torch.optim.Adam([p], lr=0.05)
        for t in range(3): p.grad = grads[t].clone(); opt.step()
        torch.testing.assert_close(th, p.detach(), rtol=1e-6, atol=1e-6)


def test_check_fits_compares_with_the_free_memory(monkeypatch):
    "check_fits refuses what exceeds the free memory, naming the sizes and the bytes; the boundary is exact."
    monkeypatch.setattr(core, "_free_bytes", lambda dev: 10_000)
    check_fits(10_000, "cpu", K=1)
    with pytest.raises(ValueError, match=r"K=2, n=3 would need at least 9.77 KiB on cpu, but 9.77 KiB is free: lower K or n"):
        check_fits(10_001, "cpu", K=2, n=3)
    with pytest.raises(ValueError, match=r"nbytes must be a finite number >= 0"): check_fits(math.inf, "cpu", K=1)
    with pytest.raises(ValueError, match=r"check_fits needs the arguments that set the size"): check_fits(1, "cpu")
    assert core._free_bytes(torch.device("cpu")) == 10_000
    monkeypatch.undo()
    assert 0 < core._free_bytes(torch.device("cpu")) < 1 << 62  # this machine says how much is free


def test_sizes_that_cannot_fit_are_refused_before_allocating(monkeypatch):
    "The issue's cases and their neighbours: a ValueError naming the size arguments and the memory they would need."
    with pytest.raises(ValueError, match=r"n_prompts=1000000000, K=8 would need at least .* on cpu, but .* is free: lower n_prompts or K"):
        metrics.pair_problem(10**9)
    with pytest.raises(ValueError, match=r"n_prompts=10, K=1000000 would need at least"): metrics.pair_problem(10, K=10**6)
    with pytest.raises(ValueError, match=r"K=1000000000, contexts=1, dataset_size=1000, steps=300 would need at least .* TiB"):
        toy.run_bandit(K=10**9, reward_center=5.0)
    with pytest.raises(ValueError, match=r"K=1000000000, contexts=1, dataset_size=1000, steps=300 would need at least"):
        toy.BanditConfig(K=10**9, reward_center=[5.0])
    with pytest.raises(ValueError, match=r"steps=1000000000000 would need at least"): toy.BanditConfig(steps=10**12)
    with pytest.raises(ValueError, match=r"contexts=1000000000, dataset_size=1000, steps=300 would need"): toy.BanditConfig(contexts=10**9)
    with pytest.raises(ValueError, match=r"hidden=10000000 would need"): toy.BanditConfig(policy="mlp", hidden=10**7)
    with pytest.raises(ValueError, match=r"K=10000000000 would need at least"): toy.reference_distribution(10**10, exact=True)
    with pytest.raises(ValueError, match=r"K=100, n_draws=1000000000000 would need at least"): toy.reference_distribution(100, n_draws=10**12)
    with pytest.raises(ValueError, match=r"K=1000000000000 would need at least"): toy.bin_reward(10**12, center=5.0)
    with pytest.raises(ValueError, match=r"N=10000000 would need at least"): toy.pair_positions(10**7, "all_pairs")
    assert len(toy.pair_positions(10**7, "best_worst")[0]) == 1  # only all_pairs grows with N^2
    with pytest.raises(ValueError, match=r"K=1000000000, hidden=256, features=50 would need"):
        toy.MLPPolicy(torch.rand(1, 2, 3), 10**9, [torch.Generator()])
    # what fits runs; record_policy's [T + 1, R, K] is checked by train, against a free memory we choose
    cfg = toy.BanditConfig(K=10, reward_center=[5.0], steps=2, seeds=[0], n_samples=4, dataset_size=8, device="cpu")
    toy.train(cfg, record_policy=True)
    monkeypatch.setattr(core, "_free_bytes", lambda dev: 100)
    with pytest.raises(ValueError, match=r"steps=2, K=10 would need at least 120 B on cpu, but 100 B is free"): toy.train(cfg, record_policy=True)


@pytest.mark.parametrize("seed", range(3))
def test_check_scalar_against_check_in_interval(seed):
    "check_scalar is check_in_interval plus the shape rule: the same verdict on numbers and 0-d tensors, drawn at random."
    g = np.random.default_rng(seed)
    for _ in range(200):
        lo, hi = sorted(g.uniform(-3, 3, 2))
        closed = g.choice(["both", "left", "right", "neither"])
        v = float(g.choice([lo, hi, g.uniform(-4, 4), math.nan, math.inf, -math.inf]))
        for value in (v, torch.tensor(v)):
            try: core.check_in_interval("x", value, lo, hi, closed=closed); ok = True
            except ValueError: ok = False
            try: check_scalar("x", value, lo, hi, closed=closed); ok2 = True
            except ValueError: ok2 = False
            assert ok == ok2, (value, lo, hi, closed)
