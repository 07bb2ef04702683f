"""One input contract for the whole library (issue 15), as table-driven tests.

Every public callable of prefbench_lib has an entry in `contract_table.table()`: a valid call and the kind of each argument it
checks, or a one-line reason why it checks none. From the kinds come the cases:

- `test_valid_call`: the entry's valid call runs and returns no NaN.
- `test_bad_value`: each bad value of each argument's kind (NaN, +-inf, wrong dtype, wrong shape, out of range, wrong type)
  raises a `ValueError` whose message names the argument and, for a value, shows it.
- `test_neginf_logps`: a log-probability of -inf (a legal value) gives a result without NaN, or a ValueError naming it; a loss
  (issue 24's -inf rule) gives a finite value with a finite gradient, or a ValueError naming the argument that holds the -inf.
- `test_meta`: a tensor on the meta device (a shape without data), or device="meta", is a ValueError naming the argument.
- `test_empty_batch`, `test_empty_sequence`: a batch of 0 examples (sequences of 0 tokens) gives a defined result or a
  ValueError naming an argument, never a deep torch error or a NaN.
- `test_unknown_keyword`: a callable that takes **kwargs refuses an unknown one with a ValueError naming it.
- `test_every_public_callable_has_an_entry`: a new public function without an entry fails, so the contract grows with the library.

What fails is marked, group by group, in TODO below: strict xfails, so a fix that makes a case pass turns it into an XPASS
failure and its pattern must be removed. TODO is empty now: the whole table passes.
"""
from __future__ import annotations

import fnmatch
import importlib
import math
import pkgutil
import re

import pytest
import torch

import prefbench_lib
from contract_table import Entry, Reason, table

pytestmark = pytest.mark.filterwarnings("ignore")  # bad inputs provoke library warnings by design; the contract is about errors

# ---------------------------------------------------------------------------------------------------------------------------
# The to-do list: (what happens today, the cases it covers). Every case that fails today is in exactly one group.
# Case ids: `entry-argument:kind-label` for a bad value (losses.kto_loss-kl_ref_point:per_example-tensor-shape-B1), and
# `entry-argument-neginf[-two]`, `entry-all-logps-neginf`, `entry-empty-batch`, `entry-empty-sequence`, `entry-unknown-keyword`.
# Patterns are fnmatch globs with {a,b} alternatives: `{core.kl,nash.win_rates}-*:*` is every bad value of those two.
# When a fix lands its cases XPASS: delete their alternative or pattern (`python tests/test_contract.py` lists what to delete).
# ---------------------------------------------------------------------------------------------------------------------------

TODO: list[tuple[str, list[str]]] = [
    # empty: every case of the table passes (issue 15 closed 1,702 of them). A new case that fails goes here, as
    # ('what happens today', ['entry-argument:kind-label glob', ...]), only with an issue that says when it will be fixed.
]


# ---------------------------------------------------------------------------------------------------------------------------
# The public callables
# ---------------------------------------------------------------------------------------------------------------------------

def public_callables() -> dict[str, object]:
    "module.name -> object, for every callable in each prefbench_lib module's __all__ (a re-export counts under its home module)."
    out = {}
    for info in pkgutil.iter_modules(prefbench_lib.__path__):
        if info.name.startswith("_"): continue
        mod = importlib.import_module(f"prefbench_lib.{info.name}")
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if not callable(obj): continue  # constants, registries (dicts), cached instances
            home = getattr(obj, "__module__", "") or ""
            if home.startswith("prefbench_lib.") and home != mod.__name__ and getattr(importlib.import_module(home), name, None) is obj:
                out[f"{home.removeprefix('prefbench_lib.')}.{name}"] = obj
            else: out[f"{info.name}.{name}"] = obj
    return out


# ---------------------------------------------------------------------------------------------------------------------------
# Judging an outcome
# ---------------------------------------------------------------------------------------------------------------------------

def names(msg: str, name: str) -> bool: return re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", msg) is not None

