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
	$(BIN)/pytest $(PYTEST_ARGS)

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

bench-retention: install ## Retention: a cleanup pass of 1M occurrences under ingest, file size over 3 cycles (~10 min)
	$(BIN)/python -m bench.retention $(BENCH_ARGS)

system-deps: ## Debian packages for the browser and image tests (chromium, buildah, ...; root)
	scripts/system-deps.sh

image: ## Build the container image offline with buildah (root; Debian buildah, debootstrap, podman)
	scripts/build-image.sh

image-test: ## Build the image and smoke-test it: /readyz, healthcheck, one occurrence (about 3 min cold)
	scripts/image-smoke-test.sh

# The mutants `make mutate` runs (docs/testing.md): every function of the pure rule modules ...
MUTATE_RULES := app.occurrences.grouping.* app.occurrences.noise.* app.occurrences.validation.* \
	app.lifecycle.transitions.* app.lifecycle.forecast.* app.notifications.signing.* \
	app.issues.cursor.* app.issues.status.* app.issues.fingerprint.*
# ... and the ingest decisions: the pure ingest rules (counting, "counts as resolved") and the
# functions that choose an occurrence's outcome. The one place naming them: re-point it when the
# ingest code moves (and `only_mutate` in pyproject.toml, which lists the files mutmut mutates).
MUTATE_INGEST := app.occurrences.ingest.rules.* app.occurrences.ingest.decide.x_group__mutmut_* \
	app.occurrences.ingest.decide.x_decide_one__mutmut_*
MUTATE_ONLY := $(MUTATE_RULES) $(MUTATE_INGEST)

mutate: install ## Mutation testing of the rule modules and ingest decisions (mutmut, ~4 min on 2 idle cores)
	$(BIN)/pip install --quiet -e ".[mutate]"
	rm -rf mutants && mkdir mutants && echo '*' > mutants/.gitignore
	@# SQLite only: the mutants run in parallel, each on its own copy of one migrated template.
	start=$$(date +%s); TEST_DATABASE_URL= $(BIN)/mutmut run --max-children $$(nproc) \
		$(foreach m,$(MUTATE_ONLY),'$(m)'); status=$$?; \
		echo "mutmut run: $$(( $$(date +%s) - start )) s, load $$(cut -d' ' -f1-3 /proc/loadavg)"; \
		exit $$status
	$(BIN)/mutmut results | grep -v ': not checked$$' || true
	$(BIN)/python -c "$$MUTATION_SCORE"

# Killed (or timed out) among the mutants run; "not checked" are the service functions left out.
define MUTATION_SCORE
import collections, json, pathlib
metas = [json.loads(p.read_text()) for p in pathlib.Path("mutants").rglob("*.meta")]
codes = [c for m in metas for c in m["exit_code_by_key"].values() if c is not None]
busy = sum(d for m in metas for d in m["durations_by_key"].values())
n = collections.Counter("killed" if c in (1, 3) else "timeout" if c in (-24, 24, 36, 152, 255)
                        else "survived" if c == 0 else "no tests" if c in (5, 33) else "other"
                        for c in codes)
print(dict(n), f"score {(n['killed'] + n['timeout']) / len(codes):.1%} of {len(codes)} mutants;",
      f"the mutants' tests ran {busy:.0f} s in all")
endef
export MUTATION_SCORE

clean: ## Remove the venv and local data
	rm -rf $(VENV) data mutants

.PHONY: help install run test lint openapi bench bench-full bench-retention mutate system-deps image image-test clean
