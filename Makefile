# The two commands of README.md: `make demo` runs the main job, `make test` the tests.
# Each creates .venv when it is missing and installs everything from nothing (pinned by constraints.txt).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-cache-dir -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash recipes/synth/run.sh --quick true

test: $(STAMP) lint
	$(BIN)/python -m pytest -q -n 2 --maxschedchunk 1

lint: $(STAMP)
	$(BIN)/ruff check speechmeta tests data_prep benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/features.py

clean:
	rm -rf $(VENV) exp data .pytest_cache
