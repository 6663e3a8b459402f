# CouchPotato — two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
PIP   := $(VENV)/bin/pip
SYSTEM_PACKAGES := ffmpeg espeak-ng flite xvfb pulseaudio chromium
# only the tests need these: GStreamer's RTSP server, the RTSP source the tests read (FFmpeg cannot serve RTSP);
# libatomic1 for Playwright's bundled node (its other libraries, libc6, libgcc-s1, libstdc++6, come with apt itself)
TEST_SYSTEM_PACKAGES := python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good libatomic1
SOURCE ?=
ARGS ?=
# pytest processes for the tests not marked browser: most wait on media played at 1x, so two share
# 2 cores well; the browser tests then run alone (see tests/conftest.py)
TEST_WORKERS ?= 2

.PHONY: install system-packages test-system-packages check-system test lint typecheck layers unit e2e contract bench run clean

install: system-packages $(VENV)/.installed

system-packages test-system-packages: PACKAGES = $(if $(filter test-%,$@),$(TEST_SYSTEM_PACKAGES),$(SYSTEM_PACKAGES))
system-packages test-system-packages:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing system packages:$$missing"; \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "missing system packages:$$missing — install them with: sudo apt-get install$$missing"; \
	    [ "$@" = test-system-packages ] || exit 1; \
	  fi; \
	fi

# every program the tests run starts: a missing shared library is one line naming its package
check-system: install test-system-packages
	@$(PY) scripts/check_system.py

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

# the import contracts in pyproject.toml ([tool.importlinter]): layers between packages, no cycles inside one
layers: install
	$(VENV)/bin/lint-imports --no-logo

unit: install
	$(VENV)/bin/pytest -q tests/unit

e2e: install
	$(VENV)/bin/pytest -q tests/e2e

test: install test-system-packages check-system lint typecheck layers
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) -m "not browser" --durations=10
	$(VENV)/bin/pytest -q -m browser --durations=5

contract: install
	python3 ../shared/checks/contract.py

bench: install
	$(PY) benchmarks/bench_core.py --out benchmarks/results/core.md

run: install
	@if [ -n "$(SOURCE)" ]; then exec $(VENV)/bin/couchpotato transcribe "$(SOURCE)" $(ARGS); fi; \
	echo "make run: starting katopotato serve on embedded defaults (SQLite, FTS5, files under \$$COUCHPOTATO_DATA_DIR or ~/.local/share/couchpotato)"; \
	echo "  open the console URL printed below; sign in with the admin token printed on first start (or \$$COUCHPOTATO_API_TOKEN)"; \
	echo "  make run SOURCE=<file-or-url> [ARGS='--format srt'] transcribes one source on the command line instead"; \
	exec $(VENV)/bin/katopotato serve --host $(or $(HOST),127.0.0.1) --port $(or $(PORT),8080)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
