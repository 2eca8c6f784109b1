"""Test set-up: a throwaway AIRFLOW_HOME (set before Airflow is imported) and the sandbox."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="outreach-airflow-home-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "example_dags")

import pytest  # noqa: E402

from airflow_provider_outreach.core.pacing import reset_pacers  # noqa: E402
from airflow_provider_outreach.core.task_state import CARRIED_STATE  # noqa: E402
from airflow_provider_outreach.sandbox import DEFAULT_KEYS  # noqa: E402
from airflow_provider_outreach.version_compat import (  # noqa: E402
    AIRFLOW_V_3_0_PLUS,
    AIRFLOW_V_3_1_PLUS,
    AIRFLOW_V_3_2_PLUS,
    AIRFLOW_V_3_3_PLUS,
)
from tests import secrets_watch  # noqa: E402
from tests.seeds import base_seed  # noqa: E402

pytest_plugins = ["airflow_provider_outreach.sandbox.pytest_plugin", "tests.servers"]

if not AIRFLOW_V_3_1_PLUS and AIRFLOW_V_3_0_PLUS:
    # Airflow 3.0's dag.test() prints what a task sends its in-process supervisor at debug level,
    # the value of every mask_secret() call included; log at INFO, as a deployment does.
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))

from airflow_provider_outreach import VENDOR_NAMES as VENDORS  # noqa: E402
from airflow_provider_outreach import VENDORS as _REGISTRY  # noqa: E402


def hook_path(vendor: str) -> str:
    """Import path of a vendor's hook class, as the campaign-status trigger takes it."""
    return next(f"airflow_provider_outreach.hooks.{name}.{cls}" for name, _, cls, _ in _REGISTRY if name == vendor)


def connection_json(base_url: str, key: str, **extra) -> str:
    return json.dumps({"conn_type": "", "host": base_url, "password": key, "extra": extra})


# -- what a test needs that not every Airflow version has, or a real server ----------------------

#: marker -> (whether this Airflow has it, why a version without it skips the test)
VERSION_NEEDS = {
    "needs_task_state_store": (
        AIRFLOW_V_3_3_PLUS,
        "Airflow < 3.3 has no task state store: a new try starts over, and a deferred task's progress "
        "travels only in the deferral's kwargs, which dag.test() drops (a real triggerer keeps them)",
    ),
    "needs_mappable_email": (
        AIRFLOW_V_3_0_PLUS,
        "Airflow 2.11's partial() fills BaseOperator's own email argument (alert recipients), "
        "so an operator argument named email cannot be expanded",
    ),
    "needs_conn_fields": (
        AIRFLOW_V_3_2_PLUS,
        "Airflow < 3.2 reads no conn-fields/ui-field-behaviour from provider info (the hooks declare the form)",
    ),
    "needs_hook_form_methods": (
        not AIRFLOW_V_3_2_PLUS,
        "Airflow 3.2+ reads the connection form from provider info: the hooks declare no form methods",
    ),
}
#: markers added to the tests that use a real server (``make compat`` leaves them out: -m "not postgres and not redis")
SERVER_MARKERS = ("postgres", "redis")
#: the kinds of test ``make test-fast`` leaves out, longest first (``make test`` starts them first)
SLOW_KINDS = {
    "e2e": "a real Airflow deployment: scheduler, triggerer, api-server (tens of seconds to minutes)",
    "multiprocess": "several real processes on one API key, or a worker killed mid-run",
    "slow": "a run of many seconds of real time: chaos, quota waits, rate-limit windows",
}
#: a test that measures pacing against a rate limit to the millisecond: make test runs these
#: apart from the end-to-end deployments, whose load delays requests on a 2-core machine
TIMING = "timing"


def pytest_configure(config):
    for name, (_, why) in VERSION_NEEDS.items():
        config.addinivalue_line("markers", f"{name}: skipped where {why}")
    for name in SERVER_MARKERS:
        config.addinivalue_line("markers", f"{name}: uses the real {name} server of tests/servers.py")
    for name, what in SLOW_KINDS.items():
        config.addinivalue_line("markers", f"{name}: {what}; left out by make test-fast")
    config.addinivalue_line(
        "markers", f"{TIMING}: measures pacing to the millisecond; make test runs these apart from the e2e tests"
    )


def _rank(item) -> int:
    """Longest first, so that parallel workers finish together."""
    return next((i for i, name in enumerate(SLOW_KINDS) if item.get_closest_marker(name)), len(SLOW_KINDS))


def pytest_collection_modifyitems(config, items):
    items.sort(key=_rank)  # stable: within a kind, the collection order
    for item in items:
        for name, (present, why) in VERSION_NEEDS.items():
            if not present and item.get_closest_marker(name):
                item.add_marker(pytest.mark.skip(reason=f"{name}: {why}"))
        params = getattr(getattr(item, "callspec", None), "params", {}).values()
        for server in SERVER_MARKERS:
            if any(p == server for p in params) or any(f.startswith(f"{server}_") for f in item.fixturenames):
                item.add_marker(getattr(pytest.mark, server))


# -- secrets: no API key in any test's captured output or failure text, nor in the session's files


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    secrets_watch.check_report(outcome.get_result())


@pytest.fixture(scope="session", autouse=True)
def _no_key_in_session_files():
    """After the last test: no watched key in any file of AIRFLOW_HOME (task logs, metadata DB)."""
    yield
    home = Path(os.environ["AIRFLOW_HOME"])
    leaks = secrets_watch.leaks_in_files(p for p in home.rglob("*") if p.name != "airflow.cfg")
    assert not leaks, "API key leaked: " + "; ".join(leaks)


