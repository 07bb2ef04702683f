"""prefbench's tiny-LM preference step against TRL 1.16's DPOTrainer: time per step, tokens/s and peak memory, side by side.

Both trainers get the same tiny model (the Llama `build_model` makes: hidden 64, 2 layers by default, saved once
and loaded by both from that directory), the same pairs (`preference_dataset(Language(), n, "rare_peak", seed=0)`),
the same batch size (32 pairs), the same loss (sigmoid, beta 0.1) and AdamW at the same lr (constant), all float32.
TRL gets the prompt as "<bos>" + prompt text, so its tokenisation is prefbench's to the token (checked on every pair):
prompt ids <bos> + prompt tokens, completion ids tokens + <eos>.

1. A loss check before timing: both trainers' policies moved off the reference by the same noise; on each TRL
   trainer's own first batch, TRL's `compute_loss` and prefbench's `preference_loss` (policy log-probs by
   `batch_logps` on TRL's token ids, reference log-probs from prefbench's cache, looked up by example) agree to 1e-5;
   TRL's precomputed reference log-probs agree with prefbench's cache to 1e-5.
2. ms/step and tokens/s (non-pad tokens through the policy per second, the batch's expected count) of three steps,
   interleaved block by block (see _common.interleaved_medians) after warm-up:
   - prefbench: exactly what `lm_train.train` runs per offline step, `lm_train.train_step` (one [chosen; rejected]
     forward of the pre-encoded pairs, the cached reference log-probs, `preference_loss`, backward, fused AdamW,
     zero_grad, the gathered metrics row), on one intra-op thread on CPU as `train` runs it;
   - TRL with its defaults (a reference forward every step, gradient checkpointing on);
   - TRL with `precompute_ref_log_probs=True` and `gradient_checkpointing=False`, its fastest fair setting.
   TRL is timed inside its own `trainer.train()`: it runs in a thread that a callback stops at every `on_step_end`
   until the timer lets it go on, so one timed call is exactly one iteration of Trainer's loop (data loading and
   collation, forward, backward, grad clipping, fused AdamW, scheduler, callbacks, metric logging), with nothing
   of ours inside it. (Calling `training_step` by hand would leave out what the loop adds around it; subtracting a
   0-step `train()` could not be interleaved.) The hand-off between threads costs a few hundredths of a ms,
   timed the same way and printed as "handoff".
   The one-off reference pass (prefbench's `_logps_of` over the dataset, TRL's `_precompute_ref_logps`) is
   timed once each and reported apart.
3. Peak memory, each side in a fresh subprocess that imports the same modules (torch, transformers, datasets, trl,
   prefbench_lib) and pins the allocator: on CPU the peak resident set (VmHWM, reset through /proc/self/clear_refs:
   tracemalloc does not see torch's allocations) above the RSS after imports, from loading the models through the
   reference pass and N steps; on CUDA `torch.cuda.max_memory_allocated` over the same span. The peak during the
   steps alone, above the RSS before the first step, is printed beside it.
Goal: prefbench at least 2x faster per step than TRL's fastest setting, at equal or lower peak memory.
Run: .venv/bin/python benchmarks/lm_step.py [--quick] [--device cuda] [--hidden H] [--layers L] [--batch B] [--profile]
(--profile adds a cProfile of TRL's fastest setting's steps, top functions by own time.)
Last line: speedup_vs_trl=<x> speedup_vs_trl_precomputed=<x> peak_mem_ratio_vs_trl=<x>
(speedups: TRL ms/step / prefbench ms/step, > 1 when prefbench is faster; the memory ratio is prefbench / TRL
precomputed, the fastest TRL setting; with --quick the sizes are smaller, same keys).
"""
import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
import torch
from _common import interleaved_medians, stable_allocator, sync

SIDES = ("prefbench", "trl", "trl_precomputed")


# ---------------------------------------------------------------- set-up shared by both sides

