"""Render every notebook under nbs/ to _html/<name>.html from its stored outputs (nothing is executed), readable offline.

Quarto cannot be installed everywhere; this renders the same notebooks with nbconvert so that the pages can be read,
and tested, from disk with no network (tests/test_docs.py opens them in Chromium with every request outside file://
blocked):

- each stored Plotly figure becomes a div drawn by `prefbench_lib.docs.figure_html`, and a page with figures loads
  plotly.js once, from the copy of the `plotly` package's plotly.min.js written beside the pages;
- math is typeset by the MathJax 2.7.9 that the `jupyter-server-mathjax` package ships (a dev dependency), copied to
  _html/mathjax/;
- as on the nbdev site, cells marked `#| hide` are left out and `#|` directive lines are not shown; a cell marked
  `#| code-fold: true` (an exercise's solution) shows its code folded under `#| code-summary` (default "Solution");
  links to notebooks point to their pages; headings also get the anchors Pandoc (and so Quarto) gives them, so a link
  written for the site works here too.

    .venv/bin/python tools/html_pages.py              # every notebook (make html)
    .venv/bin/python tools/html_pages.py 05_nash      # only the named ones
"""
from __future__ import annotations

import html
import re
import shutil
import sys
from pathlib import Path

import jinja2
import nbformat
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]
NBS, OUT = ROOT / "nbs", ROOT / "_html"
_DIRECTIVE = re.compile(r"^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$")
_IPYNB_LINK = re.compile(r'href="((?![a-z]+:)[^"#]*?)\.ipynb(#[^"]*)?"')

# The lab template without what it would fetch: require.js and MathJax from a CDN, Mermaid (no notebook uses it).
TEMPLATE = r"""
{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}
<script type="text/x-mathjax-config">
MathJax.Hub.Config({
  tex2jax: {inlineMath: [["$", "$"], ["\\(", "\\)"]], displayMath: [["$$", "$$"], ["\\[", "\\]"]],
            processEscapes: true, processEnvironments: true},
  // STIX-Web is the web font the package ships; MathJax's font test falls back on a "MathJax_Blank" font that it loads
  // from about:blank, which a page opened from disk may not load: a local font that is not there does the same, unfetched
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null,
               styles: {"@font-face": {"font-family": "MathJax_Blank", src: "local('MathJax_Blank')"}}},
  messageStyle: "none", displayAlign: "center"
});
MathJax.Hub.Register.StartupHook("End", function () { document.body.setAttribute("data-mathjax", "done"); });
</script>
<script src="mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"></script>
{%- endblock html_head_js_mathjax -%}
{%- block html_head_css -%}
{%- if resources.has_figures %}
<script src="plotly.min.js"></script>
{%- endif %}
<style>
  /* the hidden MathML kept for screen readers asks for MathJax's TeX fonts, which the package does not ship */
  .MJX_Assistive_MathML, .MJX_Assistive_MathML * { font-family: inherit !important; }
  details.code-fold > summary { cursor: pointer; color: var(--jp-ui-font-color2); margin: 0.3em 0; }
  .jp-RenderedHTMLCommon table { margin: 0.6em 0; }
</style>
{%- endblock html_head_css -%}
{% block input %}
{%- if cell.metadata.get("fold_summary") -%}
<details class="code-fold"><summary>{{ cell.metadata.fold_summary }}</summary>{{ super() }}</details>
{%- else -%}{{ super() }}{%- endif -%}
{% endblock input %}
"""


