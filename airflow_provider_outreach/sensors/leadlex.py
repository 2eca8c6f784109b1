"""LeadLex campaign-status sensor."""

from __future__ import annotations

from typing import Any

from airflow_provider_outreach.hooks.leadlex import LeadlexHook
from airflow_provider_outreach.sensors.base import OutreachCampaignStatusSensor


class LeadlexCampaignStatusSensor(OutreachCampaignStatusSensor):
    """Wait for a LeadLex campaign's status (``draft``, ``active``, ``paused``,
    ``pending_approval``, ``completed``); by default until it is ``draft``, failing at once
    when it is ``completed``.

    :param leadlex_conn_id: LeadLex connection (templated).
    """

    template_fields = ("campaign_id", "leadlex_conn_id")
    hook_class = LeadlexHook

    def __init__(
        self, *, campaign_id: str, leadlex_conn_id: str = LeadlexHook.default_conn_name, **kwargs: Any
    ) -> None:
        self.leadlex_conn_id = leadlex_conn_id
        super().__init__(campaign_id=campaign_id, **kwargs)
