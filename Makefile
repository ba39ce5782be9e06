# Two commands: `make demo` and `make test`. Each bootstraps .venv (Python 3.10) when missing.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   ?= demo

.PHONY: all demo test bench clean venv

all: test

$(STAMP): requirements.lock requirements-nnabla-nas.lock pyproject.toml tools/bootstrap-venv.sh
	@VENV=$(VENV) tools/bootstrap-venv.sh

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/profiler run --space search_spaces/mobilenet_v2_cifar10.json --target host --out $(DEMO)

test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
