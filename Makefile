# Few targets, each doing all of its own set-up on a fresh machine.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
HOST    ?= 127.0.0.1
PORT    ?= 8765
PYTEST_ARGS ?=
# `make eval`: the labelled corpora (read only) and where their indexes are cached.
SPECMEM_CORPORA ?= ../shared/corpora
EVAL_DATA ?= .specmem-eval
EVAL_ARGS ?=

# Offline, single-threaded BLAS: the model is bundled, and one BLAS thread per query is faster here.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export OPENBLAS_NUM_THREADS := 1
export TOKENIZERS_PARALLELISM := false
export ANONYMIZED_TELEMETRY := False

.PHONY: install browser postgres run test test-all check fix bench eval stress clean

install: $(STAMP)

# torch first and pinned: pip takes the local CPU wheel; any other torch pulls gigabytes of CUDA.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# A Debian package a group of tests needs, installed when missing and this user may install
# packages; otherwise those tests skip, and pytest's summary says why.
# $(call debian,PACKAGE,CHECK,TESTS)
define debian
@$(2) >/dev/null 2>&1 || { \
  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
    echo "installing Debian's $(1) for the $(3)"; \
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null) \
      || echo "could not install $(1): the $(3) will be skipped"; \
  else \
    echo "$(1) is not installed and this user cannot install it: the $(3) will be skipped"; \
  fi; }
endef

# The web page's tests drive Debian's Chromium (spec 089).
browser:
	$(call debian,chromium,command -v chromium,browser tests)

# The event log's PostgreSQL tests start a real server from Debian's postgresql (spec 093).
postgres:
	$(call debian,postgresql,ls /usr/lib/postgresql/*/bin/initdb,PostgreSQL event-log tests)

run: install
	$(BIN)/specmem --specs-dir specs ingest
	@echo
	@echo "specmem is serving specs/ on http://$(HOST):$(PORT)  (Ctrl-C stops it)"
	@echo "  web page: http://$(HOST):$(PORT)/   (search, specs, bundles, the graph, the board)"
	@echo "  curl -s 'http://$(HOST):$(PORT)/search?q=how+are+context+bundles+packed' | python3 -m json.tool"
	@echo "  curl -s -X POST http://$(HOST):$(PORT)/context -H 'content-type: application/json' -d '{\"query\": \"token budget\", \"budget\": 2000}'"
	@echo "  MCP (streamable HTTP): http://$(HOST):$(PORT)/mcp"
	$(BIN)/specmem --specs-dir specs serve --host $(HOST) --port $(PORT)

# The suites that store events, run a second time on a real PostgreSQL server (spec 093): the
# same tests, the other engine. Without PostgreSQL they skip, and say why.
EVENT_LOG_SUITES = tests/test_events.py tests/test_event_input.py tests/test_devlog.py \
	tests/test_http_idempotency.py tests/test_idempotency_recovery.py \
	tests/test_idempotency_crash.py tests/test_http_workers.py tests/test_attribution.py

# pytest exits 5 when a selection runs no test; that is not a failure of the suite.
# Two processes, one per core, each taking whole modules (their module fixtures are built once):
# most tests wait on a server, a subprocess or a disk, so two share the cores well. PARALLEL=
# runs them in one process.
PARALLEL ?= -n 2 --dist loadfile
test: install browser postgres
	$(BIN)/python -m pytest -m "not slow" $(PARALLEL) $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(BIN)/python -m pytest -m "not slow" --events-engine=postgresql $(EVENT_LOG_SUITES) $(PYTEST_ARGS) || [ $$? -eq 5 ]

test-all: install browser postgres
	$(BIN)/python -m pytest $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(BIN)/python -m pytest --events-engine=postgresql $(EVENT_LOG_SUITES) $(PYTEST_ARGS) || [ $$? -eq 5 ]

check: install
	$(BIN)/ruff check ingest retriever tests
	$(BIN)/ruff format --check ingest retriever tests
	$(BIN)/mypy

fix: install
	$(BIN)/ruff check --fix ingest retriever tests
	$(BIN)/ruff format ingest retriever tests

bench: install
	$(BIN)/python -m tests.bench.run_all

# Every labelled set of every corpus, per corpus and pooled: hybrid against lexical and plain BM25;
# then every corpus served as one project of one server, each query asked of all (spec 096).
eval: install
	$(BIN)/python -m tests.bench.eval_corpora --corpora $(SPECMEM_CORPORA) --data-root $(EVAL_DATA) $(EVAL_ARGS)
	$(BIN)/python -m tests.bench.eval_projects --corpora $(SPECMEM_CORPORA) --data-root $(EVAL_DATA)

stress: install
	$(BIN)/python -m pytest -m slow tests/stress $(PYTEST_ARGS) || [ $$? -eq 5 ]

# The index is a cache; the event log beside it is not (spec 084): everything but events.sqlite*.
clean:
	rm -rf $(VENV) .specmem-eval .pytest_cache .mypy_cache .ruff_cache
	for dir in .specmem specs/.specmem; do \
	  [ -d $$dir ] && find $$dir -mindepth 1 -maxdepth 1 ! -name 'events.sqlite*' -exec rm -rf {} +; \
	done; true
