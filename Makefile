# Everything a fresh machine needs: `make demo` and `make test` create the virtual environment themselves.
PY ?= python3
# passive OpenMP waiting: spinning threads make torch 40-50x slower on a loaded machine (see search_spaces)
export OMP_WAIT_POLICY ?= PASSIVE
VENV ?= .venv
BIN := $(VENV)/bin
CORE := $(VENV)/.installed-core
STAMP := $(VENV)/.installed-hwnas
PIP := $(BIN)/pip install --disable-pip-version-check -q

.PHONY: venv demo test test-fast bench clean

# what `hwnas run` needs, no more: the demo's set-up counts against its 15 minutes
$(CORE): pyproject.toml
	$(PY) -m venv $(VENV)
	# torch first, on its own: the CPU wheel; letting pip resolve it later pulls several GB of CUDA packages
	$(PIP) torch==2.13.0
	$(PIP) -e .
	touch $(CORE)

# and what the tests use: the peers they compare with, the optional data sets, backends and dashboard
$(STAMP): $(CORE)
	$(PIP) -e ".[test,mnist,dashboard,openvino]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(CORE)
	$(BIN)/hwnas run experiments/quickstart.yaml

# the tests on the session's Ray instance in a process of their own, after the rest: Ray's driver keeps its threads
# and its own alternate signal stack in the process after ray.shutdown, and no other test should run beside them
test: venv
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not ray"
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "ray"

# the tier to run while editing: no Ray, no supernet training, nothing marked slow (tests/conftest.py marks by use)
test-fast: venv
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow and not ray and not gpu"

# the peers the benchmarks compare with (Once-for-All's package, pymoo, moocore): the bench extra
bench: venv
	$(PIP) -e ".[bench]"
	$(BIN)/python -m experiments.bench_all

clean:
	rm -rf $(VENV) runs/quickstart .pytest_cache
