"""lemlist campaign-status sensor."""

from __future__ import annotations

from typing import Any

from airflow_provider_outreach.hooks.lemlist import LemlistHook
from airflow_provider_outreach.sensors.base import OutreachCampaignStatusSensor


class LemlistCampaignStatusSensor(OutreachCampaignStatusSensor):
    """Wait for a lemlist campaign's status (``draft``, ``running``, ``paused``, ``ended``,
    ``archived``, ``errors``); fails at once on ``ended``/``archived`` unless targeted.

    :param lemlist_conn_id: lemlist connection (templated).
    """

    template_fields = ("campaign_id", "lemlist_conn_id")
    hook_class = LemlistHook

    def __init__(
        self, *, campaign_id: str, lemlist_conn_id: str = LemlistHook.default_conn_name, **kwargs: Any
    ) -> None:
        self.lemlist_conn_id = lemlist_conn_id
        super().__init__(campaign_id=campaign_id, **kwargs)
