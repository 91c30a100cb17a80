# One command each: `make demo` (set up, train the CPU default on GoEmotions, evaluate, report) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The official GoEmotions files: a shared copy when there is one, else emoscope's verified download.
SHARED_DATA := $(wildcard ../shared/data/goemotions/train.tsv)
export EMOSCOPE_DATA_DIR ?= $(if $(SHARED_DATA),$(abspath ../shared/data/goemotions),)
RUN ?= runs/cpu-default

.PHONY: setup demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/emoscope train --preset cpu-default --run_dir $(RUN) --visualize $(ARGS)

test: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q
	$(BIN)/ruff check .

bench: setup
	HF_HUB_OFFLINE=1 $(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
