"""The tiny-LM trainer end to end: a SIGKILLed run resumes to the same metrics, and two processes (DDP over gloo) match one."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from prefbench_lib.lm_train import TrainConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(hidden_size=32, heads=2, sft_examples=256, pairs=256, sft_steps=20, steps=24, batch_size=16,
            eval_every=8, eval_prompts=16, checkpoint_every=4, seed=3)
RUN = """
import sys, json
from prefbench_lib.lm_train import TrainConfig, train
train(TrainConfig(**json.loads(sys.argv[1])), sys.argv[2], progress=False)
"""


def metrics(run: Path) -> pd.DataFrame:
    return pd.read_parquet(run / "metrics.parquet").sort_values("step").reset_index(drop=True)


def run_once(cfg: dict, run: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, "-c", RUN, json.dumps(cfg), str(run)], cwd=ROOT, env=env, capture_output=True, text=True, **kw)


@pytest.mark.parametrize("loss_type", ["sigmoid", "bco"])  # bco: its running reward shift is part of the checkpoint
def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, loss_type):
    cfg = {**TINY, "loss_type": [loss_type]}
    full = tmp_path / "full"
    r = run_once(cfg, full, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    killed = tmp_path / "killed"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    p = subprocess.Popen([sys.executable, "-c", RUN, json.dumps(cfg), str(killed)], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and not (killed / "checkpoints" / "step_000012" / "MANIFEST.json").exists():
        assert p.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)  # a real SIGKILL: no cleanup, no atexit
    p.wait()
    done = sorted(int(d.name.split("_")[1]) for d in (killed / "checkpoints").glob("step_*") if (d / "MANIFEST.json").exists())
    assert 12 <= done[-1] < TINY["steps"], done  # killed mid-way, with a checkpoint behind it
    r = run_once(cfg, killed, timeout=600)  # the same command again resumes from the last checkpoint
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = metrics(full), metrics(killed)
    assert list(a["step"]) == list(range(1, TINY["steps"] + 1)) and list(b["step"]) == list(a["step"])
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6, atol=1e-7)


def test_two_processes_match_one(tmp_path):
    "torchrun with 2 CPU processes (gloo; accelerate launch uses the same machinery on GPUs): same global batch, same losses."
    cfg = {**TINY, "steps": 3, "eval_every": 0, "checkpoint_every": 0}
    one = tmp_path / "one"
    r = run_once(cfg, one, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    two = tmp_path / "two"
    script = tmp_path / "run.py"
    script.write_text(RUN)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
                        str(script), json.dumps(cfg), str(two)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = metrics(one), metrics(two)
    assert (b["pairs"] == cfg["batch_size"]).all()  # every step gathered the whole global batch
    cols = ["loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected"]
    pd.testing.assert_frame_equal(a[cols], b[cols], check_exact=False, rtol=1e-4, atol=1e-5)


def test_config_files_and_overrides(tmp_path):
    (tmp_path / "c.yaml").write_text("loss_type: [sigmoid, sft]\nloss_weights: [1.0, 0.5]\n")
    cfg = load_config(tmp_path / "c.yaml", ["steps=9"])
    assert cfg == TrainConfig(loss_type=["sigmoid", "sft"], loss_weights=[1.0, 0.5], steps=9)
    with pytest.raises(ValueError, match="unknown config field"): load_config(tmp_path / "c.yaml", ["stepss=9"])


def test_prefbench_train_runs_from_a_config_file(tmp_path):
    import yaml
    cfg = {**TINY, "steps": 4, "eval_every": 2, "checkpoint_every": 2, "loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 0.2]}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    exe = Path(sys.executable).with_name("prefbench")
    r = subprocess.run([str(exe), "train", "--config", str(tmp_path / "tiny.yaml"), "--run-dir", str(tmp_path / "run"), "seed=4"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    m = metrics(tmp_path / "run")
    assert list(m["step"]) == [1, 2, 3, 4] and {"loss/sigmoid", "loss/sft", "eval/reward", "eval/kl"} <= set(m.columns)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["seed"] == 4  # the override won over the file
    assert (tmp_path / "run" / "checkpoints" / "step_000004" / "policy" / "model.safetensors").is_file()
    r = subprocess.run([str(exe), "train", "--config", str(tmp_path / "tiny.yaml"), "--run-dir", str(tmp_path / "run"), "seed=4", "beta=0.5"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "different config (fields beta)" in r.stderr, r.stderr[-2000:]
