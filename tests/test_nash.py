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

from nash_tables import ARGUMENT_ERRORS  # the table of bad calls: the tests' data, not the module's API

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


@pytest.mark.parametrize("function,kwargs,message", ARGUMENT_ERRORS,
                         ids=[f"{i}-{fn}" for i, (fn, _, _) in enumerate(ARGUMENT_ERRORS)])
def test_bad_inputs_raise_value_errors_naming_the_argument(function, kwargs, message):
    "Each bad call in tests/nash_tables.py raises a ValueError whose message contains the expected text."
    with pytest.raises(ValueError) as e: getattr(nash, function)(**kwargs)
    assert message in str(e.value), str(e.value)


@pytest.mark.parametrize("kind", sorted(nash.GAMES))
@settings(max_examples=20, deadline=None)
@given(K=st.integers(2, 12), seed=st.integers(0, 10**6))
def test_every_game_is_a_valid_reproducible_preference_matrix(kind, K, seed):
    "Each constructor in GAMES, through the dispatcher: P + P^T = 1, a diagonal of 1/2, the same matrix for the same seed."
    K = nash.GAMES[kind].K or K
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
    "Re-exported on purpose: it lived in nash first."
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


def test_test_tables_are_not_the_modules_api():
    "Issue 25: the argument-error table and its fixtures live in tests/nash_tables.py, not in nash's __all__."
    assert not {"ARGUMENT_ERRORS", "_GAME", "_NOT_A_GAME"} & set(nash.__all__)
    assert not hasattr(nash, "ARGUMENT_ERRORS")


def test_a_game_registered_after_import_is_used_by_the_lab():
    "One cell, after import: a new @game gets the shared checks and tail, and preference_matrix and run_dynamics use it."
    @nash.game("_tilted", tilt=nash.in_interval(0.0, 0.5))
    def tilted(K: int, *, tilt: float = 0.25, seed: int = 0, dtype: torch.dtype = F64, device=None) -> torch.Tensor:
        A = torch.zeros(K, K, dtype=F64); A[0, 1:] = tilt  # action 0 beats every other with 1/2 + tilt
        return 0.5 + A - A.T
    try:
        P = preference_matrix("_tilted", 4, tilt=0.5, dtype=torch.float32)
        assert P.dtype == torch.float32 and float(P[0, 3]) == 1.0 and float(P[3, 0]) == 0.0  # the tail: dtype, checked
        assert nash.GAMES["_tilted"].parameters == ["seed", "tilt"]
        with pytest.raises(ValueError, match=r"K must be an integer >= 2, got K=1"): tilted(1)  # shared checks, owned by @game
        with pytest.raises(ValueError, match=r"seed must be an integer >= 0, got seed=-1"): preference_matrix("_tilted", 3, seed=-1)
        with pytest.raises(ValueError, match=r"tilt must be in \[0.0, 0.5\], got tilt=0.7"): tilted(3, tilt=0.7)
        with pytest.raises(ValueError, match="dtype must be one of"): tilted(3, dtype=torch.int32)
        with pytest.raises(ValueError, match="takes no argument\\(s\\) margin"): preference_matrix("_tilted", 3, margin=0.1)
        t = run_dynamics(preference_matrix("_tilted", 4), "hedge", eta=1.0, steps=400)  # transitive: the dynamics find action 0
        assert float(t.policies[-1, 0]) > 0.99
        assert torch.equal(nash_equilibrium(preference_matrix("_tilted", 4)), torch.tensor([1.0, 0, 0, 0], dtype=F64))
    finally: del nash.GAMES["_tilted"]


def test_a_nash_algorithm_registered_after_import_is_used_by_run_dynamics():
    "One cell, after import: a new @algorithm with its own state and hyperparameter runs through run_dynamics, sweeps included."
    from dataclasses import dataclass

    @dataclass
    class Every:
        k: int  # move every k-th step
        t: int = 0
        @classmethod
        def start(cls, G, k: int = 2): return cls(k)

    @nash.algorithm("_lazy_hedge", start=Every.start, uses_reference=False)
    def lazy_hedge(x, pi, G, state):
        state.t += 1
        # log pi_{t+1} = log pi_t + eta P pi_t + c, every k-th step
        return nash._normalize(x + G.win(pi), G.floor) if state.t % state.k == 0 else x
    try:
        P = torch.stack([preference_matrix("random", 5, seed=s) for s in range(3)])
        lazy = run_dynamics(P, "_lazy_hedge", eta=0.3, steps=20, k=2)
        hedge = run_dynamics(P, "hedge", eta=0.3, steps=10)
        torch.testing.assert_close(lazy.policies[:, ::2], hedge.policies, rtol=0, atol=1e-14)  # 2 lazy steps = 1 hedge step
        assert lazy.config["k"] == 2 and lazy.config["algorithm"] == "_lazy_hedge"
        with pytest.raises(ValueError, match="has no reference term"): run_dynamics(P[0], "_lazy_hedge", beta=0.1)
    finally: del ALGORITHMS["_lazy_hedge"]


def test_threads_are_the_loops_explicit_choice(monkeypatch):
    "The solvers and preference models never set torch's thread count; run_dynamics sets it for its loop only, as asked."
    import inspect
    calls, real = [], torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(n) or real(n))
    P = preference_matrix("random", 40, seed=0)  # small: the old heuristic switched to one thread here
    nash_equilibrium(P); regularized_nash(P, beta=0.1); u = torch.full((40,), 1 / 40, dtype=F64); best_response(u, P, beta=0.1); duality_gap(u, P)
    nash.bt_preferences(torch.zeros(3, dtype=F64)); nash.gpm_preferences(torch.zeros(3, 2, dtype=F64))
    assert calls == []
    seen = []
    nash.algorithm("_spy", uses_reference=False)(lambda x, pi, G, state: seen.append(torch.get_num_threads()) or x)
    saved = torch.get_num_threads()
    try:
        real(2)
        run_dynamics(P, "_spy", steps=1); run_dynamics(P, "_spy", steps=1, threads=None); run_dynamics(P, "_spy", steps=1, threads=2)
        assert seen == [1, 2, 2] and torch.get_num_threads() == 2  # 1 by default, torch's own with None, restored after
    finally:
        del ALGORITHMS["_spy"]; real(saved)
    assert "machine_busy" not in inspect.getsource(nash)
