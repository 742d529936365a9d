# drsync — the two commands of the quick start are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck soak bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq python3-venv)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m drsync.demo --dir demo

test: $(STAMP) lint
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

lint: $(STAMP)
	$(BIN)/ruff check drsync tests bench
	$(BIN)/mypy

soak: $(STAMP)
	DRSYNC_SOAK=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests -m crash

bench: $(STAMP)
	$(BIN)/python bench/incremental.py

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
