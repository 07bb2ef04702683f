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


# ---------------------------------------------------------------- registered after import: one registration each, no other file

QUICK = dict(hidden_size=32, heads=2, sft_examples=64, pairs=32, sft_steps=0, steps=3, batch_size=8, eval_every=0, eval_prompts=4,
             checkpoint_every=0)


def _metrics_of(cfg, tmp_path, name):
    from prefbench_lib.lm_train import train
    return pd.read_parquet(train(cfg, tmp_path / name, progress=False) / "metrics.parquet")


def test_a_pairwise_loss_registered_after_import_trains(tmp_path):
    "A loss added to losses.LOSSES after lm_train is imported is trainable at once, its declared range checked by the config."
    import math
    import torch.nn.functional as F
    import prefbench_lib.lm_train  # noqa: F401  (imported first: nothing below touches it)
    from prefbench_lib.losses import LOSSES, LossOutput, pairwise
    name = "scratch_margin_dpo"
    assert name not in LOSSES

    @pairwise(name, margin="[0, inf)")
    def scratch(pair, *, beta: float, margin: float = 0.0) -> LossOutput:
        "DPO with a margin."
        return pair.output(-F.logsigmoid(beta * pair.delta - margin), beta)
    try:
        with pytest.raises(ValueError, match="margin"): TrainConfig(loss_type=name, loss_kwargs={"margin": -1.0})
        d = _metrics_of(TrainConfig(loss_type=[name, "sft"], loss_kwargs={"margin": 0.5}, **QUICK), tmp_path, "pair")
        assert list(d["step"]) == [1, 2, 3] and f"loss/{name}" in d
        assert abs(d.loc[0, f"loss/{name}"] - (-math.log(1 / (1 + math.exp(0.5))))) < 1e-5  # step 1, policy = reference: -log sigma(-margin)
    finally:
        LOSSES.pop(name, None)


def test_an_unpaired_loss_registered_after_import_trains_and_an_unregistered_one_is_refused(tmp_path):
    "An unpaired loss is refused by name until it is registered (never trained as BCO); one registration makes it trainable, state and all."
    import math
    import torch
    import torch.nn.functional as F
    from prefbench_lib import lm_train
    from prefbench_lib.losses import LossOutput, declare_ranges
    name = "scratch_sigmoid_unpaired"
    with pytest.raises(ValueError, match="loss_type must be one of"): TrainConfig(loss_type=name, **QUICK)

    @declare_ranges(shift="(-inf, inf)", weight="(0, inf)")
    def scratch(policy_logps, ref_logps, desirable, *, beta: float, shift: float, weight: float = 1.0) -> LossOutput:
        "-log sigma(+-(beta rho - shift)), + for desirable completions."
        r = beta * (policy_logps - ref_logps) - shift
        losses = -weight * F.logsigmoid(torch.where(desirable.bool(), r, -r))
        return LossOutput(losses, r.detach(), r.detach())

    class Steps:  # the loss's state across steps: how many batches it has seen
        def __init__(self): self.count = 0

    def shift(run, batch, pol, ref):  # a per-batch value the trainer supplies: 0 on the first step
        run.state.count += 1
        return float(run.state.count - 1)

    lm_train.UNPAIRED[name] = lm_train.UnpairedLoss(scratch, "shift", shift, metric="shift", start=Steps)  # the one registration
    try:
        with pytest.raises(ValueError, match="weight"): TrainConfig(loss_type=name, loss_kwargs={"weight": 0.0})
        with pytest.raises(ValueError, match="belong to none"): TrainConfig(loss_type=name, loss_kwargs={"shift": 1.0})  # the trainer's
        d = _metrics_of(TrainConfig(loss_type=name, loss_kwargs={"weight": 2.0}, **{**QUICK, "checkpoint_every": 1}), tmp_path, "un")
        assert list(d["shift"]) == [0.0, 1.0, 2.0]  # its value, logged under its name, from its own state
        assert abs(d.loc[0, "loss"] - 2 * math.log(2)) < 1e-5  # step 1: rho = 0, shift = 0: 2 (-log sigma(0))
        from prefbench_lib.runs import load_tree
        assert load_tree(tmp_path / "un" / "checkpoints" / "step_000002" / "state.safetensors")["family"] == {"count": 2}  # checkpointed
    finally:
        lm_train.UNPAIRED.pop(name, None)


