"""The toy bandit: the full sweep as one batched `run_bandit` call against a per-run Python loop.

1. Correctness: a per-run loop written here (one run's logits as a [K] tensor, the run's loss on its
   sorted batch, `torch.autograd.grad` w.r.t. the logits, the same normalised Adam step) reproduces
   `run_bandit`'s expected-reward trajectories, 8 algorithms x 2 reward peaks x 2 seeds x 50 steps,
   on-policy and offline: asserted to 1e-4 (the script stops if not) up to each run's first batch
   that differs between the two sides. On-policy, a uniform that falls within float rounding of a
   CDF boundary can pick the neighbouring token on one side only, and the runs part ways from there
   (see `compare`); the output names such runs. It shares with the library only the reference, the
   reward, the per-seed uniforms and the Adam step (`reference_distribution`, `bin_reward`,
   `_uniforms`, `_sample`, `adam_step`), never `run_bandit`'s training loop.
2. The sweep: 8 algorithms x 2 peaks (70, 20) x 10 seeds x 1000 steps, K = 100, as one `run_bandit`
   call (goal: < 5 s) against the loop doing the same 160 runs (goal: the batch >= 100x faster).
   The loop is timed on one seed per (algorithm, peak), 16 runs x 1000 steps, and scaled linearly to
   160 runs (a full loop takes minutes); the batched time includes building its frame of 8 metrics,
   the loop only records log pi and computes E_pi[r] at the end.
3. The MLP column: the authors' network (`preset("tajwar_ipo")`: D = 100 inputs, LayerNorm'd 50 features, two ReLU
   layers of 256, IPO on every pair of 10 samples, per-coordinate Adam, 100 pretraining steps) on one context, 2 peaks x S
   seeds, as one batched `train` call against a plain per-run loop of the same update (`train` called once per run, so the
   same code at R = 1), same threads; the frames must agree (1e-4), and the batch must not lose (goal: batched <= loop).
4. One default `run_bandit("sigmoid")` call (5 seeds x 300 steps; goal: < 0.05 s, what a dashboard
   redraw can afford), and the slowest default single call among the 8 algorithms.
With --busy N, N processes spin on the CPU for the whole run, so the timings show a busy machine.
Timing: best block median over interleaved blocks (see _common.interleaved_medians).
Run: .venv/bin/python benchmarks/toy.py [--quick] [--device cuda] [--threads N] [--busy N]
Last line: speedup_vs_loop=<x> sweep_s=<seconds> single_run_s=<seconds> mlp_batched_s=<seconds> mlp_loop_s=<seconds> (with --quick the sizes are
smaller, and the line reports them under the same keys).
"""
import argparse
import multiprocessing

import torch
from _common import interleaved_medians, stable_allocator

from prefbench_lib.core import adam_step, get_device, value_checks
from prefbench_lib.losses import Pair, get_loss
from prefbench_lib.toy import _sample, _uniforms, bandit_frame, bin_reward, preset, reference_distribution, run_bandit, train

ALGS = ["sft", "rwr", "reinforce", "ppo", "sigmoid", "ipo", "sigmoid_no_neg", "sft_push_down"]
CENTERS = [70.0, 20.0]


