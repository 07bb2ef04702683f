"""Run every notebook under nbs/ as one pytest test, through nbdev's own test machinery.

Cells carrying a flag from `tst_flags` in pyproject.toml (`notest`, `slow`) are skipped,
as `nbdev-test` skips them; set PREFBENCH_TEST_FLAGS="slow" to run the slow cells too.
Notebooks whose name starts with `_` or `.` are skipped (nbdev's `nbglob` rule).
"""
import io
import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbdev.config import get_config
from nbdev.doclinks import nbglob
from nbdev import test as nbdev_test  # module import: pytest would collect a bare `test_nb`

CFG = get_config(Path(__file__).resolve().parent)
NOTEBOOKS = sorted(nbglob(CFG.nbs_path, as_path=True))
SKIP_FLAGS = CFG.tst_flags.split()
FORCE_FLAGS = os.environ.get("PREFBENCH_TEST_FLAGS", "").split()


def run_notebook(path: Path, monkeypatch, skip=SKIP_FLAGS, force=FORCE_FLAGS) -> tuple[bool, str]:
    "Execute the notebook at `path` as `nbdev-test` does; return (passed, the traceback it printed)."
    import torch
    err = io.StringIO()
    monkeypatch.setattr(sys, "__stderr__", err)  # test_nb writes a failing cell's traceback there
    # notebooks run in this process, one after another: torch's process-wide settings that a notebook may change for
    # itself (a reader's kernel is its own) must not leak into the next notebook or test
    saved = torch.get_default_dtype(), torch.get_num_threads(), torch.is_grad_enabled()
    try:
        ok, _secs = nbdev_test.test_nb(path, skip_flags=skip, force_flags=force, basepath=CFG.config_path,
                                       cell_timeout=CFG.cell_timeout or None)
    finally:
        torch.set_default_dtype(saved[0]); torch.set_num_threads(saved[1]); torch.set_grad_enabled(saved[2])
    return ok, err.getvalue()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook(path, monkeypatch):
    ok, err = run_notebook(path, monkeypatch)
    assert ok, f"{path.name} failed:\n{err}"


def test_every_notebook_is_collected():
    names = {p.name for p in NOTEBOOKS}
    on_disk = {p.name for p in CFG.nbs_path.glob("*.ipynb") if not p.name.startswith(("_", "."))}
    assert {"index.ipynb", "00_core.ipynb"} <= names
    assert names == on_disk


def _notebook_with_slow_failure(path: Path) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell("#| slow\nraise RuntimeError('slow cell ran')")])
    nbformat.write(nb, path)
    return path


def test_a_notebook_cannot_change_torch_settings_for_the_next(tmp_path, monkeypatch):
    import torch
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import torch\ntorch.set_default_dtype(torch.float64)\ntorch.set_num_threads(1)")])
    nbformat.write(nb, tmp_path / "leak.ipynb")
    before = torch.get_default_dtype(), torch.get_num_threads()
    ok, _ = run_notebook(tmp_path / "leak.ipynb", monkeypatch)
    assert ok and (torch.get_default_dtype(), torch.get_num_threads()) == before


def test_slow_cells_are_skipped_unless_forced(tmp_path, monkeypatch):
    nb = _notebook_with_slow_failure(tmp_path / "slow.ipynb")
    assert "slow" in SKIP_FLAGS
    ok, _ = run_notebook(nb, monkeypatch, skip=SKIP_FLAGS, force=[])
    assert ok
    ok, err = run_notebook(nb, monkeypatch, skip=SKIP_FLAGS, force=["slow"])
    assert not ok and "slow cell ran" in err
