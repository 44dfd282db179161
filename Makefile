# Quick start (fresh clone):  `make demo`  then  `make test`.
# Both create or reuse .venv in the project root; torch is installed first (CPU build without a GPU).
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv demo test test-all fix-formatting lint typecheck unit benchmark clean

venv:
	bash scripts/setup_venv.sh dev

## The main job: synthetic retina -> dataloaders -> model -> report (see README).
demo: venv
	$(BIN)/openretina demo

## The whole CI suite: lint, format check, type check, unit and integration tests.
test: venv lint typecheck unit

## Name used by the reference project's README.
test-all: test

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

unit:
	$(BIN)/python -m pytest -q

fix-formatting: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

benchmark: venv
	for script in benchmarks/*_benchmark.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
