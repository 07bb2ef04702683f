# Two entry points for a fresh clone (see README):
#   make start  - install everything into .venv and serve the dashboards (prefbench dashboard)
#   make test   - install everything into .venv and run every notebook and test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU wheel. Installed before anything else so that no dependency pulls an
# unpinned torch (which would bring several GB of CUDA packages).
TORCH  := torch==2.13.0
PYTEST_ARGS ?= -n auto

.PHONY: start test install lab execute readme html docs

start: install
	$(BIN)/prefbench dashboard

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The install is redone when the content of pyproject.toml or of this Makefile changes, not their modification time:
# nbdev-export rewrites pyproject.toml with the same content, which must not cost a reinstall. The stamp's name
# carries a checksum of both files.
INSTALL_SUM := $(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
STAMP       := $(VENV)/.installed-$(INSTALL_SUM)

install: $(STAMP)

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]" "$(TORCH)"
	rm -f $(VENV)/.installed $(VENV)/.installed-*
	touch $@

# JupyterLab on the notebooks.
lab: install
	$(BIN)/jupyter lab nbs/

# Re-execute every notebook in place (the docs show the stored outputs), then clean them. 11_dashboards is kept
# without outputs: they are live Panel apps (megabytes of JavaScript) that only a running kernel can show; its page
# shows screenshots instead (tools/screenshots.py). Widget state is not stored either.
execute: install
	$(BIN)/jupyter nbconvert --log-level WARN --to notebook --execute --inplace --NotebookClient.store_widget_state=False \
		$(filter-out nbs/11_dashboards.ipynb,$(wildcard nbs/[!_]*.ipynb))
	$(BIN)/nbdev-clean

# Regenerate README.md from nbs/index.ipynb and its outputs (no Quarto needed).
readme: execute
	$(BIN)/python tools/readme.py

# Every notebook rendered from its stored outputs to _html/<name>.html with nbconvert, readable offline (plotly.js and
# MathJax copied beside the pages): what the site shows, where Quarto is not installed. Open _html/index.html.
html: install
	$(BIN)/python tools/html_pages.py

# The documentation site with Quarto (nbdev-docs, into _docs/). plotly.min.js goes beside the notebooks, from where
# Quarto copies it beside the pages (prefbench_lib.docs.PlotlyHTML makes each page with figures load it).
docs: install
	@if command -v quarto >/dev/null 2>&1; then \
		cp $$($(BIN)/python -c "import plotly, pathlib; print(pathlib.Path(plotly.__file__).parent / 'package_data' / 'plotly.min.js')") nbs/plotly.min.js && \
		$(BIN)/nbdev-docs; \
	else \
		echo "make docs: Quarto is not installed, so the site cannot be built here."; \
		echo "  Install it from https://quarto.org/docs/get-started/ (a .deb, .rpm, .pkg or .msi, or a tarball to unpack"; \
		echo "  and put on PATH), then run 'make docs' again. Without Quarto, 'make html' renders every notebook to _html/."; \
	fi
