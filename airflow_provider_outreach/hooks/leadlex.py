"""LeadLex: Bearer auth, ``{"data": ...}`` envelopes, ``{"error": {"code", "message"}}`` errors."""

from __future__ import annotations

from typing import Any

from airflow_provider_outreach.exceptions import NotFoundError
from airflow_provider_outreach.hooks.base import OutreachHook


class LeadlexHook(OutreachHook):
    """Calls the LeadLex API (``https://data.leadlex.com/functions/v1/api-gateway``).

    The plan's rate limit is not published per key, so requests are paced from the
    ``X-RateLimit-*`` headers unless the connection's extra sets ``rate_limit``.

    :param leadlex_conn_id: Airflow connection whose password is the ``wbk_`` API key.
    """

    vendor = "leadlex"
    conn_name_attr = "leadlex_conn_id"
    default_conn_name = "leadlex_default"
    conn_type = "leadlex"
    hook_name = "LeadLex"
    default_base_url = "https://data.leadlex.com/functions/v1/api-gateway"
    request_id_header = "X-Request-ID"
    campaign_path = "/v1/campaigns/{campaign_id}"
    probe = ("/v1/campaigns", {"per_page": 1})

    def __init__(self, leadlex_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(leadlex_conn_id, **kwargs)

    def error_fields(self, body: Any) -> tuple[str | None, str | None]:
        error = body["error"]
        if isinstance(error, dict):
            return error.get("code"), error.get("message")
        return None, str(error)

    def campaign_missing(self, error: NotFoundError) -> bool:
        return error.code == "campaign_not_found"

    def campaign_from(self, body: Any) -> dict[str, Any]:
        return body["data"]["campaign"]

    def remove_contact(self, campaign_id: str, contact_id: str) -> dict[str, Any]:
        """Unenroll a contact from a campaign."""
        return self.call(
            "DELETE",
            "/v1/campaigns/{campaign_id}/contacts/{contact_id}",
            campaign_id=campaign_id,
            contact_id=contact_id,
        )

    def delete_campaign(self, campaign_id: str) -> dict[str, Any]:
        """Delete a campaign (LeadLex refuses anything but a draft with 409)."""
        return self.call("DELETE", "/v1/campaigns/{campaign_id}", campaign_id=campaign_id)


    def pause_campaign(self, campaign_id: str) -> dict[str, Any]:
        """Pause an active campaign; returns the campaign (``id``, ``status``, ``paused_at``)."""
        return self.call("POST", "/v1/campaigns/{campaign_id}/pause", campaign_id=campaign_id)["data"]["campaign"]
