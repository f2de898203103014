# The two README commands: `make demo` and `make test`. Each creates .venv when missing.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mcss reproduce --preset quick --out runs/demo
	$(VENV)/bin/mcss synth --preset quick --out runs/demo/data --preview runs/demo/preview.png
	@echo "Report: runs/demo/report/index.html; dataset preview: runs/demo/preview.png"

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf runs .pytest_cache
