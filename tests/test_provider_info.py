from __future__ import annotations

import importlib
import importlib.resources
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema

from airflow_provider_outreach import get_provider_info
from airflow_provider_outreach.version_compat import AIRFLOW_V_3_2_PLUS


def test_provider_info_is_valid_against_airflow_schema():
    schema = json.loads((importlib.resources.files("airflow") / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert info["package-name"] == "airflow-provider-outreach"
    assert {c["connection-type"] for c in info["connection-types"]} == {"lemlist", "leadlex", "dialnexa"}


def test_triggers_are_listed_per_integration():
    triggers = {t["integration-name"]: t["python-modules"] for t in get_provider_info()["triggers"]}
    campaign = "airflow_provider_outreach.triggers.campaign_status"
    assert triggers == {
        "lemlist": [campaign, "airflow_provider_outreach.triggers.lemlist_unsubscribes"],
        "LeadLex": [campaign],
        "DialNexa": [campaign],
    }


def test_every_listed_module_and_hook_class_imports():
    info = get_provider_info()
    for kind in ("hooks", "operators", "sensors", "triggers"):
        for entry in info.get(kind, []):
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for conn in info["connection-types"]:
        module, _, name = conn["hook-class-name"].rpartition(".")
        hook = getattr(importlib.import_module(module), name)
        assert hook.conn_type == conn["connection-type"]
        assert hasattr(hook, "test_connection")


def test_registered_with_providers_manager():
    """Hooks, connection form and its relabelled fields, as Airflow reads them: from the provider
    info on 3.2+, from the hooks below (where wtforms, which Airflow 3.0/3.1 need for it, is
    installed: it is a test requirement)."""
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    if AIRFLOW_V_3_2_PLUS:  # what a worker reads comes from the Task SDK's own providers manager
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

        hooks = ProvidersManagerTaskRuntime().hooks
    else:
        hooks = pm.hooks
    assert "airflow-provider-outreach" in pm.providers
    for conn_type, attr in (
        ("lemlist", "lemlist_conn_id"),
        ("leadlex", "leadlex_conn_id"),
        ("dialnexa", "dialnexa_conn_id"),
    ):
        hook_info = hooks[conn_type]
        assert hook_info is not None
        assert hook_info.connection_id_attribute_name == attr
        assert hook_info.connection_testable
        behaviour = pm.field_behaviours[conn_type]
        assert behaviour["relabeling"]["password"] == "API key"
        assert behaviour["relabeling"]["host"] == "API base URL (optional)"
        assert "login" in behaviour["hidden_fields"]
    widgets = pm.connection_form_widgets
    assert "extra__lemlist__rate_limit" in widgets
    assert "extra__dialnexa__verify_ssl" in widgets


def _airflow_cli_json(*args: str):
    """The JSON an ``airflow ... -o json`` command prints (Airflow 3.0 prints log lines before it)."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    airflow = Path(sys.executable).with_name("airflow")
    out = subprocess.run([str(airflow), *args, "-o", "json"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(("[", "{")) and not line.startswith("[20"))
    return json.loads("\n".join(lines[start:]))


def test_airflow_cli_shows_provider_and_behaviours():
    out = _airflow_cli_json("providers", "get", "airflow-provider-outreach", "--full")
    assert out[0]["package-name"] == "airflow-provider-outreach"
    behaviours = _airflow_cli_json("providers", "behaviours")
    assert {"lemlist", "leadlex", "dialnexa"} <= {b["field_behaviours"] for b in behaviours}