def setup(a, d: Path):
    "Tokenizer, pairs, the model saved to `d`, prefbench's encoded pairs; (cfg, tokenizer, ds, P, Cc, Cr)."
    from transformers.utils import logging as hf_logging
    from prefbench_lib.lm_data import Language, build_tokenizer, preference_dataset, save_tokenizer
    from prefbench_lib.lm_train import TrainConfig, build_model, encode
    hf_logging.set_verbosity_error(); hf_logging.disable_progress_bar()
    import datasets; datasets.disable_progress_bars()
    lang = Language()
    cfg = TrainConfig(hidden_size=a.hidden, layers=a.layers, batch_size=a.batch, pairs=a.pairs, loss_type=["sigmoid"], beta=0.1, lr=1e-3)
    tok = build_tokenizer(lang)
    if not (d / "model.safetensors").is_file():
        build_model(cfg, tok).save_pretrained(d, safe_serialization=True); save_tokenizer(tok, d)
    ds = preference_dataset(lang, a.pairs, "rare_peak", seed=0)
    P, Cc, Cr = encode(tok, ds["prompt"], prompt=True), encode(tok, ds["chosen"], prompt=False), encode(tok, ds["rejected"], prompt=False)
    return cfg, tok, ds, P, Cc, Cr


def perturb(model, seed: int = 2, scale: float = 0.05):
    "Move a policy off the reference (the same noise for both sides), so the first losses are not all log 2."
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()): p.add_((scale * torch.randn(p.shape, generator=g)).to(p.device))


# ---------------------------------------------------------------- prefbench

class Prefbench:
    "prefbench's offline preference stage: policy and reference from the saved directory, cached reference log-probs, one `lm_train.Run`."
    def __init__(self, cfg, d: Path, P, Cc, Cr, pad: int, dev):
        from types import SimpleNamespace
        from accelerate import Accelerator
        from transformers import AutoModelForCausalLM
        from prefbench_lib.lm_train import Batches, Examples, Reading, Run, _logps_of, _optimizer
        load = lambda: AutoModelForCausalLM.from_pretrained(d, local_files_only=True).to(dev)
        self.cfg, self.P, self.Cc, self.Cr, self.pad, self.dev = cfg, P, Cc, Cr, pad, dev
        self.reference, self.policy = load().eval(), load().train()
        for p in self.reference.parameters(): p.requires_grad_(False)
        sync(dev); t0 = time.perf_counter()  # the one-off reference pass, as `train` does it before the first step
        self.ref = (_logps_of(self.reference, P, Cc, pad), _logps_of(self.reference, P, Cr, pad))
        sync(dev); self.precompute_s = time.perf_counter() - t0
        self.run = Run(cfg, SimpleNamespace(pad_token_id=pad), None, Accelerator(cpu=dev.type == "cpu"), policy=self.policy,
                       reference=self.reference, opt=_optimizer(cfg.optimizer, self.policy.parameters(), cfg.lr),  # as `train` makes it (fused where torch has one)
                       batches=Batches(len(P), cfg.batch_size, cfg.seed), examples=Examples(P, [[c, r] for c, r in zip(Cc, Cr)], {}),
                       cache=Reading(torch.stack(self.ref, 1)))  # [n, 2], the reading `train` caches

    def step(self) -> dict:
        "One step exactly as `train` takes it: `lm_train.train_step` on the batch `train` would draw from its source, on one thread on CPU."
        from prefbench_lib.core import one_thread
        from prefbench_lib.lm_train import SOURCES, train_step
        idx = self.run.batches.next().tolist()
        with one_thread(self.dev.type == "cpu"):
            return train_step(self.run, *SOURCES[self.cfg.mode].batch(self.run, idx))


# ---------------------------------------------------------------- TRL

