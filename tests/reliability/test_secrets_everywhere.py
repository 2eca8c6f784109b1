"""API keys stay out of XComs, rendered template fields, task logs, captured output and errors.

Every test of the suite is also watched by ``tests/conftest.py``: a key (or its ``Bearer``
/ ``Basic`` header form) in a test's captured output or failure text fails that test, and
a key in any file of ``AIRFLOW_HOME`` (task logs, the metadata DB) fails the session.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from airflow_provider_outreach.exceptions import AuthenticationError
from airflow_provider_outreach.hooks.leadlex import LeadlexHook
from airflow_provider_outreach.operators.dialnexa import DialnexaRemoveCampaignLeadOperator
from airflow_provider_outreach.operators.leadlex import LeadlexRemoveContactOperator
from airflow_provider_outreach.operators.lemlist import LemlistAddUnsubscribeOperator
from airflow_provider_outreach.sandbox import DEFAULT_KEYS
from tests import secrets_watch
from tests.dagtest import new_dag, run_dag, task_states
from tests.seeds import base_seed

WRONG_DIALNEXA_KEY = "dnx-wrong-key-7f3a9c1e5b2d"
secrets_watch.watch("wrong dialnexa key", WRONG_DIALNEXA_KEY)


def test_the_watch_sees_every_form_of_a_key():
    key = DEFAULT_KEYS["lemlist"]
    for text in (f"x {key} y", f"Authorization: Bearer {key}", f"Basic {secrets_watch.forms(key)['Basic credential']}"):
        assert secrets_watch.find_leaks(text), text
    assert secrets_watch.find_leaks(f"Bearer {WRONG_DIALNEXA_KEY}")
    assert secrets_watch.find_leaks("nothing to see here") == []
    assert secrets_watch.redact(f"a {key} b") == "a *** b"


def _metadata(dag_run) -> dict[str, list]:
    """The run's XCom values and rendered template fields, read back from the metadata DB."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        xcoms = session.scalars(
            select(XComModel).where(XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id)
        ).all()
        rendered = session.scalars(
            select(RenderedTaskInstanceFields).where(
                RenderedTaskInstanceFields.dag_id == dag_run.dag_id, RenderedTaskInstanceFields.run_id == dag_run.run_id
            )
        ).all()
        return {
            "xcom": [(x.task_id, x.key, XComModel.deserialize_value(x)) for x in xcoms],
            "rendered": [(r.task_id, r.rendered_fields) for r in rendered],
        }


@pytest.mark.usefixtures("airflow_db")
def test_no_key_in_xcom_rendered_fields_or_task_logs(sandbox, connections, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.seed(base_seed())
    # LeadLex stops accepting the key in use (revoked); DialNexa is given a wrong key
    sandbox.configure(keys={"leadlex": ["wbk_rotated_key"]})
    connections("dialnexa", "dialnexa_wrong", key=WRONG_DIALNEXA_KEY)
    with new_dag("outreach_secrets_everywhere", params={"value": "leak-check@example.com"}) as dag:
        LemlistAddUnsubscribeOperator(task_id="suppress", value=["{{ params.value }}", "@leak-check.example.org"])
        LeadlexRemoveContactOperator(task_id="revoked", contact_id=["ctc_ann", "ctc_bob"], campaign_id="cmp_active")
        DialnexaRemoveCampaignLeadOperator(
            task_id="wrong_key", campaign_lead_id="{{ ['cl_ann'] }}", dialnexa_conn_id="dialnexa_wrong"
        )
    dag_run = run_dag(dag)
    printed = capfd.readouterr()

    states = task_states(dag_run)
    assert states == {"suppress": "success", "revoked": "failed", "wrong_key": "failed"}, states
    statuses = {vendor: {r["status"] for r in sandbox.requests(vendor=vendor)} for vendor in ("leadlex", "dialnexa")}
    assert statuses == {"leadlex": {401}, "dialnexa": {401}}, "the failing tasks did reach the API and were refused"

    stored = _metadata(dag_run)
    reports = {task: value for task, key, value in stored["xcom"] if key in ("return_value", "report")}
    assert set(reports) == {"suppress"}  # a refused key fails the task before any item: nothing to report
    assert reports["suppress"]["counts"]["done"] == 2
    rendered = dict(stored["rendered"])
    assert rendered["suppress"]["value"] == ["leak-check@example.com", "@leak-check.example.org"]
    assert set(rendered) == {"suppress", "revoked", "wrong_key"}

    logs = [p for p in (Path(os.environ["AIRFLOW_HOME"]) / "logs").rglob("*") if p.is_file()]
    places = {
        "XCom": json.dumps([x[2] for x in stored["xcom"]], default=str),
        "rendered template fields": json.dumps(stored["rendered"], default=str),
        "stdout": printed.out,
        "stderr": printed.err,
        "log records": caplog.text,
        **{f"task log {p.name}": p.read_text(errors="replace") for p in logs},
    }
    assert "401" in printed.out + printed.err + caplog.text + "".join(
        places[k] for k in places if k.startswith("task log")
    )
    for place, text in places.items():
        assert secrets_watch.find_leaks(text) == [], f"a key in the {place}"
        assert "Authorization" not in text, f"an Authorization header in the {place}"


@pytest.mark.parametrize("status", [401, 403])
def test_no_key_in_errors_or_logs_of_a_refused_call(sandbox, connections, caplog, capfd, status):
    caplog.set_level(logging.DEBUG)
    sandbox.seed(base_seed())
    if status == 401:
        sandbox.configure(keys={"leadlex": ["wbk_rotated_key"]})
    else:  # the key is valid but may only read
        sandbox.configure(keys={"leadlex": {DEFAULT_KEYS["leadlex"]: ["campaigns:read"]}})
    hook = LeadlexHook()
    with pytest.raises(AuthenticationError) as err:
        hook.remove_contact("cmp_active", "ctc_ann")
    ok, message = hook.test_connection()
    assert ok is (status == 403)
    texts = [
        str(err.value),
        repr(err.value),
        repr(hook),
        repr(hook.get_conn().session.auth),
        str(hook.get_conn().session.headers),
        message,
    ]
    texts += [caplog.text, *capfd.readouterr()]
    assert err.value.status_code == status
    for text in texts:
        assert secrets_watch.find_leaks(text) == []
