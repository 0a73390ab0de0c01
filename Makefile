# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# Preload mimalloc when it is installed (docs/performance.md); otherwise glibc malloc.
MIMALLOC := $(firstword $(wildcard /usr/lib/*-linux-gnu/libmimalloc.so.* /usr/lib/libmimalloc.so*))

.PHONY: help install run test lint typecheck browser bench clean

help:
	@echo "make run    - create .venv, install imaged, start the server (ARGS='--port 3000 ...')"
	@echo "make test   - create .venv with test extras, run lint, type checks and the whole test suite"
	@echo "make install- just create .venv with imaged and its test and bench extras"
	@echo "make bench  - run the load benchmark (bench/README.md)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	LD_PRELOAD="$(MIMALLOC)" $(BIN)/imaged $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/ruff format --check src tests $(wildcard bench)

typecheck: $(STAMP)
	$(BIN)/mypy

# The playground's browser tests drive Debian's chromium through chromium-driver (and run the
# page's curl command): installed when missing and running as root, as CI does; anyone else
# is told how, and those tests fail with the same line (tests/browser.py).
BROWSER_PACKAGES := chromium chromium-driver curl
CHROMIUM ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver
browser:
	@if [ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ] && command -v curl >/dev/null; then \
	  :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing $(BROWSER_PACKAGES) for the playground tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $(BROWSER_PACKAGES) >/dev/null) \
	  || echo "installing $(BROWSER_PACKAGES) failed: the playground tests will fail"; \
	else \
	  echo "the playground tests need Chromium: sudo apt-get install --no-install-recommends $(BROWSER_PACKAGES)"; \
	fi

test: $(STAMP) lint typecheck browser
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build src/*.egg-info .mypy_cache .ruff_cache .pytest_cache
