"""The draft-cleanup example DAG, run for real against the sandbox."""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from tests.dagtest import dag_bag, run_dag, task_states, xcom

pytestmark = pytest.mark.usefixtures("airflow_db")


def test_draft_cleanup_deletes_drafts_and_spares_the_rest(sandbox, connections):
    campaigns = [
        {"id": "cmp_d1", "name": "stale 1", "status": "draft"},
        {"id": "cmp_d2", "name": "stale 2", "status": "paused"},  # becomes a draft while we wait
        {"id": "cmp_c3", "name": "finished", "status": "completed"},
    ]
    sandbox.seed({"leadlex": {"campaigns": campaigns}})
    sandbox.set_campaign_status("leadlex", "cmp_d2", "draft", after_reads=1)
    bag = dag_bag(str(REPO / "example_dags"))
    dag = bag.get_dag("outreach_draft_campaign_cleanup")

    dr = run_dag(dag, run_conf={"campaign_ids": ["cmp_d1", "cmp_d2", "cmp_c3"]})
    states = task_states(dr)
    assert states["cleanup.delete_draft[0]"] == "success"
    assert states["cleanup.delete_draft[1]"] == "success"
    assert states["cleanup.wait_until_draft[2]"] == "failed"
    assert states["cleanup.delete_draft[2]"] == "upstream_failed"
    remaining = sandbox.state()["leadlex"]["campaigns"]
    assert set(remaining) == {"cmp_c3"}
    assert xcom(dr, "cleanup.delete_draft", map_index=1)["items"]["done"] == ["cmp_d2"]
    assert not [
        r for r in sandbox.requests(vendor="leadlex") if r["method"] == "DELETE" and r["segments"][-1] == "cmp_c3"
    ]