def _tensors(out) -> list:
    "The values a result is judged on: a loss's per-example losses, else every tensor or number in it."
    if hasattr(out, "output") and hasattr(out, "components"): return _tensors(out.output)  # Mixture
    if hasattr(out, "losses") and hasattr(out, "_fields"): return [out.losses]  # LossOutput, ListLossOutput, StepLoss
    if isinstance(out, (torch.Tensor, float, int)) and not isinstance(out, bool): return [out]
    if isinstance(out, (tuple, list)): return [x for o in out for x in _tensors(o)]
    if isinstance(out, dict): return [x for o in out.values() for x in _tensors(o)]
    return []

def has_nan(out) -> bool:
    for x in _tensors(out):
        if isinstance(x, torch.Tensor):
            if (x.is_floating_point() or x.is_complex()) and bool(torch.isnan(x).any()): return True
        elif isinstance(x, float) and math.isnan(x): return True
    return False

def is_loss(out) -> bool: return hasattr(out, "losses") or hasattr(out, "components")

def fail(msg: str):
    "Fail with the message only: no traceback to format (an xfailed case costs no source parsing)."
    pytest.fail(msg, pytrace=False)

def summary(out) -> str:
    s = repr(out).replace("\n", " ")
    return s if len(s) <= 160 else s[:157] + "..."

def short(e: BaseException) -> str:
    s = f"{type(e).__name__}: {e}".replace("\n", " ")
    return s if len(s) <= 240 else s[:237] + "..."

def refused(call, names_any: tuple[str, ...], show: str | None = None, may_return: bool = False, neginf_ok: bool = True,
            finite_loss: bool = False) -> str | None:
    "None if `call()` raises a ValueError naming one of `names_any` (and matching `show`), or returns a defined result when allowed."
    try: out = call()
    except ValueError as e:
        msg = str(e)
        if not any(names(msg, n) for n in names_any): return f"a ValueError that does not name {' or '.join(names_any)}: {short(e)}"
        if show is not None and not re.search(show, msg): return f"a ValueError naming {names_any[0]} without the bad value: {short(e)}"
        return None
    except Exception as e:  # noqa: BLE001 - anything but a ValueError is a failure of the contract
        return f"{short(e)} (not a ValueError)"
    if may_return:
        if has_nan(out): return f"a NaN result: {summary(out)}"
        if not neginf_ok and is_loss(out) and any(isinstance(x, torch.Tensor) and bool((x == -math.inf).any()) for x in _tensors(out)):
            return f"a loss of -inf: {summary(out)}"
        if finite_loss and is_loss(out) and any(isinstance(x, torch.Tensor) and not bool(torch.isfinite(x).all()) for x in _tensors(out)):
            return f"a loss of +-inf (the -inf rule: a finite value and gradient, or a ValueError naming the argument): {summary(out)}"
        return None
    return f"accepted: returned {summary(out)}"


# ---------------------------------------------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------------------------------------------

def _entries() -> dict[str, Entry]: return {k: e for k, e in table().items() if isinstance(e, Entry)}

def _bad_cases() -> list[tuple[str, str, str, str]]:
    "(id, entry, argument, bad label) for every bad value of every argument of every entry; the id is entry-argument:kind-label."
    out = []
    for key, e in _entries().items():
        valid = e.valid()
        for arg, kind in e.kinds.items():
            for b in kind.bads(valid.get(arg)): out.append((f"{key}-{arg}:{kind.name}-{b.label}", key, arg, b.label))
    return out

def _neginf_cases() -> list[tuple[str, str, str]]:
    "(id, entry, variant): one -inf per log-prob argument, two in one argument, -inf in every log-prob argument at once."
    out = []
    for key, e in _entries().items():
        args = [a for a, k in e.kinds.items() if k.logps]
        for a in args:
            out += [(f"{key}-{a}-neginf", key, f"one:{a}"), (f"{key}-{a}-neginf-two", key, f"two:{a}")]
            if e.kinds[a].name == "logits": out.append((f"{key}-{a}-neginf-unscored-row", key, f"unscored:{a}"))
        if len(args) > 1: out.append((f"{key}-all-logps-neginf", key, "all"))
    return out

