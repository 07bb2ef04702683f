"""Run directories under attack (issue 24): kills at every write, damaged and planted files, two writers.

Every case trains a real tiny run with `lm_train.train`. The runs are forked from one driver process that imported the
library once (`DRIVER`), so that the dozens of kills cost a training run each, not an import of transformers each.
"""
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(hidden_size=32, heads=2, sft_examples=64, pairs=64, sft_steps=4, steps=3, batch_size=16, eval_every=2,
            eval_prompts=4, checkpoint_every=1, seed=3)
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "always"}

DRIVER = r'''
import json, os, random, re, signal, sys, time, traceback
from pathlib import Path
root, cfg, jobs = Path(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
from prefbench_lib.lm_train import TrainConfig, train  # imported once: each run below is a fork of this process
# what train imports lazily, imported here too so that no child pays for it (no torch computation before a fork)
import accelerate, datasets, pandas, pyarrow.parquet, safetensors.torch, tqdm.auto
from transformers import AutoModelForCausalLM, GPT2LMHeadModel, LlamaForCausalLM, PreTrainedTokenizerFast
from prefbench_lib import lm_data, listwise, metrics

def writes(args) -> bool:
    "An 'open' audit event that opens a file under the run directory for writing."
    path, mode, flags = args
    try: path = os.path.abspath(os.fsdecode(os.fspath(path)))
    except TypeError: return False
    w = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & (os.O_WRONLY | os.O_RDWR))
    return w and path.startswith(RUN)

def run_child(run: str, kill_new: set | None = None, kill_after: float = 0.0) -> dict:
    "Train `run` in a forked child, killed with SIGKILL at its first write event not in `kill_new` (a set), or after kill_after seconds."
    global RUN
    RUN, err = os.path.abspath(run), root / "child.err"
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
        seen, unpickled = [], []
        def hook(event, args):
            if event == "pickle.find_class": unpickled.append(args)  # any unpickling at all, of any file
            if event == "prefbench.runs.write" or (event == "open" and writes(args)):
                what, path = (args[0], args[1]) if event != "open" else ("open", os.fsdecode(os.fspath(args[0])))
                seen.append(re.sub(r"step_\d+", "step_N", f"{what} {os.path.relpath(path, RUN)}"))
                if kill_new is not None and seen[-1] not in kill_new:
                    (root / "events.json").write_text(json.dumps(seen)); os.kill(os.getpid(), signal.SIGKILL)
        sys.addaudithook(hook)
        code = 0
        try: train(TrainConfig(**cfg), run, progress=False)
        except ValueError as e: print(f"error: {e}", file=sys.stderr); code = 2
        except BaseException: traceback.print_exc(); code = 1
        if unpickled: print(f"UNPICKLED {unpickled}", file=sys.stderr); code = 3
        (root / "events.json").write_text(json.dumps(seen))
        sys.stderr.flush(); os._exit(code)
    if kill_after:
        time.sleep(kill_after)
        try: os.kill(pid, signal.SIGKILL)
        except ProcessLookupError: pass
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    events = json.loads((root / "events.json").read_text()) if (root / "events.json").is_file() else []
    (root / "events.json").unlink(missing_ok=True)
    return {"status": status, "stderr": err.read_text(), "events": events}

out = []
for job in jobs:
    if job["kind"] == "chain":  # kill at the first write event of a kind not killed at yet, resume, ... until a run finishes
        done, log = set(), []
        while True:
            r = run_child(job["run"], kill_new=done)
            m = Path(job["run"]) / "metrics.parquet"  # what a reader finds right after the kill
            log.append({**r, "rows": pandas.read_parquet(m).to_dict("records") if m.exists() else []})
            if r["status"] != -signal.SIGKILL or not r["events"]: break
            done.add(r["events"][-1])
        out.append(log)
    elif job["kind"] == "timed":  # kills at seeded random instants within an uninterrupted run's duration, then a run to the end
        t = time.time(); run_child(job["run"] + "_timing"); duration = time.time() - t
        rng, log = random.Random(job["seed"]), []
        for _ in range(job["kills"]): log.append(run_child(job["run"], kill_after=rng.uniform(0.02, duration / 3)))
        log.append(run_child(job["run"]))
        out.append(log)
    else:
        out.append(run_child(job["run"]))
print("RESULT " + json.dumps(out))
'''


