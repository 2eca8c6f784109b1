"""lemlist: HTTP Basic auth with an empty login, plain-text errors, 20 requests per 2 s."""

from __future__ import annotations

import base64
from typing import Any

from airflow_provider_outreach.exceptions import NotFoundError
from airflow_provider_outreach.hooks.base import OutreachHook


class LemlistHook(OutreachHook):
    """Calls the lemlist API (``https://api.lemlist.com/api``).

    :param lemlist_conn_id: Airflow connection whose password is the lemlist API key.
    """

    vendor = "lemlist"
    conn_name_attr = "lemlist_conn_id"
    default_conn_name = "lemlist_default"
    conn_type = "lemlist"
    hook_name = "lemlist"
    default_base_url = "https://api.lemlist.com/api"
    default_rate_limit = (20, 2.0)
    campaign_path = "/campaigns/{campaign_id}"
    probe = ("/team", None)

    def __init__(self, lemlist_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(lemlist_conn_id, **kwargs)

    def auth_header(self, api_key: str) -> str:
        return "Basic " + base64.b64encode(f":{api_key}".encode()).decode()

    def error_fields(self, body: Any) -> tuple[str | None, str | None]:
        if isinstance(body, dict):
            message = body.get("message") or body.get("error")
            return None, str(message) if message else None
        return None, str(body) if isinstance(body, str) else None

    def campaign_missing(self, error: NotFoundError) -> bool:
        return (error.message or "").strip().lower() == "campaign not found"

    def unsubscribe_lead(self, campaign_id: str, email: str) -> dict[str, Any]:
        """Unsubscribe the lead with ``email`` from a campaign; returns the lead."""
        return self.call("DELETE", "/campaigns/{campaign_id}/leads/{email}", campaign_id=campaign_id, email=email)

    def delete_lead(self, campaign_id: str, lead_id: str) -> dict[str, Any]:
        """Delete a lead from a campaign (``action=remove``); returns the lead."""
        return self.call(
            "DELETE",
            "/campaigns/{campaign_id}/leads/{lead_id}",
            query={"action": "remove"},
            campaign_id=campaign_id,
            lead_id=lead_id,
        )

    def mark_not_interested(self, lead_id_or_email: str) -> list[dict[str, Any]]:
        """Mark a lead not interested in all campaigns; returns the leads changed."""
        return self.call("POST", "/leads/notinterested/{lead}", lead=lead_id_or_email)

    def add_unsubscribe(self, value: str) -> dict[str, Any]:
        """Suppress an email, ``@domain``, LinkedIn URL or phone team-wide (idempotent)."""
        return self.call("POST", "/v2/unsubscribes/variables/{value}", value=value)
