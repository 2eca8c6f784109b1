"""DialNexa operators: remove leads from campaign call queues, check removals."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from airflow_provider_outreach.bulk.items import ID
from airflow_provider_outreach.exceptions import NotFoundError
from airflow_provider_outreach.hooks.dialnexa import DialnexaHook
from airflow_provider_outreach.operators.base import (
    ActionSpec,
    OutreachBulkOperator,
    OutreachCheckOperator,
    ParameterAlias,
)

_CONN = DialnexaHook.default_conn_name


class DialnexaRemoveCampaignLeadOperator(OutreachBulkOperator):
    """Remove campaign leads from DialNexa call queues so they are never dialled.

    A lead whose campaign is completed or cancelled cannot be removed any more (409): it
    is reported as failed with the reason ``campaign_closed``, or, with
    ``closed_campaign_ok=True``, as ``already_absent`` (such a lead is never dialled again).

    :param campaign_lead_id: a campaign-lead id or a list of them (templated).
    :param dialnexa_conn_id: DialNexa connection (templated).
    :param closed_campaign_ok: count leads of completed/cancelled campaigns as already absent.
    """

    template_fields = ("campaign_lead_id", "dialnexa_conn_id", "max_inline_wait")
    campaign_lead_id = ParameterAlias("items")
    dialnexa_conn_id = ParameterAlias("conn_id")
    SPEC = ActionSpec(
        DialnexaHook,
        "remove_campaign_lead",
        "campaign_lead_id",
        ID,
        item_object="campaign_lead",
        conflict_reason="campaign_closed",
    )

    def __init__(
        self, *, campaign_lead_id: Any, dialnexa_conn_id: str = _CONN, closed_campaign_ok: bool = False, **kwargs: Any
    ) -> None:
        spec = replace(self.SPEC, conflict_absent=closed_campaign_ok)
        super().__init__(spec=spec, items=campaign_lead_id, conn_id=dialnexa_conn_id, **kwargs)
        self.closed_campaign_ok = closed_campaign_ok

    def apply(self, hook: DialnexaHook, item: str) -> Any:
        return hook.remove_campaign_lead(item)


class DialnexaSuppressionCheckOperator(OutreachCheckOperator):
    """Read back whether each campaign lead is out of DialNexa's call queues.

    ``honoured`` when ``GET /campaigns-leads/{id}`` answers DialNexa's 404 (removed or
    never there) or a lead whose status is ``removed``; ``not_honoured`` otherwise. One
    paced request per lead (and, with ``closed_campaign_ok``, one per campaign of a lead
    still listed).

    :param campaign_lead_id: a campaign-lead id or a list of them (templated).
    :param dialnexa_conn_id: DialNexa connection (templated).
    :param closed_campaign_ok: a lead of a completed or cancelled campaign (never dialled
        again, and no longer removable) counts as honoured.
    """

    template_fields = ("campaign_lead_id", "dialnexa_conn_id", "max_inline_wait")
    campaign_lead_id = ParameterAlias("items")
    dialnexa_conn_id = ParameterAlias("conn_id")
    SPEC = OutreachCheckOperator.spec_for(DialnexaHook, "campaign_lead_id", ID)

    def __init__(
        self, *, campaign_lead_id: Any, dialnexa_conn_id: str = _CONN, closed_campaign_ok: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(spec=self.SPEC, items=campaign_lead_id, conn_id=dialnexa_conn_id, **kwargs)
        self.closed_campaign_ok = closed_campaign_ok
        self._closed: dict[str, bool] = {}

    def before_items(self, hook: DialnexaHook) -> None:
        self._closed = {}

    def _campaign_closed(self, hook: DialnexaHook, campaign_id: str) -> bool:
        if campaign_id not in self._closed:  # one read per campaign; a race only costs a second read
            self._closed[campaign_id] = hook.get_campaign(campaign_id).get("status") in hook.terminal_statuses
        return self._closed[campaign_id]

    def honoured(self, hook: DialnexaHook, campaign_lead_id: str) -> bool:
        try:
            lead = hook.get_campaign_lead(campaign_lead_id)
        except NotFoundError as exc:
            if exc.missing == "campaign_lead":
                return True
            raise
        if lead.get("status") == "removed":
            return True
        return self.closed_campaign_ok and self._campaign_closed(hook, str(lead.get("campaign_id")))
