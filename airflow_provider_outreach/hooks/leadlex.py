"""LeadLex: Bearer auth, ``{"data": ...}`` envelopes, ``{"error": {"code", "message"}}`` errors."""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from typing import Any

from airflow_provider_outreach.exceptions import CampaignNotDraftError, NotFoundError
from airflow_provider_outreach.hooks.base import OutreachHook

#: the most campaigns or enrollments LeadLex answers per page
PAGE_SIZE = 100


def more_pages(items: list[Any], page: int, meta: dict[str, Any]) -> bool:
    """Whether a full page ``page`` (from 1) of ``items`` has a next one: ``meta.total`` says so
    when LeadLex gives it, else a full page might."""
    total = meta.get("total")
    return len(items) >= PAGE_SIZE and (not isinstance(total, int) or page * PAGE_SIZE < total)


class LeadlexCampaignStatus(str, Enum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    PENDING_APPROVAL = "pending_approval"
    COMPLETED = "completed"


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
    campaign_statuses = LeadlexCampaignStatus
    terminal_statuses = frozenset({LeadlexCampaignStatus.COMPLETED.value})

    def __init__(self, leadlex_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(leadlex_conn_id, **kwargs)

    def error_fields(self, body: Any) -> tuple[str | None, str | None]:
        error = body["error"]
        if isinstance(error, dict):
            return error.get("code"), error.get("message")
        return None, str(error)

    def missing_object(self, error: NotFoundError, route: str) -> str | None:
        return {"campaign_not_found": "campaign", "enrollment_not_found": "enrollment"}.get(error.code or "")

    def probe_ok(self, body: Any) -> bool:
        data = body.get("data") if isinstance(body, dict) else None
        return isinstance(data, dict) and isinstance(data.get("campaigns"), list)

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

    def delete_draft_campaign(self, campaign_id: str) -> dict[str, Any]:
        """Delete a campaign only if it is a draft, read right before the DELETE.

        :raises CampaignNotDraftError: the campaign is not a draft (nothing was sent);
            a campaign that stops being a draft after the read gets LeadLex's own 409.
        """
        status = self.get_campaign(campaign_id).get("status")
        if status != LeadlexCampaignStatus.DRAFT.value:
            raise CampaignNotDraftError(vendor=self.vendor, campaign_id=campaign_id, status=status)
        return self.delete_campaign(campaign_id)

    def list_campaigns(self, page: int = 1, per_page: int = PAGE_SIZE) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """One page (from 1) of campaigns and the page's ``meta`` (``page``, ``per_page``, ``total``)."""
        body = self.call("GET", "/v1/campaigns", query={"page": page, "per_page": per_page})
        return body["data"]["campaigns"], body.get("meta") or {}

    def list_contacts(
        self, campaign_id: str, page: int = 1, per_page: int = PAGE_SIZE, status: str | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """One page (from 1) of a campaign's enrollments (``contact_id``, ``email``, ``status``) and its ``meta``."""
        query: dict[str, Any] = {"page": page, "per_page": per_page}
        if status:
            query["status"] = status
        body = self.call("GET", "/v1/campaigns/{campaign_id}/contacts", query=query, campaign_id=campaign_id)
        return body["data"]["contacts"], body.get("meta") or {}

    def campaign_pages(self, first_page: int = 1) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """``(page, campaigns)`` of every page from ``first_page`` to the last, one request each."""
        page = first_page
        while True:
            campaigns, meta = self.list_campaigns(page=page)
            yield page, campaigns
            if not more_pages(campaigns, page, meta):
                return
            page += 1

    def contact_pages(self, campaign_id: str) -> Iterator[list[dict[str, Any]]]:
        """Every page of a campaign's enrollments, one request each (at least one)."""
        page = 1
        while True:
            contacts, meta = self.list_contacts(campaign_id, page=page)
            yield contacts
            if not more_pages(contacts, page, meta):
                return
            page += 1

    def pause_campaign(self, campaign_id: str) -> dict[str, Any]:
        """Pause an active campaign; returns the campaign (``id``, ``status``, ``paused_at``)."""
        return self.call("POST", "/v1/campaigns/{campaign_id}/pause", campaign_id=campaign_id)["data"]["campaign"]