def _dim_cases(attr: str, suffix: str) -> list[tuple[str, str]]:
    "Entries with arguments that have a batch (or sequence) dimension."
    out = []
    for key, e in _entries().items():
        valid = e.valid()
        if any(getattr(k, attr) is not None and isinstance(valid.get(a), torch.Tensor) for a, k in e.kinds.items()):
            out.append((f"{key}-{suffix}", key))
    return out

TENSOR_KINDS = ("logps", "logits", "labels", "mask", "lengths", "real", "distribution", "preferences", "per_example")

def _meta_cases() -> list[tuple[str, str, str]]:
    "(id, entry, argument): every tensor argument of every entry moved to the meta device, and every device argument set to 'meta'."
    out = []
    for key, e in _entries().items():
        valid = e.valid()
        for a, k in e.kinds.items():
            if (k.name in TENSOR_KINDS and isinstance(valid.get(a), torch.Tensor)) or k.name == "device": out.append((f"{key}-{a}-meta", key, a))
    return out


def expand(pattern: str) -> list[str]:
    "The globs a pattern stands for: each {a,b,...} replaced by each alternative."
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m: return [pattern]
    return [x for alt in m.group(1).split(",") for x in expand(pattern[:m.start()] + alt + pattern[m.end():])]

_TODO_GLOBS = [(reason, [g for p in patterns for g in expand(p)]) for reason, patterns in TODO]
_TODO_RX = [(reason, re.compile("|".join(fnmatch.translate(g) for g in globs))) for reason, globs in _TODO_GLOBS]

def _todo_reason(case_id: str) -> str | None:
    return next((reason for reason, rx in _TODO_RX if rx.match(case_id)), None)

def _params(cases: list[tuple]) -> list:
    "pytest params, the failing-today ones marked xfail (strict) with their to-do group."
    out = []
    for case in cases:
        reason = _todo_reason(case[0])
        marks = [pytest.mark.xfail(strict=True, reason=f"issue 15: {reason}")] if reason else []
        out.append(pytest.param(*case[1:], id=case[0], marks=marks))
    return out

BAD, NEGINF, META = _bad_cases(), _neginf_cases(), _meta_cases()
EMPTY_BATCH, EMPTY_SEQ = _dim_cases("batch", "empty-batch"), _dim_cases("seq", "empty-sequence")
VALID = [(k, k) for k in _entries()]
UNKNOWN_KW = [(f"{k}-unknown-keyword", k) for k, e in _entries().items() if e.unknown_kw]
ALL_IDS = [c[0] for c in (*BAD, *NEGINF, *EMPTY_BATCH, *EMPTY_SEQ, *UNKNOWN_KW, *META)]


# ---------------------------------------------------------------------------------------------------------------------------
# The table covers the library
# ---------------------------------------------------------------------------------------------------------------------------

def test_every_public_callable_has_an_entry():
    missing = sorted(set(public_callables()) - set(table()))
    assert not missing, ("public callables without an entry in tests/contract_table.py (give each a valid call and its "
                         f"arguments' kinds, or a Reason(...) saying why it checks none): {missing}")

def test_no_entry_for_a_callable_that_is_gone():
    stale = sorted(k for k in table() if "/" not in k and k not in public_callables())  # "toy.RULES/x": generated from a registry
    assert not stale, f"entries in tests/contract_table.py for callables that are no longer public: {stale}"

def test_reasons_are_one_line():
    bad = {k: r.why for k, r in table().items() if isinstance(r, Reason) and (not r.why.strip() or "\n" in r.why or len(r.why) > 200)}
    assert not bad, bad

