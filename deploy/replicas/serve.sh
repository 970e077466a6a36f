#!/usr/bin/env bash
# N replicas of the LangGraph server sharing one PostgreSQL and one Redis (langgraph-runtime-pg).
# Migrates the database ONCE, then starts the replicas one after another on consecutive ports;
# put any HTTP load balancer in front of them (see docs/server.md). Ctrl-C stops them all.
#
#   DATABASE_URI=postgresql://user:pass@db:5432/agent REDIS_URI=redis://cache:6379/0 \
#   REPLICAS=2 BASE_PORT=2025 deploy/replicas/serve.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${DATABASE_URI:?set DATABASE_URI, e.g. postgresql://user:password@127.0.0.1:5432/agent}"
: "${REDIS_URI:?set REDIS_URI, e.g. redis://127.0.0.1:6379/0}"
VENV="${REPLICAS_VENV:-.venv-replicas}"
REPLICAS="${REPLICAS:-2}"
BASE_PORT="${BASE_PORT:-2025}"
HOST="${HOST:-127.0.0.1}"
JOBS="${JOBS:-4}"
CONFIG="${CONFIG:-deploy/replicas/langgraph.json}"
export DATABASE_URI REDIS_URI
export LANGGRAPH_CLI_NO_ANALYTICS=1 LANGGRAPH_NO_VERSION_CHECK=true
export LANGSMITH_TRACING="${LANGSMITH_TRACING:-false}"
# Schema changes run here, once; replicas starting together raced on them (UniqueViolation).
export LG_RUNTIME_PG_AUTO_MIGRATE=false

for ((i = 0; i < REPLICAS; i++)); do
    port=$((BASE_PORT + i))
    # langhost, like langgraph dev, silently moves to another port when this one is taken.
    "$VENV/bin/python" -c "import sys; from agent.server.dev import port_available as free
sys.exit(0 if free('$HOST', $port) else f'Port $port on $HOST is already in use.')"
done

"$VENV/bin/langgraph-runtime-pg-migrate" upgrade

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait' EXIT INT TERM
for ((i = 0; i < REPLICAS; i++)); do
    port=$((BASE_PORT + i))
    "$VENV/bin/langhost" serve --host "$HOST" --port "$port" --config "$CONFIG" \
        --n-jobs-per-worker "$JOBS" --server-log-level warning &
    pids+=($!)
    # One at a time: each start also sets up the checkpointer and store tables if missing.
    until curl -sf "http://$HOST:$port/ok" >/dev/null; do
        kill -0 "${pids[-1]}" 2>/dev/null || { echo "replica on port $port failed to start" >&2; exit 1; }
        sleep 0.5
    done
    echo "replica $((i + 1))/$REPLICAS ready on http://$HOST:$port (chat page: http://$HOST:$port/chat)"
done
wait