@pytest.fixture(autouse=True)
def _fresh_pacers():
    reset_pacers()
    yield
    reset_pacers()


@pytest.fixture
def seeded(sandbox, connections):
    """The sandbox with the small shared seed, and connections to it."""
    sandbox.seed(base_seed())
    return sandbox


@pytest.fixture
def connections(sandbox, sandbox_server, monkeypatch):
    """``<vendor>_default`` connections pointing at the sandbox; returns a setter for more."""

    def set_connection(vendor: str, conn_id: str | None = None, key: str | None = None, **extra) -> str:
        conn_id = conn_id or f"{vendor}_default"
        payload = json.loads(connection_json(sandbox_server.vendor_url(vendor), key or DEFAULT_KEYS[vendor], **extra))
        payload["conn_type"] = vendor
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(payload))
        return conn_id

    for vendor in VENDORS:
        set_connection(vendor)
    return set_connection


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse(request, tmp_path, monkeypatch):
    """A common-sql connection id (``audit_db``) on SQLite or on the real PostgreSQL server."""
    if request.param == "sqlite":
        monkeypatch.setenv("AIRFLOW_CONN_AUDIT_DB", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "a.db")}))
    else:
        monkeypatch.setenv("AIRFLOW_CONN_AUDIT_DB", request.getfixturevalue("postgres_db").airflow_conn_json())
    return "audit_db"


@pytest.fixture(scope="session")
def airflow_db():
    """The SQLite metadata DB of the test session (created once)."""
    from airflow.utils import db

    db.initdb()


class FakeConnection:
    """The fields of an Airflow Connection that ``ConnectionSettings`` reads."""

    def __init__(self, extra: dict) -> None:
        self.extra_dejson = extra
        self.password = "k"
        self.host = None
        self.port = None


def connection_settings(hook_cls, extra: dict):
    """``ConnectionSettings`` of a connection of ``hook_cls`` with this extra."""
    from airflow_provider_outreach.core.connection import ConnectionSettings

    return ConnectionSettings.parse(
        FakeConnection(extra),
        conn_id="c",
        vendor=hook_cls.vendor,
        default_base_url=hook_cls.default_base_url,
        default_rate_limit=hook_cls.default_rate_limit,
    )


class RecordingTI:
    """The few task-instance calls an operator makes when run outside a DAG run."""

    dag_id = "direct"
    run_id = "direct_run"
    map_index = -1
    try_number = 1

    def __init__(self, task_id: str = "task") -> None:
        self.task_id = task_id
        self.xcoms: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcoms[key] = json.loads(json.dumps(value))

    def xcom_pull(self, task_ids=None, key="return_value", map_indexes=None, **_):
        return self.xcoms.get(key)


class MemoryStateStore:
    """Airflow's task state store as an operator sees it (``get``/``set``/``delete``), in memory."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def get(self, key: str, default: object = None) -> object:
        return self.values.get(key, default)

    def set(self, key: str, value: object, **_: object) -> None:
        self.values[key] = json.loads(json.dumps(value))  # JSON only, as the real store

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


@pytest.fixture
def context():
    return {"ti": RecordingTI(), "task_state_store": MemoryStateStore()}


class TaskProgress:
    """Where a task's progress waits through a deferral: Airflow's task state store (3.3+), or,
    where Airflow has none, only the deferral's kwargs (the worker's copy of the operator is gone
    when the task resumes, and its in-memory stand-in store with it)."""

    def __init__(self, kept_in: str) -> None:
        self.kept_in = kept_in
        self.store = MemoryStateStore() if kept_in == "task_state_store" else None
        self.worker: object | None = None
        self.ti = RecordingTI()

    def context(self) -> dict:
        self.ti = RecordingTI()
        context: dict = {"ti": self.ti}
        if self.store is not None:
            context["task_state_store"] = self.store
        return context

    def execute(self, op):
        """The first try, as a worker runs it."""
        self.worker = op
        return op.execute(self.context())

    def saved(self, key: str, deferred) -> object:
        """What the deferred task keeps under ``key`` for its resume."""
        if self.store is not None:
            assert not deferred.kwargs  # kept once: in the task state store
            return self.store.get(key)
        return deferred.kwargs[CARRIED_STATE].get(key)

    def resume(self, op, deferred):
        """What the triggerer and a new worker do: wait for the trigger's moment, then call the
        method named on a new copy of the operator, with the kwargs the deferral carried."""
        import copy

        import pendulum

        trigger_cls, trigger_kwargs = deferred.trigger.serialize()
        assert trigger_cls.endswith("DateTimeTrigger")
        time.sleep(max(0.0, (trigger_kwargs["moment"] - pendulum.now("UTC")).total_seconds()))
        self.worker = copy.copy(op)
        self.worker.__dict__.pop("_local_state_store", None)  # nothing of the deferred worker survives
        next_kwargs = {**(deferred.kwargs or {}), "event": trigger_kwargs["moment"]}
        return self.worker.resume_execution(deferred.method_name, next_kwargs, self.context())

    def left_over(self) -> dict:
        """What is still kept once the task ended."""
        if self.store is not None:
            return self.store.values
        stand_in = self.worker.__dict__.get("_local_state_store")
        return stand_in.snapshot() if stand_in is not None else {}


@pytest.fixture(params=[pytest.param("task_state_store", marks=pytest.mark.needs_task_state_store), "deferral_kwargs"])
def progress(request) -> TaskProgress:
    """Each deferral test twice: with Airflow 3.3's task state store, and as below 3.3."""
    return TaskProgress(request.param)