def test_todo_groups_are_live_and_disjoint():
    "Every alternative of every to-do pattern still matches a case, and no case is in two groups."
    dead = [g for _, gs in _TODO_GLOBS for g in gs if not any(map(re.compile(fnmatch.translate(g)).match, ALL_IDS))
            and "-unavailable" not in g]  # an unavailable-device case exists only on machines without that device
    assert not dead, f"to-do patterns that match no case (remove them): {dead}"
    twice = [i for i in ALL_IDS if sum(bool(rx.match(i)) for _, rx in _TODO_RX) > 1]
    assert not twice, f"cases in more than one to-do group: {sorted(twice)[:20]}"


# ---------------------------------------------------------------------------------------------------------------------------
# The contract, case by case
# ---------------------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", [pytest.param(k, id=i) for i, k in VALID])
def test_valid_call(key):
    e = table()[key]
    out = e.fn(**e.valid())
    assert not has_nan(out), f"{key}: the valid call returned NaN: {summary(out)}"


@pytest.mark.parametrize("key,arg,label", _params(BAD))
def test_bad_value(key, arg, label):
    e = table()[key]
    kw, kind = e.valid(), e.kinds[arg]
    bad = {b.label: b for b in kind.bads(kw.get(arg))}[label]
    kw[arg] = bad.value
    problem = refused(lambda: e.fn(**kw), (kind.named or arg,), bad.show, bad.may_return)
    if problem: fail(f"{key}({arg}={label}): {problem}")


def _with_neginf(kw: dict, arg: str, kind, n: int) -> None:
    "Put -inf into kw[arg] at the kind's position (and the n - 1 entries after it, in memory order)."
    v = kw[arg].clone() if kw[arg].is_floating_point() else kw[arg].double()
    at = kind.at if kind.at is not None else (0,) * v.ndim
    i = sum(ix * st for ix, st in zip(at, v.stride()))
    v.view(-1)[i:i + n] = -math.inf
    kw[arg] = v

@pytest.mark.parametrize("key,variant", _params(NEGINF))
def test_neginf_logps(key, variant):
    """A log-probability of -inf (probability 0) is legal: a result without NaN (a loss of +inf or a finite limit), or a ValueError
    naming the argument. Variants: one -inf; two in one argument (two impossible responses in a list, or tokens); -inf in every
    log-prob argument at once (a response impossible under the policy and the reference: -inf - -inf); for logits, a whole row of
    -inf where the mask excludes it. Through logits, the gradient must be free of NaN too (a banned token's gradient is 0)."""
    e = table()[key]
    kw = e.valid()
    mode, _, arg = variant.partition(":")
    args = [a for a, k in e.kinds.items() if k.logps] if mode == "all" else [arg]
    for a in args:
        if mode == "unscored": kw[a] = kw[a].clone(); kw[a][0, 0, :] = -math.inf  # logits[0, 0] predict labels[0, 1], where mask is 0
        else: _with_neginf(kw, a, e.kinds[a], 2 if mode == "two" else 1)
    grads = [a for a in args if e.kinds[a].name == "logits"]
    for a in grads: kw[a] = kw[a].requires_grad_()
    out = []
    def call():
        out.append(e.fn(**kw))
        return out[-1]
    problem = refused(call, tuple(e.kinds[a].named or a for a in args), may_return=True, neginf_ok=False, finite_loss=True)
    if problem: fail(f"{key}({', '.join(args)} with -inf, {mode}): {problem}")
    if out and is_loss(out[0]):  # the -inf rule: a finite loss has a finite gradient with respect to every log-prob input
        lp = [a for a, k in e.kinds.items() if k.logps and k.name != "logits" and isinstance(kw.get(a), torch.Tensor) and kw[a].is_floating_point()]
        kw2 = {k: v.detach().clone().requires_grad_() if k in lp else v for k, v in kw.items()}
        res = [t for t in _tensors(e.fn(**kw2)) if isinstance(t, torch.Tensor) and t.requires_grad]
        if lp and res:
            for a, g in zip(lp, torch.autograd.grad(sum(t.sum() for t in res), [kw2[a] for a in lp], allow_unused=True)):
                if g is not None and not bool(torch.isfinite(g).all()): fail(f"{key}({a} with -inf, {mode}): a non-finite gradient {g.tolist()}")
    finite = [t[torch.isfinite(t)].sum() for t in (_tensors(out[0]) if out else []) if isinstance(t, torch.Tensor) and t.requires_grad]
    if grads and finite:
        for a, g in zip(grads, torch.autograd.grad(sum(finite), [kw[a] for a in grads])):
            if bool(torch.isnan(g).any()): fail(f"{key}({a} with -inf, {mode}): NaN gradient at {torch.isnan(g).nonzero()[:4].tolist()}")



