# Two entry points for a fresh clone (see README):
#   make start  - install everything into .venv and start prefbench
#   make test   - install everything into .venv and run every notebook and test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU wheel. Installed before anything else so that no dependency pulls an
# unpinned torch (which would bring several GB of CUDA packages).
TORCH  := torch==2.13.0
PYTEST_ARGS ?= -n auto

.PHONY: start test install execute readme

start: install
	$(BIN)/prefbench info

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]" "$(TORCH)"
	touch $@

# Re-execute every notebook in place (the docs show the stored outputs), then clean them.
execute: install
	$(BIN)/jupyter nbconvert --log-level WARN --to notebook --execute --inplace nbs/[!_]*.ipynb
	$(BIN)/nbdev-clean

# Regenerate README.md from nbs/index.ipynb and its outputs (no Quarto needed).
readme: execute
	$(BIN)/python tools/readme.py
