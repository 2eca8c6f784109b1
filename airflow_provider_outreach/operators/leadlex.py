"""LeadLex operators: remove contacts from a campaign, delete draft campaigns, check removals."""

from __future__ import annotations

from typing import Any

from airflow_provider_outreach.bulk.items import ID
from airflow_provider_outreach.hooks.leadlex import LeadlexHook
from airflow_provider_outreach.operators.base import (
    ActionSpec,
    OutreachBulkOperator,
    OutreachCheckOperator,
    ParameterAlias,
)

_CONN = LeadlexHook.default_conn_name


class LeadlexRemoveContactOperator(OutreachBulkOperator):
    """Unenroll contacts from a LeadLex campaign (future sends are cancelled).

    LeadLex plans carry a daily request cap; when it is spent the task defers until the
    reset (midnight UTC) and resumes with the contacts left.

    :param contact_id: a contact id or a list of them (templated).
    :param campaign_id: the campaign (templated).
    :param leadlex_conn_id: LeadLex connection (templated).
    """

    template_fields = ("contact_id", "campaign_id", "leadlex_conn_id", "max_inline_wait")
    contact_id = ParameterAlias("items")
    campaign_id = ParameterAlias("campaign")
    leadlex_conn_id = ParameterAlias("conn_id")
    SPEC = ActionSpec(LeadlexHook, "remove_contact", "contact_id", ID, item_object="enrollment")

    def __init__(self, *, contact_id: Any, campaign_id: str, leadlex_conn_id: str = _CONN, **kwargs: Any) -> None:
        super().__init__(spec=self.SPEC, items=contact_id, campaign=campaign_id, conn_id=leadlex_conn_id, **kwargs)

    def apply(self, hook: LeadlexHook, item: str) -> Any:
        return hook.remove_contact(self.campaign_id, item)


class LeadlexDeleteCampaignOperator(OutreachBulkOperator):
    """Delete LeadLex campaigns that are still drafts, and nothing else.

    Immediately before each DELETE the campaign's status is read; a campaign that is not
    ``draft`` is not deleted and is reported as failed with the reason
    ``campaign_not_draft`` and its current status. If it stops being a draft between the
    check and the DELETE, LeadLex answers 409 ``campaign_not_draft``, reported the same way.

    :param campaign_id: a campaign id or a list of them (templated).
    :param leadlex_conn_id: LeadLex connection (templated).
    """

    template_fields = ("campaign_id", "leadlex_conn_id", "max_inline_wait")
    campaign_id = ParameterAlias("items")
    leadlex_conn_id = ParameterAlias("conn_id")
    SPEC = ActionSpec(
        LeadlexHook,
        "delete_campaign",
        "campaign_id",
        ID,
        item_object="campaign",
        conflict_reason="campaign_not_draft",
    )

    def __init__(self, *, campaign_id: Any, leadlex_conn_id: str = _CONN, **kwargs: Any) -> None:
        super().__init__(spec=self.SPEC, items=campaign_id, conn_id=leadlex_conn_id, **kwargs)

    def apply(self, hook: LeadlexHook, item: str) -> Any:
        return hook.delete_draft_campaign(item)


class LeadlexSuppressionCheckOperator(OutreachCheckOperator):
    """Read back whether each contact is no longer enrolled in a LeadLex campaign.

    The campaign's enrollments are read once (``GET /v1/campaigns/{id}/contacts``, 100 per
    page: one request per 100 enrollments, against LeadLex's per-minute and daily limits),
    not once per contact; a contact is ``honoured`` when it is not among them. When they
    cannot be read, every contact is ``failed`` with the reason, and the task fails.

    :param contact_id: a contact id or a list of them (templated).
    :param campaign_id: the campaign (templated).
    :param leadlex_conn_id: LeadLex connection (templated).
    """

    template_fields = ("contact_id", "campaign_id", "leadlex_conn_id", "max_inline_wait")
    contact_id = ParameterAlias("items")
    campaign_id = ParameterAlias("campaign")
    leadlex_conn_id = ParameterAlias("conn_id")
    SPEC = OutreachCheckOperator.spec_for(LeadlexHook, "contact_id", ID)

    def __init__(self, *, contact_id: Any, campaign_id: str, leadlex_conn_id: str = _CONN, **kwargs: Any) -> None:
        super().__init__(spec=self.SPEC, items=contact_id, campaign=campaign_id, conn_id=leadlex_conn_id, **kwargs)
        self._enrolled: set[str] = set()

    def before_items(self, hook: LeadlexHook) -> None:
        enrolled: set[str] = set()
        requests = 0
        for contacts in hook.contact_pages(self.campaign_id):
            requests += 1
            enrolled.update(str(c["contact_id"]) for c in contacts)
        self.log.info("campaign %s: %d enrollments read in %d requests", self.campaign_id, len(enrolled), requests)
        self._enrolled = enrolled

    def honoured(self, hook: LeadlexHook, contact_id: str) -> bool:
        return contact_id not in self._enrolled
