"""What the scheduler pays on every DAG-file parse: the modules a DAG file imports stay light.

Every ``import`` statement that the provider's own modules run while they are imported is
recorded (through ``builtins.__import__``, which sees an import even when the module is
already loaded, say by ``airflow.sdk``), so a heavy import at a module's top level is
caught whoever loaded the heavy module first.
"""

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
    "aiohttp",
    "urllib3",
    "tenacity",
    "pyrate_limiter",
    "filelock",
    "redis",
    "pendulum",
    "sqlite3",
    "psycopg",
    "psycopg2",
    "airflow.providers.common.sql.hooks",
    "airflow.triggers",
    "airflow.providers.standard.triggers",
    "airflow_provider_outreach.core.transport",
    "airflow_provider_outreach.core.pacing",
    "airflow_provider_outreach.core.budget",
    "airflow_provider_outreach.bulk.engine",
    "airflow_provider_outreach.triggers",
)
#: an asset's watcher is declared in the DAG file, so its event trigger is imported on every
#: parse: it may import what an event trigger is, and nothing else heavy
WATCHER_TRIGGERS = ("airflow_provider_outreach.triggers.lemlist_unsubscribes",)
WATCHER_NEEDS = ("airflow.triggers.base", "airflow_provider_outreach.triggers")

CHILD = r"""
import builtins, importlib, importlib.util, json, runpy, sys
import airflow_provider_outreach.version_compat  # Airflow and its base classes, on any version
from airflow_provider_outreach import get_provider_info

info = get_provider_info()
modules = [m for kind in ("operators", "sensors", "hooks") for e in info[kind] for m in e["python-modules"]]
modules += [t["python-module"] for t in info["transfers"]] + ["airflow_provider_outreach.sync"]
modules += ["airflow_provider_outreach.triggers.lemlist_unsubscribes"]
edges = []
real = builtins.__import__

def spy(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get("__name__") or ""
    if importer.split(".")[0] == "airflow_provider_outreach":
        target = importlib.util.resolve_name("." * level + name, globals.get("__package__")) if level else name
        edges.append([importer, target])
        edges.extend([importer, f"{target}.{item}"] for item in (fromlist or ()) if item != "*")
    return real(name, globals, locals, fromlist, level)

builtins.__import__ = spy
for name in modules:
    importlib.import_module(name)
from airflow_provider_outreach.triggers.lemlist_unsubscribes import LemlistUnsubscribeEventTrigger
LemlistUnsubscribeEventTrigger(poll_interval=60)  # as a watcher's declaration does
for path in sys.argv[1:]:  # the example DAG files, as the DAG processor runs them
    runpy.run_path(path, run_name="dag_file")
builtins.__import__ = real
print(json.dumps({"modules": modules, "edges": edges}))
"""


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def heavy_imports(edges: list[list[str]]) -> list[list[str]]:
    return [
        [importer, target]
        for importer, target in edges
        if _under(target, HEAVY) and not (importer in WATCHER_TRIGGERS and _under(target, WATCHER_NEEDS))
    ]


def test_modules_a_dag_file_imports_load_no_http_client_retry_library_or_trigger():
    dag_files = sorted(str(p) for p in (REPO / "example_dags").glob("*.py"))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *dag_files], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["modules"]) == 13  # hooks, operators, sensors of 3 vendors, 2 transfers, sync, event trigger
    importers = {importer for importer, _ in result["edges"]}
    assert {"airflow_provider_outreach.operators.base", "airflow_provider_outreach.hooks.base"} <= importers
    assert heavy_imports(result["edges"]) == []


def test_the_spy_sees_an_import_of_a_module_already_loaded():
    """The check above would see ``import httpx`` in a provider module even though
    ``airflow.sdk`` loaded httpx before it."""
    assert heavy_imports([["airflow_provider_outreach.operators.base", "httpx"]]) != []
    assert heavy_imports([["airflow_provider_outreach.hooks.base", "airflow_provider_outreach.core.pacing"]]) != []
    assert heavy_imports([["airflow_provider_outreach.hooks.base", "airflow_provider_outreach.core.paths"]]) == []
    watcher = "airflow_provider_outreach.triggers.lemlist_unsubscribes"
    assert heavy_imports([[watcher, "airflow.triggers.base"]]) == []
    assert heavy_imports([[watcher, "tenacity"], [watcher, "airflow_provider_outreach.core.transport"]]) != []
