"""The installed `prefbench` console script, run as a user would."""
import json
import subprocess
import sys
from pathlib import Path

import torch

PREFBENCH = Path(sys.executable).with_name("prefbench")


def run(*args):
    return subprocess.run([str(PREFBENCH), *args], capture_output=True, text=True, timeout=120)


def test_help_lists_subcommands_without_importing_torch():
    r = run("--help")
    assert r.returncode == 0 and "info" in r.stdout
    # --help must stay instant: the CLI module may not import torch at import time
    probe = subprocess.run([sys.executable, "-c", "import sys, prefbench_lib.cli; print('torch' in sys.modules)"],
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "False", probe.stderr


def test_info_reports_versions_device_and_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFBENCH_DATA_DIR", str(tmp_path / "results"))
    r = run("info", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["torch"] == torch.__version__
    assert d["device"] == ("cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu")
    assert d["data_dir"] == str(tmp_path / "results")
    assert {"transformers", "panel", "python", "prefbench"} <= d.keys()
    table = run("info")
    assert table.returncode == 0 and f"torch         {torch.__version__}" in table.stdout


def test_no_subcommand_and_unknown_subcommand_are_usage_errors():
    assert run().returncode == 2
    r = run("frobnicate")
    assert r.returncode == 2 and "invalid choice" in r.stderr


# ---------------------------------------------------------------------------------------------------------------------------
# A user's mistake is one `error:` line naming the field or the file, exit status 2, never a traceback (issue 24); and a
# config is checked whole before any work starts (no run directory, no SFT).
# ---------------------------------------------------------------------------------------------------------------------------
import os
import shutil

import pytest


def error_line(r: subprocess.CompletedProcess, command: str) -> str:
    "The one error line of a failed command (asserting there is exactly one, and no traceback)."
    assert r.returncode == 2 and "Traceback" not in r.stderr, (r.returncode, r.stderr[-3000:])
    errors = [line for line in r.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0].startswith(f"prefbench {command}: error: "), r.stderr
    return errors[0]


def train_cli(*args, cwd=None, env=None):
    return subprocess.run([str(PREFBENCH), "train", *args], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})


def test_train_config_mistakes_are_one_error_line_before_any_work(tmp_path):
    (tmp_path / "syntax.yaml").write_text("steps: [1, 2\nbeta: 0.1\n")
    (tmp_path / "tag.yaml").write_text(f"steps: !!python/object/apply:os.system ['touch {tmp_path}/pwned']\n")
    (tmp_path / "prefs.txt").write_text("prompt chosen rejected\n")
    (tmp_path / "cut.jsonl").write_text('{"prompt": "shift 1 :", "chosen": " a", "rej')
    (tmp_path / "a_file").write_text("")
    cases = [  # (arguments, what the error line must name)
        (["--config", str(tmp_path / "syntax.yaml")], "syntax.yaml' is not valid YAML"),
        (["--config", str(tmp_path / "tag.yaml")], "could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system'"),
        (["steps=[1"], "override 'steps=[1': the value is not valid YAML"),
        (["steps=!!python/name:os.system"], "could not determine a constructor"),
        (["loss_type=[dpo, dpo]"], "loss_type counts one loss twice ('dpo' and 'dpo' are the same loss)"),
        (["loss_type=[dpo, sigmoid]"], "('dpo' and 'sigmoid' are the same loss)"),
        ([f"data={tmp_path / 'prefs.txt'}"], "data must be a .jsonl, .json, .parquet file (TRL's formats)"),
        ([f"data={tmp_path / 'cut.jsonl'}", "--run-dir", str(tmp_path / "cut_run")], "cut.jsonl' cannot be read as json (ArrowInvalid"),
        (["--run-dir", str(tmp_path / "a_file")], "a_file' is a file, not a directory"),
        (["--run-dir", str(tmp_path / "a_file" / "run")], "a_file/run' cannot be created (Not a directory)"),
    ]
    for args, needle in cases:
        line = error_line(train_cli(*args, "sft_steps=1", "steps=1", cwd=tmp_path, env={"PREFBENCH_DATA_DIR": str(tmp_path / "data")}), "train")
        assert needle in line, (args, line)
    assert not (tmp_path / "pwned").exists()  # the YAML tag built nothing
    assert not (tmp_path / "data").exists()  # no default run directory was made for a config that was refused
    assert not (tmp_path / "cut_run" / "reference").exists()  # the data file was read, and refused, before SFT


@pytest.mark.skipif(not (os.geteuid() == 0 and shutil.which("unshare")), reason="needs root and unshare(1) for a read-only mount")
def test_a_read_only_run_directory_is_one_error_line(tmp_path):
    "A read-only mount (root ignores file modes, so the test makes one in a private mount namespace with unshare -m)."
    (tmp_path / "ro" / "run").mkdir(parents=True)
    ro = tmp_path / "ro"
    script = (f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro} && "
              f"{PREFBENCH} train --run-dir {ro / 'run'} steps=1; echo rc=$?; {PREFBENCH} train --run-dir {ro / 'new'} steps=1")
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert "Traceback" not in r.stderr and "rc=2" in r.stdout and r.returncode == 2, (r.stdout, r.stderr[-3000:])
    assert f"prefbench train: error: run directory '{ro / 'run'}' cannot be locked for writing (Read-only file system)" in r.stderr, r.stderr
    assert f"prefbench train: error: run directory '{ro / 'new'}' cannot be created (Read-only file system)" in r.stderr, r.stderr


def test_info_with_a_bad_device_is_one_error_line():
    r = subprocess.run([str(PREFBENCH), "info"], capture_output=True, text=True, timeout=120, env={**os.environ, "PREFBENCH_DEVICE": "bogus"})
    line = error_line(r, "info")
    assert "'bogus'" in line and "PREFBENCH_DEVICE" in line, line
