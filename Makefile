# Issue Platform — every target CI and the README use. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -E '^[a-z][a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/activate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(BIN)/activate

install: $(BIN)/activate ## Create .venv and install the service with its dev tools

run: install ## Install, migrate and serve on SQLite at http://127.0.0.1:$(PORT)
	$(BIN)/issue-platform serve --port $(PORT)

test: install ## Install and run the whole test suite (PostgreSQL too when TEST_DATABASE_URL is set)
	$(BIN)/pytest

lint: install ## ruff, mypy --strict and the import-layer contracts
	$(BIN)/ruff check app tests bench setup.py
	$(BIN)/ruff format --check app tests bench setup.py
	$(BIN)/mypy
	$(BIN)/lint-imports

openapi: install ## Regenerate the committed openapi.json
	$(BIN)/issue-platform openapi --output openapi.json

bench: install ## The 3-minute benchmark run (prints a table)
	$(BIN)/python -m bench.run --quick

bench-full: install ## The full benchmark run
	$(BIN)/python -m bench.run

system-deps: ## Debian packages for the browser and image tests (chromium, buildah, ...; root)
	scripts/system-deps.sh

image: ## Build the container image offline with buildah (root; Debian buildah, debootstrap, podman)
	scripts/build-image.sh

image-test: ## Build the image and smoke-test it: /readyz, healthcheck, one occurrence (about 3 min cold)
	scripts/image-smoke-test.sh

.PHONY: system-deps image image-test

clean: ## Remove the venv and local data
	rm -rf $(VENV) data

.PHONY: help install run test lint openapi bench bench-full clean
