"""The shape of the labs (issue 25): what varies is a registered entry, never a name compared inside a shared loop.

The labs (`lm_train`, `toy`, `dashboards`, and the math modules beside them) are read as source: no comparison of a
registered name (a loss, a toy rule, a Nash algorithm, a game, an optimizer, a sampler or policy kind, an LM-lab loss family),
and no method looked up by a name built in an f-string (`getattr(self, f"{n}_figure")`).
"""
from __future__ import annotations

import ast
import importlib
import inspect

import pytest

LABS = ("lm_train", "toy", "dashboards", "widgets", "metrics", "nash", "losses", "listwise")


def registered_names() -> set[str]:
    "Every name a registry of the library holds, read at test time (registries may grow after import)."
    names: set[str] = set()
    for mod in ("core", "losses", "listwise", "toy", "metrics", "nash", "lm_train", "dashboards"):
        m = importlib.import_module(f"prefbench_lib.{mod}")
        for key, value in vars(m).items():  # every public upper-case dict keyed by strings whose values are entries (a registry)
            if key.isupper() and isinstance(value, dict) and value and all(isinstance(k, str) for k in value) and \
                    any(callable(v) or hasattr(v, "__dataclass_fields__") for v in value.values()):
                names |= set(value)
    return names


def _strings(node: ast.AST) -> list[str]:
    "The string constants a comparison operand is, or holds (a tuple, list or set of them)."
    if isinstance(node, ast.Constant) and isinstance(node.value, str): return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)): return [s for e in node.elts for s in _strings(e)]
    return []


def name_comparisons(source: str, names: set[str]) -> list[str]:
    "Each `x == 'name'`, `x != 'name'`, `x in ('name', ...)` whose string is a registered name, and each getattr on an f-string."
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) for op in node.ops):
            hit = [s for part in (node.left, *node.comparators) for s in _strings(part) if s in names]
            if hit: found.append(f"line {node.lineno}: {ast.unparse(node)}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr") \
                and len(node.args) > 1 and isinstance(node.args[1], ast.JoinedStr):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_the_scanner_finds_what_it_looks_for():
    "The scanner itself can fail: it flags each form the issue names, and passes a comparison of a string that names nothing."
    src = ("if name == 'kto': pass\nif kind in ('sft', 'rwr'): pass\nx = getattr(self, f'{n}_figure')\n"
           "if 'dpo' != loss: pass\nif device.type == 'cpu': pass\n")
    found = name_comparisons(src, {"kto", "sft", "dpo"})
    assert [f.split(":")[0] for f in found] == ["line 1", "line 2", "line 3", "line 4"], found


@pytest.mark.parametrize("module", LABS)
def test_no_lab_compares_a_registered_name(module):
    names = registered_names()
    assert {"dpo", "kto", "sgd", "omd"} <= names, sorted(names)[:40]  # the registries were found
    source = inspect.getsource(importlib.import_module(f"prefbench_lib.{module}"))
    assert name_comparisons(source, names) == []


# ---------------------------------------------------------------- cells a reader can hold

import json
import re
from pathlib import Path

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "nbs").glob("*.ipynb"))


def export_cell_problems(cells: list[dict]) -> list[str]:
    "Export cells over 40 lines or holding three or more definitions, and export cells whose next code cell asserts nothing."
    code = [c for c in cells if c["cell_type"] == "code"]
    src = lambda c: c["source"] if isinstance(c["source"], str) else "".join(c["source"])
    problems = []
    for i, c in enumerate(code):
        s = src(c)
        if not s.lstrip().startswith("#| export"): continue
        defs = re.findall(r"^(?:def|class) (\w+)", s, re.M)
        if s.count("\n") > 40: problems.append(f"{defs[:1] or c.get('id')}: {s.count(chr(10))} lines")
        if len(defs) >= 3: problems.append(f"{defs[0]}: {len(defs)} definitions in one cell")
        after = src(code[i + 1]) if i + 1 < len(code) else ""
        if defs and not re.search(r"test_\w+\(|assert ", after): problems.append(f"{defs[0]}: no check in the next cell")
    return problems


def test_the_cell_rule_finds_what_it_looks_for():
    cell = lambda s: {"cell_type": "code", "source": s}
    assert export_cell_problems([cell("#| export\ndef a(): pass"), cell("a()")]) == ["a: no check in the next cell"]
    assert export_cell_problems([cell("#| export\ndef a(): pass\ndef b(): pass\ndef c(): pass"), cell("assert a() is None")]) == \
        ["a: 3 definitions in one cell"]
    assert export_cell_problems([cell("#| export\ndef a(): pass"), cell("test_eq(a(), None)")]) == []


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_export_cell_is_small_and_checked_in_the_next_cell(notebook):
    assert export_cell_problems(json.loads(notebook.read_text())["cells"]) == []
