"""The input contract of prefbench_lib as a table (issue 15): per public callable, one valid call and the kind of each argument.

`test_contract.py` turns every (entry, argument, bad value of its kind) into a test. An argument's *kind* says what the contract
refuses for it (NaN, +-inf, a wrong dtype or shape, out-of-range values, a wrong type); a refused value must raise a `ValueError`
whose message names the argument (and, for a value, shows it).

Layout: the kinds, then the valid inputs the entries share, then `table()` module by module (`"module.name" -> Entry | Reason`),
then the entries generated from the registries (every loss in LOSSES/TERMS, and every pairwise rule of the toy bandit, whose
hyperparameters come from `loss_hyperparameters`).
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

import torch

NAN, INF = math.nan, math.inf


# ---------------------------------------------------------------------------------------------------------------------------
# Kinds of argument, and the bad values each one generates
# ---------------------------------------------------------------------------------------------------------------------------

def number_pattern(x: float) -> str:
    "A regex matching the number x as a message may print it (repr, %g, an integer without '.0')."
    forms = {repr(x), str(x), f"{x:g}", f"{x:.7g}", f"{x:.6g}"}
    if isinstance(x, float) and x.is_integer(): forms.add(str(int(x)))
    alts = [re.escape(f) + ("0*" if "." in f and "e" not in f else "") for f in sorted(forms, key=len, reverse=True)]  # 0.25 as 0.2500
    return r"(?<![\w.])(" + "|".join(alts) + r")(?![\d])"

SHOW_NAN, SHOW_INF, SHOW_NEGINF = r"(?i)(?<![a-z])nan(?![a-z])", r"(?i)(?<![a-z])inf(?![a-z])", r"(?i)-inf(?![a-z])"


@dataclass(frozen=True)
class Bad:
    "One bad value of an argument."
    label: str  # the case id's last part: nan, posinf, range-zero, shape-B1, type-str, ...
    value: Any  # what is passed instead of the valid value
    show: str | None = None  # regex the message must match besides naming the argument (the bad value); None: naming it suffices
    may_return: bool = False  # a defined result (no exception, no NaN) is as good as the ValueError


@dataclass(frozen=True)
class Kind:
    "What the contract refuses for one kind of argument: `bads(valid value)` lists the bad values."
    name: str  # logps, logits, labels, mask, lengths, scalar, integer, choice, distribution, preferences, device, ...
    bads: Callable[[Any], list[Bad]]
    named: str | None = None  # the name the message must use when it is not the keyword (the check_* helpers' `name`)
    batch: int | None = None  # the batch dimension (the empty-batch case slices it to 0)
    seq: int | None = None  # the sequence dimension (the zero-length-sequence case slices it to 0)
    logps: bool = False  # log-probabilities: -inf is a legal value with a defined result (the finiteness case)
    at: tuple | None = None  # where a bad (or -inf) entry goes; None: the first entry


def _set(v: torch.Tensor, x: float, at: tuple | None = None) -> torch.Tensor:
    "A copy of v (as floating point) with one entry (the first, or `at`) set to x."
    out = v.clone() if v.is_floating_point() else v.double()
    out[at if at is not None else (0,) * out.ndim] = x
    return out

def _types(v, none_ok: bool, list_ok: bool = False) -> list[Bad]:
    out = [Bad("type-str", "abc")]
    if not none_ok: out.append(Bad("type-None", None))
    if not list_ok and isinstance(v, torch.Tensor): out.append(Bad("type-list", v.tolist()))
    return out

def _shapes(v: torch.Tensor, shapes: tuple[str, ...]) -> list[Bad]:
    "B1: an extra trailing dimension of size 1 ([B] -> [B, 1], silent broadcasting); short: one entry fewer along the last dimension."
    out = []
    if "B1" in shapes: out.append(Bad("shape-B1", v.unsqueeze(-1)))
    if "short" in shapes and v.ndim and v.shape[-1] > 1: out.append(Bad("shape-short", v[..., :-1].clone()))
    return out

def logps(*, shapes=("B1", "short"), none_ok=False, batch=0, seq=None, at=None, values=True, **kw) -> Kind:
    "Log-probabilities: finite or -inf, <= 0, floating point, exactly the shape of their partners. values=False: only the structure."
    def bads(v):
        vals = [Bad("nan", _set(v, NAN, at), SHOW_NAN), Bad("posinf", _set(v, INF, at), SHOW_INF),
                Bad("range-positive", _set(v, 0.75, at), number_pattern(0.75)), Bad("dtype-bool", v.bool())]
        return (vals if values else []) + [*_shapes(v, shapes), *_types(v, none_ok)]
    return Kind("logps", bads, batch=batch, seq=seq, logps=values, at=at, **kw)

def logits(*, vocab_at: tuple, **kw) -> Kind:
    "Logits [B, T, V]: finite or -inf (a banned token); a scored position needs one finite logit. `vocab_at`: (b, t - 1, v), v not the label."
    def bads(v):
        dead = v.clone(); dead[vocab_at[:2]] = -INF
        return [Bad("nan", _set(v, NAN, vocab_at), SHOW_NAN), Bad("posinf", _set(v, INF, vocab_at), SHOW_INF),
                Bad("range-all-neginf-row", dead), Bad("dtype-bool", v.bool()), Bad("shape-2d", v[..., 0].clone()), *_types(v, False)]
    return Kind("logits", bads, batch=0, seq=1, logps=True, at=vocab_at, **kw)

def labels(*, vocab: int, at: tuple, shapes=("short",), **kw) -> Kind:
    "Token ids [B, T]: integers in [0, V) wherever scored. `at`: a scored position. shapes=(): no partner fixes the last dimension."
    def bads(v):
        hi, lo = v.clone(), v.clone(); hi[at] = vocab; lo[at] = -1
        return [Bad("range-vocab", hi, number_pattern(vocab)), Bad("range-negative", lo, number_pattern(-1)),
                Bad("dtype-float", v.float()), *_shapes(v, shapes), *_types(v, False)]
    return Kind("labels", bads, batch=0, seq=1, **kw)

def mask(*, none_ok=False, shapes=("B1", "short"), batch=0, seq=None, **kw) -> Kind:
    "A 0/1 (or bool) mask of exactly its partner's shape."
    def bads(v):
        f = v.double()
        return [Bad("range-two", _set(f, 2.0), number_pattern(2.0)), Bad("range-half", _set(f, 0.5), number_pattern(0.5)),
                Bad("nan", _set(f, NAN), SHOW_NAN), *_shapes(v, shapes), *_types(v, none_ok)]
    return Kind("mask", bads, batch=batch, seq=seq, **kw)

def lengths(*, none_ok=False, values=True, shapes=("B1", "short"), **kw) -> Kind:
    "Completion lengths [B]: positive integers (any dtype that holds them), exactly the batch shape. values=False: only the structure."
    def bads(v):
        vals = [Bad("range-zero", _set(v, 0.0), number_pattern(0.0)), Bad("range-negative", _set(v, -3.0), number_pattern(-3.0)),
                Bad("range-fraction", _set(v, 2.5), number_pattern(2.5)), Bad("nan", _set(v, NAN), SHOW_NAN),
                Bad("posinf", _set(v, INF), SHOW_INF), Bad("dtype-bool", v.bool())]
        return (vals if values else []) + [*_shapes(v, shapes), *_types(v, none_ok)]
    return Kind("lengths", bads, batch=0, **kw)

def real(*, shapes=("B1", "short"), inf_ok=True, none_ok=False, list_ok=False, dtype=True, low=None, high=None, batch=0, at=None,
         **kw) -> Kind:
    "A real-valued tensor (scores, margins, rewards, weights): no NaN (no infinity unless `inf_ok`, nothing outside [low, high]), its shape."
    def bads(v):
        out = [Bad("nan", _set(v, NAN, at), SHOW_NAN)]
        if not inf_ok: out += [Bad("posinf", _set(v, INF, at), SHOW_INF), Bad("neginf", _set(v, -INF, at), SHOW_NEGINF)]
        if low is not None: out.append(Bad("range-below", _set(v, low - 0.25, at), number_pattern(low - 0.25)))
        if high is not None: out.append(Bad("range-above", _set(v, high + 0.25, at), number_pattern(high + 0.25)))
        if dtype: out.append(Bad("dtype-bool", v.bool()))
        return out + [*_shapes(v, shapes), *_types(v, none_ok, list_ok)]
    return Kind("real", bads, batch=batch, at=at, **kw)

def _interval_bads(low: float | None, high: float | None, closed: str, make=lambda x: x) -> list[Bad]:
    "Values outside the interval: beyond each finite end, at an open end, and the infinities it excludes."
    lo, hi = (-INF if low is None else low), (INF if high is None else high)
    lo_in, hi_in = closed in ("both", "left"), closed in ("both", "right")
    out = [Bad("nan", make(NAN), SHOW_NAN)]
    if not (hi == INF and hi_in): out.append(Bad("posinf", make(INF), SHOW_INF))
    if not (lo == -INF and lo_in): out.append(Bad("neginf", make(-INF), SHOW_NEGINF))
    if math.isfinite(lo):
        x = lo - 0.25 if lo != 0 else -0.25
        out.append(Bad("range-below", make(x), number_pattern(x)))
        if not lo_in: out.append(Bad("range-at-low", make(float(lo)), number_pattern(float(lo))))
    if math.isfinite(hi):
        out.append(Bad("range-above", make(hi + 0.25), number_pattern(hi + 0.25)))
        if not hi_in: out.append(Bad("range-at-high", make(float(hi)), number_pattern(float(hi))))
    return out

def scalar(low: float | None = None, high: float | None = None, closed: str = "neither", *, none_ok=False, list_ok=False, **kw) -> Kind:
    "A scalar hyperparameter in an interval (None ends: unbounded): a real number, not a string, a list or a bool. list_ok: a list sweeps."
    def bads(v):
        out = _interval_bads(low, high, closed) + [Bad("type-str", "0.1"), Bad("type-bool", True)]
        if not list_ok: out.append(Bad("type-list", [v if v is not None else 0.1]))
        return out + ([] if none_ok else [Bad("type-None", None)])
    return Kind("scalar", bads, **kw)

def positive(**kw) -> Kind: return scalar(0.0, None, "neither", **kw)  # beta, learning rates, temperatures

def scalar_or_batch(low: float | None = None, high: float | None = None, closed: str = "neither", *, B: int, none_ok=False, shapes=True,
                    **kw) -> Kind:
    "A per-example hyperparameter: a scalar, or a [B] tensor of exactly the batch shape (never [B, 1]), each entry in the interval."
    base = scalar(low, high, closed, none_ok=none_ok)
    def bads(v):
        ok = 0.5 * ((0.0 if low is None else low) + (1.0 if high is None else high)) if v is None else float(v)
        t = lambda x: torch.full((B,), ok, dtype=torch.float64).index_fill_(0, torch.tensor([0]), x)
        tensor_bads = [Bad("tensor-" + b.label, t(b.value), b.show) for b in _interval_bads(low, high, closed)]
        if not shapes: return base.bads(v) + tensor_bads  # the check_* helpers know no batch shape
        return base.bads(v) + tensor_bads + [Bad("tensor-shape-B1", torch.full((B, 1), ok, dtype=torch.float64)),
                                             Bad("tensor-shape-long", torch.full((B + 1,), ok, dtype=torch.float64))]
    return Kind("per_example", bads, **kw)

def integer(low: int = 0, high: int | None = None, *, none_ok=False, **kw) -> Kind:
    "An integer (Python or NumPy, not bool) in [low, high]."
    def bads(v):
        out = [Bad("range-below", low - 1, number_pattern(low - 1)), Bad("type-float", 2.5, number_pattern(2.5)),
               Bad("nan", NAN, SHOW_NAN), Bad("type-bool", True), Bad("type-str", "3")]
        if high is not None: out.append(Bad("range-above", high + 1, number_pattern(high + 1)))
        return out + ([] if none_ok else [Bad("type-None", None)])
    return Kind("integer", bads, **kw)

def choice(*, none_ok=False, **kw) -> Kind:
    "One of a fixed set of names (a loss, an algorithm, a game, a regime, ...)."
    def bads(v):
        out = [Bad("range-unknown", "bogus", r"bogus"), Bad("type-int", 3)]
        if not isinstance(v, (list, tuple)): out.append(Bad("type-list", ["bogus"]))
        return out + ([] if none_ok else [Bad("type-None", None)])
    return Kind("choice", bads, **kw)

def distribution(*, positive: bool = True, none_ok=False, list_ok=False, short=True, **kw) -> Kind:
    "A probability vector [K] (or [B, K]): entries > 0 (or >= 0), summing to 1, over exactly K actions. short=False: nothing fixes K."
    def bads(v):
        K = v.shape[-1]
        neg = torch.full_like(v, 1.0 / (K - 1)); neg[..., 0] = -0.25; neg = neg / neg.sum(-1, keepdim=True)
        out = [Bad("nan", _set(v, NAN), SHOW_NAN), Bad("posinf", _set(v, INF), SHOW_INF),
               Bad("range-negative", neg, number_pattern(float(neg.flatten()[0]))), Bad("range-sum", v * 2)]
        if positive:
            z = torch.full_like(v, 1.0 / (K - 1)); z[..., 0] = 0.0
            out.append(Bad("range-zero", z))
        short_ = v[..., :-1] / v[..., :-1].sum(-1, keepdim=True)
        return out + [Bad("shape-short", short_)] * short + [Bad("shape-K1", v.unsqueeze(-1) / v.unsqueeze(-1)), *_types(v, none_ok, list_ok)]
    return Kind("distribution", bads, **kw)

def preferences(**kw) -> Kind:
    "A preference matrix [K, K] (or [B, K, K]): entries in [0, 1], P + P^T = 1, K >= 2, floating point."
    def bads(v):
        above = v.clone(); above[..., 0, 1], above[..., 1, 0] = 1.5, -0.5
        skew = v.clone(); skew[..., 0, 1] += 0.125
        return [Bad("nan", _set(v, NAN), SHOW_NAN), Bad("posinf", _set(v, INF), SHOW_INF),
                Bad("range-above-1", above, number_pattern(1.5)), Bad("range-not-complementary", skew),
                Bad("shape-nonsquare", v[..., :-1].clone()), Bad("shape-K1", torch.full((1, 1), 0.5, dtype=v.dtype)),
                Bad("dtype-bf16", v.to(torch.bfloat16), may_return=True), Bad("dtype-int", (v > 0.5).long()), *_types(v, False)]
    return Kind("preferences", bads, **kw)

def device(*, none_ok=True, **kw) -> Kind:
    "A device: a torch device string that exists on this machine."
    def bads(v):
        out = [Bad("range-unknown", "bogus", r"bogus"), Bad("type-list", ["cpu"]), Bad("type-float", 1.5)]
        if not torch.backends.mps.is_available(): out.append(Bad("range-mps-unavailable", "mps", r"mps"))
        if not torch.cuda.is_available(): out.append(Bad("range-cuda-unavailable", "cuda", r"cuda"))
        return out
    return Kind("device", bads, **kw)

def obj(*, none_ok=False, **kw) -> Kind:
    "An object of a given class (a Pair, a config, a LossOutput, a frame, a tokenizer, a model): the wrong type is refused."
    return Kind("object", lambda v: [Bad("type-str", "abc"), Bad("type-int", 3)] + ([] if none_ok else [Bad("type-None", None)]), **kw)

def text(**kw) -> Kind:
    "A string."
    return Kind("text", lambda v: [Bad("type-None", None), Bad("type-int", 3), Bad("type-list", [v])], **kw)

def texts(**kw) -> Kind:
    "A list of strings (never a bare string, which would be read a character at a time)."
    return Kind("texts", lambda v: [Bad("type-str", "abc"), Bad("type-None", None), Bad("type-int", 3), Bad("empty", [], may_return=True)], **kw)


# ---------------------------------------------------------------------------------------------------------------------------
# Entries
# ---------------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    "A callable's valid call and the kinds of the arguments it checks."
    fn: Callable  # called as fn(**valid()) (a wrapper where the callable takes a built object, e.g. a Pair)
    valid: Callable[[], dict]  # fresh keyword arguments of one valid call (small tensors, fixed seeds)
    kinds: dict[str, Kind]  # argument -> its kind
    unknown_kw: bool = False  # it takes **kwargs: an unknown keyword must be a ValueError naming it

@dataclass(frozen=True)
class Reason:
    "Why a public callable has no checked arguments in the table (one line)."
    why: str


def t(*v, dtype=torch.float32) -> torch.Tensor: return torch.tensor(v, dtype=dtype)
def t64(*v) -> torch.Tensor: return torch.tensor(v, dtype=torch.float64)

B = 3  # the batch of every pairwise / unpaired valid call
PAIR = dict(policy_chosen_logps=lambda: t(-5.0, -7.0, -6.0), policy_rejected_logps=lambda: t(-8.0, -6.5, -9.0),
            ref_chosen_logps=lambda: t(-6.0, -6.5, -7.0), ref_rejected_logps=lambda: t(-7.0, -7.0, -8.5),
            chosen_lengths=lambda: t(3.0, 4.0, 5.0), rejected_lengths=lambda: t(4.0, 3.0, 6.0))
LOGPS_ARGS = ("policy_chosen_logps", "policy_rejected_logps", "ref_chosen_logps", "ref_rejected_logps")
LENGTH_ARGS = ("chosen_lengths", "rejected_lengths")

def pair_values(*names: str) -> dict: return {k: PAIR[k]() for k in names}

# a causal-LM batch: B = 2 sequences of T = 4 tokens over V = 5, the completion is positions 2..3
V = 5
def lm_logits() -> torch.Tensor: return torch.randn(2, 4, V, generator=torch.Generator().manual_seed(0))
def lm_labels() -> torch.Tensor: return torch.tensor([[1, 2, 3, 4], [0, 4, 2, 1]])
def lm_mask() -> torch.Tensor: return torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]])
def token_lp() -> torch.Tensor: return torch.tensor([[0.0, 0.0, -1.5, -2.0], [0.0, 0.0, -0.5, -3.0]])

# listwise: B = 2 prompts, K = 3 responses
def list_policy() -> torch.Tensor: return torch.tensor([[-5.0, -6.0, -7.0], [-4.0, -8.0, -6.0]])
def list_ref() -> torch.Tensor: return torch.tensor([[-6.0, -6.0, -6.5], [-5.0, -7.0, -6.0]])
def list_scores() -> torch.Tensor: return torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 0.5]])
def list_mask() -> torch.Tensor: return torch.ones(2, 3, dtype=torch.long)

# games: K = 3
def game() -> torch.Tensor: return t64(0.5, 0.2, 0.7, 0.8, 0.5, 0.4, 0.3, 0.6, 0.5).view(3, 3)
def uniform3() -> torch.Tensor: return torch.full((3,), 1 / 3, dtype=torch.float64)
def skewed3() -> torch.Tensor: return t64(0.5, 0.3, 0.2)


@functools.cache
def _language():
    from prefbench_lib.lm_data import Language
    return Language(n_symbols=6, min_length=1, max_length=3, ref_center=1)

@functools.cache
def _tokenizer():
    from prefbench_lib.lm_data import build_tokenizer
    return build_tokenizer(_language())

def _train_config(**kw):
    from prefbench_lib.lm_train import TrainConfig
    return TrainConfig(**{**dict(hidden_size=8, layers=1, heads=2, language=dict(n_symbols=6, min_length=1, max_length=3, ref_center=1)), **kw})

@functools.cache
def _model():
    from prefbench_lib.lm_train import build_model
    return build_model(_train_config(), _tokenizer())

def _lm_batch():
    from prefbench_lib.lm_train import collate, encode
    tok = _tokenizer()
    return collate(encode(tok, ["shift 1 :", "shift 2 :"], prompt=True), encode(tok, [" a b", " c"], prompt=False), tok.pad_token_id)

def _bandit_config(**kw):
    from prefbench_lib.toy import BanditConfig
    return BanditConfig(**{**dict(algorithms=["sigmoid"], K=10, reward_center=[5.0], n_samples=4, dataset_size=8, steps=2, seeds=[0],
                                  device="cpu"), **kw})

@functools.cache
def _bandit_history():
    from prefbench_lib.toy import train
    return train(_bandit_config())

def _loss_output():
    from prefbench_lib.losses import LOSSES, Pair
    return LOSSES["sigmoid"](Pair(*(PAIR[k]() for k in LOGPS_ARGS)), beta=0.1)

def _hyperparameter(name: str, k: int = 0):
    from prefbench_lib.losses import loss_hyperparameters
    return loss_hyperparameters(name)[k]

@functools.cache
def _toy_frame():
    from prefbench_lib.widgets import toy_frame
    return toy_frame("sigmoid", steps=2, seeds=1)

def _frame():
    from prefbench_lib.views import loss_frame
    return loss_frame("sigmoid", n_points=5)


def _table() -> dict[str, Entry | Reason]:
    from prefbench_lib import core, intransitive, listwise, losses, metrics, nash, toy
    from prefbench_lib import lm_data, lm_train, views, widgets, dashboards  # noqa: F401  (heavy: transformers, datasets, panel)

    RECORD = "a record (NamedTuple or dataclass) that stores its fields; what fills it is checked where it is made"
    HOT = "a per-step helper of the hot loop ({}): its inputs are the loop's own buffers, checked once at the door of {}"
    FILES = "file I/O: its arguments are paths and dicts, outside the contract's kinds; see {}"
    PANEL = "a Panel app class: param validates its parameters (bounds, objects) on assignment; served, not called (see test_dashboards)"
    NO_ARGS = "takes no arguments"
    APP = ("an ipywidgets app: a bad setting is shown in its output as the library's ValueError message (by design); its computation "
           "is in the table (loss_frame, toy_frame)")
    DOCS = "docs-build plumbing over nbformat/Plotly dicts, outside the contract's kinds (test_docs covers it)"

    T: dict[str, Entry | Reason] = {}

    # ---------------- core ----------------
    T["core.check_tensor"] = Entry(core.check_tensor, lambda: dict(name="x", x=t(-1.0, -2.0), allow_inf=False),
                                   dict(x=real(shapes=(), inf_ok=False, dtype=False), allow_inf=choice()))
    T["core.check_same_shape"] = Entry(lambda **kw: core.check_same_shape(**kw), lambda: dict(a=t(1.0, 2.0), b=t(3.0, 4.0)),
                                       dict(a=real(dtype=False, none_ok=True), b=real(dtype=False, none_ok=True)))
    T["core.check_positive"] = Entry(core.check_positive, lambda: dict(name="lr", value=0.1), dict(value=positive(named="lr")))
    T["core.check_int"] = Entry(core.check_int, lambda: dict(name="steps", value=3, low=1), dict(value=integer(1, named="steps")))
    T["core.check_choice"] = Entry(core.check_choice, lambda: dict(name="regime", value="offline", options=("offline", "on_policy")),
                                   dict(value=choice(named="regime")))
    T["core.check_in_interval"] = Entry(core.check_in_interval, lambda: dict(name="eps", value=0.25, low=0.0, high=0.5, closed="left"),
                                        dict(value=scalar_or_batch(0.0, 0.5, "left", B=3, named="eps", shapes=False), closed=choice()))
    T["core.check_scalar"] = Entry(core.check_scalar, lambda: dict(name="eps", value=0.25, low=0.0, high=0.5, closed="left", batch=(3,)),
                                   dict(value=scalar_or_batch(0.0, 0.5, "left", B=3, named="eps"), closed=choice()))
    T["core.blame_nonfinite"] = Reason("called by the losses once their finiteness check failed: raises naming an input at +-inf, or the overflow (test_numerics)")
    T["core.check_fits"] = Entry(lambda nbytes, device=None, **sizes: core.check_fits(nbytes, device, **sizes), lambda: dict(nbytes=1024, device="cpu", K=10),
                                 dict(nbytes=scalar(0.0, None, "left"), device=device()))
    T["core.check_distribution"] = Entry(core.check_distribution, lambda: dict(name="ref", p=skewed3(), K=3),
                                         dict(p=distribution(named="ref")))
    T["core.check_logps"] = Entry(core.check_logps, lambda: dict(name="policy_logps", x=t(-1.0, -INF, 0.0)),
                                  dict(x=logps(shapes=(), named="policy_logps", batch=None)))
    T["core.check_lengths"] = Entry(core.check_lengths, lambda: dict(name="chosen_lengths", x=t(3.0, 1.0)),
                                    dict(x=lengths(shapes=(), named="chosen_lengths")))
    T["core.check_real"] = Entry(core.check_real, lambda: dict(name="margins", x=t(1.0, -2.0)),
                                 dict(x=real(shapes=(), inf_ok=False, named="margins", batch=None)))
    T["core.check_type"] = Entry(core.check_type, lambda: dict(name="config", value={}, types=dict), dict(value=obj(named="config")))
    T["core.check_texts"] = Entry(core.check_texts, lambda: dict(name="texts", value=["a b"]), dict(value=texts(named="texts")))
    T["core.log_ratio"] = Entry(core.log_ratio, lambda: dict(a_name="policy_logps", a=t(-5.0, -7.0, -6.0), b_name="ref_logps", b=t(-6.0, -6.5, -7.0)),
                                dict(a=logps(named="policy_logps"), b=logps(named="ref_logps")))
    T["core.settle_checks"] = Reason("reads the scans check_logps/check_lengths deferred (later=) and re-runs any bad one, which names it")
    T["core.kl"] = Entry(core.kl, lambda: dict(log_p=skewed3().log(), log_q=uniform3().log()),
                         dict(log_p=logps(batch=None), log_q=logps(batch=None, shapes=("short",)), dim=integer(-1)))
    T["core.value_checks_enabled"] = Reason(NO_ARGS)
    T["core.value_checks"] = Reason("a context manager whose one argument is a flag (enabled)")
    T["core.check_mask"] = Entry(core.check_mask, lambda: dict(name="mask", mask=lm_mask(), shape=(2, 4)), dict(mask=mask(seq=1)))
    T["core.upcast"] = Entry(core.upcast, lambda: dict(x=t(-1.0, -2.0).bfloat16()), dict(x=obj(none_ok=True)))
    T["core.register"] = Reason("registry plumbing: a dict, a key and any object (the decorators pairwise/algorithm/rule call it)")
    T["core.scored_mask"] = Entry(core.scored_mask, lambda: dict(mask=lm_mask()), dict(mask=mask(shapes=("B1",), seq=1)))
    T["core.completion_lengths"] = Entry(core.completion_lengths, lambda: dict(mask=lm_mask()), dict(mask=mask(shapes=("B1",), seq=1)))
    T["core.token_logps"] = Entry(core.token_logps, lambda: dict(logits=lm_logits(), labels=lm_labels(), mask=lm_mask()),
                                  dict(logits=logits(vocab_at=(0, 2, 0)), labels=labels(vocab=V, at=(0, 3)), mask=mask(none_ok=True, seq=1)))
    T["core.sequence_logps"] = Entry(core.sequence_logps, lambda: dict(logits=lm_logits(), labels=lm_labels(), mask=lm_mask()),
                                     dict(logits=logits(vocab_at=(0, 2, 0)), labels=labels(vocab=V, at=(0, 3)), mask=mask(none_ok=True, seq=1)))
    T["core.ld_sequence_logps"] = Entry(core.ld_sequence_logps,
                                        lambda: dict(chosen_token_logps=token_lp(), chosen_mask=lm_mask(), rejected_token_logps=token_lp()[:, :3],
                                                     rejected_mask=lm_mask()[:, :3], ld_alpha=0.5),
                                        dict(chosen_token_logps=logps(seq=1, at=(0, 2)), chosen_mask=mask(seq=1),
                                             rejected_token_logps=logps(seq=1, at=(0, 2)), rejected_mask=mask(seq=1), ld_alpha=scalar(0.0, 1.0, "both")))
    T["core.token_log_sum_sq_probs"] = Entry(core.token_log_sum_sq_probs, lambda: dict(logits=lm_logits(), mask=lm_mask()),
                                             dict(logits=logits(vocab_at=(0, 2, 0)), mask=mask(none_ok=True, seq=1)))
    T["core.wpo_weights"] = Entry(core.wpo_weights, lambda: dict(token_logps=token_lp(), log_sum_sq_probs=token_lp() / 2, mask=lm_mask()),
                                  dict(token_logps=logps(seq=1, at=(0, 2)), log_sum_sq_probs=logps(seq=1, at=(0, 2)), mask=mask(seq=1)))
    T["core.one_thread"] = Reason("a context manager whose one argument is a flag (enabled)")
    T["core.machine_busy"] = Reason(NO_ARGS)
    # adam_step checks structure and numbers, O(1) per step, never the buffers' values (a per-step scan in the labs' hot loops)
    T["core.adam_step"] = Entry(core.adam_step, lambda: dict(theta=torch.zeros(2, 3), grad=torch.ones(2, 3), m=torch.zeros(2, 3), v=torch.zeros(2, 3), t=1,
                                                             lr=0.1, betas=(0.9, 0.999), eps=1e-8, per_run=False),
                                dict(theta=obj(), grad=obj(), m=obj(), v=obj(), t=integer(1), lr=positive(), betas=obj(), eps=positive()))
    for name in ("is_int", "in_interval", "is_scalar", "one_of", "is_a", "optional", "same_shape"):
        T[f"core.{name}"] = Reason("builds a door check from its settings; the check it returns is the check_* helper above (00_core checks each)")
    T["core.door"] = Reason("a decorator: declares the checks every decorated function's entry tests through that function")
    T["core.Optimizer"] = Reason(RECORD)
    T["core.optimizer"] = Reason("a decorator: registers a batched optimizer step under a name")
    T["core.get_device"] = Entry(core.get_device, lambda: dict(device="cpu"), dict(device=device()))
    T["core.seed_everything"] = Entry(core.seed_everything, lambda: dict(seed=0), dict(seed=integer(0, 2**32 - 1)))
    T["core.data_dir"] = Reason("takes one flag (create); the directory comes from the environment")
    T["core.save_frame"] = Reason(FILES.format("test_core"))

    # ---------------- losses (the registered losses are generated below) ----------------
    for name in ("LossOutput", "Mixture", "Hyperparameter"): T[f"losses.{name}"] = Reason(RECORD)
    T["losses.get_loss"] = Entry(losses.get_loss, lambda: dict(name="sigmoid"), dict(name=choice()))
    T["losses.capped_expm1"] = Entry(losses.capped_expm1, lambda: dict(x=t(-1.0, 2.0, 40.0), cap=30.0),
                                     dict(x=real(shapes=()), cap=scalar(None, None)))
    T["losses.f_divergence_score"] = Entry(losses.f_divergence_score,
                                           lambda: dict(log_ratio=t(-1.0, 0.5), f_divergence_type="alpha_divergence", f_alpha_divergence_coef=0.5),
                                           dict(log_ratio=real(shapes=()), f_divergence_type=choice(), f_alpha_divergence_coef=scalar(None, None)))
    T["losses.Pair"] = Entry(losses.Pair, lambda: dict(**pair_values(*PAIR), f_divergence_type="reverse_kl", f_alpha_divergence_coef=0.5),
                             dict(**{k: logps(values=False, none_ok=True) if k in LOGPS_ARGS else lengths(values=False, none_ok=True) for k in PAIR},
                                  f_divergence_type=choice(), f_alpha_divergence_coef=scalar(None, None)))
    T["losses.Interval"] = Reason(RECORD)
    T["losses.declare_ranges"] = Reason("a decorator: declares the intervals a loss's hyperparameters are checked against (its losses' entries test them)")
    T["losses.pairwise"] = Reason("a decorator: registers a loss under names (registry keys) and checks its calls")
    T["losses.soft_bce"] = Entry(losses.soft_bce, lambda: dict(h=t(-1.0, 0.5, 3.0), p=0.7),
                                 dict(h=real(shapes=()), p=scalar_or_batch(0.0, 1.0, "both", B=3)))
    T["losses.loss_mixture"] = Entry(lambda pair=None, **kw: losses.loss_mixture(pair if pair is not None else losses.Pair(**pair_values(*PAIR)), **kw),
                                     lambda: dict(loss_type=["sigmoid", "ipo"], beta=0.1, loss_weights=[1.0, 0.5], example_weights=t(1.0, 0.5, 2.0)),
                                     dict(loss_type=choice(), beta=positive(), loss_weights=obj(none_ok=True),
                                          example_weights=real(inf_ok=False, none_ok=True, low=0.0)), unknown_kw=True)
    T["losses.kto_kl_ref_point"] = Entry(losses.kto_kl_ref_point, lambda: dict(policy_kl_logps=t(-5.0, -7.0, -6.0), ref_kl_logps=t(-6.0, -6.5, -7.0)),
                                         dict(policy_kl_logps=logps(), ref_kl_logps=logps()))
    unpaired = lambda: dict(policy_logps=t(-5.0, -7.0, -6.0), ref_logps=t(-6.0, -6.5, -7.0), desirable=torch.tensor([True, False, True]), beta=0.1)
    unpaired_kinds = dict(policy_logps=logps(), ref_logps=logps(), desirable=mask(), beta=positive())
    T["losses.kto_loss"] = Entry(losses.kto_loss, lambda: dict(unpaired(), kl_ref_point=0.2, desirable_weight=1.0, undesirable_weight=1.5),
                                 dict(unpaired_kinds, kl_ref_point=scalar_or_batch(0.0, None, "left", B=B), desirable_weight=positive(),
                                      undesirable_weight=positive()))
    T["losses.RunningMean"] = Reason("no constructor arguments (its update method is out of the table's scope)")
    T["losses.bco_loss"] = Entry(losses.bco_loss, lambda: dict(unpaired(), reward_shift=0.1), dict(unpaired_kinds, reward_shift=scalar(None, None)))
    T["losses.apo_zero_unpaired_loss"] = Entry(losses.apo_zero_unpaired_loss, lambda: dict(unpaired(), desirable_weight=1.0, undesirable_weight=1.5),
                                               dict(unpaired_kinds, desirable_weight=positive(), undesirable_weight=positive()))
    T["losses.lcpo_weights"] = Entry(losses.lcpo_weights, lambda: dict(logits=t(-1.0, 0.5, 3.0), noise_rate=0.1),
                                     dict(logits=real(shapes=(), inf_ok=False), noise_rate=scalar(0.0, 0.5, "left")))
    T["losses.lcpo_estimate_noise"] = Entry(losses.lcpo_estimate_noise, lambda: dict(logits=t(-1.0, 0.5, 3.0), init=0.1, max_iter=5, tol=1e-10),
                                            dict(logits=real(shapes=(), inf_ok=False), init=scalar(0.0, 0.5, "neither"), max_iter=integer(1), tol=positive()))
    T["losses.curriculum_pairs"] = Entry(losses.curriculum_pairs, lambda: dict(scores=t(3.0, 1.0, 2.0, 0.0, 5.0, 4.0).view(2, 3), mask=list_mask()),
                                         dict(scores=real(shapes=("B1",), inf_ok=False), mask=mask(none_ok=True)))
    T["losses.gradient_weight"] = Entry(losses.gradient_weight, lambda: dict(name="ipo", margins=t(-1.0, 0.0, 2.0), beta=0.1, anchor=-12.0, lengths=1.0),
                                        dict(name=choice(), margins=real(shapes=(), inf_ok=False), beta=positive(), anchor=scalar(None, 0.0, "both"),
                                             lengths=scalar(0.0, None, "neither")), unknown_kw=True)
    T["losses.log1mexp"] = Entry(losses.log1mexp, lambda: dict(a=t(-3.0, -0.1, -1e-3)), dict(a=real(shapes=(), high=0.0)))
    T["losses.loss_hyperparameters"] = Entry(losses.loss_hyperparameters, lambda: dict(name="cdpo"), dict(name=choice()))

    # ---------------- listwise ----------------
    T["listwise.ListLossOutput"] = Reason(RECORD)
    T["listwise.listwise"] = Reason("a decorator: registers a listwise loss under names (LIST_LOSSES keys) and declares its door (its losses' entries test it)")
    list_valid = lambda: dict(policy_logps=list_policy(), ref_logps=list_ref(), scores=list_scores(), beta=0.1, mask=list_mask())
    list_kinds = dict(policy_logps=logps(), ref_logps=logps(), beta=positive(), mask=mask(none_ok=True))
    T["listwise.listmle_loss"] = Entry(listwise.listmle_loss, list_valid, dict(list_kinds, scores=real(inf_ok=False)))
    for name in ("lipo_lambda_loss", "tpo_loss"):  # the lambda weight's gain 2^psi: |psi| <= SCORE_LIMIT
        T[f"listwise.{name}"] = Entry(getattr(listwise, name), list_valid, dict(list_kinds, scores=real(inf_ok=False, low=-64.0, high=64.0)))
    T["listwise.lambda_weights"] = Entry(listwise.lambda_weights, lambda: dict(rewards=list_policy() - list_ref(), scores=list_scores(),
                                                                               present=list_mask().bool()),
                                         dict(rewards=real(inf_ok=False), scores=real(inf_ok=False), present=mask()))
    steps = lambda: dict(policy_step_logps=torch.tensor([[[-1.0, -2.0], [-1.5, -0.5]]]), ref_step_logps=torch.tensor([[[-1.2, -1.8], [-1.0, -1.0]]]),
                         step_embeddings=torch.tensor([[[[1.0, 0.0], [0.0, 1.0]], [[0.6, 0.8], [1.0, 1.0]]]]), beta=0.1,
                         step_mask=torch.ones(1, 2, 2, dtype=torch.long))
    T["listwise.adaptive_step_rewards"] = Entry(listwise.adaptive_step_rewards, steps,
                                                dict(policy_step_logps=logps(), ref_step_logps=logps(), step_embeddings=real(shapes=("B1",), inf_ok=False),
                                                     beta=positive(), step_mask=mask(none_ok=True)))

    # ---------------- metrics ----------------
    T["metrics.implicit_rewards"] = Entry(metrics.implicit_rewards, lambda: dict(policy_logps=t(-5.0, -7.0, -6.0), ref_logps=t(-6.0, -6.5, -7.0), beta=0.1),
                                          dict(policy_logps=logps(), ref_logps=logps(), beta=positive()))
    T["metrics.reward_margins"] = Entry(metrics.reward_margins, lambda: dict(out=_loss_output()), dict(out=obj()))
    T["metrics.reward_accuracy"] = Entry(metrics.reward_accuracy, lambda: dict(out=_loss_output()), dict(out=obj()))
    T["metrics.ranking_accuracy"] = Entry(metrics.ranking_accuracy, lambda: pair_values("policy_chosen_logps", "policy_rejected_logps", *LENGTH_ARGS),
                                          dict(policy_chosen_logps=logps(), policy_rejected_logps=logps(), chosen_lengths=lengths(none_ok=True),
                                               rejected_lengths=lengths(none_ok=True)))
    list_lengths = lambda: torch.tensor([[2.0, 3.0, 4.0], [1.0, 2.0, 3.0]])
    T["metrics.list_ranking_accuracy"] = Entry(metrics.list_ranking_accuracy,
                                               lambda: dict(policy_logps=list_policy(), scores=list_scores(), lengths=list_lengths(), mask=list_mask()),
                                               dict(policy_logps=logps(), scores=real(inf_ok=False), lengths=lengths(none_ok=True), mask=mask(none_ok=True)))
    T["metrics.idealized_ranking_accuracy"] = Entry(metrics.idealized_ranking_accuracy,
                                                    lambda: dict(ref_chosen_logps=t(-6.0, -6.5, -7.0), ref_rejected_logps=t(-7.0, -7.0, -8.5),
                                                                 alpha=0.7, beta=0.1, eps=1e-3),
                                                    dict(ref_chosen_logps=logps(), ref_rejected_logps=logps(), alpha=scalar_or_batch(0.0, 1.0, "both", B=B),
                                                         beta=positive(), eps=scalar(0.0, 0.5, "neither")))
    T["metrics.dpo_flip_threshold"] = Entry(metrics.dpo_flip_threshold, lambda: dict(ref_chosen_logps=t(-6.0, -6.5, -7.0),
                                                                                     ref_rejected_logps=t(-7.0, -7.0, -8.5), beta=0.1),
                                            dict(ref_chosen_logps=logps(), ref_rejected_logps=logps(), beta=positive()))
    for name in ("PairProblem", "PairRun"): T[f"metrics.{name}"] = Reason(RECORD)
    T["metrics.pair_problem"] = Entry(
        metrics.pair_problem,
        lambda: dict(n_prompts=6, K=4, pairs_per_prompt=2, reward_scale=3.0, ref_signal=2.0, ref_noise=10.0, seed=0, device="cpu"),
        dict(n_prompts=integer(1), K=integer(2), pairs_per_prompt=integer(1), reward_scale=positive(), ref_signal=scalar(None, None),
             ref_noise=positive(), seed=integer(0), device=device()))
    T["metrics.train_pairs"] = Entry(
        metrics.train_pairs,
        lambda: dict(problem=metrics.pair_problem(6, 4, seed=0, device="cpu"), runs=["sigmoid", ("cdpo", {"label_smoothing": 0.1})],
                     beta=0.1, steps=2, lr=0.5, optimizer="sgd", every=1, stop_loss=None),
        dict(problem=obj(), runs=choice(), beta=positive(), steps=integer(0), lr=positive(), optimizer=choice(), every=integer(1),
             stop_loss=scalar(None, None, none_ok=True)))

    # ---------------- nash ----------------
    T["nash.check_preference_matrix"] = Entry(nash.check_preference_matrix, lambda: dict(P=game(), name="P", atol=1e-6), dict(P=preferences(), atol=positive()))
    T["nash.bt_preferences"] = Entry(nash.bt_preferences, lambda: dict(scores=t64(0.0, 1.0, -0.5)), dict(scores=real(shapes=(), inf_ok=False, batch=None)))
    T["nash.mixture_preferences"] = Entry(nash.mixture_preferences, lambda: dict(scores=t64(0.0, 1.0, -0.5, 1.0, 0.0, 0.5).view(2, 3), weights=t64(0.25, 0.75)),
                                          dict(scores=real(shapes=(), inf_ok=False, batch=None), weights=distribution(none_ok=True)))
    T["nash.gpm_scores"] = Entry(nash.gpm_scores, lambda: dict(embeddings=t64(1.0, 0.0, 0.0, 1.0, -1.0, 0.5).view(3, 2)),
                                 dict(embeddings=real(shapes=("short",), inf_ok=False, batch=None)))
    T["nash.gpm_preferences"] = Entry(nash.gpm_preferences, lambda: dict(embeddings=t64(1.0, 0.0, 0.0, 1.0, -1.0, 0.5).view(3, 2)),
                                      dict(embeddings=real(shapes=("short",), inf_ok=False, batch=None)))
    T["nash.GameKind"] = Reason(RECORD)
    T["nash.game"] = Reason("a decorator: registers a game constructor under a name (its door checks K, seed, scale, dtype, device)")
    game_kinds = dict(K=integer(2), dtype=choice(), device=device())
    T["nash.rps_game"] = Entry(nash.rps_game, lambda: dict(K=3, margins=(0.5, 0.25, 0.5), dtype=torch.float64, device="cpu"),
                               dict(game_kinds, margins=obj()))
    T["nash.cyclic_game"] = Entry(nash.cyclic_game, lambda: dict(K=4, margin=0.3, dtype=torch.float64, device="cpu"),
                                  dict(game_kinds, margin=scalar(0.0, 0.5, "both")))
    T["nash.random_game"] = Entry(nash.random_game, lambda: dict(K=4, seed=1, dtype=torch.float64, device="cpu"), dict(game_kinds, seed=integer(0)))
    T["nash.bt_game"] = Entry(  # seed: unused when scores are given
        nash.bt_game, lambda: dict(K=3, scores=t64(0.0, 1.0, -0.5), scale=1.0, seed=0, dtype=torch.float64, device="cpu"),
        dict(game_kinds, scores=real(inf_ok=False, none_ok=True, list_ok=True, batch=None), scale=scalar(0.0, None, "left")))
    T["nash.mixture_game"] = Entry(
        nash.mixture_game,
        lambda: dict(K=3, scores=None, weights=t64(0.2, 0.3, 0.5), groups=3, scale=2.0, seed=0, dtype=torch.float64, device="cpu"),
        dict(game_kinds, weights=distribution(none_ok=True, list_ok=True), groups=integer(1), scale=scalar(0.0, None, "left"),
             seed=integer(0)))
    T["nash.gpm_game"] = Entry(nash.gpm_game, lambda: dict(K=3, embeddings=None, dim=2, scale=1.0, seed=0, dtype=torch.float64, device="cpu"),
                               dict(game_kinds, dim=integer(2), scale=scalar(0.0, None, "left"), seed=integer(0)))
    T["nash.preference_matrix"] = Entry(nash.preference_matrix, lambda: dict(kind="random", K=3, seed=0, dtype=torch.float64, device="cpu"),
                                        dict(game_kinds, kind=choice(), seed=integer(0, none_ok=True)), unknown_kw=True)
    T["nash.win_rates"] = Entry(nash.win_rates, lambda: dict(pi=skewed3(), P=game()), dict(pi=distribution(positive=False), P=preferences()))
    response_kinds = dict(pi=distribution(positive=False), P=preferences(), ref=distribution(none_ok=True),
                          beta=scalar_or_batch(0.0, None, "left", B=1))
    T["nash.best_response"] = Entry(nash.best_response, lambda: dict(pi=skewed3(), P=game(), ref=uniform3(), beta=0.1), response_kinds)
    T["nash.duality_gap"] = Entry(nash.duality_gap, lambda: dict(pi=skewed3(), P=game(), ref=uniform3(), beta=0.1), response_kinds)
    T["nash.nash_equilibrium"] = Entry(nash.nash_equilibrium, lambda: dict(P=game(), method="ipm", tol=1e-11),
                                       dict(P=preferences(), method=choice(), tol=positive()))
    T["nash.regularized_nash"] = Entry(nash.regularized_nash, lambda: dict(P=game(), ref=skewed3(), beta=0.1, tol=1e-14, max_iter=60),
                                       dict(P=preferences(), ref=distribution(none_ok=True), beta=scalar_or_batch(0.0, None, "neither", B=1), tol=positive(),
                                            max_iter=integer(1)))
    T["nash.sampled_win_rates"] = Entry(nash.sampled_win_rates, lambda: dict(pi=skewed3()[None], P=game()[None], n=4,
                                                                             generator=torch.Generator().manual_seed(0)),
                                        dict(pi=distribution(positive=False), P=preferences(), n=integer(1), generator=obj(none_ok=True)))
    for name in ("Game", "Algorithm", "Trajectory"): T[f"nash.{name}"] = Reason(RECORD)
    T["nash.make_game"] = Reason("run_dynamics's plumbing: documented as taking P checked by the caller (run_dynamics checks every argument)")
    T["nash.algorithm"] = Reason("a decorator: registers a step function under a name")
    T["nash.get_algorithm"] = Entry(nash.get_algorithm, lambda: dict(name="omd"), dict(name=choice()))
    for name in ("omd_step", "nash_md_step", "egpo_step", "optimistic_step", "hedge_step", "spo_step", "mnpo_step", "nash_md_pg_step"):
        T[f"nash.{name}"] = Reason(HOT.format("run_dynamics", "run_dynamics"))
    STATE = "an algorithm's state between steps, built by run_dynamics (Population.start checks lambdas)"
    for name in ("LastWinRates", "Population"): T[f"nash.{name}"] = Reason(STATE)
    T["nash.run_dynamics"] = Entry(nash.run_dynamics, lambda: dict(P=game(), algorithm="omd", ref=skewed3(), beta=0.1, eta=0.1, steps=3,
                                                                   init=uniform3(), samples=4, seed=0, threads=1),
                                   dict(P=preferences(), algorithm=choice(), ref=distribution(none_ok=True), beta=scalar_or_batch(0.0, None, "left", B=1),
                                        eta=scalar_or_batch(0.0, None, "neither", B=1), steps=integer(0), init=distribution(none_ok=True),
                                        samples=integer(1, none_ok=True), seed=integer(0), threads=integer(1, none_ok=True)), unknown_kw=True)
    T["nash.online_ipo_eta"] = Entry(nash.online_ipo_eta, lambda: dict(lr=0.1, beta=0.1, K=3), dict(lr=positive(), beta=positive(), K=integer(1)))

    # ---------------- intransitive ----------------
    T["intransitive.pairwise_cross_entropy"] = Entry(intransitive.pairwise_cross_entropy, lambda: dict(Q=game(), P=nash.bt_game(3)),
                                                     dict(Q=preferences(), P=preferences()))
    T["intransitive.excess_loss"] = Entry(intransitive.excess_loss, lambda: dict(Q=game(), P=nash.bt_game(3)), dict(Q=preferences(), P=preferences()))
    T["intransitive.Fit"] = Reason(RECORD)
    T["intransitive.fit_bt"] = Entry(intransitive.fit_bt, lambda: dict(P=game(), iters=3), dict(P=preferences(), iters=integer(1)))
    T["intransitive.fit_gpm"] = Entry(intransitive.fit_gpm, lambda: dict(P=game(), dim=2, restarts=1, seed=0, iters=3),
                                      dict(P=preferences(), dim=integer(2), restarts=integer(1), seed=integer(0), iters=integer(1)))
    T["intransitive.fit_bt_mixture"] = Entry(intransitive.fit_bt_mixture, lambda: dict(P=game(), groups=2, restarts=1, seed=0, iters=3),
                                             dict(P=preferences(), groups=integer(1), restarts=integer(1), seed=integer(0), iters=integer(1)))

    # ---------------- toy (the pairwise rules are generated below) ----------------
    T["toy.reference_distribution"] = Entry(toy.reference_distribution, lambda: dict(K=10, exact=False, n_draws=100, loc=-0.7, scale=0.4, seed=0,
                                                                                     pseudo_count=0.1),
                                            dict(K=integer(2), n_draws=integer(1), loc=scalar(None, None), scale=positive(), seed=integer(0),
                                                 pseudo_count=scalar(0.0, None, "left")))
    T["toy.bin_reward"] = Entry(toy.bin_reward, lambda: dict(K=10, center=7.0, width=2.0), dict(K=integer(1), center=scalar(0.0, 10.0, "left"),
                                                                                                width=positive()))
    for name in ("Pairs", "Batch", "Run", "History"): T[f"toy.{name}"] = Reason(RECORD)
    T["toy.pair_positions"] = Entry(toy.pair_positions, lambda: dict(N=4, pairing="nested"), dict(N=integer(2), pairing=choice()))
    for name in ("pair_weights", "leave_one_out", "empty_batch", "fill_batch", "kl_gradient", "logit_gradient"):
        T[f"toy.{name}"] = Reason(HOT.format("train", "run_bandit/train (BanditConfig)"))
    bandit_lp = lambda: torch.log_softmax(torch.linspace(0, 1, 10), 0)
    # actions [R, N]: N, the samples per row, is the caller's choice (no partner fixes it, so no shape-short case)
    T["toy.make_batch"] = Entry(toy.make_batch, lambda: dict(actions=torch.tensor([[1, 5, 7, 2]]), reward=toy.bin_reward(10, 5.0, 2.0), logp=bandit_lp()[None],
                                                            log_ref=bandit_lp(), pairs="best_worst", min_reward_gap=0.0, behaviour_logp=None),
                                dict(actions=labels(vocab=10, at=(0, 1), shapes=()), reward=real(shapes=("short",), inf_ok=False, batch=None),
                                     logp=logps(shapes=("short",)),
                                     log_ref=logps(shapes=("short",), batch=None), pairs=choice(), min_reward_gap=scalar(0.0, None, "left")))
    T["toy.Rule"] = Reason("the abstract base of the rules: no hyperparameters")
    T["toy.rule"] = Reason("a decorator: registers a rule class under a name")
    T["toy.RuleTable"] = Reason(NO_ARGS)
    T["toy.Variant"] = Reason(RECORD)
    for name in ("PolicyKind", "Sampler"): T[f"toy.{name}"] = Reason(RECORD)
    T["toy.policy_kind"] = Reason("a decorator: registers a policy builder under a name")
    T["toy.sampler"] = Reason("a decorator: registers a batch-drawing function under a name")
    for name in ("mlp_logits", "pretrain", "blockwise_step"): T[f"toy.{name}"] = Reason(HOT.format("train", "run_bandit/train (BanditConfig)"))
    T["toy.SFT"] = Reason("a rule without hyperparameters")
    T["toy.REINFORCE"] = Reason("a rule without hyperparameters")
    T["toy.SFTPushDown"] = Entry(toy.SFTPushDown, lambda: dict(push_down=1.0), dict(push_down=scalar(0.0, None, "left")))
    T["toy.RWR"] = Entry(toy.RWR, lambda: dict(temperature=0.1, normalize=True), dict(temperature=positive()))
    T["toy.PPO"] = Entry(toy.PPO, lambda: dict(clip=0.2, kl_coef=0.05), dict(clip=positive(), kl_coef=scalar(0.0, None, "left")))
    for name in ("PairwiseRule", "MarginRule", "DPO", "IPO"): T[f"toy.{name}"] = Entry(getattr(toy, name), lambda: dict(beta=0.1), dict(beta=positive()))
    T["toy.RPO"] = Entry(toy.RPO, lambda: dict(beta=0.1, alpha=1.0), dict(beta=positive(), alpha=scalar(0.0, None, "left")))
    T["toy.pairwise_rule"] = Entry(toy.pairwise_rule, lambda: dict(loss_name="cdpo"), dict(loss_name=choice()))
    T["toy.without_negative_gradient"] = Entry(toy.without_negative_gradient, lambda: dict(cls=toy.DPO), dict(cls=obj()))
    T["toy.get_rule"] = Entry(toy.get_rule, lambda: dict(name="sigmoid_no_neg"), dict(name=choice()))
    T["toy.TabularPolicy"] = Entry(toy.TabularPolicy, lambda: dict(init_logits=bandit_lp()[None], contexts=1),
                                   dict(init_logits=real(shapes=("B1",), inf_ok=False), contexts=integer(1)))
    T["toy.MLPPolicy"] = Entry(toy.MLPPolicy, lambda: dict(contexts=torch.rand(1, 2, 3, generator=torch.Generator().manual_seed(0)), K=5,
                                                            generators=[torch.Generator().manual_seed(1)], hidden=4, features=3),
                               dict(contexts=real(shapes=(), inf_ok=False, batch=None), K=integer(2), generators=obj(), hidden=integer(1), features=integer(1)))
    T["toy.BanditConfig"] = Entry(
        toy.BanditConfig,
        lambda: dict(algorithms=["sigmoid"], lr=0.05, K=10, reward_center=5.0, reward_width=2.0, regime="on_policy", n_samples=4, contexts=1,
                     dataset_size=8, reuse=1, pairs="best_worst", min_reward_gap=0.0, policy="tabular", hidden=4, context_dim=3,
                     logp_floor=None, optimizer="normalized", steps=2, seeds=[0], device="cpu"),
        dict(algorithms=choice(), lr=positive(), K=integer(2), reward_center=scalar(0.0, 10.0, "left", list_ok=True), reward_width=positive(),
             regime=choice(), n_samples=integer(2), contexts=integer(1), dataset_size=integer(4), reuse=integer(1), pairs=choice(),
             min_reward_gap=scalar(0.0, None, "left"), policy=choice(), hidden=integer(1), context_dim=integer(1),
             logp_floor=scalar(None, 0.0, "neither", none_ok=True), optimizer=choice(), steps=integer(1), device=device()))
    T["toy.StepMetrics"] = Entry(toy.StepMetrics, lambda: dict(reward=toy.bin_reward(10, 5.0, 2.0)[None], centers=t(5.0),
                                                               ref=toy.reference_distribution(10), contexts=1),
                                 dict(reward=real(shapes=("short",), inf_ok=False), centers=real(shapes=("B1",), inf_ok=False), ref=distribution(),
                                      contexts=integer(1)))
    T["toy.train"] = Entry(toy.train, lambda: dict(cfg=_bandit_config(), progress=False, record_policy=False), dict(cfg=obj()))
    T["toy.bandit_frame"] = Entry(toy.bandit_frame, lambda: dict(h=_bandit_history(), cfg=_bandit_config()), dict(h=obj(), cfg=obj()))
    # a rule's own hyperparameters go in `hyperparameters` (the toy.RULES/<name> entries check their values)
    T["toy.run_bandit"] = Entry(toy.run_bandit, lambda: dict(algorithms="simpo", reward_center=5.0, regime="on_policy", steps=2, seeds=1, lr=0.05, beta=0.1,
                                                             device="cpu", K=10, n_samples=4, dataset_size=8, hyperparameters={"simpo": {"gamma": 0.5}}),
                                dict(algorithms=choice(), reward_center=scalar(0.0, 10.0, "left", list_ok=True), regime=choice(), steps=integer(1),
                                     seeds=integer(1), lr=positive(), beta=positive(), device=device()), unknown_kw=True)
    T["toy.preset"] = Entry(toy.preset, lambda: dict(name="tajwar_ipo", steps=2), dict(name=choice()), unknown_kw=True)
    T["toy.reference_run"] = Entry(toy.reference_run, lambda: dict(cfg=_bandit_config(), run=toy.Run("sigmoid", "on_policy", 5.0, 0)),
                                   dict(cfg=obj(), run=obj()))
    # target [K]: any K >= 2 (no partner fixes K, so no shape-short case)
    T["toy.fit_unimodal"] = Entry(toy.fit_unimodal, lambda: dict(target=toy.reference_distribution(10), divergence="forward", init_mean=3.0,
                                                                 init_std=1.0, steps=3, lr=0.05),
                                  dict(target=distribution(short=False), divergence=choice(), init_mean=scalar(None, None, none_ok=True), init_std=positive(none_ok=True),
                                       steps=integer(1), lr=positive()))
    T["toy.kl_frontier"] = Entry(
        toy.kl_frontier,
        lambda: dict(ref=toy.reference_distribution(10), reward=toy.bin_reward(10, 5.0, 2.0), temperatures=t64(0.1, 1.0)),
        dict(ref=distribution(), reward=real(shapes=("short",), inf_ok=False, batch=None),
             temperatures=real(shapes=(), inf_ok=False, none_ok=True, low=0.0, batch=None)))

    # ---------------- lm_data ----------------
    from prefbench_lib.lm_data import Language
    T["lm_data.Language"] = Entry(Language, lambda: dict(n_symbols=6, min_length=1, max_length=3, ref_center=1, ref_width=2.0, ref_floor=0.02,
                                                         reward_width=1.5),
                                  dict(n_symbols=integer(2, 26), min_length=integer(1), max_length=integer(1), ref_center=integer(0, 5), ref_width=positive(),
                                       ref_floor=scalar(0.0, 1.0, "both"), reward_width=positive()))
    T["lm_data.circular_bump"] = Entry(lm_data.circular_bump, lambda: dict(n=6, center=2, width=1.5), dict(n=integer(1), center=integer(0, 5),
                                                                                                           width=positive()))
    T["lm_data.build_tokenizer"] = Entry(lm_data.build_tokenizer, lambda: dict(language=_language()), dict(language=obj()))
    T["lm_data.save_tokenizer"] = Reason(FILES.format("test_lm_data"))
    T["lm_data.load_tokenizer"] = Reason(FILES.format("test_lm_data"))
    T["lm_data.write_dataset"] = Reason(FILES.format("test_lm_data"))
    T["lm_data.read_dataset"] = Reason(FILES.format("test_lm_data"))
    ds_kinds = dict(language=obj(), n=integer(1), seed=integer(0))
    T["lm_data.sft_dataset"] = Entry(lm_data.sft_dataset, lambda: dict(language=_language(), n=2, seed=0), ds_kinds)
    T["lm_data.preference_dataset"] = Entry(lm_data.preference_dataset, lambda: dict(language=_language(), n=2, reward="rare_peak", seed=0, candidates=3),
                                            dict(ds_kinds, reward=choice(), candidates=integer(2)))
    T["lm_data.unpaired_dataset"] = Entry(lm_data.unpaired_dataset, lambda: dict(language=_language(), n=2, reward="rare_peak", seed=0, candidates=3),
                                          dict(ds_kinds, reward=choice(), candidates=integer(2)))
    T["lm_data.split_steps"] = Entry(lm_data.split_steps, lambda: dict(completion=" a b c", step_length=2), dict(completion=text(), step_length=integer(1)))
    T["lm_data.ranked_dataset"] = Entry(lm_data.ranked_dataset, lambda: dict(language=_language(), n=2, reward="rare_peak", seed=0, k=3, step_length=2),
                                        dict(ds_kinds, reward=choice(), k=integer(2), step_length=integer(1)))
    T["lm_data.prompt_dataset"] = Entry(lm_data.prompt_dataset, lambda: dict(language=_language(), n=2, seed=0), ds_kinds)
    T["lm_data.dataset_kind"] = Entry(lm_data.dataset_kind, lambda: dict(ds_or_columns=["prompt", "chosen", "rejected"]), dict(ds_or_columns=obj()))
    T["lm_data.validate_dataset"] = Entry(lm_data.validate_dataset, lambda: dict(ds=[{"prompt": "shift 1 :", "chosen": " a", "rejected": " b"}],
                                                                                 kind="preference"),
                                          dict(ds=obj(), kind=choice(none_ok=True)))

    # ---------------- runs ----------------
    for name in ("atomic_write", "save_tree", "load_tree", "write_manifest", "verify", "commit_dir", "RunLock", "RunDir"):
        T[f"runs.{name}"] = Reason(FILES.format("08b_runs and test_runs (kills, damaged and planted files, two writers)"))
    T["runs.RunWarning"] = Reason("a warning category: takes a message, like any Warning")

    # ---------------- lm_train ----------------
    T["lm_train.TrainConfig"] = Entry(
        lm_train.TrainConfig,
        lambda: dict(hidden_size=8, layers=1, heads=2, reward="rare_peak", sft_examples=4, pairs=4, candidates=3, sft_steps=0, sft_lr=1e-3,
                     loss_type=["simpo"], beta=0.1, loss_kwargs={"gamma": 0.5}, f_divergence_type="reverse_kl", f_alpha_divergence_coef=0.5,
                     steps=2, lr=1e-3, batch_size=2, mode="offline", samples=2, max_new_tokens=3, ref_model_mixup_alpha=0.6, seed=0, optimizer="adamw"),
        dict(hidden_size=integer(1), layers=integer(1), heads=integer(1), reward=choice(), sft_examples=integer(1), pairs=integer(1),
             candidates=integer(2), sft_steps=integer(0), sft_lr=positive(), loss_type=choice(), beta=positive(), loss_kwargs=obj(),
             f_divergence_type=choice(), f_alpha_divergence_coef=scalar(None, None), steps=integer(1), lr=positive(), batch_size=integer(1),
             mode=choice(), samples=integer(2), max_new_tokens=integer(1), ref_model_mixup_alpha=scalar(0.0, 1.0, "right"), seed=integer(0),
             optimizer=choice()))
    for name in ("ModelConfig", "DataConfig", "LossConfig", "OptimConfig", "RunConfig"):
        T[f"lm_train.{name}"] = Reason("a part of TrainConfig, which inherits it: its fields are checked in the lm_train.TrainConfig entry")
    T["lm_train.load_config"] = Entry(lm_train.load_config, lambda: dict(path=None, overrides={"steps": 3, "hidden_size": 8, "heads": 2}),
                                      dict(overrides=obj(none_ok=True)))
    T["lm_train.build_model"] = Entry(lm_train.build_model, lambda: dict(cfg=_train_config(), tokenizer=_tokenizer()), dict(cfg=obj(), tokenizer=obj()))
    T["lm_train.encode"] = Entry(lm_train.encode, lambda: dict(tokenizer=_tokenizer(), texts=["shift 1 :", "shift 2 :"], prompt=True),
                                 dict(tokenizer=obj(), texts=texts()))
    for name in ("Batch", "StepLoss", "Examples", "Family", "ModelKind", "Source", "UnpairedLoss", "ListLoss", "LossKind", "PairLogps",
                 "Reading", "Run", "PairValues", "UnpairedValues", "ListValues"): T[f"lm_train.{name}"] = Reason(RECORD)
    T["lm_train.collate"] = Entry(lm_train.collate, lambda: dict(prompts=[torch.tensor([1, 4]), torch.tensor([1, 5])],
                                                                 completions=[torch.tensor([12, 2]), torch.tensor([13, 2])], pad_id=0),
                                  dict(prompts=texts(), completions=texts(), pad_id=integer(0)))
    T["lm_train.batch_logps"] = Entry(lm_train.batch_logps, lambda: dict(model=_model(), batch=_lm_batch()), dict(model=obj(), batch=obj()))
    T["lm_train.preference_loss"] = Entry(lm_train.preference_loss, lambda: dict(cfg=_train_config(loss_type=["ipo"]), logps=lm_train.PairLogps(**pair_values(*LOGPS_ARGS)),
                                                                                 **pair_values(*LENGTH_ARGS)),
                                          dict(cfg=obj(), logps=obj(), **{k: lengths() for k in LENGTH_ARGS}))
    T["lm_train.pair_metrics"] = Entry(lm_train.pair_metrics, lambda: dict(beta=0.1, logps=lm_train.PairLogps(**pair_values(*LOGPS_ARGS))),
                                       dict(beta=positive(), logps=obj()))
    T["lm_train.family_of"] = Entry(lm_train.family_of, lambda: dict(cfg=_train_config()), dict(cfg=obj()))
    T["lm_train.sample"] = Entry(lm_train.sample, lambda: dict(model=_model(), prompts=[torch.tensor([1, 4, 7, 5])], n=2, max_new_tokens=2, pad_id=0, eos_id=2),
                                 dict(model=obj(), prompts=texts(), n=integer(1), max_new_tokens=integer(1), pad_id=integer(0), eos_id=integer(0)))
    T["lm_train.Batches"] = Entry(lm_train.Batches, lambda: dict(n=5, batch_size=2, seed=0), dict(n=integer(1), batch_size=integer(1), seed=integer(0)))
    T["lm_train.train_step"] = Reason("one optimizer step inside train (model, optimizer, Accelerator): its arguments come from train")
    T["lm_train.train"] = Reason("trains models into a run directory (heavy); its config is checked by TrainConfig, in the table")

    # ---------------- dashboards ----------------
    T["dashboards.hyperparameter_class"] = Entry(dashboards.hyperparameter_class, lambda: dict(loss="cdpo"), dict(loss=choice()))
    T["dashboards.hyperparameter_values"] = Entry(dashboards.hyperparameter_values, lambda: dict(obj=dashboards.hyperparameter_class("cdpo")()),
                                                  dict(obj=obj()))
    T["dashboards.colors"] = Entry(dashboards.colors, lambda: dict(names=["sigmoid", "ipo"], first=["ipo"]), dict(names=texts()))
    T["dashboards.Rendered"] = Reason(RECORD)
    T["dashboards.RunsFound"] = Reason(RECORD)
    T["dashboards.Page"] = Reason(RECORD)
    for name in ("PairSetting", "PairRun", "BanditSetting", "BanditRun", "NashSetting", "FileStamp", "Stamp", "RunStamp", "MetricPanel"):
        T[f"dashboards.{name}"] = Reason(RECORD)
    T["dashboards.figure_panel"] = Entry(dashboards.figure_panel, lambda: dict(name="line"), dict(name=text()))
    for name in ("Explorer", "MarginsSettings", "MarginsExplorer", "ModeSeekingSettings", "ModeSeekingExplorer", "NashSettings", "NashExplorer",
                 "RunsSettings", "RunsDirectory", "RunsExplorer", "Panes",
                 "Dashboard", "MarginsDashboard", "ModeSeekingDashboard", "NashDashboard", "RunsDashboard"):
        T[f"dashboards.{name}"] = Reason(PANEL)
    T["dashboards.loss_curves"] = Entry(dashboards.loss_curves, lambda: dict(names=["sigmoid", "cdpo"], beta=0.1,
                                                                             hparams={"cdpo": {"label_smoothing": 0.1}}, margin_range=5.0, n=5),
                                        dict(names=texts(), beta=positive(), hparams=obj(), margin_range=positive(), n=integer(2)))
    T["dashboards.RunCache"] = Entry(dashboards.RunCache, lambda: dict(compute=lambda keys: list(keys), max_items=4), dict(compute=obj(), max_items=integer(1)))
    T["dashboards.figure"] = Reason(DOCS.replace("docs-build plumbing over nbformat/Plotly dicts",
                                                 "Plotly plumbing (traces and layout as dicts, validated by Plotly)").replace(" (test_docs covers it)", ""))
    T["dashboards.band"] = Reason("Plotly plumbing: arrays and a colour into a trace dict, validated by Plotly")
    T["dashboards.axes"] = Entry(dashboards.axes, lambda: dict(row=1, col=2, cols=2), dict(row=integer(1), col=integer(1), cols=integer(1)))
    T["dashboards.grid"] = Entry(dashboards.grid, lambda: dict(rows=1, cols=2, titles=("a", "b")), dict(rows=integer(1), cols=integer(1), titles=obj()))
    T["dashboards.reference_policy"] = Entry(dashboards.reference_policy, lambda: dict(kind="random", K=3, seed=0), dict(kind=choice(),
                                                                                                                         K=integer(1), seed=integer(0)))
    T["dashboards.runs_root"] = Reason(FILES.format("test_dashboards"))
    T["dashboards.read_run"] = Reason(FILES.format("test_dashboards"))
    T["dashboards.read_runs"] = Reason(FILES.format("test_dashboards"))
    T["dashboards.page"] = Reason("builds a served Panel page, running the dashboard's default computations (heavy; test_dashboards)")
    T["dashboards.index_page"] = Reason(NO_ARGS)
    T["dashboards.websocket_origins"] = Entry(dashboards.websocket_origins, lambda: dict(address="127.0.0.1", port=5006, allow=["example.org:80"]),
                                              dict(address=text(), port=integer(0, 65535), allow=texts()))
    T["dashboards.serialize_busy_state"] = Reason("Panel plumbing: the adapter for holoviz/panel#4099, makes Panel's global busy counter thread-safe "
                                                  "(serve calls it); no data arguments (test_dashboards forces the race)")
    T["dashboards.quiet_closed_sockets"] = Reason(NO_ARGS)
    T["dashboards.serve"] = Reason("starts a web server (blocking, or on a thread with start=False); its arguments are checked before the port is "
                                   "bound (11_dashboards, test_dashboards)")
    T["dashboards.TextAlert"] = Entry(dashboards.TextAlert, lambda: dict(object="<b>x</b>", alert_type="warning"), dict(alert_type=choice()))

    # ---------------- views (what the dashboards and the widgets share) ----------------
    T["views.distinct_losses"] = Reason(NO_ARGS)
    T["views.escape_text"] = Entry(views.escape_text, lambda: dict(text="<img src=x onerror=alert(1)>"), dict(text=text()))
    T["views.hparam_range"] = Entry(views.hparam_range, lambda: dict(h=_hyperparameter("cdpo")), dict(h=obj()))
    T["views.loss_frame"] = Entry(views.loss_frame, lambda: dict(name="cdpo", beta=0.1, margin_range=5.0, n_points=5, label_smoothing=0.1),
                                    dict(name=choice(), beta=positive(), margin_range=positive(), n_points=integer(2), label_smoothing=scalar(0.0,
                                                                                                                                              0.5, "both")),
                                    unknown_kw=True)
    T["views.toy_algorithms"] = Reason("takes one flag (no_neg)")

    # ---------------- widgets ----------------
    T["widgets.hyperparameter_controls"] = Entry(widgets.hyperparameter_controls, lambda: dict(name="cdpo"), dict(name=choice()))
    T["widgets.loss_figure"] = Entry(widgets.loss_figure, lambda: dict(frame=_frame()), dict(frame=obj()))
    T["widgets.loss_explorer"] = Reason(APP)
    T["widgets.toy_frame"] = Entry(widgets.toy_frame, lambda: dict(algorithm="sigmoid", regime="on_policy", reward_center=70, steps=2, seeds=1,
                                                                   lr=0.05, beta=0.1),
                                   dict(algorithm=choice(), regime=choice(), reward_center=scalar(0.0, 100.0, "left", list_ok=True), steps=integer(1),
                                        seeds=integer(1), lr=positive(), beta=positive()))
    T["widgets.toy_figure"] = Entry(widgets.toy_figure, lambda: dict(frame=_toy_frame()), dict(frame=obj()))
    T["widgets.toy_run_explorer"] = Reason(APP)

    # ---------------- docs, cli ----------------
    for name in ("setup_figures",): T[f"docs.{name}"] = Reason(NO_ARGS)
    for name in ("figure_html", "figures_to_html", "PlotlyHTML", "page_template", "sections", "check_page"): T[f"docs.{name}"] = Reason(DOCS)
    T["cli.info"] = Reason(NO_ARGS)
    T["cli.build_parser"] = Reason(NO_ARGS)
    T["cli.main"] = Reason("argparse: a bad argument exits with status 2 and a usage message naming it (test_cli)")

    T.update(_registered_losses(losses))
    T.update(_pairwise_rules(losses, toy))
    return T


# ---------------------------------------------------------------------------------------------------------------------------
# Entries generated from the registries
# ---------------------------------------------------------------------------------------------------------------------------

def _hyperparameter_kind(h, B: int) -> Kind:
    """A loss hyperparameter's kind from its declared range (`loss_hyperparameters`): one declared per example also takes [B] tensors;
    every other tensor but a 0-d one is refused by name, never broadcast (issue 24: [B], [B, 1] and [1] against a batch of B)."""
    none_ok = h.default is None
    if h.per_example: return scalar_or_batch(h.low, h.high, h.closed, B=B, none_ok=none_ok)
    base = scalar(h.low, h.high, h.closed, none_ok=none_ok)
    def bads(v):
        ok = float(v) if v is not None else 0.5 if h.low is None else h.low + 0.5 if h.high is None else (h.low + h.high) / 2
        return base.bads(v) + [Bad(f"tensor-shape-{k}", torch.full(s, ok, dtype=torch.float64)) for k, s in (("B", (B,)), ("B1", (B, 1)), ("1", (1,)))]
    return Kind("scalar", bads)

def _reads(fn, Pair) -> tuple[str, ...]:
    "The Pair inputs a loss reads: those whose absence it reports ('needs X')."
    out = []
    for k in PAIR:
        try: fn(Pair(**{**pair_values(*PAIR), k: None}), beta=0.1)
        except ValueError as e:
            if f"needs {k}" in str(e): out.append(k)
    return tuple(out)

def _registered_losses(losses) -> dict[str, Entry]:
    "One entry per function in LOSSES and TERMS, called as LOSSES[name](Pair(...), beta=..., **hyperparameters)."
    out = {}
    fns = {f: f.names[0] for f in (*losses.LOSSES.values(), *losses.TERMS.values())}
    for fn, name in fns.items():
        def call(pair=None, _fn=fn, beta=0.1, **kw):
            pkw = {k: kw.pop(k) for k in list(kw) if k in PAIR}
            return _fn(pair if pair is not None else losses.Pair(**pkw), beta=beta, **kw)
        reads = _reads(fn, losses.Pair)
        hps = losses.loss_hyperparameters(name) if name in losses.LOSSES else []
        kinds = {**{k: logps() if k in LOGPS_ARGS else lengths() for k in reads}, "beta": positive(), "pair": obj(none_ok=True),
                 **{h.name: _hyperparameter_kind(h, B) for h in hps}}
        valid = lambda: dict(pair_values(*PAIR), beta=0.1)
        out[f"losses.{fn.__name__}"] = Entry(call, valid, kinds, unknown_kw=True)
    return out

def _pairwise_rules(losses, toy) -> dict[str, Entry]:
    "One entry per loss in LOSSES as a toy-bandit rule: what run_bandit checks before its hot loop (beta and the loss's hyperparameters)."
    out = {}
    for name in sorted({f.names[0] for f in losses.LOSSES.values()}):
        hps = losses.loss_hyperparameters(name)
        kinds = {"beta": positive(), **{h.name: _hyperparameter_kind(h, B) for h in hps if not h.per_example}}
        out[f"toy.RULES/{name}"] = Entry(toy.RULES[name], lambda: dict(beta=0.1), kinds)
    return out


@functools.cache
def table() -> dict[str, Entry | Reason]:
    return _table()
