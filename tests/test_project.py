"""Project wiring: README from the index notebook, its two commands, CI, nbdev and Quarto config."""
import importlib.util
import re
import tomllib
from pathlib import Path

import yaml
from nbdev.config import get_config

ROOT = Path(__file__).resolve().parents[1]


def _load_readme_tool():
    spec = importlib.util.spec_from_file_location("readme_tool", ROOT / "tools" / "readme.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_is_generated_from_index_notebook():
    assert (ROOT / "README.md").read_text() == _load_readme_tool().render(), \
        "README.md is stale: run `make readme` (or `python tools/readme.py`) and commit"


def _first_code_block(text: str) -> list[str]:
    block = re.search(r"```\w*\n(.*?)```", text, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    before_block = readme.split("```")[0]
    assert "## " not in before_block, "the two commands must come before any section"
    start, test = _first_code_block(readme)
    assert (start, test) == ("make start", "make test")
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    assert {"start", "test"} <= targets
    ci = "\n".join(l for l in (ROOT / ".ci" / "run").read_text().splitlines() if not l.lstrip().startswith("#"))
    assert re.search(r"^make test\b", ci, re.M), ".ci/run must call the README's test command"
    assert "nbdev-docs" not in ci and "nbdev-prepare" not in ci, "CI has no Quarto"


def test_install_pins_cpu_torch_before_anything_else():
    mk = (ROOT / "Makefile").read_text()
    recipe = mk.split("\n$(STAMP):")[1]
    installs = [l.strip() for l in recipe.splitlines() if "pip install" in l]
    assert "$(TORCH)" in installs[0] and "-e" not in installs[0], "torch must be installed on its own, first"
    assert all("$(TORCH)" in l for l in installs), "every later install keeps torch pinned"
    assert re.search(r"^TORCH\s*:?=\s*torch==2\.13\.0$", mk, re.M)


def test_install_stamp_follows_content_not_mtime(tmp_path):
    "Rewriting pyproject.toml with the same content (as nbdev-export does) leaves the install up to date; a change does not."
    import shutil, subprocess, time
    for f in ("Makefile", "pyproject.toml"): shutil.copy2(ROOT / f, tmp_path / f)
    def up_to_date() -> bool:
        return subprocess.run(["make", "-q", "install"], cwd=tmp_path, capture_output=True).returncode == 0
    stamp = subprocess.run(["make", "-s", "--eval=print-stamp: ; @echo $(STAMP)", "print-stamp"], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / stamp).parent.mkdir(parents=True)
    (tmp_path / stamp).touch()
    assert up_to_date()
    time.sleep(0.01)
    (tmp_path / "pyproject.toml").write_text((tmp_path / "pyproject.toml").read_text())  # same content, newer mtime
    assert up_to_date()
    (tmp_path / "pyproject.toml").write_text((tmp_path / "pyproject.toml").read_text() + "\n# changed\n")
    assert not up_to_date()


def test_pyproject_declares_nbdev3_settings_and_extras():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert not (ROOT / "settings.ini").exists()
    assert py["project"]["scripts"]["prefbench"] == "prefbench_lib.cli:main"
    assert any(d.replace(" ", "").startswith("nbdev>=3,<4") for d in py["project"]["optional-dependencies"]["dev"])
    cfg = get_config(ROOT)
    assert cfg.lib_path == ROOT / "prefbench_lib" and cfg.nbs_path == ROOT / "nbs"
    assert "slow" in cfg.tst_flags.split()


def test_quarto_config_is_top_level_and_lists_exactly_the_notebooks():
    link = ROOT / "nbs" / "_quarto.yml"
    assert link.is_symlink() and link.resolve() == (ROOT / "_quarto.yml").resolve()
    q = yaml.safe_load((ROOT / "_quarto.yml").read_text())
    for f in q["metadata-files"] + [q["format"]["html"]["css"]]: assert (ROOT / "nbs" / f).exists(), f

    def pages(items):
        for it in items:
            if isinstance(it, str): yield it
            elif "contents" in it: yield from pages(it["contents"])
            elif "href" in it: yield it["href"]
    in_sidebar = list(pages(q["website"]["sidebar"]["contents"]))
    notebooks = sorted(p.name for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_"))
    assert sorted(in_sidebar) == notebooks, "every notebook once in the sidebar, and no page that does not exist"
    navbar = [m for it in q["website"]["navbar"]["left"] for m in it.get("menu", [it])]
    for it in navbar: assert (ROOT / "nbs" / it["href"]).exists(), it
    assert [it["text"] for it in q["website"]["navbar"]["left"]] == \
        ["Home", "Losses", "Toy labs", "Nash", "Margins", "LM lab", "Dashboards", "API"]


def test_reader_path_table_names_only_existing_notebooks():
    index = (ROOT / "README.md").read_text()
    table = index.split("## Reader path")[1].split("\n## ")[0]
    named = re.findall(r"^\| \[?`([\w]+)`(?:\]\(nbs/\1\.ipynb\))?", table, re.M)
    assert named and all((ROOT / "nbs" / f"{n}.ipynb").exists() for n in named), named
