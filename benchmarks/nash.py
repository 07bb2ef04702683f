"""Exact Nash equilibria at K = 1000, quiet and with the cores busy, and a batched sweep of the dynamics against a loop.

1. `nash_equilibrium` on a random preference matrix with K = 1000 (goal: < 1 s), with SciPy's HiGHS
   LP on the same matrix for comparison (one call: it takes seconds) and the exploitability of both.
2. `regularized_nash` on the same K = 1000 game at beta = 0.1 and 1e-5 (goal at 1e-5: < 2 s), warm-started
   from the unregularised equilibrium (the default) and by continuation from the reference (`warm_start=False`).
3. A cold call: `nash_equilibrium` at K = 1000 in a fresh process, without the allocator pin (goal: < 0.2 s).
4. Items 1 (interior point), 2 (beta = 1e-5, warm start) and 3 again with the cores busy: `--busy N`
   processes (default 2, one per core here) spin beside this one, started after the quiet figures and
   stopped before the sweep, so both columns come from one run (goal: busy within 2x of quiet).
5. 100 configurations (100 random K = 10 games, step sizes from 0.05 to 2, beta = 0.1) x 10,000 OMD
   steps as one batched `run_dynamics` call (goal: < 2 s), against a Python loop of 100 single calls
   (goal: the batch at least 20x faster). Both sides compute the same policies; the duality gaps are
   evaluated on demand by `Trajectory`, so their cost is reported separately, once.
Timing: best block median over interleaved blocks (see _common.interleaved_medians); the loop is
timed on a few configurations and scaled to 100, since a full loop takes half a minute per call.
A CPU bound to read the busy column by: N spinning processes on C cores leave a process at most
C / (N + 1) cores per thread it runs, so with N = C = 2 a single-threaded solver gets 2/3 of a core
where the quiet run had two.
Threads: the library takes no thread decision in its solvers (issue 25): they run on torch's intra-op threads, whatever
the load. `--threads N` is this script's own, explicit choice (torch.set_num_threads(N) here and in the fresh process of
item 3); on a shared machine, compare runs at the same N. `run_dynamics` runs its loop on one thread by default (its
`threads` argument).
Run: .venv/bin/python benchmarks/nash.py [--quick] [--device cuda] [--busy N] [--threads N]
Last line: ne_k1000_s=<s> batch_s=<s> speedup_vs_loop=<x> reg_small_beta_s=<s> cold_ne_s=<s> busy_ratio=<x>
(busy_ratio: the largest busy / quiet ratio of the three; with --quick the sizes are smaller, same keys).
"""
import argparse
import multiprocessing
import os
import subprocess
import sys
import time

import torch
from _common import interleaved_medians, stable_allocator, sync

from prefbench_lib.core import get_device
from prefbench_lib.nash import duality_gap, nash_equilibrium, preference_matrix, regularized_nash, run_dynamics


COLD = """
import time, torch
if {threads}: torch.set_num_threads({threads})
from prefbench_lib.nash import nash_equilibrium, preference_matrix
P = preference_matrix("random", {K}, seed=0)
t0 = time.perf_counter(); nash_equilibrium(P); print(time.perf_counter() - t0)
"""


def spin():
    "Keep one core busy until killed."
    while True: pass


def cold_call(K: int, processes: int, threads: int | None = None) -> float:
    "Seconds of the first nash_equilibrium call in a fresh process (no allocator pin, `threads` intra-op threads); the best of `processes` processes."
    return min(float(subprocess.run([sys.executable, "-c", COLD.format(K=K, threads=threads or 0)], capture_output=True, text=True,
                                    check=True).stdout.split()[-1]) for _ in range(processes))


