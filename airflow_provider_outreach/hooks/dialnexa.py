"""DialNexa: Bearer auth, NestJS-style ``{"statusCode", "message", "error"}`` errors."""

from __future__ import annotations

from enum import Enum
from typing import Any

from airflow_provider_outreach.exceptions import ConflictError, NotFoundError
from airflow_provider_outreach.hooks.base import OutreachHook


class DialnexaCampaignStatus(str, Enum):
    DRAFT = "draft"
    ACTIVE = "active"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class DialnexaHook(OutreachHook):
    """Calls the DialNexa campaigns API (``https://api.dialnexa.com/v1``).

    Once a campaign is completed or cancelled (its terminal statuses) its leads can no
    longer be removed: DialNexa answers 409.

    :param dialnexa_conn_id: Airflow connection whose password is the DialNexa API key.
    """

    vendor = "dialnexa"
    conn_name_attr = "dialnexa_conn_id"
    default_conn_name = "dialnexa_default"
    conn_type = "dialnexa"
    hook_name = "DialNexa"
    default_base_url = "https://api.dialnexa.com/v1"
    campaign_path = "/campaigns/{campaign_id}"
    probe = ("/agents", None)
    campaign_statuses = DialnexaCampaignStatus
    terminal_statuses = frozenset({DialnexaCampaignStatus.COMPLETED.value, DialnexaCampaignStatus.CANCELLED.value})

    #: the object a genuine 404 of each route names
    _OBJECTS = {
        "/campaigns/{campaign_id}": "campaign",
        "/campaigns-leads/{campaign_lead_id}": "campaign_lead",
    }

    def __init__(self, dialnexa_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(dialnexa_conn_id, **kwargs)

    def error_fields(self, body: Any) -> tuple[str | None, str | None]:
        message = body.get("message")
        if isinstance(message, list):
            message = "; ".join(str(m) for m in message)
        return body.get("error"), message

    def missing_object(self, error: NotFoundError, route: str) -> str | None:
        # a NestJS 404 of a served route; "Cannot DELETE /..." is its answer for a route nobody serves
        body = error.body
        if not isinstance(body, dict) or body.get("statusCode") != 404 or (error.message or "").startswith("Cannot "):
            return None
        return self._OBJECTS.get(route)

    def conflict_state(self, error: ConflictError, route: str) -> str | None:
        # the documented 409: a lead of a completed or cancelled campaign, in NestJS's error body
        body = error.body
        if route == "/campaigns-leads/{campaign_lead_id}" and isinstance(body, dict) and body.get("statusCode") == 409:
            return "campaign_closed"
        return None

    def probe_ok(self, body: Any) -> bool:
        return isinstance(body, list) or (isinstance(body, dict) and isinstance(body.get("data"), list))

    def remove_campaign_lead(self, campaign_lead_id: str) -> dict[str, Any]:
        """Remove a lead from its campaign's queue (409 once the campaign is completed or cancelled)."""
        return self.call("DELETE", "/campaigns-leads/{campaign_lead_id}", campaign_lead_id=campaign_lead_id)

    def get_campaign_lead(self, campaign_lead_id: str) -> dict[str, Any]:
        """A campaign lead (``id``, ``campaign_id``, ``status``, ``phone_number``, ...)."""
        return self.call("GET", "/campaigns-leads/{campaign_lead_id}", campaign_lead_id=campaign_lead_id)