def drive(tmp_path: Path, jobs: list[dict], cfg: dict = TINY, timeout: int = 900) -> list:
    "Run the driver on `jobs`; its per-job results."
    r = subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path), json.dumps(cfg), json.dumps(jobs)], cwd=ROOT, env=ENV,
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.split("RESULT ", 1)[1])


def metrics(run: Path) -> pd.DataFrame:
    return pd.read_parquet(run / "metrics.parquet")


def same_metrics(a: Path, b: Path) -> None:
    pd.testing.assert_frame_equal(metrics(a), metrics(b), check_exact=False, rtol=1e-6, atol=1e-7)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    "An uninterrupted run of TINY (3 steps, a checkpoint after each)."
    d = tmp_path_factory.mktemp("finished")
    [r] = drive(d, [{"kind": "once", "run": str(d / "run")}])
    assert r["status"] == 0, r["stderr"][-3000:]
    assert list(metrics(d / "run")["step"]) == [1, 2, 3]
    return d / "run"


def test_a_kill_at_every_write_event_loses_nothing(tmp_path):
    """SIGKILL at a run's first write event, then, resumed, at its first write event of another kind, and so on until a run
    finishes. The kills land on every kind of write event an uninterrupted run makes: each step of `runs.atomic_write` and `runs.commit_dir` (between
    every two files of a checkpoint, before and after its manifest and its rename, inside the run's metrics write) and of
    stage 1 (the lock, the config, the tokenizer, the reference, the reference cache). After every kill the run's metrics are
    the uninterrupted run's first rows; the run that finishes has all of them."""
    cfg = {**TINY, "steps": 6}
    full, log = drive(tmp_path, [{"kind": "once", "run": str(tmp_path / "full")}, {"kind": "chain", "run": str(tmp_path / "run")}], cfg=cfg)
    assert full["status"] == 0 and log[-1]["status"] == 0, (full["stderr"][-2000:], log[-1]["stderr"][-3000:])
    kills = log[:-1]
    assert all(r["status"] == -signal.SIGKILL and "Traceback" not in r["stderr"] for r in kills), [r["stderr"][-500:] for r in kills]
    expected = metrics(tmp_path / "full").to_dict("records")
    for r in kills:  # never a lost or a repeated step: the rows on disk are always the uninterrupted run's first rows
        if not r["rows"]: continue
        got, want = pd.DataFrame(r["rows"]), pd.DataFrame(expected[:len(r["rows"])])
        assert want.drop(columns=list(got.columns)).isna().all().all(), (got.columns, want.columns)  # eval/* appear at the first evaluation
        pd.testing.assert_frame_equal(got, want[list(got.columns)], check_exact=False, rtol=1e-6, atol=1e-7, check_dtype=False)
    missed = set(full["events"]) - {r["events"][-1] for r in kills}
    assert not missed, sorted(missed)  # every kind of write event was a kill point at least once
    assert len(set(full["events"])) > 40, sorted(set(full["events"]))
    same_metrics(tmp_path / "full", tmp_path / "run")


def test_kills_at_random_instants_lose_nothing(tmp_path):
    "SIGKILL at seeded random instants (inside SFT, a forward, a safetensors write in Rust, ...), then a run to the end."
    cfg = {**TINY, "steps": 12, "checkpoint_every": 2}
    full, log = drive(tmp_path, [{"kind": "once", "run": str(tmp_path / "full")}, {"kind": "timed", "run": str(tmp_path / "run"), "seed": 0, "kills": 8}], cfg=cfg)
    assert full["status"] == 0 and log[-1]["status"] == 0, log[-1]["stderr"][-3000:]
    assert sum(r["status"] == -signal.SIGKILL for r in log[:-1]) >= 6, [r["status"] for r in log]  # most kills landed mid-run
    same_metrics(tmp_path / "full", tmp_path / "run")


