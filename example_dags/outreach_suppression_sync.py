"""Honour every opt-out in every outreach tool, and prove it: the daily sync.

1. **Pull** what the tools know into the warehouse: lemlist's team-wide unsubscribe list
   (people who used lemlist's unsubscribe link, bounced or reported abuse are on it and
   nowhere else) and every LeadLex campaign's enrollments.
2. **Read** every opt-out (the CRM's and lemlist's own) with its id in each tool.
3. **Suppress** them in every tool, in parallel, one audit row per person as it goes.
   ``skip_proven`` sends only what the audit table does not already prove done: the first
   run catches up on every opt-out recorded before it, later runs send only new ones, and a
   run needs no data interval, so it works however it was started (the schedule, "Trigger"
   with or without a logical date, another DAG).
4. **Check** every opt-out, read back from each tool: an import may have re-added someone.
   A check that finds one not honoured fails its task, and so the run.
5. **Summarize** the counts of every outcome (XCom of ``summarize``).

Warehouse (connection ``outreach_warehouse``; SQLite here, any common-sql database works)::

    crm_optouts(email, opted_out_at, batch_id)        -- your CRM's opt-outs
    dialnexa_campaign_leads(email, campaign_lead_id)  -- your dialer's export
    lemlist_unsubscribes, leadlex_enrollments         -- written by the pulls
    outreach_suppression_audit                        -- written by the operators

Connections: ``outreach_warehouse``, ``lemlist_default``, ``leadlex_default``,
``dialnexa_default``. Param ``max_inline_wait``: the longest rate-limit wait (s) a task
sleeps before it defers until the reset; set it per run in the run's conf.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import Param, dag
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

from airflow_provider_outreach.operators.dialnexa import (
    DialnexaRemoveCampaignLeadOperator,
    DialnexaSuppressionCheckOperator,
)
from airflow_provider_outreach.operators.leadlex import LeadlexRemoveContactOperator, LeadlexSuppressionCheckOperator
from airflow_provider_outreach.operators.lemlist import (
    LemlistAddUnsubscribeOperator,
    LemlistMarkNotInterestedOperator,
    LemlistSuppressionCheckOperator,
)
from airflow_provider_outreach.sync import enrollments_by_campaign, summarize
from airflow_provider_outreach.transfers.leadlex_to_sql import LeadlexEnrollmentsToSqlOperator
from airflow_provider_outreach.transfers.lemlist_to_sql import LemlistUnsubscribesToSqlOperator

WAREHOUSE = "outreach_warehouse"
AUDIT = {"audit_conn_id": WAREHOUSE, "audit_table": "outreach_suppression_audit"}
MAX_INLINE_WAIT = "{{ params.max_inline_wait }}"

EVERY_OPTOUT = (
    "SELECT lower(email) AS email FROM crm_optouts UNION SELECT value FROM lemlist_unsubscribes WHERE kind = 'email'"
)
EMAILS = f"SELECT email FROM ({EVERY_OPTOUT}) o ORDER BY email"
LEADLEX_ENROLLMENTS = (
    "SELECT DISTINCT e.campaign_id, e.contact_id FROM leadlex_enrollments e "
    f"JOIN ({EVERY_OPTOUT}) o ON lower(e.email) = o.email ORDER BY 1, 2"
)
DIALNEXA_CAMPAIGN_LEADS = (
    "SELECT DISTINCT d.campaign_lead_id FROM dialnexa_campaign_leads d "
    f"JOIN ({EVERY_OPTOUT}) o ON lower(d.email) = o.email ORDER BY 1"
)


def read(task_id: str, sql: str) -> SQLExecuteQueryOperator:
    return SQLExecuteQueryOperator(task_id=task_id, conn_id=WAREHOUSE, sql=sql)


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
    params={"max_inline_wait": Param(60, type="number", minimum=0, description="Longest rate-limit wait slept (s)")},
    tags=["outreach", "compliance"],
)
def outreach_suppression_sync():
    pulls = [
        LemlistUnsubscribesToSqlOperator(
            task_id="pull_lemlist_unsubscribes",
            sql_conn_id=WAREHOUSE,
            table="lemlist_unsubscribes",
            max_inline_wait=MAX_INLINE_WAIT,
        ),
        LeadlexEnrollmentsToSqlOperator(
            task_id="pull_leadlex_enrollments",
            sql_conn_id=WAREHOUSE,
            table="leadlex_enrollments",
            max_inline_wait=MAX_INLINE_WAIT,
        ),
    ]
    emails = read("read_emails", EMAILS)
    enrollments = read("read_leadlex_enrollments", LEADLEX_ENROLLMENTS)
    campaign_leads = read("read_dialnexa_campaign_leads", DIALNEXA_CAMPAIGN_LEADS)
    for pull in pulls:
        pull >> [emails, enrollments, campaign_leads]
    campaigns = enrollments_by_campaign(enrollments.output)

    send = {**AUDIT, "skip_proven": True, "max_inline_wait": MAX_INLINE_WAIT}
    suppressed = [
        LemlistAddUnsubscribeOperator(task_id="lemlist_suppress_team_wide", value=emails.output, **send),
        LemlistMarkNotInterestedOperator(task_id="lemlist_mark_not_interested", lead=emails.output, **send),
        LeadlexRemoveContactOperator.partial(task_id="leadlex_remove_contacts", **send).expand_kwargs(campaigns),
        DialnexaRemoveCampaignLeadOperator(
            task_id="dialnexa_remove_campaign_leads",
            campaign_lead_id=campaign_leads.output,
            closed_campaign_ok=True,  # a completed or cancelled campaign never dials again
            **send,
        ),
    ]

    check = {**AUDIT, "trigger_rule": "all_done"}  # whatever the suppression tasks did
    checks = [
        LemlistSuppressionCheckOperator(task_id="check_lemlist", value=emails.output, **check),
        LeadlexSuppressionCheckOperator.partial(task_id="check_leadlex", **check).expand_kwargs(campaigns),
        DialnexaSuppressionCheckOperator(
            task_id="check_dialnexa", campaign_lead_id=campaign_leads.output, closed_campaign_ok=True, **check
        ),
    ]
    for check_task in checks:
        suppressed >> check_task
    summarize([operator.output for operator in suppressed])


outreach_suppression_sync()
