# One-command set-up: every target below creates .venv and installs on first use.
#
# Interpreter: PY=... if given, else the first of PY_CANDIDATES that runs, is Python 3.11-3.13 and
# can make a venv (Python 3.12 first: constraints/py3.12.txt is the set CI and the GPU machine run).
# Versions: constraints/py3.X.txt for that Python (a tested, exact set), else the newest versions
# within pyproject.toml's ranges (with a warning). jax: the CUDA build when an NVIDIA GPU answers
# (nvidia-smi), CUDA 13 or 12 by what the driver supports; GPU=0|1 and CUDA=12|13 override.
PY      ?=
PYENV   := $(or $(PYENV_ROOT),$(HOME)/.pyenv)
PY_CANDIDATES := python3.12 $(sort $(wildcard $(PYENV)/versions/3.12*/bin/python3.12)) \
                 python3.13 $(sort $(wildcard $(PYENV)/versions/3.13*/bin/python3.13)) \
                 python3.11 $(sort $(wildcard $(PYENV)/versions/3.11*/bin/python3.11)) python3
VENV    := .venv
BIN     := $(VENV)/bin
GPU     ?= auto
ENV     ?= humanoid
AGENT   ?= smfp
PRESET  ?= auto
ARGS    ?=
RUN     ?= runs
# Python on the GPU machine for `make gpu-check` (its own, with its own CUDA jax; no .venv there).
GPU_PY  ?= python3
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.cache/jax
export MUJOCO_GL ?= egl
# Hide XLA / compile-cache INFO and WARNING lines (errors still show).
export TF_CPP_MIN_LOG_LEVEL ?= 2

# The driver's CUDA version ("CUDA Version: 13.0" in nvidia-smi's header), empty without a GPU.
DRIVER_CUDA := $(shell nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\).*/\1/p' | head -n1)
# jax's CUDA plugins need CUDA >= 12: 13 when the driver supports it, else 12.
DRIVER_CUDA_OK := $(filter-out 1 2 3 4 5 6 7 8 9 10 11,$(DRIVER_CUDA))
ifeq ($(GPU),auto)
  ifneq ($(DRIVER_CUDA),$(DRIVER_CUDA_OK))
    $(warning nvidia-smi reports CUDA $(DRIVER_CUDA); jax needs a driver with CUDA >= 12: installing the CPU jax)
  endif
  override GPU := $(if $(DRIVER_CUDA_OK),1,0)
endif
ifeq ($(filter 0 1,$(GPU)),)
  $(error GPU=$(GPU): use GPU=1 (CUDA jax), GPU=0 (CPU jax) or leave it out (auto: nvidia-smi decides))
endif
CUDA    ?= $(if $(filter 12,$(DRIVER_CUDA)),12,13)
comma   := ,
EXTRAS  := dev$(if $(filter 1,$(GPU)),$(comma)cuda$(CUDA))
STAMP   := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

# What the GPU machine lacks, at constraints/py3.12.txt's versions: the project's dependencies
# and their Requires-Dist that are not in its image (../shared/design/STACK.md; the device tool's
# KINDS.md lists the image). `make wheelhouse` fetches their cp312 manylinux wheels into
# .wheelhouse/ (about 34 MiB: the device machine takes at most 64 MiB of working tree).
WHEELHOUSE     := .wheelhouse
WHEELHOUSE_PKGS := mujoco mujoco-core mujoco-studio mujoco-mjx brax gymnasium farama-notifications \
                   tensorboardX flask flask-cors itsdangerous blinker jaxopt ml-collections trimesh \
                   glfw pyopengl websockets
WHEELHOUSE_MAX_MB := 60

.PHONY: help install train evaluate test bench bench-gpu plot wheelhouse gpu-check clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'
	@echo "  variables: ENV=$(ENV) AGENT=$(AGENT) PRESET=$(PRESET) ARGS='--key value ...'"
	@echo "             GPU=$(GPU) (0|1; default: 1 when nvidia-smi answers) CUDA=$(CUDA) (12|13) PY=/path/to/python3.12"

