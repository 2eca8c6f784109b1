"""lemlist operators: unsubscribe, delete, mark not interested, team-wide suppression."""

from __future__ import annotations

from typing import Any

from airflow_provider_outreach.bulk.items import EMAIL, ID, ID_OR_EMAIL, UNSUBSCRIBE_VALUE
from airflow_provider_outreach.exceptions import NotFoundError
from airflow_provider_outreach.hooks.lemlist import LemlistHook
from airflow_provider_outreach.operators.base import OutreachBulkOperator, OutreachCheckOperator

_CONN = LemlistHook.default_conn_name


class LemlistUnsubscribeLeadOperator(OutreachBulkOperator):
    """Unsubscribe leads, by email, from a lemlist campaign.

    :param email: an email or a list of emails (templated; an ``XComArg`` works).
    :param campaign_id: the campaign (``cam_...``, templated).
    :param lemlist_conn_id: lemlist connection (templated).

    The common options (``missing_ok``, ``dry_run``, ``fail_on_error``, ``max_workers``,
    audit) are described on :class:`~airflow_provider_outreach.operators.base.OutreachBulkOperator`.
    """

    template_fields = ("email", "campaign_id", "lemlist_conn_id")
    hook_class = LemlistHook
    action = "unsubscribe_lead"
    item_field = "email"
    item_kind = EMAIL
    item_object = "lead"
    campaign_field = "campaign_id"

    def __init__(self, *, email: Any, campaign_id: str, lemlist_conn_id: str = _CONN, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.email = email
        self.campaign_id = campaign_id
        self.lemlist_conn_id = lemlist_conn_id

    def apply(self, hook: LemlistHook, item: str) -> Any:
        return hook.unsubscribe_lead(self.campaign_id, item)


class LemlistDeleteLeadOperator(OutreachBulkOperator):
    """Delete leads, by lead id, from a lemlist campaign (``action=remove``).

    :param lead_id: a lead id or a list of them (``lea_...``, templated).
    :param campaign_id: the campaign (``cam_...``, templated).
    :param lemlist_conn_id: lemlist connection (templated).
    """

    template_fields = ("lead_id", "campaign_id", "lemlist_conn_id")
    hook_class = LemlistHook
    action = "delete_lead"
    item_field = "lead_id"
    item_kind = ID
    item_object = "lead"
    campaign_field = "campaign_id"

    def __init__(self, *, lead_id: Any, campaign_id: str, lemlist_conn_id: str = _CONN, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lead_id = lead_id
        self.campaign_id = campaign_id
        self.lemlist_conn_id = lemlist_conn_id

    def apply(self, hook: LemlistHook, item: str) -> Any:
        return hook.delete_lead(self.campaign_id, item)


class LemlistMarkNotInterestedOperator(OutreachBulkOperator):
    """Mark leads not interested in every lemlist campaign.

    :param lead: a lead id or email, or a list of them (templated).
    :param lemlist_conn_id: lemlist connection (templated).
    """

    template_fields = ("lead", "lemlist_conn_id")
    hook_class = LemlistHook
    action = "mark_not_interested"
    item_field = "lead"
    item_kind = ID_OR_EMAIL
    item_object = "lead"

    def __init__(self, *, lead: Any, lemlist_conn_id: str = _CONN, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lead = lead
        self.lemlist_conn_id = lemlist_conn_id

    def apply(self, hook: LemlistHook, item: str) -> Any:
        return hook.mark_not_interested(item)


class LemlistAddUnsubscribeOperator(OutreachBulkOperator):
    """Suppress emails, whole ``@domain``\\ s, LinkedIn URLs or phone numbers team-wide in
    lemlist (idempotent).

    Values go through lemlist's bulk route, ``chunk_size`` per request (at most 10,000),
    paced like any other call: 100,000 values take 10 requests. A chunk lemlist refuses
    (400: a value it does not accept) is split in halves until the refused values stand
    alone; those fail with lemlist's message, every other value is ``done``. Ten values in a
    row refused each on its own mean the refusal is not about the values: the run stops.

    :param value: an email, ``@domain``, LinkedIn profile URL or international phone number
        (``+33 6 12 34 56 78``), or a list of them (templated).
    :param chunk_size: values per request (1 to 10,000).
    :param lemlist_conn_id: lemlist connection (templated).
    """

    template_fields = ("value", "lemlist_conn_id")
    hook_class = LemlistHook
    action = "add_unsubscribe"
    item_field = "value"
    item_kind = UNSUBSCRIBE_VALUE

    def __init__(
        self,
        *,
        value: Any,
        chunk_size: int = LemlistHook.MAX_BULK_UNSUBSCRIBES,
        lemlist_conn_id: str = _CONN,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 1 <= chunk_size <= LemlistHook.MAX_BULK_UNSUBSCRIBES:
            raise ValueError(
                f"{self.task_id}: chunk_size must be 1 to {LemlistHook.MAX_BULK_UNSUBSCRIBES}, got {chunk_size}"
            )
        self.value = value
        self.chunk_size = chunk_size
        self.batch_size = chunk_size
        self.lemlist_conn_id = lemlist_conn_id

    def apply(self, hook: LemlistHook, values: list[str]) -> Any:
        return hook.add_unsubscribes(values)


class LemlistSuppressionCheckOperator(OutreachCheckOperator):
    """Read back whether each value (email, ``@domain``, LinkedIn URL, phone number) is on
    lemlist's team-wide unsubscribe list.

    ``honoured`` when ``GET /v2/unsubscribes/variables/{value}`` finds it, ``not_honoured``
    when lemlist answers ``Unsubscribe not found``; one paced request per value.

    :param value: an email, ``@domain``, LinkedIn profile URL or international phone number
        (``+33 6 12 34 56 78``), or a list of them (templated).
    :param lemlist_conn_id: lemlist connection (templated).
    """

    template_fields = ("value", "lemlist_conn_id")
    hook_class = LemlistHook
    item_field = "value"
    item_kind = UNSUBSCRIBE_VALUE

    def __init__(self, *, value: Any, lemlist_conn_id: str = _CONN, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value = value
        self.lemlist_conn_id = lemlist_conn_id

    def honoured(self, hook: LemlistHook, value: str) -> bool:
        try:
            record = hook.get_unsubscribe(value)
        except NotFoundError as exc:
            if exc.missing == "unsubscribe":
                return False
            raise
        return str(record.get("value", "")).lower() == value.lower()
