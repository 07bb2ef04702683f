"""Shared by the benchmarks: steady allocator behaviour and interleaved timing."""
import ctypes
import statistics
import sys
import time

import torch


def stable_allocator() -> str:
    """Pin glibc's mmap and trim thresholds (Linux only).

    By default glibc moves its mmap threshold as blocks are freed, so 100 kB-1 MB tensors are
    served either from the heap or by a fresh mmap with page faults on every call, depending on
    history: the same code then runs 1x or 6x slower from one process to the next. Fixed
    thresholds make every run take the heap path, for the reference and the code under test alike.
    """
    if not sys.platform.startswith("linux"): return "allocator: unchanged (not Linux)"
    try: libc = ctypes.CDLL("libc.so.6")
    except OSError: return "allocator: unchanged (no glibc)"
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    ok = libc.mallopt(M_MMAP_THRESHOLD, 64 << 20) and libc.mallopt(M_TRIM_THRESHOLD, 256 << 20)
    return "allocator: glibc mmap/trim thresholds pinned" if ok else "allocator: mallopt failed, timings may be bimodal"


def sync(device):
    if device.type == "cuda": torch.cuda.synchronize()


def interleaved_medians(fns: dict, device, reps: int, block: int = 10) -> dict:
    """Seconds per call of each function: the fastest block median, blocks of each function alternating.

    Timing alternates between the functions block by block, so slow phases of the machine hit all of
    them; each function's figure is its best block (the median call within it), as `timeit` takes the
    minimum: background load only ever adds time, and the best block is the least disturbed one.
    """
    blocks = {k: [] for k in fns}
    for _ in range(max(1, reps // block)):
        for k, fn in fns.items():
            t = []
            for _ in range(block):
                sync(device); t0 = time.perf_counter(); fn(); sync(device)
                t.append(time.perf_counter() - t0)
            blocks[k].append(statistics.median(t))
    return {k: min(v) for k, v in blocks.items()}
