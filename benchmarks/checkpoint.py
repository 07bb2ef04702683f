"""What a trustworthy checkpoint costs: lm_train's checkpoint (safetensors + JSON, fsync of every file, a SHA-256
manifest written last, one rename) against the plain way (save_pretrained plus torch.save pickles of the optimizer and
the loop state, no fsync, no manifest), side by side on the same model and optimizer, one thread on both sides; and the
resume: RunDir.resume (verify every file's checksum, then read it back checked) against torch.load of the pickles.

    python benchmarks/checkpoint.py                 # an 8-layer Llama of width 512 (about 34M parameters)
    python benchmarks/checkpoint.py --quick         # tiny, seconds (the test suite runs this)

Last line: save_ratio=... resume_ratio=... mb=... (prefbench / plain; mb: the checkpoint's size).
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved_medians, stable_allocator  # noqa: E402

from prefbench_lib import lm_train as L  # noqa: E402
from prefbench_lib.core import machine_busy  # noqa: E402
from prefbench_lib.lm_data import Language, build_tokenizer  # noqa: E402
from prefbench_lib.runs import RunDir  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--reps", type=int, default=6)
    p.add_argument("--quick", action="store_true", help="a tiny model, 2 repetitions")
    a = p.parse_args()
    if a.quick: a.hidden, a.layers, a.reps = 32, 1, 2
    print(stable_allocator()); torch.set_num_threads(1)
    print(f"threads: 1 on both sides; machine busy at start: {machine_busy()}")
    # BCO: a loss whose running shift is part of the checkpointed state
    cfg = L.TrainConfig(hidden_size=a.hidden, heads=max(1, a.hidden // 64), layers=a.layers, sft_steps=0, steps=10, loss_type=["bco"])
    lang = Language()
    tok, acc = build_tokenizer(lang), L._accelerator(cfg)
    model = L.build_model(cfg, tok)
    opt = L._optimizer("adamw", model.parameters(), 1e-3)
    for q in model.parameters(): q.grad = torch.randn_like(q) * 1e-3
    opt.step()  # the optimizer holds its two moments, as in a run
    root = Path(tempfile.mkdtemp(prefix="prefbench-ckpt-"))
    ours, plain = RunDir(root / "ours"), root / "plain"
    ours.path.mkdir(); plain.mkdir()
    run = L.Run(cfg, tok, lang, acc, ours, policy=model, opt=opt, batches=L.Batches(1000, 32, 0),
                rows=[{"step": s, "loss": 0.5} for s in range(1, 11)])
    run.batches.next()

    def save_ours(): L._save_checkpoint(run, 10)

    def save_plain():  # what a trainer without the guarantees writes: pickles, no flush to disk, no manifest
        tmp, d = plain / "step_000010.tmp", plain / "step_000010"
        shutil.rmtree(tmp, ignore_errors=True); shutil.rmtree(d, ignore_errors=True)
        model.save_pretrained(tmp / "policy", safe_serialization=True)
        torch.save(opt.state_dict(), tmp / "optimizer.pt")
        torch.save({"step": 10, "rng": L._rng_state(), "batches": run.batches.state(), "family": run.state}, tmp / "state.pt")
        os.replace(tmp, d)

    save_ours(); save_plain()
    other = L.build_model(cfg, tok)
    opt2 = L._optimizer("adamw", other.parameters(), 1e-3)
    run2 = L.Run(cfg, tok, lang, acc, ours, policy=other, opt=opt2, batches=L.Batches(1000, 32, 0))

    def resume_ours(): ours.resume(lambda ck: L._restore(run2, ck), L._required(cfg))

    def resume_plain():
        d = plain / "step_000010"
        L._load_weights(other, d / "policy")
        opt2.load_state_dict(torch.load(d / "optimizer.pt"))
        torch.load(d / "state.pt", weights_only=False)  # the pickle a crafted run directory abused

    cpu = torch.device("cpu")
    save = interleaved_medians({"ours": save_ours, "plain": save_plain}, cpu, a.reps, block=max(1, a.reps // 3))
    load = interleaved_medians({"ours": resume_ours, "plain": resume_plain}, cpu, a.reps, block=max(1, a.reps // 3))
    mb = sum(f.stat().st_size for f in (ours / "checkpoints" / "step_000010").rglob("*") if f.is_file()) / 2**20
    params = sum(q.numel() for q in model.parameters())
    print(f"model: llama, hidden {a.hidden}, {a.layers} layers, {params / 1e6:.1f}M parameters; checkpoint {mb:.1f} MB")
    print(f"save:   prefbench {save['ours']:.3f} s, plain {save['plain']:.3f} s")
    print(f"resume: prefbench {load['ours']:.3f} s, plain {load['plain']:.3f} s")
    print(f"machine busy at end: {machine_busy()}")
    shutil.rmtree(root, ignore_errors=True)
    print(f"save_ratio={save['ours'] / save['plain']:.2f} resume_ratio={load['ours'] / load['plain']:.2f} mb={mb:.1f}")


if __name__ == "__main__":
    main()