def trl_trainer(cfg, d: Path, ds, tok, dev, *, precompute: bool, out: Path, max_steps: int, callbacks=()):
    "A DPOTrainer on the same model, pairs, loss, batch size and lr; TRL's defaults, or precomputed without checkpointing."
    import trl
    opts = dict(precompute_ref_log_probs=True, gradient_checkpointing=False) if precompute else {}
    args = trl.DPOConfig(output_dir=str(out), loss_type=["sigmoid"], beta=cfg.beta, per_device_train_batch_size=cfg.batch_size,
                         learning_rate=cfg.lr, lr_scheduler_type="constant", max_steps=max_steps, save_strategy="no",
                         report_to="none", use_cpu=dev.type == "cpu", bf16=False, dataloader_num_workers=0,
                         disable_tqdm=True, seed=cfg.seed, **opts)
    # "<bos>" + prompt: TRL tokenises the prompt without specials and appends <eos> to completions, so this is prefbench's encode
    ds = ds.map(lambda row: {"prompt": tok.bos_token + row["prompt"]})
    timer = {}
    original = trl.DPOTrainer._precompute_ref_logps
    def timed(self, *a_, **k):
        sync(dev); t0 = time.perf_counter(); r = original(self, *a_, **k); sync(dev)
        timer["s"] = timer.get("s", 0.0) + time.perf_counter() - t0
        return r
    trl.DPOTrainer._precompute_ref_logps = timed
    try: t = trl.DPOTrainer(model=str(d), args=args, train_dataset=ds, processing_class=tok, callbacks=list(callbacks))
    finally: trl.DPOTrainer._precompute_ref_logps = original
    from transformers.trainer_callback import PrinterCallback
    t.remove_callback(PrinterCallback)  # its end-of-training summary on stdout would bury the report (logging itself still runs)
    t.precompute_s = timer.get("s", float("nan"))
    return t


class Stepper:
    "Runs `trainer.train()` in a thread that waits at every on_step_end: `step()` lets exactly one loop iteration run."
    def __init__(self, trainer_factory):
        from transformers import TrainerCallback
        outer = self
        class Gate(TrainerCallback):
            def on_train_begin(self, args, state, control, **kw): outer._done.release(); outer._go.acquire()
            def on_step_end(self, args, state, control, **kw):
                outer.steps += 1
                outer._done.release(); outer._go.acquire()
                if outer._stop: control.should_training_stop = True
        self._go, self._done, self._stop, self.error, self.steps = threading.Semaphore(0), threading.Semaphore(0), False, None, 0
        self.trainer = trainer_factory(Gate())
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start(); self._done.acquire()  # it has reached on_train_begin
        if self.error: raise self.error

    def _run(self):
        try: self.trainer.train()
        except BaseException as e: self.error = e
        finally: self._done.release()

    def step(self):
        self._go.release(); self._done.acquire()
        if self.error: raise RuntimeError("TRL's train() failed") from self.error

    def close(self):
        self._stop = True; self._go.release(); self._thread.join()
        if self.error: raise RuntimeError("TRL's train() failed") from self.error


# ---------------------------------------------------------------- the loss check

