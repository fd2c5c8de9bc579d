# mailsms — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run test lint bench test-deps test-pythons clean help messages

help:
	@echo "make run    install (into $(VENV)) and start the bridge on the embedded default"
	@echo "            (make run CONFIG=bridge.toml: with a settings file)"
	@echo "make test   install test dependencies (Python and Debian packages) and run the tests"
	@echo "            (then tests/unit and the wheel's round trip on the other Pythons >= 3.11 found)"
	@echo "make lint   ruff + mypy --strict (code, tests, benchmarks) + the layering contracts"
	@echo "make bench  benchmarks (SMTP intake vs bare aiosmtpd, text engine, ...)"
	@echo "make messages  extract the portal's strings to bridge/locale/mailsms.pot (babel.cfg)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/mailsms serve $(if $(CONFIG),-c $(CONFIG))

test-deps:
	@scripts/test-deps.sh

test: $(VENV)/.dev-installed test-deps
	$(BIN)/pytest
	@scripts/test-pythons.sh

# tests/unit and the wheel's round trip on the other Pythons (3.11+) this machine has
test-pythons: $(VENV)/.dev-installed
	@scripts/test-pythons.sh

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check bridge dirsync tests bench
	$(BIN)/ruff format --check bridge dirsync tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(VENV)/.dev-installed
	$(BIN)/python bench/run.py

# The portal's translatable strings (babel.cfg); translators start from the .pot:
# pybabel init -D mailsms -i bridge/locale/mailsms.pot -d bridge/locale -l de
messages: $(VENV)/.dev-installed
	mkdir -p bridge/locale
	$(BIN)/pybabel extract -F babel.cfg -k NavItem:2 --project mailsms \
		--copyright-holder "the mailsms authors" --sort-by-file -o bridge/locale/mailsms.pot .

clean:
	rm -rf var/ .pytest_cache .mypy_cache .ruff_cache .venv-3.*