def loop_run(alg, regime, center, seed, *, steps, dev, K=100, N=10, lr=0.05, beta=0.1, width=10.0, dataset_size=1000,
             tau=0.1, push_down=1.0, clip=0.2, kl_coef=0.05):
    "One run, one step at a time, with autograd: E_pi[r] before each step and after the last [steps + 1], the batches [steps, N]."
    ref = reference_distribution(K).to(dev)
    log_ref, rew = ref.log(), bin_reward(K, center, width).to(dev)
    n_batches = dataset_size // N
    u_data, u_run = _uniforms([seed], n_batches, steps, N)  # the offline dataset's uniforms, then one row per step
    data = _sample(ref.cumsum(0), u_data[0].to(dev))  # [n_batches, N] offline dataset, drawn from pi_ref
    u_run = u_run[0][:, 0].to(dev)  # [steps, N]: the single context's row of each step
    pairwise = alg not in ("sft", "sft_push_down", "rwr", "reinforce", "ppo")
    pair_loss = get_loss(alg.removesuffix("_no_neg")) if pairwise else None
    ones = torch.ones(1, device=dev)
    z = log_ref.clone().requires_grad_()  # logits, initialised at pi_ref
    m, v = torch.zeros(K, device=dev), torch.zeros(1, device=dev)
    hist = torch.empty(steps + 1, K, device=dev)
    batches = torch.empty(steps, N, dtype=torch.long, device=dev)
    for t in range(steps):
        logp = torch.log_softmax(z, -1)
        hist[t] = logp.detach()
        acts = data[t % n_batches] if regime == "offline" else _sample(logp.detach().exp().cumsum(0), u_run[t])
        batches[t] = acts
        r, idx = torch.sort(rew[acts], descending=True, stable=True)
        acts = acts[idx]
        lp = logp[acts]  # log pi of the samples, best first
        if alg == "sft": loss = -lp[0]
        elif alg == "sft_push_down": loss = -lp[0] + push_down * lp[-1]
        elif alg == "rwr": loss = -(torch.softmax(r / tau, 0) * lp).sum()
        elif alg in ("reinforce", "ppo"):
            A = r - (r.sum() - r) / (N - 1)  # leave-one-out baseline
            if alg == "reinforce": loss = -(A * lp).mean()
            else:  # clipped surrogate on a fresh batch (ratio 1) + kappa KL(pi || pi_ref), exact
                ratio = (lp - lp.detach()).exp()
                loss = -torch.minimum(ratio * A, ratio.clamp(1 - clip, 1 + clip) * A).mean()
                loss = loss + kl_coef * (logp.exp() * (logp - log_ref)).sum()
        else:  # (best, worst) pair; a tie carries no preference; `_no_neg` stops the rejected side's gradient
            ref_lp = log_ref[acts]
            rej = lp[-1:].detach() if alg.endswith("_no_neg") else lp[-1:]
            out = pair_loss(Pair(lp[:1], rej, ref_lp[:1], ref_lp[-1:], chosen_lengths=ones, rejected_lengths=ones), beta=beta)
            loss = out.losses.sum() * (r[0] > r[-1])
        (grad,) = torch.autograd.grad(loss, z)
        with torch.no_grad(): adam_step(z, grad, m, v, t + 1, lr, per_run=True)
    with torch.no_grad(): hist[steps] = torch.log_softmax(z, -1)
    return hist.exp() @ rew, batches


def loop(runs, steps, dev):
    with value_checks(False):  # as run_bandit: no NaN scan per loss call
        return [loop_run(a, g, c, s, steps=steps, dev=dev) for a, g, c, s in runs]


