"""What the scheduler pays on every DAG-file parse: operator and sensor modules stay light."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO

#: loaded only when a task or trigger runs
HEAVY = (
    "requests",
    "httpx",
    "tenacity",
    "airflow.triggers.base",
    "airflow.providers.standard.triggers.temporal",
    "airflow_provider_outreach.core.transport",
    "airflow_provider_outreach.core.pacing",
    "airflow_provider_outreach.bulk.engine",
    "airflow_provider_outreach.triggers.campaign_status",
)


def test_operator_and_sensor_modules_import_no_http_client_retry_library_or_trigger():
    code = f"""
import importlib, json, sys
import airflow_provider_outreach.version_compat  # Airflow and its base classes, on any version
from airflow_provider_outreach import get_provider_info
before = set(sys.modules)
info = get_provider_info()
modules = [m for kind in ("operators", "sensors", "hooks") for e in info[kind] for m in e["python-modules"]]
for name in modules:
    importlib.import_module(name)
print(json.dumps({{"modules": modules, "heavy": [h for h in {HEAVY!r} if h in sys.modules and h not in before]}}))
"""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["modules"]) == 9  # three vendors: hooks, operators, sensors
    assert result["heavy"] == []
