# One command each: `make demo` (set up, train the CPU default on GoEmotions, evaluate, report) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The official GoEmotions files: a shared copy when there is one, else emoscope's verified download.
SHARED_DATA := $(wildcard ../shared/data/goemotions/train.tsv)
export EMOSCOPE_DATA_DIR ?= $(if $(SHARED_DATA),$(abspath ../shared/data/goemotions),)
RUN ?= runs/cpu-default

.PHONY: setup demo quality test bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/emoscope train --preset cpu-default --run_dir $(RUN) --visualize $(ARGS)

# The quality recipe: the demo run (seed 42) and three more seeds, averaged with the TF-IDF floor blended in;
# the blend weight and every threshold are chosen on dev.
SEEDS ?= 43 44 45
quality: demo
	for seed in $(SEEDS); do \
	  $(BIN)/emoscope train --preset cpu-default --seed $$seed --run_dir $(RUN)-seed$$seed --lexical_baseline false \
	    $(ARGS) || exit 1; \
	done
	$(BIN)/emoscope ensemble $(RUN) $(addprefix $(RUN)-seed,$(SEEDS)) --baseline $(RUN)/baseline \
	  --out $(RUN)-ensemble --overwrite

test: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Side-by-side benchmarks against the Hugging Face Trainer and pipeline; tables print, JSON goes to bench/results/.
bench: setup
	$(BIN)/python -m pip install -q -e '.[bench]'
	HF_HUB_OFFLINE=1 $(BIN)/python bench/train_throughput.py
	HF_HUB_OFFLINE=1 $(BIN)/python bench/inference.py $(if $(wildcard $(RUN)/model.safetensors),--run $(RUN),)
	HF_HUB_OFFLINE=1 $(BIN)/python bench/tracker_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
