# The two commands of the README: `make demo` and `make test`. Both build .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench services clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/gridpilot demo

# Installs mosquitto, influxd and chromium first when they are missing and apt is usable.
# pytest's exit 5 ("no tests collected") is not a failure of the code under test.
test: $(STAMP) services
	$(PY) -m pytest || [ $$? -eq 5 ]

services:
	bash scripts/install-services.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP) services
	@set -e; for script in bench/[!_]*.py; do \
	  name=$$(basename $$script .py); echo "== bench.$$name"; $(PY) -m bench.$$name; done

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
