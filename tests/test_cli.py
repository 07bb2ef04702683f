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