def test_a_loss_family_registered_after_import_trains(tmp_path):
    "A new kind of loss (its data, its losses, its step) is two registrations, and `train` runs it without naming it."
    from typing import NamedTuple
    import torch
    from prefbench_lib import lm_train as L

    class Values(NamedTuple):
        losses: torch.Tensor  # [n]

    def loss(run, batch, ref):  # the chosen completion's NLL: only the chosen side of each pair
        pol = L._sequence_reading(run.policy, batch, run.pad).logps[:, 0]
        return (-pol).mean(), Values(-pol.detach())

    def examples(ds, tokenizer, entry):
        return L.Examples(L.encode(tokenizer, ds["prompt"], prompt=True), [[c] for c in L.encode(tokenizer, ds["chosen"], prompt=False)], {})

    L.LOSS_KINDS["chosen_only"] = L.LossKind("preference", lambda: {"chosen_nll": loss}, lambda entry: {})
    L.FAMILIES["chosen_only"] = L.Family(examples, loss, lambda run, v: {"loss": float(v.losses.mean()), "pairs": len(v.losses)})
    try:
        d = _metrics_of(TrainConfig(loss_type="chosen_nll", **{**QUICK, "lr": 3e-3, "steps": 4}), tmp_path, "fam")
        assert list(d["pairs"]) == [8] * 4 and d["loss"].iloc[-1] < d["loss"].iloc[0]  # it trains: the NLL falls
        with pytest.raises(ValueError, match="mixes losses of different kinds"): TrainConfig(loss_type=["chosen_nll", "sigmoid"])
        with pytest.raises(ValueError, match="needs pairwise losses"): TrainConfig(loss_type="chosen_nll", mode="on_policy")
    finally:
        L.LOSS_KINDS.pop("chosen_only", None); L.FAMILIES.pop("chosen_only", None)


def test_lm_train_names_no_loss():
    "lm_train chooses no loss, family, mode or model by comparing its name: they are registered entries carrying their own data."
    import re
    from prefbench_lib import lm_train
    from prefbench_lib.listwise import LIST_LOSSES
    from prefbench_lib.losses import LOSSES, TERMS
    src = Path(lm_train.__file__).read_text()
    names = {*LOSSES, *TERMS, *LIST_LOSSES, *lm_train.UNPAIRED, *lm_train.LOSS_KINDS, *lm_train.SOURCES, *lm_train.MODEL_KINDS}
    compared = [m.group(0) for n in names for m in re.finditer(rf'(==|!=)\s*["\']{re.escape(n)}["\']|["\']{re.escape(n)}["\']\s*(==|!=)', src)]
    assert not compared, compared
    assert not re.search(r'\bin \(\s*["\']', src), "a name tested against a tuple of strings"
    assert not re.search(r'loss_type\[0\]\s*(==|!=|in\b)', src)


def test_a_listwise_loss_registered_after_import_trains_with_its_own_hyperparameter(tmp_path):
    "A listwise loss registered with @listwise after import trains, and its declared hyperparameter is set through loss_kwargs and checked."
    import math
    import torch
    from prefbench_lib.core import in_interval
    from prefbench_lib.listwise import LIST_LOSSES, ListLossOutput, listwise
    import prefbench_lib.lm_train  # noqa: F401  (imported first: nothing below touches it)
    name, seen = "scratch_pairwise_list", []

    @listwise(name, margin=in_interval(0.0, math.inf, "left"))
    def scratch(policy_logps, ref_logps, scores, *, beta, mask=None, margin=0.0) -> ListLossOutput:
        "Best against worst of each list: -log sigma(beta (rho_best - rho_worst) - margin)."
        seen.append(margin)
        r = beta * (policy_logps - ref_logps)
        best, worst = scores.argmax(1, keepdim=True), scores.argmin(1, keepdim=True)
        losses = -torch.nn.functional.logsigmoid(r.gather(1, best) - r.gather(1, worst) - margin).squeeze(1)
        return ListLossOutput(losses, r.detach())
    try:
        with pytest.raises(ValueError, match="margin"): TrainConfig(loss_type=name, loss_kwargs={"margin": -1.0})
        d = _metrics_of(TrainConfig(loss_type=name, loss_kwargs={"margin": 0.5}, **QUICK), tmp_path, "list")
        assert set(seen) == {0.5} and list(d["step"]) == [1, 2, 3]
        assert abs(d.loc[0, "loss"] - math.log1p(math.exp(0.5))) < 1e-5  # step 1, policy = reference: -log sigma(-margin)
    finally:
        LIST_LOSSES.pop(name, None)
