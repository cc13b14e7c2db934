# geomask developer commands. `make` alone lists them.
# Every target creates .venv on first use and reinstalls only when pyproject.toml changes.

.DEFAULT_GOAL := help
.PHONY: help install demo test test-fast bench lint docs

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed-test
INSTALLED_BENCH := $(VENV)/.installed-bench
INSTALLED_DOCS := $(VENV)/.installed-docs
DEMO_PIPELINE := pipelines/roi_denoise.yaml
DEMO_OUTPUT := out/RGB.denoised.tif

help: ## List the targets
	@echo "geomask: make TARGET"
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-8s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,docs]'
	@touch $@

$(INSTALLED_DOCS): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[docs]'
	@touch $@

$(INSTALLED_BENCH): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	@touch $@

install: $(INSTALLED) ## Create .venv and install geomask (editable) with the test and docs tools

demo: install ## Run the sample pipeline on data/ and say where the output is
	$(BIN)/geomask run $(DEMO_PIPELINE) --overwrite
	@echo "Output: $(DEMO_OUTPUT) (pipeline: $(DEMO_PIPELINE))"

test: install ## Run the whole test suite (the docs build check included)
	$(BIN)/pytest

test-fast: install ## The edit-test loop: every test not marked slow (about a minute on 2 cores)
	$(BIN)/pytest -m "not slow"

bench: $(INSTALLED_BENCH) ## Run the benchmarks (installs the bench extras)
	$(BIN)/python -m benchmarks

lint: install ## ruff check and format check
	$(BIN)/ruff check geomask tests benchmarks
	$(BIN)/ruff format --check geomask tests benchmarks

docs: $(INSTALLED_DOCS) ## Build the documentation into site/ (mkdocs, warnings are errors)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site
	@echo "Documentation: site/index.html (sources: docs/, README.md, mkdocs.yml)"
