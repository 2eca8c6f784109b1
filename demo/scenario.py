"""The demo's story around the suppression DAG: what earlier runs did, and what happened since.

Shared by ``make demo`` and the tests that run the example DAGs.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pendulum


def lemlist_origin_people(seed: dict, taken: set[str], n: int = 5) -> list[str]:
    """People enrolled in LeadLex and queued in DialNexa, not in the CRM's opt-outs: they will
    unsubscribe inside lemlist (its link, a bounce, an abuse report) and nowhere else."""
    leadlex = {c["email"].lower() for camp in seed["leadlex"]["campaigns"] for c in camp.get("contacts", [])}
    dialnexa = {
        lead["email"].lower()
        for camp in seed["dialnexa"]["campaigns"]
        if camp.get("status") not in ("completed", "cancelled")
        for lead in camp.get("leads", [])
        if lead.get("email") and lead.get("status", "pending") != "removed"
    }
    return sorted((leadlex & dialnexa) - taken)[:n]


def simulate_earlier_syncs(
    seed: dict, earlier: list[str], warehouse_db: Path, when: pendulum.DateTime
) -> tuple[str, str, str]:
    """What earlier runs of the sync did for the earlier days' opt-outs, with the real hooks
    and the real pull of lemlist's list (first seen on ``when``). Returns one of those people's
    LeadLex enrollments, for an import to re-add."""
    from airflow_provider_outreach.exceptions import ConflictError, NotFoundError
    from airflow_provider_outreach.hooks.dialnexa import DialnexaHook
    from airflow_provider_outreach.hooks.leadlex import LeadlexHook
    from airflow_provider_outreach.hooks.lemlist import LemlistHook

    # the earlier days' CRM opt-outs, and what lemlist's list already held then
    already = [u["value"].lower() for u in seed["lemlist"].get("unsubscribes", []) if "@" in u["value"][1:]]
    wanted = {e.lower() for e in earlier} | set(already)
    LemlistHook().add_unsubscribes(sorted(wanted))
    enrollments = [
        (camp["id"], c["contact_id"], c["email"].lower())
        for camp in seed["leadlex"]["campaigns"]
        for c in camp.get("contacts", [])
        if c["email"].lower() in wanted
    ]
    for campaign_id, contact_id, _ in enrollments:
        LeadlexHook().remove_contact(campaign_id, contact_id)
    for camp in seed["dialnexa"]["campaigns"]:
        for lead in camp.get("leads", []):
            if (lead.get("email") or "").lower() in wanted:
                try:
                    DialnexaHook().remove_campaign_lead(lead["id"])
                except (ConflictError, NotFoundError):
                    pass  # closed campaign, or already out of the queue
    from airflow_provider_outreach.transfers.lemlist_to_sql import LemlistUnsubscribesToSqlOperator

    pull = LemlistUnsubscribesToSqlOperator(
        task_id="earlier_pull", sql_conn_id="outreach_warehouse", table="lemlist_unsubscribes"
    )
    pull.execute({})
    with sqlite3.connect(warehouse_db) as db:
        db.execute("UPDATE lemlist_unsubscribes SET first_seen_at = ?", (when.isoformat(),))
    return enrollments[-1]