def check_losses(pb: Prefbench, trainers: dict, tok, P, Cc, Cr) -> float:
    "Largest |TRL loss - prefbench loss| on each TRL trainer's first batch; asserts equal tokenisation and reference log-probs."
    from prefbench_lib.lm_train import Batch, PairLogps, batch_logps, preference_loss
    key = lambda p, c: tuple(torch.cat([p, c]).tolist())
    where = {}
    for i in range(len(P)): where.setdefault((key(P[i], Cc[i]), key(P[i], Cr[i])), i)
    worst = 0.0
    for name, t in trainers.items():
        ex = t.train_dataset
        for i in range(len(P)):  # TRL tokenised every pair exactly as prefbench's encode
            if ex[i]["prompt_ids"] != P[i].tolist() or ex[i]["chosen_ids"] != Cc[i].tolist() or ex[i]["rejected_ids"] != Cr[i].tolist():
                raise AssertionError(f"{name}: pair {i} tokenised differently: TRL {ex[i]['prompt_ids']}+{ex[i]['chosen_ids']}, "
                                     f"prefbench {P[i].tolist()}+{Cc[i].tolist()}")
        if "ref_chosen_logps" in ex.column_names:
            d = max((torch.tensor(ex["ref_chosen_logps"]) - pb.ref[0]).abs().max(), (torch.tensor(ex["ref_rejected_logps"]) - pb.ref[1]).abs().max())
            if d > 1e-5: raise AssertionError(f"{name}: precomputed reference log-probs differ from prefbench's cache by {float(d):.2e}")
        batch = next(iter(t.get_train_dataloader()))
        t.model.train()
        with torch.no_grad(): trl_loss = float(t.compute_loss(t.model, batch))
        b = Batch(batch["input_ids"], batch["attention_mask"], batch["completion_mask"]).to(pb.dev)
        ids, m = b.input_ids.cpu(), b.completion_mask.cpu().bool()
        B = len(ids) // 2
        rows = [where[(tuple(ids[j][ids[j] != tok.pad_token_id].tolist()), tuple(ids[B + j][ids[B + j] != tok.pad_token_id].tolist()))] for j in range(B)]
        with torch.no_grad(): pc, pr = batch_logps(pb.policy, b).chunk(2)
        n = m.sum(1).float().to(pb.dev)
        ours = float(preference_loss(pb.cfg, PairLogps(pc, pr, pb.ref[0][rows].to(pb.dev), pb.ref[1][rows].to(pb.dev)), *n.chunk(2)).loss)
        print(f"loss check ({name} first batch, {B} pairs): TRL {trl_loss:.7f}, prefbench {ours:.7f}, |difference| {abs(trl_loss - ours):.1e}")
        worst = max(worst, abs(trl_loss - ours))
    return worst


# ---------------------------------------------------------------- peak memory (one side per subprocess)

def _status() -> dict:
    return {k: int(v.split()[0]) * 1024 for k, v in (l.split(":", 1) for l in open("/proc/self/status")) if k in ("VmHWM", "VmRSS")}


class Peak:
    "Peak memory from `start()`: process VmHWM above the RSS then (CPU), or torch.cuda.max_memory_allocated (CUDA)."
    def __init__(self, dev): self.dev = dev

    def reset(self):
        if self.dev.type == "cuda": torch.cuda.reset_peak_memory_stats(); return torch.cuda.memory_allocated()
        open("/proc/self/clear_refs", "w").write("5")
        return _status()["VmRSS"]

    def peak(self):
        return torch.cuda.max_memory_allocated() if self.dev.type == "cuda" else _status()["VmHWM"]


def memory_child(a, side: str) -> dict:
    "Peak bytes of one side (run in a fresh process): whole span above the import baseline, and the steps alone."
    import datasets, transformers, trl  # noqa: F401  (the same imports on every side)
    import prefbench_lib.lm_data, prefbench_lib.lm_train  # noqa: F401
    stable_allocator()
    from prefbench_lib.core import get_device
    dev = get_device(a.device)
    if dev.type == "cuda": torch.zeros(1, device=dev); sync(dev)  # the CUDA context is not the trainer's
    meter = Peak(dev)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "model"
        setup(a, d)  # save the model first, outside the measured span
        base = meter.reset()
        cfg, tok, ds, P, Cc, Cr = setup(a, d)
        if side == "prefbench":
            pb = Prefbench(cfg, d, P, Cc, Cr, tok.pad_token_id, dev)
            setup_peak = meter.peak(); pre = meter.reset()
            for _ in range(a.mem_steps): pb.step()
            sync(dev); steps_peak = meter.peak()
        else:
            from transformers import TrainerCallback
            marks = {}
            class Mark(TrainerCallback):
                def on_train_begin(self, *a_, **k): marks["setup"] = meter.peak(); marks["pre"] = meter.reset()
            t = trl_trainer(cfg, d, ds, tok, dev, precompute=side == "trl_precomputed", out=Path(tmp) / "out",
                            max_steps=a.mem_steps, callbacks=[Mark()])
            t.train(); sync(dev)
            steps_peak, setup_peak, pre = meter.peak(), marks["setup"], marks["pre"]
    return {"peak": max(setup_peak, steps_peak) - base, "steps": steps_peak - pre}


