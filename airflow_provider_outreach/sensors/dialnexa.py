"""DialNexa campaign-status sensor."""

from __future__ import annotations

from typing import Any

from airflow_provider_outreach.hooks.dialnexa import DialnexaHook
from airflow_provider_outreach.sensors.base import OutreachCampaignStatusSensor


class DialnexaCampaignStatusSensor(OutreachCampaignStatusSensor):
    """Wait for a DialNexa campaign's status (``draft``, ``active``, ``running``, ``paused``,
    ``completed``, ``cancelled``); fails at once on ``completed``/``cancelled`` unless targeted.

    :param dialnexa_conn_id: DialNexa connection (templated).
    """

    template_fields = ("campaign_id", "dialnexa_conn_id")
    hook_class = DialnexaHook

    def __init__(
        self, *, campaign_id: str, dialnexa_conn_id: str = DialnexaHook.default_conn_name, **kwargs: Any
    ) -> None:
        self.dialnexa_conn_id = dialnexa_conn_id
        super().__init__(campaign_id=campaign_id, **kwargs)
