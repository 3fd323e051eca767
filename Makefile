# The two commands of the README: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip -c constraints.txt
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

DEMO_OUT ?= runs/demo
DEMO_BUDGET ?= 4cpu-minutes

# A short search on the embedded synthetic video ending with an exported cell. Run it again
# and it resumes the same run folder (nothing is recomputed; a spent budget just exports).
demo: $(STAMP)
	$(PY) -m nas.search --budget $(DEMO_BUDGET) --out $(DEMO_OUT) --teacher-steps 300 \
		--fast-steps 120 $(if $(wildcard $(DEMO_OUT)/search.json),--resume,)
	$(PY) -m nas.export $(DEMO_OUT) --top 1

test: $(STAMP)
	$(PY) -m pytest -q -x --timeout 900

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info