def peak_memory(a, side: str) -> dict:
    argv = [sys.executable, __file__, "--_memory", side, "--hidden", str(a.hidden), "--layers", str(a.layers), "--batch", str(a.batch),
            "--pairs", str(a.pairs), "--mem-steps", str(a.mem_steps)] + (["--device", a.device] if a.device else [])
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode: raise RuntimeError(f"memory subprocess for {side} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: 16 pairs, batch 8, hidden 32, a few steps")
    ap.add_argument("--device", default=None)
    ap.add_argument("--hidden", type=int, default=None, help="hidden size (default 64, quick 32)")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=None, help="pairs per step (default 32, quick 8)")
    ap.add_argument("--pairs", type=int, default=None, help="preference pairs in the dataset (default 1024, quick 16)")
    ap.add_argument("--reps", type=int, default=None, help="timed steps per side (default 100, quick 4), in blocks of 10 (quick 2)")
    ap.add_argument("--mem-steps", type=int, default=None, help="steps in each memory subprocess (default 20, quick 2)")
    ap.add_argument("--profile", action="store_true", help="also cProfile TRL's fastest setting and print its top costs")
    ap.add_argument("--_memory", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    a.hidden = a.hidden or (32 if a.quick else 64)
    a.batch = a.batch or (8 if a.quick else 32)
    a.pairs = a.pairs or (16 if a.quick else 1024)
    a.mem_steps = a.mem_steps or (2 if a.quick else 20)
    reps, block = (a.reps or (4 if a.quick else 100)), (2 if a.quick else 10)
    warnings.filterwarnings("ignore"); logging.disable(logging.WARNING)
    if a._memory:
        print(json.dumps(memory_child(a, a._memory))); return

    from prefbench_lib.core import get_device
    dev = get_device(a.device)
    print(f"device={dev} threads={torch.get_num_threads()} cores={os.cpu_count()} load average {os.getloadavg()[0]:.2f}; {stable_allocator()}")
    import trl
    print(f"model: llama hidden {a.hidden}, {a.layers} layers; {a.pairs} pairs (rare_peak, seed 0), batch {a.batch} pairs; "
          f"sigmoid, beta 0.1, AdamW lr 1e-3; float32; TRL {trl.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp); d = tmp / "model"
        cfg, tok, ds, P, Cc, Cr = setup(a, d)
        pad = tok.pad_token_id
        tokens_per_step = a.batch * sum(2 * len(p) + len(c) + len(r) for p, c, r in zip(P, Cc, Cr)) / len(P)

        pb = Prefbench(cfg, d, P, Cc, Cr, pad, dev)
        steppers = {}
        try:
            for name, pre in (("trl", False), ("trl_precomputed", True)):
                steppers[name] = Stepper(lambda gate, pre=pre, name=name: trl_trainer(cfg, d, ds, tok, dev, precompute=pre, out=tmp / name,
                                                                                       max_steps=10**9, callbacks=[gate]))
            # the same policy start for all three, off the reference
            perturb(pb.policy)
            for s in steppers.values(): s.trainer.model.load_state_dict(pb.policy.state_dict())
            diff = check_losses(pb, {k: s.trainer for k, s in steppers.items()}, tok, P, Cc, Cr)
            print(f"loss check: max |TRL - prefbench| = {diff:.1e} (tolerance 1e-5): {'passed' if diff <= 1e-5 else 'FAILED'}")
            if diff > 1e-5: raise SystemExit("the two trainers compute different losses; timings would not compare like with like")
            gc_on = {k: bool(getattr(s.trainer.model, "is_gradient_checkpointing", False)) for k, s in steppers.items()}
            print(f"TRL gradient checkpointing (in train()): default {gc_on['trl']}, precomputed {gc_on['trl_precomputed']}; "
                  f"TRL optimizer {type(steppers['trl'].trainer.optimizer).__name__} "
                  f"(fused={steppers['trl'].trainer.optimizer.defaults.get('fused')}), max_grad_norm {steppers['trl'].trainer.args.max_grad_norm}; "
                  f"prefbench fused AdamW (lm_train._optimizer), one intra-op thread on CPU as `train` runs, no clipping")
            print(f"one-off reference pass over {a.pairs} pairs: prefbench {pb.precompute_s * 1e3:.1f} ms, "
                  f"TRL precompute_ref_log_probs {steppers['trl_precomputed'].trainer.precompute_s * 1e3:.1f} ms")

            fns = {"prefbench": pb.step, "trl": steppers["trl"].step, "trl_precomputed": steppers["trl_precomputed"].step}
            for _ in range(3 if a.quick else 10):  # warm-up: optimizer state, allocator, first logging
                for f in fns.values(): f()
            times = interleaved_medians(fns, dev, reps=reps, block=block)
            # the cost of the thread hand-off itself, timed the same way
            go, done = threading.Semaphore(0), threading.Semaphore(0)
            def echo():
                while True:
                    go.acquire(); done.release()
            threading.Thread(target=echo, daemon=True).start()
            handoff = interleaved_medians({"h": lambda: (go.release(), done.acquire())}, dev, reps=100, block=10)["h"]
            if a.profile: profile_trl(steppers["trl_precomputed"], 30)
        finally:
            for s in steppers.values(): s.close()

    print(f"{'':18s} {'ms/step':>9s} {'tokens/s':>10s}   (tokens/step {tokens_per_step:.0f}; TRL figures include a {handoff * 1e3:.2f} ms handoff)")
    for k in SIDES: print(f"{k:18s} {times[k] * 1e3:9.2f} {tokens_per_step / times[k]:10.0f}")
    mem = {k: peak_memory(a, k) for k in SIDES}
    unit = "MiB (torch.cuda.max_memory_allocated)" if dev.type == "cuda" else "MiB (VmHWM above the RSS after imports)"
    print(f"peak memory, {unit}, models + reference pass + {a.mem_steps} steps; in brackets the steps alone above the RSS before them:")
    for k in SIDES: print(f"{k:18s} {mem[k]['peak'] / 2**20:9.1f} ({mem[k]['steps'] / 2**20:.1f})")
    sp, spp = times["trl"] / times["prefbench"], times["trl_precomputed"] / times["prefbench"]
    mr = mem["prefbench"]["peak"] / mem["trl_precomputed"]["peak"]
    if a.quick: print("goals: not checked in a --quick run (they apply to the default sizes)")
    else:
        verdict = lambda ok: "met" if ok else "MISSED"
        print(f"goals: prefbench >= 2x faster than TRL's fastest setting: {verdict(spp >= 2)} ({spp:.2f}x); "
              f"peak memory <= TRL's fastest: {verdict(mr <= 1)} ({mr:.2f}x)")
    print(f"speedup_vs_trl={sp:.2f} speedup_vs_trl_precomputed={spp:.2f} peak_mem_ratio_vs_trl={mr:.2f}")


def profile_trl(stepper: Stepper, n: int):
    "cProfile of n TRL steps, in the trainer's own thread: a callback switches the profiler on and off there."
    import cProfile, io, pstats
    from transformers import TrainerCallback
    prof, seen = cProfile.Profile(), {"steps": 0}
    class Profile(TrainerCallback):  # runs after the gate's on_step_end, in the training thread
        def on_step_end(self, args, state, control, **kw):
            if seen["steps"] == 0: prof.enable()
            elif seen["steps"] == n: prof.disable()
            seen["steps"] += 1
    stepper.trainer.add_callback(Profile)
    for _ in range(n + 1): stepper.step()
    stepper.trainer.remove_callback(Profile)
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(15)
    print(f"cProfile of {n} steps of TRL (precomputed), top 15 by own time (the semaphore acquire is our gate):")
    print("\n".join(l for l in s.getvalue().splitlines() if l.strip()))


if __name__ == "__main__":
    main()
