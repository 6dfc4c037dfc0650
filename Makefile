# The README's two commands:
#   make reproduce   set up .venv (first time) and run the workflow: snakemake --cores all
#   make test        set up .venv (first time) and run the test suite (what CI runs)
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV)/bin)
STAMP := $(VENV)/.installed
# Rules call `python`, `dcl-seg-errors`, ...: the venv's, whatever the caller's PATH holds.
RUN := PATH=$(BIN):$$PATH

.PHONY: reproduce test setup
reproduce: $(STAMP)
	$(RUN) snakemake --cores all $(ARGS)

test: $(STAMP)
	$(RUN) python -m pytest $(ARGS)

setup: $(STAMP)

$(STAMP): envs/requirements-cpu.txt envs/install_detectron2.py pyproject.toml baselines/detectron2/pyproject.toml \
          envs/requirements-mmdet.txt envs/install_mmdet.py baselines/mmdet/pyproject.toml \
          baselines/mmseg/pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -qq -r envs/requirements-cpu.txt
	$(VENV)/bin/python envs/install_detectron2.py --cache .cache/sdists
	# mmcv 2.1.0 compiles from source (about 10 minutes on 2 cores, once: the wheel is cached).
	$(VENV)/bin/python envs/install_mmdet.py --cache .cache/wheels
	$(VENV)/bin/python -m pip install -qq --no-deps -e . -e baselines/detectron2 -e baselines/mmdet \
	    -e baselines/mmseg
	touch $@