$(STAMP): pyproject.toml $(wildcard constraints/*.txt)
	@set -e; py=; \
	for c in $(or $(PY),$(PY_CANDIDATES)); do \
	  if $$c -c 'import sys, venv, ensurepip; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' 2>/dev/null; \
	  then py=$$c; break; fi; done; \
	if [ -z "$$py" ]; then echo "make install: no usable Python 3.11-3.13 (with venv and ensurepip) among:" \
	  "$(or $(PY),$(PY_CANDIDATES)). Install one (3.12 preferred), or name it: make install PY=/path/to/python3.12" >&2; exit 1; fi; \
	ver=$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	if [ -x $(BIN)/python ] && [ "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != "$$ver" ]; then \
	  echo "make install: $(VENV) is not Python $$ver; recreating it"; rm -rf $(VENV); fi; \
	lock=constraints/py$$ver.txt; \
	if [ -f $$lock ]; then pins="-c $$lock"; else pins=""; \
	  echo "make install: WARNING: no $$lock; installing the newest versions within pyproject.toml's ranges" \
	       "(untested; CI uses Python 3.12 with constraints/py3.12.txt)" >&2; fi; \
	echo "make install: $$py (Python $$ver) -> $(VENV), extras [$(EXTRAS)] $${pins:+with $$lock}"; \
	[ -x $(BIN)/python ] || $$py -m venv $(VENV); \
	$(BIN)/python -m pip install -q --upgrade pip; \
	$(BIN)/python -m pip install -q $$pins -e ".[$(EXTRAS)]"; \
	rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)  ## create .venv and install (idempotent); GPU=0|1 overrides the GPU detection

train: $(STAMP)  ## train: make train ENV=humanoid AGENT=smfp|sac PRESET=auto|cpu|fast|paper ARGS=...
	$(BIN)/python -m launch.train --env $(ENV) --agent $(AGENT) --preset $(PRESET) $(ARGS)

plot: $(STAMP)  ## learning curves: make plot RUN="runs/humanoid/smfp runs/humanoid/sac" ARGS="--x time --out curves.png"
	$(BIN)/python -m launch.plot $(RUN) $(ARGS)

# Every test's outcome and time (JUnit XML, which CI systems read) from the last `make test`.
TEST_RECORD ?= .cache/tests/junit.xml

test: $(STAMP)  ## run the test suite (CPU, 2 workers); prints the 15 slowest, keeps every test's time in .cache/tests/
	JAX_PLATFORMS=cpu $(BIN)/python -m pytest -n 2 --durations=15 --junitxml=$(TEST_RECORD) tests

bench: $(STAMP)  ## run the benchmarks and write benchmarks/results/
	$(BIN)/python -m benchmarks.speed env
	$(BIN)/python -m benchmarks.speed loop --tasks $(ENV) --agents sac,smfp --brax
	$(BIN)/python -m benchmarks.harness run wallclock_bandit --out runs/bench/wallclock_bandit

bench-gpu: $(STAMP)  ## the benchmarks at GPU sizes (fast preset, thousands of envs); needs a GPU
	$(BIN)/python -m benchmarks.speed env --tasks humanoid,halfcheetah --num-envs 1024,4096,8192 --steps 1000 --physics gpu
	$(BIN)/python -m benchmarks.speed loop --tasks $(ENV) --agents sac,smfp --preset fast --brax --replay_capacity 4194304

# Any Python with pip fetches the wheels (pip download --python-version 3.12 needs no 3.12 and no .venv).
WHEEL_PY ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)

wheelhouse:  ## fetch the cp312 wheels the GPU machine lacks into .wheelhouse/ (needs network, not .venv)
	@set -e; rm -rf $(WHEELHOUSE); mkdir -p $(WHEELHOUSE); \
	for p in $(WHEELHOUSE_PKGS); do \
	  pin=$$(grep -i -E "^$$(echo $$p | sed "s/[-_.]/[-_.]/g")==" constraints/py3.12.txt) || { echo "make wheelhouse: $$p is not in constraints/py3.12.txt" >&2; exit 1; }; \
	  $(WHEEL_PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	    -d $(WHEELHOUSE) "$$pin"; done; \
	mb=$$(du -sm $(WHEELHOUSE) | cut -f1); ls $(WHEELHOUSE); \
	echo "make wheelhouse: $$(ls $(WHEELHOUSE) | wc -l) wheels, $$mb MiB in $(WHEELHOUSE)/"; \
	if [ $$mb -gt $(WHEELHOUSE_MAX_MB) ]; then echo "make wheelhouse: $$mb MiB is over $(WHEELHOUSE_MAX_MB) MiB" \
	  "(the device machine takes 64 MiB of working tree in all)" >&2; exit 1; fi

# SMOKE=1: the same run at CPU sizes (--smoke). MUJOCO_GL=disable: nothing renders, and EGL without
# libEGL.so.1 fails mujoco's import (the export above is for make train's videos).
SMOKE ?=
gpu-check:  ## on the GPU machine: install .wheelhouse/ offline, run benchmarks/gpu_check.py (JSON into $OUT); SMOKE=1 = --smoke
	MUJOCO_GL=disable $(GPU_PY) -m benchmarks.gpu_check --wheelhouse $(WHEELHOUSE) $(if $(filter 1,$(SMOKE)),--smoke)

clean:  ## remove the virtual environment, caches and the wheelhouse
	rm -rf $(VENV) .cache *.egg-info $(WHEELHOUSE)