@pytest.mark.parametrize("key,arg", _params(META))
def test_meta(key, arg):
    "A tensor on the meta device has a shape and no data: refused by the argument's name (the check_* helpers refuse it), as device='meta' is."
    e = table()[key]
    kw, kind = e.valid(), e.kinds[arg]
    kw[arg] = "meta" if kind.name == "device" else kw[arg].to("meta")
    problem = refused(lambda: e.fn(**kw), (kind.named or arg,), r"meta")
    if problem: fail(f"{key}({arg} on the meta device): {problem}")


def _sliced(key: str, attr: str) -> tuple[dict, tuple[str, ...]]:
    e = table()[key]
    kw, sliced = e.valid(), []
    for a, k in e.kinds.items():
        d = getattr(k, attr)
        if d is not None and isinstance(kw.get(a), torch.Tensor):
            kw[a] = kw[a].narrow(d, 0, 0).clone(); sliced.append(k.named or a)
    return kw, tuple(sliced)

@pytest.mark.parametrize("key", _params(EMPTY_BATCH))
def test_empty_batch(key):
    kw, sliced = _sliced(key, "batch")
    problem = refused(lambda: table()[key].fn(**kw), sliced, may_return=True)
    if problem: fail(f"{key}(empty batch of {', '.join(sliced)}): {problem}")

@pytest.mark.parametrize("key", _params(EMPTY_SEQ))
def test_empty_sequence(key):
    kw, sliced = _sliced(key, "seq")
    problem = refused(lambda: table()[key].fn(**kw), sliced, may_return=True)
    if problem: fail(f"{key}(sequences of 0 tokens in {', '.join(sliced)}): {problem}")


@pytest.mark.parametrize("key", _params(UNKNOWN_KW))
def test_unknown_keyword(key):
    e = table()[key]
    problem = refused(lambda: e.fn(**e.valid(), bogus_keyword=1.0), ("bogus_keyword",))
    if problem: fail(f"{key}(bogus_keyword=1.0): {problem}")


if __name__ == "__main__":  # maintenance: which cases fail outside TODO, which TODO cases pass now (delete those)
    import sys  # python tests/test_contract.py [prefix ...]: only the cases whose id starts with a prefix (nash. toy.make_batch)
    import warnings
    warnings.simplefilter("ignore")
    only = tuple(sys.argv[1:])
    runs = [(c[0], test_bad_value, c[1:]) for c in BAD] + [(c[0], test_neginf_logps, c[1:]) for c in NEGINF] + \
           [(c[0], test_empty_batch, c[1:]) for c in EMPTY_BATCH] + [(c[0], test_empty_sequence, c[1:]) for c in EMPTY_SEQ] + \
           [(c[0], test_unknown_keyword, c[1:]) for c in UNKNOWN_KW] + [(c[0], test_meta, c[1:]) for c in META]
    for case_id, test, args in runs:
        if only and not case_id.startswith(only): continue
        try: test(*args); failed = None
        except pytest.fail.Exception as e: failed = str(e).splitlines()[0]
        todo = _todo_reason(case_id)
        if failed and not todo: print(f"FAILS, not in TODO: {case_id}: {failed}")
        elif todo and not failed: print(f"PASSES, delete from TODO: {case_id}")
