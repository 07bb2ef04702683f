"""Sequence log-probs from logits: prefbench's token_logps vs the naive full log_softmax + gather.

Prints, side by side from one run, the median time (forward and forward+backward)
and the largest single allocation any op makes (torch profiler), with ratios.
Run: .venv/bin/python benchmarks/bench_logps.py [--device cuda]
"""
import argparse

import torch
from torch.profiler import ProfilerActivity, profile
from _common import interleaved_medians, stable_allocator

from prefbench_lib.core import get_device, token_logps


def naive(logits, labels, mask):
    lp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, labels[:, 1:, None]).squeeze(-1)
    return torch.nn.functional.pad(lp * mask[:, 1:], (1, 0))


def largest_alloc(fn, device):
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated(); fn()
        return torch.cuda.max_memory_allocated() - base
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof: fn()
    return max(e.cpu_memory_usage for e in prof.events())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=None); ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--B", type=int, default=8); ap.add_argument("--T", type=int, default=256); ap.add_argument("--V", type=int, default=32000)
    a = ap.parse_args()
    dev = get_device(a.device)
    print(f"device={dev} B={a.B} T={a.T} V={a.V}; largest allocation on CPU = biggest single op, on CUDA = peak above baseline; "
          f"{stable_allocator()}")
    print(f"{'dtype':>8} {'method':>12} {'fwd ms':>9} {'fwd+bwd ms':>11} {'largest MB':>11}")
    for dtype in (torch.float32, torch.bfloat16):
        g = torch.Generator(device="cpu").manual_seed(0)
        logits = torch.randn(a.B, a.T, a.V, generator=g).to(dev, dtype)
        labels = torch.randint(0, a.V, (a.B, a.T), generator=g).to(dev)
        mask = torch.ones(a.B, a.T, dtype=torch.long, device=dev)
        def fwd_bwd(f):
            def run():
                z = logits.detach().requires_grad_(); f(z, labels, mask).sum().backward()
            return run
        fns = {"naive": naive, "token_logps": token_logps}
        t_fwd = interleaved_medians({k: (lambda f=f: f(logits, labels, mask)) for k, f in fns.items()}, dev, a.reps, block=1)
        t_fb = interleaved_medians({k: fwd_bwd(f) for k, f in fns.items()}, dev, a.reps, block=1)
        rows = {k: (t_fwd[k], t_fb[k], largest_alloc(lambda f=f: f(logits, labels, mask), dev)) for k, f in fns.items()}
        for name, (t1, t2, m) in rows.items():
            print(f"{str(dtype).split('.')[-1]:>8} {name:>12} {1e3*t1:9.1f} {1e3*t2:11.1f} {m/2**20:11.1f}")
        (n1, n2, nm), (o1, o2, om) = rows["naive"], rows["token_logps"]
        print(f"{'':>8} {'ratio ours/naive':>16}  fwd {o1/n1:.2f}x  fwd+bwd {o2/n2:.2f}x  largest allocation {om/nm:.3f}x")


if __name__ == "__main__": main()
