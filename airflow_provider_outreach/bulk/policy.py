"""How a bulk run behaves, and what each answer means for its item: the :class:`BulkPolicy`.

Light to import (an operator class declares its policy when the scheduler parses a DAG
file); the engine that applies it is :mod:`airflow_provider_outreach.bulk.engine`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_provider_outreach.bulk.report import ALREADY_ABSENT, FAILED
from airflow_provider_outreach.core.retry import Action, decide
from airflow_provider_outreach.exceptions import (
    AuthenticationError,
    CampaignNotDraftError,
    ConflictError,
    InvalidInputError,
    InvalidResponseError,
    NotFoundError,
    OutreachAPIError,
    UnexpectedResponseError,
)

#: the reason of an answer this API does not give for the call
UNEXPECTED = "unexpected_response"


@dataclass(frozen=True)
class BulkPolicy:
    """How a bulk run behaves.

    :param max_workers: concurrent calls (the hook's pacer keeps them within the rate limit).
    :param max_inline_wait: the longest rate-limit wait slept; a longer one ends the run
        with a :class:`QuotaWait`.
    :param missing_ok: a 404 proving the item itself is absent counts as ``already_absent``.
    :param item_object: what the vendor's 404 names when the item is absent (``"lead"``,
        ``"enrollment"``...; see the hook's ``missing_object``); any other 404 is an
        ``unexpected_response`` failure.
    :param campaign_scoped: items are addressed inside one campaign: its 404 fails the item
        (``campaign_not_found``) and stops the run.
    :param conflict_reason: report reason of a 409 (``None``: the error's class name).
    :param conflict_absent: a 409 whose state (the hook's ``conflict_state``) is
        ``conflict_reason`` counts as ``already_absent`` (the action can never be needed).
    :param max_unexpected: consecutive ``unexpected_response`` answers that stop the run; in
        chunks, also consecutive items refused each on its own (400) after halving.
    :param max_transient: consecutive items failing on transient errors (after the hook's
        own retries) that stop the run: the API is down (at least twice ``max_workers``, as
        concurrent calls meet a brief outage together).
    :param batch_size: send items in chunks of up to this many (one call per chunk);
        ``None``: one call per item.
    :param progress_every: seconds between progress log lines.
    """

    max_workers: int = 8
    max_inline_wait: float = 60.0
    missing_ok: bool = True
    item_object: str | None = None
    campaign_scoped: bool = False
    conflict_reason: str | None = None
    conflict_absent: bool = False
    max_unexpected: int = 10
    max_transient: int = 20
    batch_size: int | None = None
    #: the outcome of a call that returned ``value`` (default: ``done``)
    outcome_of: Callable[[Any], str] | None = None
    progress_every: float = 10.0

    def classify(self, exc: BaseException) -> tuple[str, dict[str, Any]]:
        """Outcome and details of a call that raised ``exc``; a failure's ``retryable`` says
        whether a later try of the task may cure it (the item is then sent again): a
        transient error (the retry rule's), a refused key (it can be fixed), an answer this
        API does not give, an error of unknown kind."""
        if isinstance(exc, NotFoundError):
            missing = getattr(exc, "missing", None)
            if missing is not None and missing == self.item_object:
                if self.missing_ok:
                    return ALREADY_ABSENT, {"status": exc.status_code, "code": exc.code, "message": exc.message}
                return FAILED, _api_failure(exc, "not_found")
            if missing == "campaign" and self.campaign_scoped:
                return FAILED, _api_failure(exc, "campaign_not_found")
            return FAILED, _api_failure(exc, UNEXPECTED, retryable=True)
        if isinstance(exc, (UnexpectedResponseError, InvalidResponseError)):
            return FAILED, _api_failure(exc, UNEXPECTED, retryable=True)
        if isinstance(exc, ConflictError):
            if self.conflict_absent and exc.state != self.conflict_reason:
                return FAILED, _api_failure(exc, UNEXPECTED, retryable=True)  # not the 409 the vendor gives
            if self.conflict_absent:
                return ALREADY_ABSENT, {
                    "status": exc.status_code,
                    "code": exc.code,
                    "message": f"{self.conflict_reason or 'conflict'}: {exc.message}",
                }
            return FAILED, _api_failure(exc, self.conflict_reason or type(exc).__name__)
        if isinstance(exc, CampaignNotDraftError):
            return FAILED, {"code": "campaign_not_draft", "message": str(exc), "reason": "campaign_not_draft"}
        if isinstance(exc, OutreachAPIError):
            transient = decide(exc, float("inf")).action is not Action.GIVE_UP
            return FAILED, _api_failure(exc, type(exc).__name__, transient or isinstance(exc, AuthenticationError))
        if isinstance(exc, InvalidInputError):
            return FAILED, {"message": str(exc), "reason": "invalid"}
        return FAILED, {"message": f"{type(exc).__name__}: {exc}", "reason": "error", "retryable": True}


def _api_failure(exc: OutreachAPIError, reason: str, retryable: bool = False) -> dict[str, Any]:
    return {"status": exc.status_code, "code": exc.code, "message": str(exc), "reason": reason, "retryable": retryable}
