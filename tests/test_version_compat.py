"""What differs between Airflow versions, and the fallbacks where an older version lacks a feature."""

from __future__ import annotations

import json
from importlib.metadata import version

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_outreach import get_provider_info
from airflow_provider_outreach.bulk.ledger import PROGRESS_KEY
from airflow_provider_outreach.core.task_state import CARRIED_STATE, deferral_kwargs, task_state_store
from airflow_provider_outreach.hooks.dialnexa import DialnexaHook
from airflow_provider_outreach.hooks.leadlex import LeadlexHook
from airflow_provider_outreach.hooks.lemlist import LemlistHook
from airflow_provider_outreach.operators.leadlex import LeadlexRemoveContactOperator
from airflow_provider_outreach.version_compat import (
    AIRFLOW_V_3_0_PLUS,
    AIRFLOW_V_3_1_PLUS,
    AIRFLOW_V_3_2_PLUS,
    AIRFLOW_V_3_3_PLUS,
)
from tests.conftest import RecordingTI

HOOKS = (LemlistHook, LeadlexHook, DialnexaHook)


def test_version_flags_follow_the_installed_airflow():
    major, minor = (int(part) for part in version("apache-airflow").split(".")[:2])
    flags = (AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_1_PLUS, AIRFLOW_V_3_2_PLUS, AIRFLOW_V_3_3_PLUS)
    assert flags == tuple((major, minor) >= (3, m) for m in range(4))


# -- progress without a task state store -------------------------------------------------------


def test_the_carried_progress_of_100000_items_stays_compact():
    """Below 3.3 the compact progress travels in the deferral's kwargs (kept with the task
    instance in the metadata DB): as bounded as in the task state store."""
    import random

    from airflow_provider_outreach.bulk.ledger import StateStoreLedger
    from airflow_provider_outreach.bulk.report import ItemResult

    op = LeadlexRemoveContactOperator(task_id="remove", contact_id=["x"], campaign_id="c")
    context = {"ti": RecordingTI()}
    items = [f"person{i:06d}@example.com" for i in range(100_000)]
    ledger = StateStoreLedger(task_state_store(op, context), items)
    rng = random.Random(1)
    for item in items:
        outcome = rng.choice(["done", "already_absent", "failed"])
        ledger.record(item, ItemResult(outcome, 404, "x", "invalid" if outcome == "failed" else None, "m" * 300), "t")
    ledger.flush()
    carried = deferral_kwargs(op, context)
    assert set(carried[CARRIED_STATE]) == {PROGRESS_KEY}
    assert len(json.dumps(carried)) <= 64 * 1024
    assert deferral_kwargs(op, {"ti": RecordingTI(), "task_state_store": {}}) is None  # Airflow keeps it


def test_a_retry_without_task_state_store_or_audit_table_starts_over(sandbox, connections):
    """Below 3.3 a new try has nothing to resume from (unless an audit table is set): it sends
    every item again, and the outcomes stay right because the actions are idempotent."""
    sandbox.seed({"leadlex": {"campaigns": [{"id": "cmp_big", "status": "active", "contacts": _contacts(4)}]}})
    ids = [f"ctc_{i:03d}" for i in range(4)]
    sandbox.inject("leadlex", ["ok", "ok", "503"])  # preflight, one item, then a transient failure

    class OneAttempt(LeadlexRemoveContactOperator):
        def get_hook(self):
            return self.spec.hook_class(self.conn_id, max_attempts=1)

    first = OneAttempt(task_id="remove", contact_id=ids, campaign_id="cmp_big", max_workers=1)
    with pytest.raises(AirflowException, match="1 of 4 items failed"):
        first.execute({"ti": RecordingTI()})
    sandbox.clear_requests()
    retry = OneAttempt(task_id="remove", contact_id=ids, campaign_id="cmp_big", max_workers=1)  # a new worker
    report = retry.execute({"ti": RecordingTI()})
    deletes = [r["segments"][-1] for r in sandbox.requests(vendor="leadlex") if r["method"] == "DELETE"]
    assert sorted(deletes) == ids  # from zero
    assert report["counts"] == {"done": 1, "already_absent": 3, "failed": 0}


def _contacts(n: int) -> list[dict]:
    return [{"contact_id": f"ctc_{i:03d}", "email": f"p{i:03d}@example.com"} for i in range(n)]


# -- the connection form -------------------------------------------------------------------------


def _connection_type(hook) -> dict:
    return next(c for c in get_provider_info()["connection-types"] if c["connection-type"] == hook.conn_type)


@pytest.mark.needs_hook_form_methods
@pytest.mark.parametrize("hook", HOOKS, ids=lambda h: h.conn_type)
def test_below_3_2_each_hook_declares_the_form_of_its_provider_info(hook):
    declared = _connection_type(hook)
    assert "get_ui_field_behaviour" in vars(hook) and "get_connection_form_widgets" in vars(hook)
    behaviour = hook.get_ui_field_behaviour()
    assert behaviour == {
        "hidden_fields": declared["ui-field-behaviour"]["hidden-fields"],
        "relabeling": declared["ui-field-behaviour"]["relabeling"],
        "placeholders": declared["ui-field-behaviour"]["placeholders"],
    }
    widgets = hook.get_connection_form_widgets()
    assert list(widgets) == list(declared["conn-fields"])
    kinds = {name: field.field_class.__name__ for name, field in widgets.items()}
    assert kinds == {
        "rate_limit": "IntegerField",
        "rate_limit_period": "StringField",
        "redis_conn_id": "StringField",
        "timeout": "StringField",
        "verify_ssl": "BooleanField",
    }
    assert widgets["verify_ssl"].kwargs["default"] is True  # a new connection verifies TLS
    assert {name: field.kwargs["label"] for name, field in widgets.items()} == {
        name: field["label"] for name, field in declared["conn-fields"].items()
    }


@pytest.mark.needs_conn_fields
@pytest.mark.parametrize("hook", HOOKS, ids=lambda h: h.conn_type)
def test_from_3_2_the_form_comes_from_provider_info_only(hook):
    """No hook form methods, so Airflow 3.2+ has nothing to warn about."""
    assert "get_ui_field_behaviour" not in vars(hook)
    assert "get_connection_form_widgets" not in vars(hook)


def test_a_resume_whose_kwargs_did_not_come_back_fails_instead_of_starting_over(sandbox, connections):
    """Without a task state store the progress travels in the deferral's kwargs; a resume that
    gets none back (dag.test() below 3.3 drops them) must not start over into the same quota."""
    import copy

    from airflow.providers.common.compat.sdk import TaskDeferred

    sandbox.seed({"leadlex": {"campaigns": [{"id": "cmp_big", "status": "active", "contacts": _contacts(6)}]}})
    sandbox.configure(limits={"leadlex": [{"limit": 3, "window": 60}]})
    op = LeadlexRemoveContactOperator(
        task_id="remove", contact_id=[f"ctc_{i:03d}" for i in range(6)], campaign_id="cmp_big", max_inline_wait=0.5
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": RecordingTI()})
    assert deferred.value.kwargs[CARRIED_STATE][PROGRESS_KEY]
    sandbox.clear_requests()
    worker = copy.copy(op)
    worker.__dict__.pop("_local_state_store", None)
    with pytest.raises(AirflowException, match="did not come back"):
        worker.resume_execution(deferred.value.method_name, {"event": None}, {"ti": RecordingTI()})
    assert sandbox.requests(vendor="leadlex") == []
