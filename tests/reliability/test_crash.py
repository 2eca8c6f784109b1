"""A real worker process killed with SIGKILL mid-run loses (almost) no evidence, and the
retry (a new try of the same task instance, through ``dag.test()``) resumes from the audit
table: it sends none of the items already recorded, as the sandbox's request log proves."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pendulum
import pytest

from airflow_provider_outreach.bulk.ledger import FLUSH_ROWS
from airflow_provider_outreach.sandbox import DEFAULT_KEYS
from tests.conftest import REPO

pytestmark = pytest.mark.multiprocess

N_ITEMS = 2000
WORKERS = 4

DAG_FILE = """
import json, os
import pendulum
from airflow.providers.common.compat.sdk import DAG
from airflow_provider_outreach.operators.dialnexa import DialnexaRemoveCampaignLeadOperator

with DAG("outreach_crash", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
    DialnexaRemoveCampaignLeadOperator(
        task_id="remove",
        campaign_lead_id=json.load(open(os.environ["OUTREACH_CRASH_ITEMS"])),
        max_workers={workers},
        audit_conn_id="audit_db",
        audit_table="audit",
    )
"""

RUNNER = """
import sys
import pendulum
from airflow.dag_processing.dagbag import DagBag
from airflow.utils import db

db.initdb()
dag = DagBag(dag_folder=sys.argv[1]).get_dag("outreach_crash")
when = pendulum.datetime(2026, 5, 1, tz="UTC")
run = dag.test(logical_date=when, run_after=when)  # the same run (and task instance) every time
print("RUN STATE", run.state, flush=True)
"""


@pytest.mark.timeout(600)
def test_sigkill_mid_run_then_the_retry_resumes(sandbox, sandbox_server, tmp_path):
    leads = [{"id": f"cl_{i:05d}", "phone_number": f"+1555{i:07d}"} for i in range(N_ITEMS)]
    sandbox.seed({"dialnexa": {"campaigns": [{"id": "cmp_crash", "status": "active", "leads": leads}]}})
    sandbox.configure(latency={"dialnexa": 0.01})
    items = tmp_path / "items.json"
    items.write_text(json.dumps([lead["id"] for lead in leads]))
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "outreach_crash.py").write_text(DAG_FILE.format(workers=WORKERS))
    (tmp_path / "runner.py").write_text(textwrap.dedent(RUNNER))
    audit_db = tmp_path / "audit.db"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(REPO),
        "PYTHONWARNINGS": "ignore",
        "OUTREACH_CRASH_ITEMS": str(items),
        "AIRFLOW_CONN_DIALNEXA_DEFAULT": json.dumps(
            {
                "conn_type": "dialnexa",
                "host": sandbox_server.vendor_url("dialnexa"),
                "password": DEFAULT_KEYS["dialnexa"],
            }
        ),
        "AIRFLOW_CONN_AUDIT_DB": json.dumps({"conn_type": "sqlite", "host": str(audit_db)}),
    }

    def deletes(since: int = 0) -> list[dict]:
        return [r for r in sandbox.requests(since=since, vendor="dialnexa") if r["method"] == "DELETE"]

    # try 1: a real process, killed with SIGKILL once about half the items went through
    with open(tmp_path / "try1.log", "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, str(tmp_path / "runner.py"), str(dags)], env=env, stdout=log, stderr=log
        )
    deadline = time.monotonic() + 240
    while len(deletes()) < N_ITEMS // 2:
        assert worker.poll() is None, (tmp_path / "try1.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the first try did not get going"
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    killed_at = time.time()
    worker.wait(timeout=30)
    time.sleep(1.0)  # requests that were on the wire finish at the sandbox
    sent = deletes()
    last_seq = sandbox.requests()[-1]["seq"]
    applied = {r["segments"][-1]: r["time"] for r in sent if r["status"] == 200}
    assert N_ITEMS // 2 <= len(applied) < N_ITEMS

    rows = sqlite3.connect(audit_db).execute("SELECT item, outcome, recorded_at, try_number FROM audit").fetchall()
    recorded = {item: recorded_at for item, _, recorded_at, _ in rows}
    assert {outcome for _, outcome, _, _ in rows} == {"done"}
    assert {t for *_, t in rows} == {1}
    assert set(recorded) <= set(applied), "a row for an item that was not done"
    for item, recorded_at in recorded.items():  # each row carries the time of its own call
        assert abs(pendulum.parse(recorded_at).timestamp() - applied[item]) < 2.0
    # every item finished more than one batch before the kill has its row
    by_time = sorted(applied, key=applied.get)
    lost = [item for item in by_time if item not in recorded]
    assert len(lost) <= FLUSH_ROWS + 2 * WORKERS, len(lost)
    # before the last batch, only an item whose worker thread had not recorded it yet (one per
    # worker at most: a thread records its item before it sends another) can miss its row
    early_lost = [item for item in by_time[: len(by_time) - FLUSH_ROWS - 2 * WORKERS] if item not in recorded]
    assert len(early_lost) <= WORKERS, early_lost
    assert all(item in recorded for item in by_time if applied[item] < killed_at - 6.0)

    # try 2: the same task instance again; it reads the audit table and resumes
    with open(tmp_path / "try2.log", "wb") as log:
        retry = subprocess.run(
            [sys.executable, str(tmp_path / "runner.py"), str(dags)], env=env, stdout=log, stderr=log, timeout=300
        )
    output = (tmp_path / "try2.log").read_text()
    assert retry.returncode == 0 and "RUN STATE success" in output, output[-3000:]
    resent = {r["segments"][-1] for r in deletes(last_seq)}
    assert not resent & set(recorded), "the retry sent an item already recorded"
    assert resent == {lead["id"] for lead in leads} - set(recorded)
    state = sandbox.state()["dialnexa"]["leads"]
    assert all(lead["status"] == "removed" for lead in state.values())
    final = dict(sqlite3.connect(audit_db).execute("SELECT outcome, count(*) FROM audit GROUP BY 1").fetchall())
    # one row per item: those applied in try 1 but not yet recorded come back already absent
    assert final == {"done": N_ITEMS - len(lost), "already_absent": len(lost)} if lost else {"done": N_ITEMS}
