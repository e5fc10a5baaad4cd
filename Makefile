# One-command set-up: every target below creates .venv and installs on first use.
PY      ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
ENV     ?= humanoid
AGENT   ?= smfp
PRESET  ?= auto
ARGS    ?=
RUN     ?= runs
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.cache/jax
export MUJOCO_GL ?= egl
# Hide XLA / compile-cache INFO and WARNING lines (errors still show).
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: help install train evaluate test bench plot clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  variables: ENV=$(ENV) AGENT=$(AGENT) PRESET=$(PRESET) ARGS='--key value ...'"

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install (idempotent)

train: $(STAMP)  ## train: make train ENV=humanoid AGENT=smfp|sac PRESET=auto|cpu|fast|paper ARGS=...
	$(BIN)/python -m launch.train --env $(ENV) --agent $(AGENT) --preset $(PRESET) $(ARGS)

plot: $(STAMP)  ## learning curves: make plot RUN="runs/humanoid/smfp runs/humanoid/sac" ARGS="--x time --out curves.png"
	$(BIN)/python -m launch.plot $(RUN) $(ARGS)

test: $(STAMP)  ## run the test suite (CPU, 2 workers)
	JAX_PLATFORMS=cpu $(BIN)/python -m pytest -n 2 --durations=15 tests

bench: $(STAMP)  ## run the benchmarks and write benchmarks/results/
	$(BIN)/python -m benchmarks.env_throughput
	$(BIN)/python -m benchmarks.throughput --env $(ENV) --agent sac
	$(BIN)/python -m benchmarks.throughput --env $(ENV) --agent smfp
	$(BIN)/python -m benchmarks.wallclock_vs_sac --env multimodal --seeds 0,1,2 --budget-minutes 1.5 --preset cpu \
		--env_kwargs '{"num_modes": 4}' --actor_hidden 64,64 --critic_hidden 64,64 --actor_lr 1e-3 --critic_lr 1e-3 \
		--init_temperature 0.01 --batch_size 128

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .cache *.egg-info
