# Two entry points for a fresh machine: `make demo` and `make test`. Both set everything up first
# (a virtual environment in .venv, PyTorch's CPU wheel, gankit itself) and are fast the second time.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of PyTorch; an unpinned `torch` would pull a multi-GB CUDA build on a CPU machine.
# Override on a GPU machine: make setup TORCH_SPEC="torch==2.13.0" TORCH_INDEX=...
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: setup
	$(BIN)/gankit demo

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/quality.py

clean:
	rm -rf $(VENV) runs .pytest_cache
