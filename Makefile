# Two commands on a fresh Linux machine with Python 3.11+: `make demo` and `make test`.
# Each creates .venv when missing and installs the project with its dev extras first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tether-installed

.PHONY: install demo test test-fast lint clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# A CPU build of torch first, so that nothing pulls a multi-GB CUDA build on a CPU machine.
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,postgres]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tether demo --dir demo-project --fresh

lint: $(STAMP)
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests bench
	$(PY) -m mypy

# pytest exits 5 when no test ran, and make treats any non-zero exit as failure.
test: lint
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

clean:
	rm -rf $(VENV) demo-project .pytest_cache .mypy_cache .ruff_cache
