# The two README commands: `make demo` (main job on embedded MSFT) and `make test`.
# Both create and fill .venv themselves; torch==2.13.0 (local CPU build) is installed first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.tidewise-installed

.PHONY: demo test bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tidewise evaluate --data msft --out runs/demo
	$(VENV)/bin/tidewise forecast --data msft

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not lab"

bench: $(STAMP)
	$(PY) benchmarks/scaling.py
	$(PY) benchmarks/suite.py

clean:
	rm -rf $(VENV) runs
