# cnn-artists: every command a user needs. `make help` lists them.
# The virtual environment is built on first use and rebuilt when requirements.txt changes;
# the project is reinstalled into it (editable) when pyproject.toml changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/requirements.installed
PROJECT := $(VENV)/project.installed
KERNEL := cnn-artists
# The same kernel with oneDNN's optimisations off: float32 summed in another order, as on
# another processor. make test-all runs nbval in it (tests/test_notebook.py).
CHECK_KERNEL := cnn-artists-check
CHECK_KERNEL_SPEC := $(VENV)/share/jupyter/kernels/$(CHECK_KERNEL)/kernel.json

PARAMS ?=
IMAGES ?=
MODEL ?=
RUN ?=
SWEEP ?= sweeps/sample_sizes.yaml
JOBS ?=
DATA ?= data/sample
OUT ?=
HANDOUT ?= handout
KEEP_OUTPUTS ?=
# Test files run this many at a time (pytest-xdist, each file whole in one worker, the long ones
# first: tests/conftest.py); 0 runs them one by one.
TEST_WORKERS ?= 2
IN_WORKERS = -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
# Paths reach the commands through the environment, quoted there: a folder named
# "out dir ü" works as given (make resume RUN='out dir ü/run'), spaces and all.
export MODEL RUN SWEEP DATA OUT HANDOUT

.DEFAULT_GOAL := help
.PHONY: help venv run resume predict sweep runs handout duplicates test test-all test-lab coverage lint format lab notebook sample-data benchmark clean-venv

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

# A rule of its own, so that environments built before it get the kernel too.
$(CHECK_KERNEL_SPEC): $(INSTALLED)
	$(PY) -m ipykernel install --sys-prefix --name $(CHECK_KERNEL) \
		--display-name "Python 3 (cnn-artists, oneDNN off)" --env TF_ENABLE_ONEDNN_OPTS 0 >/dev/null

# The project itself, editable: the kernel imports utils/ from any working directory.
$(PROJECT): $(INSTALLED) $(CHECK_KERNEL_SPEC) pyproject.toml
	$(PY) -m pip install --quiet --no-deps -e .
	cp pyproject.toml $@

venv: $(PROJECT)  ## Build the virtual environment (.venv) if missing or stale

run: $(PROJECT)  ## Run the notebook headlessly; results go to out/<run_name>/ (PARAMS="-p num_epochs 20" or "-f params/kaggle.yaml")
	$(PY) -m utils.run_notebook $(PARAMS)

resume: $(PROJECT)  ## Continue an interrupted or killed run after its last completed epoch: RUN=out/<run_name>
	@test -n "$$RUN" || { echo 'Usage: make resume RUN=out/<run_name>'; exit 2; }
	$(PY) -m utils.run_notebook --resume "$$RUN"

predict: $(PROJECT)  ## Attribute paintings: IMAGES="a.jpg 'my b.png'" [MODEL=out/<run>/model.keras] (default: newest finished run)
	@test -n "$(IMAGES)" || { echo 'Usage: make predict IMAGES="path/a.jpg path/b.png" [MODEL=out/<run>/model.keras]'; exit 2; }
	$(PY) -m utils.predict $(IMAGES) $(if $(MODEL),--model "$$MODEL")

sweep: $(PROJECT)  ## Run the notebook over a grid: SWEEP=sweeps/sample_sizes.yaml [JOBS=2]; summary in out/sweeps/<name>/
	$(PY) -m utils.sweep "$$SWEEP" $(if $(JOBS),--jobs $(JOBS))

runs: $(PROJECT)  ## One table of every run in out/ (or OUT=folder): status, changed parameters, scores, minutes
	$(PY) -m utils.run_table $(if $(OUT),"$$OUT")

handout: $(PROJECT)  ## A folder for students without the solutions: HANDOUT=handout [KEEP_OUTPUTS=1]
	$(PY) -m utils.handout --to "$$HANDOUT" $(if $(KEEP_OUTPUTS),--keep-outputs)

duplicates: $(PROJECT)  ## Near-duplicate paintings within and across splits: DATA=data/impressionist
	$(PY) -m utils.near_duplicates "$$DATA"

test: $(PROJECT)  ## Run every test but the slow end-to-end ones: unit tests, smoke matrix, nbval
	$(PY) -m pytest $(IN_WORKERS) -m "not slow and not lab"

test-all: $(PROJECT)  ## make test, plus the slow end-to-end runs on real paintings (what CI runs)
	$(PY) -m pytest $(IN_WORKERS) -m "not lab"

# Needs Debian's chromium (Playwright's own browser download is not used); skipped without it.
test-lab: $(PROJECT)  ## Run All Cells in a real JupyterLab in headless Chromium; checks errors, figures, widgets
	@if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; then \
		echo '$(PY) -m pytest -m lab -s tests/lab'; $(PY) -m pytest -m lab -s tests/lab; \
	else \
		echo 'make test-lab: skipped, chromium is not installed (install it with: sudo apt-get install chromium)'; \
	fi

coverage: $(PROJECT)  ## Line coverage of utils/ by what CI runs, subprocesses and kernels included (a job of its own)
	.ci/coverage

lint: $(PROJECT)  ## Check code and notebooks with ruff
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(PROJECT)  ## Format code and notebooks with ruff
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

lab: $(PROJECT)  ## Open JupyterLab with the cnn-artists kernel
	$(VENV)/bin/jupyter lab notebooks/cnn_artists.ipynb

notebook: $(PROJECT)  ## Re-execute the committed notebook in place, refreshing the outputs nbval compares
	$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.kernel_name=$(KERNEL) --ExecutePreprocessor.timeout=1800 \
		notebooks/cnn_artists.ipynb

sample-data: $(PROJECT)  ## Write the synthetic sample paintings to data/sample (done automatically on first run)
	$(PY) -m utils.sample_data

benchmark: $(PROJECT)  ## Measure loader throughput and peak memory (needs ../shared/data)
	$(PY) benchmarks/loader.py

clean-venv:  ## Remove the virtual environment
	rm -rf $(VENV)
