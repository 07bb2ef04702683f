"""The benchmark scripts still run (tiny sizes; no timing is asserted: performance claims live in their output)."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    r = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_losses_benchmark_runs_and_reports_the_worst_ratio():
    out = run("benchmarks/losses.py", "--B", "256", "--reps", "10")
    last = out.strip().splitlines()[-1]
    assert last.startswith("max_ratio_vs_plain=") and float(last.split("=")[1]) > 0


def test_logps_benchmark_runs():
    out = run("benchmarks/bench_logps.py", "--B", "2", "--T", "8", "--V", "50", "--reps", "2")
    assert "largest allocation" in out and "ratio ours/naive" in out


def test_nash_benchmark_runs():
    last = run("benchmarks/nash.py", "--quick", "--busy", "1").strip().splitlines()[-1]
    assert last.startswith("ne_k1000_s=") and "speedup_vs_loop=" in last and "busy_ratio=" in last


def test_toy_benchmark_runs_and_its_loop_matches_run_bandit():
    out = run("benchmarks/toy.py", "--quick")
    assert "tolerance 1e-4: passed" in out
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(r"speedup_vs_loop=[0-9.]+ sweep_s=[0-9.]+ single_run_s=[0-9.]+ mlp_batched_s=[0-9.]+ mlp_loop_s=[0-9.]+", last), last


def test_dashboards_benchmark_runs():
    last = run("benchmarks/dashboards.py", "--quick", "--no-browser").strip().splitlines()[-1]
    assert re.fullmatch(r"max_update_ms=[0-9]+ max_first_render_ms=nan", last), last


def test_lm_step_benchmark_runs_and_reports_ratios():
    out = run("benchmarks/lm_step.py", "--quick")
    assert "loss check: max |TRL - prefbench|" in out and "passed" in out
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(r"speedup_vs_trl=[0-9.]+ speedup_vs_trl_precomputed=[0-9.]+ peak_mem_ratio_vs_trl=[0-9.]+", last), last


def test_checkpoint_benchmark_runs_and_reports_ratios():
    last = run("benchmarks/checkpoint.py", "--quick").strip().splitlines()[-1]
    assert re.fullmatch(r"save_ratio=[0-9.]+ resume_ratio=[0-9.]+ mb=[0-9.]+", last), last
