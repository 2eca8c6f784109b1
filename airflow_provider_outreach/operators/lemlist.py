"""lemlist operators: unsubscribe, delete, mark not interested, team-wide suppression, checks."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from airflow_provider_outreach.bulk.items import EMAIL, ID, ID_OR_EMAIL, UNSUBSCRIBE_VALUE
from airflow_provider_outreach.exceptions import NotFoundError
from airflow_provider_outreach.hooks.lemlist import LemlistHook
from airflow_provider_outreach.operators.base import (
    ActionSpec,
    OutreachBulkOperator,
    OutreachCheckOperator,
    ParameterAlias,
)

_CONN = LemlistHook.default_conn_name


class LemlistUnsubscribeLeadOperator(OutreachBulkOperator):
    """Unsubscribe leads, by email, from a lemlist campaign.

    :param email: an email or a list of emails (templated; an ``XComArg`` works).
    :param campaign_id: the campaign (``cam_...``, templated).
    :param lemlist_conn_id: lemlist connection (templated).

    The common options (``missing_ok``, ``dry_run``, ``fail_on_error``, ``max_workers``,
    audit) are described on :class:`~airflow_provider_outreach.operators.base.OutreachBulkOperator`.
    """

    template_fields = ("email", "campaign_id", "lemlist_conn_id", "max_inline_wait")
    email = ParameterAlias("items")
    campaign_id = ParameterAlias("campaign")
    lemlist_conn_id = ParameterAlias("conn_id")
    SPEC = ActionSpec(LemlistHook, "unsubscribe_lead", "email", EMAIL, item_object="lead")

    def __init__(self, *, email: Any, campaign_id: str, lemlist_conn_id: str = _CONN, **kwargs: Any) -> None:
        super().__init__(spec=self.SPEC, items=email, campaign=campaign_id, conn_id=lemlist_conn_id, **kwargs)

    def apply(self, hook: LemlistHook, item: str) -> Any:
        return hook.unsubscribe_lead(self.campaign_id, item)


class LemlistDeleteLeadOperator(OutreachBulkOperator):
    """Delete leads, by lead id, from a lemlist campaign (``action=remove``).

    :param lead_id: a lead id or a list of them (``lea_...``, templated).
    :param campaign_id: the campaign (``cam_...``, templated).
    :param lemlist_conn_id: lemlist connection (templated).
    """

    template_fields = ("lead_id", "campaign_id", "lemlist_conn_id", "max_inline_wait")
    lead_id = ParameterAlias("items")
    campaign_id = ParameterAlias("campaign")
    lemlist_conn_id = ParameterAlias("conn_id")
    SPEC = ActionSpec(LemlistHook, "delete_lead", "lead_id", ID, item_object="lead")

    def __init__(self, *, lead_id: Any, campaign_id: str, lemlist_conn_id: str = _CONN, **kwargs: Any) -> None:
        super().__init__(spec=self.SPEC, items=lead_id, campaign=campaign_id, conn_id=lemlist_conn_id, **kwargs)

    def apply(self, hook: LemlistHook, item: str) -> Any:
        return hook.delete_lead(self.campaign_id, item)


class LemlistMarkNotInterestedOperator(OutreachBulkOperator):
    """Mark leads not interested in every lemlist campaign.

    :param lead: a lead id or email, or a list of them (templated).
    :param lemlist_conn_id: lemlist connection (templated).
    """

    template_fields = ("lead", "lemlist_conn_id", "max_inline_wait")
    lead = ParameterAlias("items")
    lemlist_conn_id = ParameterAlias("conn_id")
    SPEC = ActionSpec(LemlistHook, "mark_not_interested", "lead", ID_OR_EMAIL, item_object="lead")

    def __init__(self, *, lead: Any, lemlist_conn_id: str = _CONN, **kwargs: Any) -> None:
        super().__init__(spec=self.SPEC, items=lead, conn_id=lemlist_conn_id, **kwargs)

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

    template_fields = ("value", "lemlist_conn_id", "max_inline_wait")
    value = ParameterAlias("items")
    lemlist_conn_id = ParameterAlias("conn_id")
    SPEC = ActionSpec(
        LemlistHook,
        "add_unsubscribe",
        "value",
        UNSUBSCRIBE_VALUE,
        batch_size=LemlistHook.MAX_BULK_UNSUBSCRIBES,
    )

    def __init__(
        self,
        *,
        value: Any,
        chunk_size: int = LemlistHook.MAX_BULK_UNSUBSCRIBES,
        lemlist_conn_id: str = _CONN,
        **kwargs: Any,
    ) -> None:
        if not 1 <= chunk_size <= LemlistHook.MAX_BULK_UNSUBSCRIBES:
            raise ValueError(
                f"{kwargs.get('task_id')}: chunk_size must be 1 to {LemlistHook.MAX_BULK_UNSUBSCRIBES}, got {chunk_size}"
            )
        spec = replace(self.SPEC, batch_size=chunk_size)
        super().__init__(spec=spec, items=value, conn_id=lemlist_conn_id, **kwargs)
        self.chunk_size = chunk_size

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

    template_fields = ("value", "lemlist_conn_id", "max_inline_wait")
    value = ParameterAlias("items")
    lemlist_conn_id = ParameterAlias("conn_id")
    SPEC = OutreachCheckOperator.spec_for(LemlistHook, "value", UNSUBSCRIBE_VALUE)

    def __init__(self, *, value: Any, lemlist_conn_id: str = _CONN, **kwargs: Any) -> None:
        super().__init__(spec=self.SPEC, items=value, conn_id=lemlist_conn_id, **kwargs)

    def honoured(self, hook: LemlistHook, value: str) -> bool:
        try:
            record = hook.get_unsubscribe(value)
        except NotFoundError as exc:
            if exc.missing == "unsubscribe":
                return False
            raise
        return str(record.get("value", "")).lower() == value.lower()
