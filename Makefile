# cnn-artists: every command a user needs. `make help` lists them.
# The virtual environment is built on first use and rebuilt when requirements.txt changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/requirements.installed
KERNEL := cnn-artists

PARAMS ?=
IMAGES ?=
MODEL ?=
SWEEP ?= sweeps/sample_sizes.yaml
DATA ?= data/sample

.DEFAULT_GOAL := help
.PHONY: help venv run predict sweep duplicates test lint format lab notebook sample-data benchmark clean-venv

help:  ## List the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(INSTALLED): requirements.txt
	@echo "Building $(VENV) with $(PYTHON) (first use, or requirements.txt changed)..."
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python 3 (cnn-artists)" >/dev/null
	cp requirements.txt $@

venv: $(INSTALLED)  ## Build the virtual environment (.venv) if missing or stale

run: $(INSTALLED)  ## Run the notebook headlessly; results go to out/<run_name>/ (PARAMS="-p num_epochs 20" or "-f params/kaggle.yaml")
	$(PY) -m utils.run_notebook $(PARAMS)

predict: $(INSTALLED)  ## Attribute paintings: IMAGES="a.jpg b.png" [MODEL=out/<run>/model.keras] (default: newest model)
	@test -n "$(IMAGES)" || { echo 'Usage: make predict IMAGES="path/a.jpg path/b.png" [MODEL=out/<run>/model.keras]'; exit 2; }
	$(PY) -m utils.predict $(IMAGES) $(if $(MODEL),--model $(MODEL))

sweep: $(INSTALLED)  ## Run the notebook over a grid: SWEEP=sweeps/sample_sizes.yaml; summary in out/sweeps/<name>/
	$(PY) -m utils.sweep $(SWEEP)

duplicates: $(INSTALLED)  ## Near-duplicate paintings within and across splits: DATA=data/impressionist
	$(PY) -m utils.near_duplicates $(DATA)

test: $(INSTALLED)  ## Run every test: unit tests, bad-input suite, nbval, papermill on real paintings
	$(PY) -m pytest

lint: $(INSTALLED)  ## Check code and notebooks with ruff
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(INSTALLED)  ## Format code and notebooks with ruff
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

lab: $(INSTALLED)  ## Open JupyterLab with the cnn-artists kernel
	$(VENV)/bin/jupyter lab notebooks/cnn_artists.ipynb

notebook: $(INSTALLED)  ## Re-execute the committed notebook in place, refreshing the outputs nbval compares
	$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.kernel_name=$(KERNEL) --ExecutePreprocessor.timeout=1800 \
		notebooks/cnn_artists.ipynb

sample-data: $(INSTALLED)  ## Write the synthetic sample paintings to data/sample (done automatically on first run)
	$(PY) -m utils.sample_data

benchmark: $(INSTALLED)  ## Measure loader throughput and peak memory (needs ../shared/data)
	$(PY) benchmarks/loader.py

clean-venv:  ## Remove the virtual environment
	rm -rf $(VENV)