def compare(frame, runs, results, steps, N=10, dataset_size=1000):
    """Per run: (first step whose batch differs, max |E_pi[r] difference| up to and including it, over all steps).

    On-policy, a batch is drawn from the current policy by inverse CDF; a uniform that falls within float rounding of
    a CDF boundary (cumulative sums of 100 probabilities differ in the last bits) can pick the neighbouring token on one
    side only, and from then on the two runs follow different (equally valid) trajectories. So the sides must agree up
    to the first batch that differs; run_bandit's batches are redrawn here from its recorded policy and the same uniforms.
    """
    pis = [f"pi_{k}" for k in range(frame.filter(like="pi_").shape[1])]
    groups = dict(list(frame.groupby(["algorithm", "regime", "reward_center", "seed"], observed=True, sort=False)))
    out = []
    for (alg, regime, c, seed), (er, batches) in zip(runs, results):
        g = groups[(alg, regime, c, seed)]
        er_lib = torch.tensor(g["expected_reward"].to_numpy(), dtype=torch.float32)
        er, batches = er.cpu(), batches.cpu()
        first, margin = steps, float("nan")
        if regime == "on_policy":
            cdf = torch.tensor(g[pis].to_numpy()[:-1], dtype=torch.float32).cumsum(-1)  # [steps, K]
            u = _uniforms([seed], dataset_size // N, steps, N)[1][0][:, 0]  # [steps, N]: the single context
            differ = (_sample(cdf, u) != batches).any(-1).nonzero()
            if len(differ):
                first = int(differ[0])
                margin = float((cdf[first, None] - u[first, :, None]).abs().min())  # nearest uniform to a CDF boundary
        d = (er_lib - er).abs()
        out.append((first, float(d[:first + 1].max()), float(d.max()), margin))
    return out


def summary(cmp, runs, steps):
    same = [c for c in cmp if c[0] == steps]
    txt = f"{len(same)}/{len(cmp)} runs draw the same batches throughout"
    if same: txt += f" (max |E_pi[r] difference| {max(c[1] for c in same):.1e})"
    for (alg, _, center, seed), (first, upto, after, margin) in zip(runs, cmp):
        if first < steps:
            txt += (f"; {alg} c={center:g} seed {seed}: a different batch from step {first} (a uniform {margin:.0e} from "
                    f"a CDF boundary), max difference {upto:.1e} up to it, {after:.1e} after")
    return txt


def mlp_sweep(seeds, steps, dev, **changes):
    "The authors' MLP setup on one context, every (peak, seed) in one batched `train` call: its frame."
    cfg = preset("tajwar_ipo", contexts=1, seeds=list(seeds), steps=steps, device=str(dev), **changes)
    return bandit_frame(train(cfg, progress=False), cfg)


def mlp_loop(seeds, steps, dev, **changes):
    "The same runs as a plain loop, one `train` call per (peak, seed): their frames, in the sweep's row order."
    frames = []
    for c in (20.0, 70.0):
        for s in seeds:
            cfg = preset("tajwar_ipo", contexts=1, reward_center=[c], seeds=[s], steps=steps, device=str(dev), **changes)
            frames.append(bandit_frame(train(cfg, progress=False), cfg))
    return frames


def spin():
    "Keep one core busy until killed."
    while True: pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 seeds x 30 steps, the check at 20 steps")
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--reps", type=int, default=None, help="timed calls per side (default 3, quick 1)")
    ap.add_argument("--busy", type=int, default=0, help="spinning processes to run alongside (a busy machine)")
    a = ap.parse_args()
    hogs = [multiprocessing.Process(target=spin, daemon=True) for _ in range(a.busy)]
    for h in hogs: h.start()
    if a.threads: torch.set_num_threads(a.threads)
    dev = get_device(a.device)
    S, T, T_check, T_single = (2, 30, 20, 30) if a.quick else (10, 1000, 50, 300)
    reps = a.reps or (1 if a.quick else 3)
    print(f"device={dev} threads={torch.get_num_threads()} busy={a.busy}; {stable_allocator()}")

    # 1. the loop does the same updates as run_bandit
    regimes, seeds = ["on_policy", "offline"], [0, 1]
    check_runs = [(al, g, c, s) for al in ALGS for g in regimes for c in CENTERS for s in seeds]
    frame = run_bandit(ALGS, reward_center=CENTERS, regime=regimes, seeds=seeds, steps=T_check, device=dev,
                       record_policy=True, progress=False)
    cmp = compare(frame, check_runs, loop(check_runs, T_check, dev), T_check)
    # equal up to the first differing batch, and a batch differs only where a uniform lies within 1e-4 of a CDF boundary
    ok = max(c[1] for c in cmp) <= 1e-4 and all(c[3] <= 1e-4 for c in cmp if c[0] < T_check)
    print(f"correctness: loop vs run_bandit, {len(ALGS)} algorithms x {len(CENTERS)} peaks x {len(regimes)} regimes x "
          f"{len(seeds)} seeds x {T_check} steps: {summary(cmp, check_runs, T_check)}; tolerance 1e-4: {'passed' if ok else 'FAILED'}")
    if not ok: raise SystemExit("the per-run loop does not reproduce run_bandit: timings would not compare equal work")

    # 2. the sweep, batched vs loop
    sweep = lambda: run_bandit(ALGS, reward_center=CENTERS, seeds=S, steps=T, device=dev, progress=False)
    timed = [(al, "on_policy", c, 0) for al in ALGS for c in CENTERS]  # one seed per (algorithm, peak); scaled to all seeds
    n_all = len(ALGS) * len(CENTERS) * S
    sweep(); loop(timed[:1], 5, dev)  # warm-up
    times = interleaved_medians({"sweep": sweep, "loop": lambda: loop(timed, T, dev)}, dev, reps=reps, block=1)
    sweep_s, loop_s = times["sweep"], times["loop"] * n_all / len(timed)
    print(f"sweep, {len(ALGS)} algorithms x {len(CENTERS)} peaks x {S} seeds x {T} steps, K=100, on-policy: batched "
          f"run_bandit {sweep_s:.3f} s; loop {loop_s:.2f} s (timed {len(timed)} runs x {T} steps = {times['loop']:.3f} s: "
          f"seed 0 of every (algorithm, peak), scaled x{n_all / len(timed):g} to {n_all} runs); {loop_s / sweep_s:.1f}x")
    long = run_bandit(ALGS, reward_center=CENTERS, seeds=[0], steps=T, device=dev, record_policy=True, progress=False)
    print(f"  the timed loop runs vs run_bandit over all {T} steps (not asserted): "
          f"{summary(compare(long, timed, loop(timed, T, dev), T), timed, T)}")

    # 3. the MLP column: batched against a plain per-run loop of the same update, same threads
    S_mlp, T_mlp = (2, 5) if a.quick else (5, 30)
    seeds_mlp = list(range(S_mlp))
    # the agreement check with the per-run normalised step (smooth in the gradient); per-coordinate Adam gives a coordinate whose
    # gradient is 0 up to float rounding (which differs between a batched and a single bmm) a full step, so with it the two
    # sides part by ~1e-3 from the first step on: reported, not asserted
    diff = lambda **ch: float((torch.tensor(mlp_sweep(seeds_mlp, T_mlp, dev, **ch).expected_reward.to_numpy()) - torch.tensor(
        [x for f in mlp_loop(seeds_mlp, T_mlp, dev, **ch) for x in f.expected_reward.to_numpy()])).abs().max())
    mlp_diff, adam_diff = diff(optimizer="normalized"), diff()
    print(f"MLP correctness: batched vs per-run loop, 2 peaks x {S_mlp} seeds x {T_mlp} steps, normalised step: max |E_pi[r] "
          f"difference| {mlp_diff:.1e}; tolerance 1e-4: {'passed' if mlp_diff <= 1e-4 else 'FAILED'} (with the preset's "
          f"per-coordinate Adam, not asserted: {adam_diff:.1e})")
    if mlp_diff > 1e-4: raise SystemExit("the MLP loop does not reproduce the batched sweep: timings would not compare equal work")
    mt = interleaved_medians({"batched": lambda: mlp_sweep(seeds_mlp, T_mlp, dev), "loop": lambda: mlp_loop(seeds_mlp, T_mlp, dev)},
                             dev, reps=reps, block=1)
    n_mlp = 2 * S_mlp
    print(f"MLP sweep (the authors' network, 1 context), 2 peaks x {S_mlp} seeds = {n_mlp} runs x {T_mlp} steps + 100 pretraining "
          f"steps: batched {mt['batched']:.3f} s, plain per-run loop {mt['loop']:.3f} s ({1e3 * mt['loop'] / T_mlp:.0f} vs "
          f"{1e3 * mt['batched'] / T_mlp:.0f} ms per step, pretraining included); batched/loop = {mt['batched'] / mt['loop']:.2f}; "
          f"goal batched <= loop: {'met' if mt['batched'] <= mt['loop'] else 'MISSED'}")

    # 4. single default calls
    singles = {al: (lambda al=al: run_bandit(al, steps=T_single, device=dev, progress=False)) for al in ALGS}
    for f in singles.values(): f()  # warm-up
    single = interleaved_medians(singles, dev, reps=2 * reps, block=3)
    slow = max(single, key=single.get)
    print(f"single run_bandit call, default (5 seeds x {T_single} steps): " + ", ".join(f"{k} {v:.3f} s" for k, v in single.items()))
    print(f"  sigmoid {single['sigmoid']:.3f} s; slowest {slow} {single[slow]:.3f} s")
    if a.quick: print("goals: not checked in a --quick run (they apply to 160 runs x 1000 steps and 5 seeds x 300 steps)")
    else: print(f"goals: sweep < 5 s: {'met' if sweep_s < 5 else 'MISSED'}; speedup >= 100x: "
                f"{'met' if loop_s / sweep_s >= 100 else 'MISSED'}; single sigmoid run < 0.05 s: "
                f"{'met' if single['sigmoid'] < 0.05 else 'MISSED'}")
    for h in hogs: h.terminate()
    print(f"speedup_vs_loop={loop_s / sweep_s:.1f} sweep_s={sweep_s:.4f} single_run_s={single['sigmoid']:.4f} "
          f"mlp_batched_s={mt['batched']:.4f} mlp_loop_s={mt['loop']:.4f}")


if __name__ == "__main__":
    main()
