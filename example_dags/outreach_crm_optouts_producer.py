"""A stand-in for your upstream pipeline: load a batch of opt-outs, announce it as an asset event.

Trigger it with ``{"emails": ["a@example.com", ...]}``: it inserts the emails into
``crm_optouts`` as one batch (its id from the run id) and updates the asset
``warehouse://crm/optouts`` with ``{"batch_id", "count"}``, which starts
``outreach_suppression_on_asset``. Your own load does the same with ``outlets=[OPTOUTS]``
on its last task. Needs the ``outreach_warehouse`` connection.
"""

from __future__ import annotations

import re

import pendulum
from airflow.providers.common.compat.sdk import Asset, BaseHook, Metadata, Param, dag, task

WAREHOUSE = "outreach_warehouse"
OPTOUTS = Asset("warehouse://crm/optouts")


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"emails": Param([], type="array", items={"type": "string"}, description="Opt-outs to load")},
    tags=["outreach", "example"],
)
def crm_optouts_producer():
    @task(outlets=[OPTOUTS])
    def load_optouts(params: dict, run_id: str):
        """Insert the run's opt-outs as one batch and announce it."""
        batch_id = re.sub(r"[^A-Za-z0-9_.:+-]", "_", run_id)[-64:]
        now = pendulum.now("UTC").isoformat()
        rows = [(email, now, batch_id) for email in params["emails"]]
        BaseHook.get_hook(WAREHOUSE).insert_rows(
            "crm_optouts", rows, target_fields=["email", "opted_out_at", "batch_id"]
        )
        yield Metadata(OPTOUTS, extra={"batch_id": batch_id, "count": len(rows)})

    load_optouts()


crm_optouts_producer()
