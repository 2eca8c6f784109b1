#!/usr/bin/env bash
# `make airflow`: the Airflow UI on loopback with the sandbox, the example DAGs and the
# connections set. Ctrl-C stops everything it started.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="$REPO/.venv/bin/python"
export PATH="$REPO/.venv/bin:$PATH"  # standalone starts its components as `airflow ...`
PORT="${AIRFLOW_PORT:-18080}"
export AIRFLOW_HOME="${AIRFLOW_HOME_DIR:-$(mktemp -d -t outreach-airflow-XXXXXX)}"
mkdir -p "$AIRFLOW_HOME"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER="$REPO/example_dags"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True
export AIRFLOW__CORE__PARALLELISM=4
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$PORT"
export AIRFLOW__API__BASE_URL="http://127.0.0.1:$PORT"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$PORT/execution/"

"$PY" -m airflow_provider_outreach.sandbox --demo --port 0 --port-file "$AIRFLOW_HOME/sandbox.port" >"$AIRFLOW_HOME/sandbox.log" 2>&1 &
SANDBOX=$!
AIRFLOW=""
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$AIRFLOW" ] && kill -0 "$AIRFLOW" 2>/dev/null; then
    echo "Stopping Airflow..."
    kill -INT "$AIRFLOW" 2>/dev/null || true          # standalone stops its components
    for _ in $(seq 30); do kill -0 "$AIRFLOW" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$AIRFLOW" 2>/dev/null || true     # whatever of its session is left
  fi
  kill "$SANDBOX" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM
for _ in $(seq 100); do [ -s "$AIRFLOW_HOME/sandbox.port" ] && break; sleep 0.1; done
SANDBOX_URL="http://127.0.0.1:$(cat "$AIRFLOW_HOME/sandbox.port")"
export AIRFLOW_CONN_LEMLIST_DEFAULT="{\"conn_type\": \"lemlist\", \"host\": \"$SANDBOX_URL/lemlist/api\", \"password\": \"sandbox-lemlist-key\"}"
export AIRFLOW_CONN_LEADLEX_DEFAULT="{\"conn_type\": \"leadlex\", \"host\": \"$SANDBOX_URL/leadlex/functions/v1/api-gateway\", \"password\": \"wbk_sandbox_leadlex_key\"}"
export AIRFLOW_CONN_DIALNEXA_DEFAULT="{\"conn_type\": \"dialnexa\", \"host\": \"$SANDBOX_URL/dialnexa/v1\", \"password\": \"sandbox-dialnexa-key\"}"
"$PY" - "$AIRFLOW_HOME/warehouse.db" <<'PYEOF'
import json, sys
from pathlib import Path
import pendulum
sys.path.insert(0, ".")
from demo import warehouse
seed = json.loads(Path("airflow_provider_outreach/sandbox/demo_seed.json").read_text())
people = warehouse.emails_in(seed)
warehouse.build(Path(sys.argv[1]), seed, people[::4], people[2::9][:10], pendulum.today("UTC").subtract(days=1))
PYEOF
export AIRFLOW_CONN_OUTREACH_WAREHOUSE="{\"conn_type\": \"sqlite\", \"host\": \"$AIRFLOW_HOME/warehouse.db\"}"

# standalone runs in a session of its own: Ctrl-C reaches this script only, which then
# interrupts standalone exactly once (SIGINT is restored even if this script runs in the
# background) and finally clears the whole session
"$PY" -c 'import os, signal, sys; os.setsid(); signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
  "$REPO/.venv/bin/airflow" standalone >"$AIRFLOW_HOME/standalone.log" 2>&1 &
AIRFLOW=$!
for _ in $(seq 120); do
  [ -s "$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated" ] && curl -sf "http://127.0.0.1:$PORT/api/v2/monitor/health" >/dev/null && break
  sleep 1
done
echo "Airflow UI:    http://127.0.0.1:$PORT"
echo "User admin, password: $("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin"])' "$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated")"
echo "Sandbox:       $SANDBOX_URL (state: $SANDBOX_URL/_sandbox/state)"
echo "AIRFLOW_HOME:  $AIRFLOW_HOME (logs: standalone.log)"
echo "Unpause and trigger outreach_suppression_sync or outreach_draft_campaign_cleanup; Ctrl-C stops everything."
wait "$AIRFLOW"