def equilibria(P, dev, reps: int) -> dict:
    "Seconds of the interior point, and of regularized_nash at beta = 1e-5 (warm start), on P."
    ne = interleaved_medians({"ipm": lambda: nash_equilibrium(P)}, dev, reps=reps, block=1)["ipm"]
    reg = interleaved_medians({"reg": lambda: regularized_nash(P, beta=1e-5)}, dev, reps=max(2, reps // 2), block=1)["reg"]
    return {"nash_equilibrium": ne, "regularized_nash beta=1e-5": reg}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: K = 100, 10 configurations x 500 steps")
    ap.add_argument("--device", default=None)
    ap.add_argument("--reps", type=int, default=None, help="timed calls per side (default 5, quick 2)")
    ap.add_argument("--busy", type=int, default=2, help="spinning processes for the busy column (0: skip it)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads for the whole run (default: torch's own setting)")
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    dev = get_device(a.device)
    K_ne, B, T, K = (100, 10, 500, 10) if a.quick else (1000, 100, 10_000, 10)
    reps = a.reps or (2 if a.quick else 5)
    print(f"device={dev} threads={torch.get_num_threads()} cores={os.cpu_count()} load average {os.getloadavg()[0]:.2f}; "
          f"{stable_allocator()}")

    # 1-3, quiet. The cold call first, in a fresh process that does not pin the allocator.
    quiet = {"cold nash_equilibrium (fresh process)": cold_call(K_ne, 1 if a.quick else 3, a.threads)}
    P_big = preference_matrix("random", K_ne, seed=0, device=dev)
    nash_equilibrium(P_big)  # warm-up (LAPACK / CUDA initialisation)
    quiet.update(equilibria(P_big, dev, reps))
    pi = nash_equilibrium(P_big)
    t0 = time.perf_counter(); pi_scipy = nash_equilibrium(P_big, method="scipy"); scipy_s = time.perf_counter() - t0
    print(f"nash_equilibrium K={K_ne}: interior point {quiet['nash_equilibrium']:.3f} s (support {int((pi > 0).sum())}, exploitability "
          f"{float(duality_gap(pi, P_big)):.1e}); scipy HiGHS {scipy_s:.3f} s (exploitability {float(duality_gap(pi_scipy, P_big)):.1e}); "
          f"max |difference| {float((pi - pi_scipy).abs().max()):.1e}")
    reg = {}
    for beta_ in (0.1, 1e-5):
        for warm in (True, False):
            t0 = time.perf_counter(); x = regularized_nash(P_big, beta=beta_, warm_start=warm); sync(dev)
            reg[beta_, warm] = (time.perf_counter() - t0, float(duality_gap(x, P_big, beta=beta_)))
    print("regularized_nash K=%d (one call each): " % K_ne + "; ".join(
        f"beta {b:g} {'warm start' if w else 'continuation'} {t:.3f} s (gap {g:.0e})" for (b, w), (t, g) in reg.items()))

    # 4. the same three with the cores busy, in the same run
    busy = {}
    if a.busy:
        hogs = [multiprocessing.Process(target=spin, daemon=True) for _ in range(a.busy)]
        for h in hogs: h.start()
        try:
            time.sleep(1.0)  # let the scheduler see them
            busy = {"cold nash_equilibrium (fresh process)": cold_call(K_ne, 1 if a.quick else 3, a.threads), **equilibria(P_big, dev, reps)}
        finally:
            for h in hogs: h.terminate()
            for h in hogs: h.join()
        print(f"{'':40s} {'quiet':>9s} {'busy (' + str(a.busy) + ' spinning)':>20s} {'ratio':>7s}")
        for k in quiet: print(f"{k:40s} {quiet[k]:8.3f}s {busy[k]:19.3f}s {busy[k] / quiet[k]:6.2f}x")
    ratio = max(busy[k] / quiet[k] for k in quiet) if busy else float("nan")

    # 5. batched sweep vs loop (quiet)
    P = torch.stack([preference_matrix("random", K, seed=s, device=dev) for s in range(B)])
    eta = torch.linspace(0.05, 2.0, B, dtype=torch.float64, device=dev)
    beta = 0.1
    batch = lambda: run_dynamics(P, "omd", beta=beta, eta=eta, steps=T)
    n_loop = min(B, 3 if not a.quick else B)  # configurations timed in the loop; scaled to B
    loop = lambda: [run_dynamics(P[i], "omd", beta=beta, eta=float(eta[i]), steps=T) for i in range(n_loop)]
    times = interleaved_medians({"batch": batch, "loop": loop}, dev, reps=reps, block=1)
    batch_s, loop_s = times["batch"], times["loop"] * B / n_loop
    tr = batch()
    ok = all(torch.allclose(tr.policies[i], run_dynamics(P[i], "omd", beta=beta, eta=float(eta[i]), steps=T).policies, atol=1e-12, rtol=0)
             for i in range(0, B, max(1, B // 4)))
    sync(dev); t0 = time.perf_counter(); _ = (tr.duality_gap, tr.average_duality_gap); sync(dev); gap_s = time.perf_counter() - t0
    print(f"run_dynamics omd, {B} configurations x {T} steps, K={K}: batched {batch_s:.3f} s; loop {loop_s:.3f} s "
          f"(timed on {n_loop}, scaled to {B}); batch equals loop: {ok}")
    print(f"evaluating both duality gaps at every step of the batch (on first access): {gap_s:.3f} s")
    ne, cold, reg_s = quiet["nash_equilibrium"], quiet["cold nash_equilibrium (fresh process)"], quiet["regularized_nash beta=1e-5"]
    if a.quick: print("goals: not checked in a --quick run (they apply to K = 1000 and 100 x 10,000)")
    else:
        verdict = lambda ok: "met" if ok else "MISSED"
        print(f"goals: nash_equilibrium < 1 s: {verdict(ne < 1)}; batch < 2 s: {verdict(batch_s < 2)}; "
              f"speedup >= 20x: {verdict(loop_s / batch_s >= 20)}; regularized_nash at beta 1e-5 < 2 s: {verdict(reg_s < 2)}; "
              f"cold nash_equilibrium < 0.2 s: {verdict(cold < 0.2)}; busy within 2x of quiet: {verdict(ratio <= 2) if busy else 'not run'}")
    print(f"ne_k1000_s={ne:.4f} batch_s={batch_s:.4f} speedup_vs_loop={loop_s / batch_s:.1f} "
          f"reg_small_beta_s={reg_s:.4f} cold_ne_s={cold:.4f} busy_ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
