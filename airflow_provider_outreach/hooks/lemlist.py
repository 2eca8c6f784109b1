"""lemlist: HTTP Basic auth with an empty login, plain-text errors, 20 requests per 2 s."""

from __future__ import annotations

import base64
from enum import Enum
from typing import TYPE_CHECKING, Any

from airflow_provider_outreach.exceptions import InvalidInputError, InvalidResponseError, NotFoundError
from airflow_provider_outreach.hooks.base import OutreachHook

if TYPE_CHECKING:
    from airflow_provider_outreach.core.transport import AsyncTransport

#: lemlist's team-wide suppression list (``offset``/``limit`` at most 100)
UNSUBSCRIBE_LIST = "/v2/unsubscribes/variables"
#: the most records one page of it holds
UNSUBSCRIBE_PAGE_MAX = 100


class LemlistCampaignStatus(str, Enum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    ENDED = "ended"
    ARCHIVED = "archived"
    ERRORS = "errors"


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
    campaign_statuses = LemlistCampaignStatus
    terminal_statuses = frozenset({LemlistCampaignStatus.ENDED.value, LemlistCampaignStatus.ARCHIVED.value})
    _NOT_FOUND = {"lead not found": "lead", "campaign not found": "campaign", "unsubscribe not found": "unsubscribe"}
    #: values lemlist accepts in one bulk suppression request
    MAX_BULK_UNSUBSCRIBES = 10_000

    def __init__(self, lemlist_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(lemlist_conn_id, **kwargs)

    def auth_header(self, api_key: str) -> str:
        return "Basic " + base64.b64encode(f":{api_key}".encode()).decode()

    def error_fields(self, body: Any) -> tuple[str | None, str | None]:
        if isinstance(body, dict):
            message = body.get("message") or body.get("error")
            return None, str(message) if message else None
        return None, str(body) if isinstance(body, str) else None

    def missing_object(self, error: NotFoundError, route: str) -> str | None:
        # lemlist answers a documented 404 in plain text, e.g. "Lead not found"
        return self._NOT_FOUND.get((error.message or "").strip().lower())

    def probe_ok(self, body: Any) -> bool:
        return isinstance(body, dict) and str(body.get("_id", "")).startswith("tea_")

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

    def add_unsubscribes(self, values: list[str]) -> Any:
        """Suppress up to :attr:`MAX_BULK_UNSUBSCRIBES` values team-wide in one request.

        lemlist answers ``"Variables unsubscribed"`` (no per-value result) or refuses the
        whole request with 400 when one value is malformed.
        """
        if len(values) > self.MAX_BULK_UNSUBSCRIBES:
            raise InvalidInputError(f"at most {self.MAX_BULK_UNSUBSCRIBES} values per request, got {len(values)}")
        return self.call("POST", "/v2/unsubscribes/variables", json_body={"values": list(values)})

    def get_unsubscribe(self, value: str) -> dict[str, Any]:
        """The team-wide suppression record of ``value`` (404 ``Unsubscribe not found`` when none)."""
        return self.call("GET", "/v2/unsubscribes/variables/{value}", value=value)

    def list_unsubscribes(self, offset: int = 0, limit: int = UNSUBSCRIBE_PAGE_MAX) -> list[dict[str, Any]]:
        """One page of team-wide suppressions: ``{_id, value, source, createdAt}`` records
        (lemlist documents no order)."""
        return self._unsubscribe_page(self.call("GET", UNSUBSCRIBE_LIST, query={"offset": offset, "limit": limit}))

    async def alist_unsubscribes(
        self, client: AsyncTransport, offset: int = 0, limit: int = UNSUBSCRIBE_PAGE_MAX
    ) -> list[dict[str, Any]]:
        """The async twin of :meth:`list_unsubscribes`."""
        page = await self.acall(client, "GET", UNSUBSCRIBE_LIST, query={"offset": offset, "limit": limit})
        return self._unsubscribe_page(page)

    def _unsubscribe_page(self, page: Any) -> list[Any]:
        if not isinstance(page, list):
            raise InvalidResponseError(
                vendor=self.vendor, method="GET", path=UNSUBSCRIBE_LIST, message="expected a list of records"
            )
        return page
