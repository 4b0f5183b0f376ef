# Two commands: `make run` (set up, then the default experiment) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
# torch and torchvision are pinned to releases that pip can take from a local wheel cache
# where one exists; any machine with network access gets the same releases from PyPI.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: run roar curves robustness randomization hermitry smoke reproduce verify test test-faults test-slurm lint format benchmark clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check $(TORCH_PINS)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

$(VENV): $(VENV)/.installed

run: $(VENV)
	$(BIN)/snakemake --profile profiles/default --cores $(CORES)

roar: $(VENV)
	$(BIN)/snakemake --profile profiles/default --cores $(CORES) roar

curves: $(VENV)
	$(BIN)/snakemake --profile profiles/default --cores $(CORES) curves

robustness: $(VENV)
	$(BIN)/snakemake --profile profiles/default --cores $(CORES) robustness

randomization: $(VENV)
	$(BIN)/snakemake --profile profiles/default --cores $(CORES) randomization

hermitry: $(VENV)
	$(BIN)/snakemake --profile profiles/default --cores $(CORES) hermitry

# Every paper preset's smoke variant end to end on the embedded data, each in its own folder
# under smoke/ (the test suite only plans them: `snakemake -n`).
smoke: $(VENV)
	for preset in configs/papers/smoke/*.yaml; do \
		name=$$(basename $$preset .yaml); \
		$(BIN)/snakemake --profile profiles/default --cores $(CORES) --snakefile $(CURDIR)/Snakefile \
			--directory smoke/$$name --configfile $(CURDIR)/$$preset || exit 1; \
	done

# Every smoke preset as `make smoke` does, then each one's published numbers beside its own
# (results/tables/reproduction_<reference>.csv in each smoke/<name>/ folder).
reproduce: smoke
	$(BIN)/python -m saliencybench.reproduction smoke/*/results/tables/reproduction_*.csv

# Every store, summary and checkpoint under results/ against the hashes written with it.
verify: $(VENV)
	$(BIN)/snakemake --profile profiles/default --cores 1 verify

# The page rendering test needs Debian's chromium: installed here where it can be.
test: $(VENV)
	@tests/install-chromium.sh
	$(BIN)/python -m pytest -q

# Runs killed with SIGKILL at several moments, resumed, compared with an uninterrupted run.
test-faults: $(VENV)
	$(BIN)/python -m pytest -q -m faults --run-faults tests/test_faults.py

# The workflow under a real one-node SLURM cluster on this machine; root on Debian only (it
# installs SLURM, starts its daemons and stops them again). The executor plugin goes into
# .venv-slurm, layered over .venv, never into .venv itself.
test-slurm: $(VENV)
	tests/slurm/run.sh

lint: $(VENV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakemake --lint

format: $(VENV)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

benchmark: $(VENV)
	$(BIN)/python benchmarks/backbone.py
	$(BIN)/python benchmarks/roar.py
	$(BIN)/python benchmarks/curves.py
	$(BIN)/python benchmarks/randomization.py
	$(BIN)/python benchmarks/hermitry.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/table.py

clean:
	rm -rf results logs benchmarks/rules .snakemake smoke
