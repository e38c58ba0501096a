# Two commands matter: `make run` (whole system locally) and `make test` (every gate CI runs).
# Both build the virtualenv from pyproject.toml on first use, so a fresh clone needs nothing else.

# Prefer the Lambda runtime's Python (3.13) when pyenv has it; fall back to the machine's python3.
PY313 := $(shell PYENV_VERSION=3.13.0 python3.13 -c 'import sys; print(sys.executable)' 2>/dev/null)
PYTHON ?= $(if $(PY313),$(PY313),python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAM_VENV := .sam-venv
SAM_STAMP := $(SAM_VENV)/.installed
# sam needs no AWS account to build; keep it offline and quiet.
SAM_ENV := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
	PATH=$(abspath $(SAM_VENV))/bin:$$PATH

.PHONY: help venv lock run test pytest coverage-branches lint typecheck cfn-lint sam-build unit integration e2e bench bench-all openapi clean

help:
	@echo "make run         - start the local stack (moto + simulators + API + workers) and watch it sync"
	@echo "make test        - every gate CI runs, side by side: lint, typecheck, cfn-lint, sam-build, pytest with coverage"
	@echo "make pytest      - the whole test suite with coverage, on its own"
	@echo "make lint        - ruff check (incl. complexity) and ruff format --check"
	@echo "make typecheck   - mypy --strict over everything that ships or runs"
	@echo "make cfn-lint    - cfn-lint over template.yaml"
	@echo "make sam-build   - sam validate + sam build (python3.13/arm64) + check of the built artifact"
	@echo "make coverage-branches - the suite with branch coverage too (slower before python 3.14)"
	@echo "make unit        - the unit tier (pure rules, no network, no moto)"
	@echo "make integration - handlers against moto and the simulators"
	@echo "make e2e         - the local stack end to end"
	@echo "make bench       - one table of the performance figures (before -> after, goals)"
	@echo "make bench-all   - every benchmark's figures in full"
	@echo "make openapi     - regenerate contracts/webhook-api.openapi.json from the webhook function's routes"
	@echo "make lock        - resolve uv.lock after a pin change and export layers/shared/requirements.txt"
	@echo "make venv        - build .venv from uv.lock (the other targets do it when needed)"
	@echo "make clean       - remove the venvs, build output and caches"

# The venv is installed from uv.lock (every package pinned with its hashes), the project itself without deps; uv,
# the lock's tool, is bootstrapped at the version the lock holds (tests/unit/test_lockfile.py checks they agree),
# and installs too: about 5 s where pip took 25, on the path of every clean clone's `make test`.
# It does not compile the packages' bytecode (uv's --compile-bytecode took 13 s of the 15, on the clean clone's
# serial path, for some 7,700 modules, most never imported: sympy, networkx, pip...). Instead every Python that make
# starts may write the bytecode of what it imports, once (this shell sets PYTHONDONTWRITEBYTECODE, so without this
# every test worker and subprocess would compile boto3, moto and pydantic again: 1.4 s instead of 0.7 s to import
# moto's). The first collection of the suite writes what the tests import: 1,336 modules for 2.6 s of CPU.
export PYTHONDONTWRITEBYTECODE :=
UV_VERSION := 0.13.9
UV_INSTALL = $(BIN)/uv pip install --quiet --python
$(STAMP): pyproject.toml uv.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv export --frozen --quiet --no-emit-project --extra dev -o $(VENV)/requirements-dev.txt
	$(UV_INSTALL) $(BIN)/python --require-hashes -r $(VENV)/requirements-dev.txt
	$(UV_INSTALL) $(BIN)/python --no-deps -e .
	touch $@

# After changing a pin in pyproject.toml: resolve the lock again and export what the Lambda layer installs from it.
lock: $(STAMP)
	$(BIN)/uv lock
	$(BIN)/uv export --frozen --quiet --no-emit-project -o layers/shared/requirements.txt

venv: $(STAMP)

# SAM CLI pins its own boto3/click, so it lives in a separate venv.
$(SAM_STAMP): $(STAMP)
	$(PYTHON) -m venv $(SAM_VENV)
	$(UV_INSTALL) $(SAM_VENV)/bin/python aws-sam-cli==1.170.0
	touch $@

run: $(STAMP)
	$(BIN)/python -m local_stack $(RUN_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --check --no-cache .

typecheck: $(STAMP)
	$(BIN)/mypy

cfn-lint: $(STAMP)
	$(BIN)/cfn-lint template.yaml

# Proves the template builds for python3.13/arm64 on this host, whatever Python it has.
# `sam validate` runs the SAM translator, which catches event-property typos cfn-lint misses.
sam-build: $(SAM_STAMP) $(STAMP)
	$(SAM_ENV) $(SAM_VENV)/bin/sam validate --template-file template.yaml
	$(SAM_ENV) $(SAM_VENV)/bin/sam build --template-file template.yaml --build-dir .aws-sam/build
	$(BIN)/python -m local_stack.check_build .aws-sam/build

# Parallel pytest workers (pytest-xdist). Most of an e2e test is waiting (queues, webhooks, simulated vendors), so
# more workers than the 2 cores pays (clean runs of pytest: 5 workers 298 s, 6 workers 260-321 s, for 498 and
# 446-576 s of CPU; on earlier code 4 workers took 380 s and 8 workers 357 s, against 310 s for 6);
# `--dist loadfile` keeps a file on one worker, so its module-scoped stack starts once. `make test TEST_WORKERS=0`
# runs everything in one process.
TEST_WORKERS ?= 6
PARALLEL = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q -n 2 --dist loadfile

integration: $(STAMP)
	$(BIN)/pytest tests/integration -q $(PARALLEL)

e2e: $(STAMP)
	$(BIN)/pytest tests/e2e -q $(PARALLEL)

# Every gate, side by side: most of an e2e test is waiting on queues and simulated vendors, so lint, mypy, cfn-lint
# and sam build fit in pytest's idle time. Each gate's output is printed whole when it ends (-O); a failing gate
# fails `make test` after the others finish.
test:
	@$(MAKE) --no-print-directory -j 5 -O lint typecheck cfn-lint sam-build pytest

# Each test process imports every test module (xdist workers each collect the whole suite), and pytest rewrites each
# one's asserts, which it caches as bytecode: one collection first writes it for the tests, our modules and the
# packages they import, so the workers read it instead of each compiling everything again (a worker's collection:
# 12 s of CPU cold, 5 s warm).
WARM_UP = $(if $(PARALLEL),$(BIN)/pytest --collect-only -q -p no:cacheprovider > /dev/null;,)

# Line coverage of the code that ships (layer, functions, CLI); the floor is [tool.coverage.report] fail_under.
# pytest's wall time and CPU time (its processes', from the shell's `times`) go to .local-stack/last-test-duration.txt,
# where `make bench` reads them: the CPU over the cores is the floor no split of the work beats.
pytest: $(STAMP)
	@mkdir -p .local-stack
	@start=$$(date +%s); $(WARM_UP) \
	  $(BIN)/pytest -q $(PARALLEL) --cov --cov-report=term:skip-covered; rc=$$?; \
	  times > .local-stack/pytest-times.txt; \
	  cpu=$$(awk 'NR == 2 { split($$1, u, /[ms]/); split($$2, s, /[ms]/); printf "%.0f", u[1]*60 + u[2] + s[1]*60 + s[2] }' \
	    .local-stack/pytest-times.txt); \
	  echo "$$(( $$(date +%s) - start )) s pytest, $(TEST_WORKERS) workers, exit $$rc, $$(date -u +%FT%TZ), cpu $$cpu s" \
	  > .local-stack/last-test-duration.txt; exit $$rc

# Branch coverage as well as lines: before python 3.14 it needs coverage's settrace core, which costs the suite
# about 64 % more CPU, so `make test` measures lines only (pyproject.toml [tool.coverage.run]).
coverage-branches: $(STAMP)
	$(BIN)/pytest -q $(PARALLEL) --cov --cov-branch --cov-report=term:skip-covered

# One table of issue 18's figures, before -> after, each goal met or why not (tests/perf/summary.py; its sizes are
# its options, e.g. `make bench BENCH_ARGS="--burst-orders 1000"`). `make bench-all` prints every benchmark in full.
bench: $(STAMP)
	$(BIN)/python -m tests.perf.summary $(BENCH_ARGS)

bench-all: $(STAMP)
	$(BIN)/python -m tests.perf.bench_intake
	$(BIN)/python -m tests.perf.bench_stock
	$(BIN)/python -m tests.perf.bench_orders
	$(BIN)/python -m tests.perf.bench_rseries
	$(BIN)/python -m tests.perf.bench_rseries_import
	$(BIN)/python -m tests.perf.bench_rseries_edits
	$(BIN)/python -m tests.perf.bench_cold_start

# The webhook API's OpenAPI document comes from the Event Handler's routes; a unit test fails when it is stale.
openapi: $(STAMP)
	$(BIN)/python -m local_stack.openapi

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
