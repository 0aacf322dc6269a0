# Everything a fresh machine needs: `make demo` and `make test` create the virtual environment themselves.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-hwnas
PIP := $(BIN)/pip install --disable-pip-version-check -q

.PHONY: venv demo test bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	# torch first, on its own: the CPU wheel; letting pip resolve it later pulls several GB of CUDA packages
	$(PIP) torch==2.13.0
	$(PIP) -e ".[test,mnist,dashboard]"
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/python -m experiments.demo

test: venv
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: venv
	$(BIN)/python -m experiments.bench_all

clean:
	rm -rf $(VENV) demo-out .pytest_cache
