# CouchPotato — two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
PIP   := $(VENV)/bin/pip
SYSTEM_PACKAGES := ffmpeg espeak-ng flite
SOURCE ?=
ARGS ?=

.PHONY: install system-packages test lint typecheck unit e2e contract bench run clean

install: system-packages $(VENV)/.installed

system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing system packages:$$missing"; \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "missing system packages:$$missing — install them with: sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	@touch $@

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check couchpotato

typecheck: install
	$(VENV)/bin/mypy

unit: install
	$(VENV)/bin/pytest -q tests/unit

e2e: install
	$(VENV)/bin/pytest -q tests/e2e

test: install lint typecheck
	$(VENV)/bin/pytest -q

contract: install
	python3 ../shared/checks/contract.py

bench: install
	$(PY) benchmarks/run.py

run: install
	@if [ -z "$(SOURCE)" ]; then \
	  echo "usage: make run SOURCE=<file-or-url> [ARGS='--format srt --realtime']"; \
	  echo "  e.g. make run SOURCE=https://example.org/news.mp3"; exit 2; fi
	$(VENV)/bin/couchpotato transcribe "$(SOURCE)" $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