def pandoc_id(heading: str) -> str:
    "The identifier Pandoc's auto_identifiers give a heading (the anchors of the Quarto site)."
    text = re.sub(r"`([^`]*)`|\$([^$]*)\$|\*+|_{2,}", lambda m: m.group(1) or m.group(2) or "", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text
    text = re.sub(r"[^\w\s.-]", "", text)  # keep letters, digits, _ - . and spaces
    text = "-".join(text.split()).lower()  # words joined by single hyphens
    return re.sub(r"^[\W\d_]+", "", text) or "section"  # an identifier starts with a letter


def _directives(src: str) -> tuple[dict[str, str], str]:
    "A code cell's leading `#|` directives, and its source without them."
    lines, found = src.splitlines(), {}
    while lines and (m := _DIRECTIVE.match(lines[0])):
        found[m.group(1)] = m.group(2)
        lines.pop(0)
    return found, "\n".join(lines).strip("\n")


def _anchor_headings(src: str) -> str:
    "Markdown with an empty anchor carrying each heading's Pandoc identifier placed before the heading."
    out, fenced = [], False
    for line in src.splitlines():
        if line.lstrip().startswith(("```", "~~~")): fenced = not fenced
        m = None if fenced else re.match(r"^(#{1,6})\s+(.*?)\s*(\{#([\w.-]+)\})?\s*$", line)
        if m:
            ident = m.group(4) or pandoc_id(m.group(2))
            out += [f'<a id="{ident}"></a>', "", f"{m.group(1)} {m.group(2)}"]
        else: out.append(line)
    return "\n".join(out)


WIDGET_NOTE = ("<p><em>(An interactive ipywidgets control: run this notebook in JupyterLab, <code>make lab</code>, "
               "to use it.)</em></p>")


def prepare(nb: nbformat.NotebookNode) -> int:
    "Make `nb` what the page shows, in place; return how many figures it draws."
    from prefbench_lib.docs import figures_to_html
    cells, n = [], 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = _anchor_headings(cell.source)
        elif cell.cell_type == "code":
            found, body = _directives(cell.source)
            if "hide" in found or not body and not cell.get("outputs"): continue
            cell.source = body
            if found.get("code-fold", "").lower() == "true":
                cell.metadata["fold_summary"] = html.escape(found.get("code-summary", "").strip("'\"") or "Solution")
            n += figures_to_html(cell.get("outputs", []), "fig", n)
            for out in cell.get("outputs", []):
                if "application/vnd.jupyter.widget-view+json" in out.get("data", {}): out["data"] = {"text/html": WIDGET_NOTE}
        cells.append(cell)
    nb.cells = cells
    return n


def _assets(out: Path) -> None:
    "plotly.min.js and MathJax beside the pages (copied once per version)."
    import jupyter_server_mathjax
    import plotly
    js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not (out / js.name).exists() or (out / js.name).stat().st_size != js.stat().st_size: shutil.copy2(js, out / js.name)
    mj = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (out / "mathjax" / "MathJax.js").exists(): shutil.copytree(mj, out / "mathjax", dirs_exist_ok=True)


def render(names: list[str] | None = None,  # notebook names without .ipynb; None: every notebook under nbs/
           out: Path = OUT,  # the directory the pages go to
          ) -> list[Path]:  # the pages written
    "Write out/<name>.html for each notebook, from its stored outputs."
    out.mkdir(parents=True, exist_ok=True)
    _assets(out)
    if (NBS / "images").is_dir(): shutil.copytree(NBS / "images", out / "images", dirs_exist_ok=True)
    paths = [NBS / f"{n}.ipynb" for n in names] if names else sorted(p for p in NBS.glob("*.ipynb") if not p.name.startswith(("_", ".")))
    exporter = HTMLExporter(template_name="lab", extra_loaders=[jinja2.DictLoader({"prefbench.html.j2": TEMPLATE})],
                            template_file="prefbench.html.j2", exclude_anchor_links=True,
                            exclude_input_prompt=True, exclude_output_prompt=True)
    written = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        has_figures = prepare(nb) > 0
        title = next((l[2:].strip() for l in nb.cells[0].source.splitlines() if l.startswith("# ")), path.stem) if nb.cells else path.stem
        nb.metadata["title"] = f"{title} - prefbench"
        body, _ = exporter.from_notebook_node(nb, resources={"has_figures": has_figures})
        page = out / f"{path.stem}.html"
        page.write_text(_IPYNB_LINK.sub(lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', body), encoding="utf-8")
        written.append(page)
    return written


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="Render the notebooks' stored outputs to static pages readable offline.")
    ap.add_argument("names", nargs="*", help="notebooks to render, e.g. 01_losses (a path or .ipynb suffix is fine); default: all")
    names = [Path(n).name.removesuffix(".ipynb") for n in ap.parse_args().names]
    for n in names:
        if not (NBS / f"{n}.ipynb").is_file(): ap.error(f"no notebook nbs/{n}.ipynb")
    pages = render(names or None)
    print(f"wrote {len(pages)} pages to {OUT.relative_to(ROOT)}/ (open {OUT.relative_to(ROOT)}/index.html)", file=sys.stderr)
