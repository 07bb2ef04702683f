"""Properties of prefbench_lib.nash (hypothesis): exact equilibria, the updates' stability, batching, reliability."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from scipy.optimize import linprog

import prefbench_lib.nash as nash
from prefbench_lib.nash import (ALGORITHMS, best_response, duality_gap, nash_equilibrium, preference_matrix,
                                regularized_nash, run_dynamics)

F64 = torch.float64


@st.composite
def games(draw, k_min=2, k_max=9):
    "A random valid preference matrix: the lower triangle uniform, some entries pushed to exactly 0 or 1."
    K = draw(st.integers(k_min, k_max))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    L = torch.rand(K, K, generator=g, dtype=F64)
    if draw(st.booleans()):  # deterministic outcomes on some pairs (0/1 entries, as in rock-paper-scissors)
        L = torch.where(L < 0.2, 0.0, torch.where(L > 0.8, 1.0, L))
    L = L.tril(-1)
    return L + (1 - L.T).triu(1) + 0.5 * torch.eye(K, dtype=F64)


def distributions(K, seed, low=1e-3):
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(K, generator=g, dtype=F64) + low
    return w / w.sum()


@settings(max_examples=60, deadline=None)
@given(P=games())
def test_nash_equilibrium_is_unexploitable_and_matches_scipy_lp(P):
    pi = nash_equilibrium(P)
    assert float(pi.min()) >= 0 and abs(float(pi.sum()) - 1) < 1e-12
    assert float(duality_gap(pi, P)) < 1e-10  # 2 max (P pi) - 1 ~ 0
    # scipy's LP, written independently: min v s.t. P pi <= v, sum pi = 1, pi >= 0; its value is 1/2
    K = P.shape[0]
    res = linprog(np.r_[np.zeros(K), 1.0], A_ub=np.c_[P.numpy(), -np.ones(K)], b_ub=np.zeros(K),
                  A_eq=np.r_[np.ones(K), 0.0][None], b_eq=[1.0], bounds=[(0, None)] * K + [(None, None)], method="highs")
    assert res.status == 0 and abs(res.x[-1] - 0.5) < 1e-9
    # equilibria need not be unique (ties), so compare values, not vectors: both are unexploitable
    assert float((P @ pi).max()) <= res.x[-1] + 1e-10


@settings(max_examples=60, deadline=None)
@given(P=games(), beta=st.floats(1e-3, 10.0), seed=st.integers(0, 1000))
def test_regularized_nash_solves_its_fixed_point(P, beta, seed):
    ref = distributions(P.shape[0], seed)
    pi = regularized_nash(P, ref, beta)
    z = ref.log() + P @ pi / beta
    fixed = torch.softmax(z, 0)  # BR(pi), written out
    assert float((pi - fixed).abs().max()) < 1e-10
    assert abs(float(duality_gap(pi, P, ref, beta))) < 1e-10
    assert float(duality_gap(ref, P, ref, beta)) >= -1e-12  # the gap is non-negative elsewhere


@settings(max_examples=40, deadline=None)
@given(P=games(k_min=2, k_max=6), seed=st.integers(0, 1000), beta=st.floats(0.0, 3.0))
def test_duality_gap_is_nonnegative_and_best_response_is_best(P, seed, beta):
    K = P.shape[0]
    ref, pi = distributions(K, seed), distributions(K, seed + 1, low=0.0)
    gap = float(duality_gap(pi, P, ref, beta))
    assert gap >= -1e-12
    br = best_response(pi, P, ref, beta)
    def value(p):  # p^T P pi - beta KL(p || ref)
        return float(p @ P @ pi - (beta * (torch.xlogy(p, p) - p * ref.log()).sum() if beta > 0 else 0.0))
    for s in range(5):
        assert value(br) >= value(distributions(K, seed + 10 + s, low=0.0)) - 1e-12


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
@settings(max_examples=15, deadline=None)
@given(P=games(), beta=st.floats(0.0, 10.0), eta=st.floats(1e-3, 100.0), samples=st.sampled_from([None, 1, 4]))
def test_updates_stay_finite(algorithm, P, beta, eta, samples):
    beta = beta if ALGORITHMS[algorithm].uses_reference else 0.0
    ref = distributions(P.shape[0], 0)
    t = run_dynamics(P, algorithm, ref=ref, beta=beta, eta=eta, steps=60, samples=samples, seed=1)
    assert torch.isfinite(t.policies).all() and torch.isfinite(t.duality_gap).all()
    assert torch.isfinite(t.average_duality_gap).all()
    assert float((t.policies.sum(-1) - 1).abs().max()) < 1e-9


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_batched_run_equals_loop_of_single_runs(algorithm, data):
    B, K = data.draw(st.integers(1, 4)), data.draw(st.integers(2, 6))
    P = torch.stack([preference_matrix("random", K, seed=data.draw(st.integers(0, 10**6))) for _ in range(B)])
    eta = torch.tensor(data.draw(st.lists(st.floats(0.01, 3.0), min_size=B, max_size=B)), dtype=F64)
    beta = torch.zeros(B, dtype=F64) if not ALGORITHMS[algorithm].uses_reference else torch.tensor(data.draw(st.lists(st.floats(0.0, 2.0), min_size=B, max_size=B)), dtype=F64)
    ref = torch.stack([distributions(K, i) for i in range(B)])
    batch = run_dynamics(P, algorithm, ref=ref, beta=beta, eta=eta, steps=30)
    for i in range(B):
        one = run_dynamics(P[i], algorithm, ref=ref[i], beta=float(beta[i]), eta=float(eta[i]), steps=30)
        torch.testing.assert_close(batch.policies[i], one.policies, rtol=0, atol=1e-12)
        torch.testing.assert_close(batch.duality_gap[i], one.duality_gap, rtol=0, atol=1e-12)


def test_egpo_reaches_the_regularized_equilibrium():
    P, ref = preference_matrix("embedding", 8, seed=3, scale=2.0), distributions(8, 5)
    star = regularized_nash(P, ref, 0.05)
    t = run_dynamics(P, "egpo", ref=ref, beta=0.05, eta=1.0, steps=3000)
    assert float((t.policies[-1] - star).abs().max()) < 1e-9


def test_sampled_runs_are_reproducible_and_seeded():
    P = preference_matrix("rps", 3)
    a = run_dynamics(P, "omd", beta=0.1, eta=0.5, steps=50, samples=3, seed=7)
    b = run_dynamics(P, "omd", beta=0.1, eta=0.5, steps=50, samples=3, seed=7)
    c = run_dynamics(P, "omd", beta=0.1, eta=0.5, steps=50, samples=3, seed=8)
    assert torch.equal(a.policies, b.policies) and not torch.equal(a.policies, c.policies)


def test_frame_and_save(tmp_path):
    P = torch.stack([preference_matrix("random", 4, seed=s) for s in range(2)])
    t = run_dynamics(P, "optimistic", beta=torch.tensor([0.0, 0.1], dtype=F64), eta=0.5, steps=20)
    df = t.to_frame(every=5)
    assert set(df["iterate"]) == {"last", "average"} and sorted(df["step"].unique()) == [0, 5, 10, 15, 20]
    assert len(df) == 2 * 2 * 5 and {"run", "algorithm", "eta", "beta", "duality_gap", "pi_0", "pi_3"} <= set(df.columns)
    row = df[(df["run"] == 1) & (df["step"] == 10) & (df["iterate"] == "last")].iloc[0]
    assert abs(row["duality_gap"] - float(t.duality_gap[1, 10])) < 1e-12 and row["beta"] == 0.1
    path = t.save(tmp_path / "run.parquet", every=5)
    import json
    import pandas as pd
    assert pd.read_parquet(path).shape == df.shape
    assert json.loads(path.with_suffix(".json").read_text())["algorithm"] == "optimistic"


@pytest.mark.parametrize("function,kwargs,message", nash.ARGUMENT_ERRORS,
                         ids=[f"{i}-{fn}" for i, (fn, _, _) in enumerate(nash.ARGUMENT_ERRORS)])
def test_bad_inputs_raise_value_errors_naming_the_argument(function, kwargs, message):
    "The table 05_nash checks too: each bad call raises a ValueError whose message contains the expected text."
    with pytest.raises(ValueError) as e: getattr(nash, function)(**kwargs)
    assert message in str(e.value), str(e.value)


@pytest.mark.parametrize("kind", sorted(nash.GAMES))
@settings(max_examples=20, deadline=None)
@given(K=st.integers(2, 12), seed=st.integers(0, 10**6))
def test_every_game_is_a_valid_reproducible_preference_matrix(kind, K, seed):
    "Each constructor in GAMES, through the dispatcher: P + P^T = 1, a diagonal of 1/2, the same matrix for the same seed."
    K = 3 if kind == "rps" else K
    P = preference_matrix(kind, K, seed=seed)
    assert P.shape == (K, K) and torch.allclose(P + P.T, torch.ones(K, K, dtype=F64), atol=1e-12, rtol=0)
    assert torch.equal(torch.diagonal(P), torch.full((K,), 0.5, dtype=F64))
    assert torch.equal(P, preference_matrix(kind, K, seed=seed))


def test_run_dynamics_names_no_algorithm():
    "The loop reads the registry: its source mentions no algorithm by name, and a newly registered algorithm runs."
    import inspect
    source = inspect.getsource(nash.run_dynamics)
    assert not [name for name in ALGORITHMS if f'"{name}"' in source or f"'{name}'" in source]
    nash.algorithm("_frozen")(lambda x, pi, G, state: x)  # a step that never moves
    try:
        P = preference_matrix("random", 4, seed=0)
        t = run_dynamics(P, "_frozen", steps=5)
        assert torch.equal(t.policies[-1], t.policies[0])
    finally: del ALGORITHMS["_frozen"]


def test_check_distribution_is_still_importable_from_nash():
    from prefbench_lib import core
    from prefbench_lib.nash import check_distribution
    assert check_distribution is core.check_distribution and "check_distribution" in nash.__all__


def test_reregistering_an_algorithm_replaces_it_and_a_clash_is_refused():
    "As a re-run notebook cell does: the same step function again replaces its entry; another step under the name is refused."
    from prefbench_lib.nash import ALGORITHMS, algorithm
    before = ALGORITHMS["omd"]
    try:
        algorithm("omd")(before.step)  # the same definition: replaced
        assert ALGORITHMS["omd"].step is before.step
        def omd_step(x, pi, G, state): return x  # noqa: E306 - a different function with the same name, elsewhere
        with pytest.raises(ValueError, match="algorithm name 'omd' is already registered"):
            algorithm("omd")(omd_step)
    finally: ALGORITHMS["omd"] = before