def checkpoint_files(run: Path, step: int) -> list[str]:
    d = run / "checkpoints" / f"step_{step:06d}"
    return sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file())


def test_each_checkpoint_file_truncated_or_deleted_falls_back(tmp_path, finished):
    "Truncate, then delete, each file of the newest checkpoint in turn: the resume names it, falls back, and ends equal."
    files = checkpoint_files(finished, 3)
    assert {"MANIFEST.json", "policy/model.safetensors", "optimizer.safetensors", "state.safetensors", "metrics.parquet"} <= set(files)
    jobs = []
    for i, f in enumerate(files):
        for how in ("truncate", "delete"):
            run = tmp_path / f"{how}{i}"
            shutil.copytree(finished, run)
            target = run / "checkpoints" / "step_000003" / f
            if how == "delete": target.unlink()
            else: target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
            jobs.append({"kind": "once", "run": str(run), "file": f, "how": how})
    for job, r in zip(jobs, drive(tmp_path, jobs)):
        assert r["status"] == 0, (job, r["stderr"][-2000:])
        assert "RunWarning" in r["stderr"] and "skipped step_000003" in r["stderr"] and Path(job["file"]).name in r["stderr"], (job, r["stderr"][-2000:])
        same_metrics(finished, Path(job["run"]))


def test_no_complete_checkpoint_is_refused_by_name(tmp_path, finished):
    "Every checkpoint damaged: the resume is refused, naming each checkpoint and what is wrong with it (no silent restart)."
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    for ck in (run / "checkpoints").iterdir(): (ck / "state.safetensors").write_bytes(b"")
    [r] = drive(tmp_path, [{"kind": "once", "run": str(run)}])
    assert r["status"] == 2 and "has no complete checkpoint: step_000003 (state.safetensors has 0 bytes" in r["stderr"], r["stderr"][-2000:]
    assert "step_000001 (" in r["stderr"] and "Traceback" not in r["stderr"]


def test_deleted_run_metrics_come_back_from_the_checkpoint(tmp_path, finished):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / "metrics.parquet").unlink()
    [r] = drive(tmp_path, [{"kind": "once", "run": str(run)}])
    assert r["status"] == 0, r["stderr"][-2000:]
    same_metrics(finished, run)


class Payload:
    "A pickle that, if it is ever unpickled, creates a file (what a crafted state.pt did before issue 24)."
    def __init__(self, marker: Path): self.marker = str(marker)
    def __reduce__(self): return (os.system, (f"touch {self.marker}",))


def plant(run: Path, rel: str, marker: Path) -> None:
    "Replace run/rel by a pickle payload; where a manifest lists the file, rewrite its entry to match (a hostile, consistent copy)."
    import hashlib
    f = run / rel
    data = pickle.dumps(Payload(marker))
    f.write_bytes(data)
    for parent in f.relative_to(run).parents:  # the nearest directory with a manifest (run itself has none)
        m = run / parent / "MANIFEST.json"
        if m.is_file() and m != f:
            entry = f.relative_to(run / parent).as_posix()
            man = json.loads(m.read_text())
            if entry in man["files"]:
                man["files"][entry] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                m.write_text(json.dumps(man))
            break


def test_a_pickle_planted_in_any_file_never_runs(tmp_path, finished):
    """A pickle payload in every file of a run directory in turn, with its manifest rewritten to match: no payload runs, nothing
    is unpickled at all (an audit hook on pickle.find_class), and a resume either finishes with the uninterrupted metrics or
    stops with one error line naming the file; a file a resume must read is named in its warning or its error."""
    files = sorted(p.relative_to(finished).as_posix() for p in finished.rglob("*") if p.is_file() and not p.name.startswith(".lock"))
    # what a resume reads: the config, stage 1's outputs, the newest checkpoint (the older ones only if it fails); a checkpoint's
    # policy/config.json is there for from_pretrained, and a resume loads the weights into the reference's architecture
    read = [f for f in files if f == "config.json" or f.startswith(("tokenizer/", "reference", "checkpoints/step_000003/"))
            and not f.endswith(("policy/config.json", "generation_config.json"))]
    assert len(read) >= 12 and "reference_logps.safetensors" in read, read
    jobs = []
    for i, f in enumerate(files):
        run = tmp_path / f"p{i}"
        shutil.copytree(finished, run)
        plant(run, f, tmp_path / f"pwned{i}")
        jobs.append({"kind": "once", "run": str(run), "file": f, "marker": str(tmp_path / f"pwned{i}")})
    for job, r in zip(jobs, drive(tmp_path, jobs)):
        assert not Path(job["marker"]).exists(), job
        assert r["status"] in (0, 2), (job, r["stderr"][-2000:])  # 3: something was unpickled; 1: a traceback
        assert "Traceback" not in r["stderr"], (job, r["stderr"][-2000:])
        named = Path(job["file"]).name in r["stderr"] or str(Path(job["file"]).parent) in r["stderr"]
        if r["status"] == 2: assert named and "error: " in r["stderr"], (job, r["stderr"][-2000:])
        else: same_metrics(finished, Path(job["run"]))
        if job["file"] in read: assert named, (job, r["stderr"][-2000:])


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    "A run directory held by one process (its lock) refuses a second trainer, naming the directory and the holder's PID."
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom prefbench_lib.runs import RunDir\n"
                               "with RunDir(sys.argv[1]).writing({}, resume=True):\n    print('held', flush=True); time.sleep(120)", str(run)],
                              cwd=ROOT, env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        [r] = drive(tmp_path, [{"kind": "once", "run": str(run)}])
        assert r["status"] == 2 and f"run directory '{run}' is in use by process {holder.pid}" in r["stderr"], r["stderr"][-2000:]
    finally:
        holder.kill(); holder.wait()
    [r] = drive(tmp_path, [{"kind": "once", "run": str(run)}], cfg={**TINY, "steps": 1})  # the holder died: its lock went with it
    assert r["status"] == 2 and "different config" in r["stderr"], r["stderr"][-2000:]  # it got in (the holder's config is {})


def test_the_library_never_unpickles_evaluates_or_shells_out():
    """The good parts, kept: no call in prefbench_lib reads a pickle (torch.load, pickle.load(s), numpy with allow_pickle),
    runs text as code (eval, exec, yaml.load, trust_remote_code=True) or hands a string to a shell (shell=True)."""
    import ast
    banned = {"load", "loads"}  # of torch, pickle, yaml
    found = []
    for f in sorted((ROOT / "prefbench_lib").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if not isinstance(node, ast.Call): continue
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
            owner = fn.value.id if isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name) else ""
            if name in ("eval", "exec") and isinstance(fn, ast.Name): found.append(f"{f.name}:{node.lineno} {name}")
            if name in banned and owner in ("torch", "pickle", "yaml", "cloudpickle", "joblib", "dill"): found.append(f"{f.name}:{node.lineno} {owner}.{name}")
            for kw in node.keywords:
                if kw.arg in ("shell", "trust_remote_code", "allow_pickle") and isinstance(kw.value, ast.Constant) and kw.value.value is True:
                    found.append(f"{f.name}:{node.lineno} {kw.arg}=True")
                if kw.arg == "weights_only" and isinstance(kw.value, ast.Constant) and kw.value.value is False:
                    found.append(f"{f.name}:{node.lineno} weights_only=False")
    assert not found, found
