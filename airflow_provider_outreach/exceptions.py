"""Typed errors raised by the outreach hooks, operators and sensors, and the mapping of an
error answer to them.

Every error a vendor API answers with is mapped to one class here, whatever the vendor:
callers catch :class:`NotFoundError`, never parse a status out of a message. What differs
per vendor (how its error body reads) is the hook's ``error_fields``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from airflow_provider_outreach.version_compat import AirflowException, AirflowFailException


class OutreachError(AirflowException):
    """Base of every error raised by this provider."""


class InvalidInputError(OutreachError, AirflowFailException, ValueError):
    """A value given to a hook or operator is unusable; raised before any request is sent.
    A task failing on it is not retried: the same input would fail again."""


class ConnectionConfigError(OutreachError, AirflowFailException):
    """The Airflow connection is unusable (no API key, unsafe base URL, bad extra); a task
    failing on it is not retried until the connection is fixed."""


class OutreachAPIError(OutreachError):
    """An API call failed.

    :param vendor: ``lemlist``, ``leadlex`` or ``dialnexa``.
    :param status_code: HTTP status, or ``None`` when no answer arrived.
    :param code: the vendor's own error code (LeadLex ``error.code``, DialNexa ``error``).
    :param message: the vendor's own words, or what went wrong on the wire.
    :param request_id: the vendor's request id (LeadLex ``X-Request-ID``).
    :param retry_after: seconds the API asked to wait, when it said so.
    :param method: HTTP method of the failed call.
    :param path: path of the failed call, relative to the vendor's base URL.
    """

    def __init__(
        self,
        *,
        vendor: str,
        status_code: int | None = None,
        code: str | None = None,
        message: str = "",
        request_id: str | None = None,
        retry_after: float | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.vendor = vendor
        self.status_code = status_code
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after
        self.method = method
        self.path = path
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = " ".join(p for p in (self.method, self.path) if p)
        status = f"HTTP {self.status_code}" if self.status_code is not None else "no answer"
        text = f"{self.vendor} {where} failed: {status}".replace("  ", " ")
        if self.code:
            text += f" [{self.code}]"
        if self.message:
            text += f": {self.message}"
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after:.0f} s)"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text

    def __reduce__(self):
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls, state):
    err = cls.__new__(cls)
    err.__dict__.update(state)
    AirflowException.__init__(err, err._describe())
    return err


class AuthenticationError(OutreachAPIError):
    """401 or 403: the API key is wrong, expired or lacks a permission."""


class InvalidRequestError(OutreachAPIError):
    """400 or 422: the API refused the request as malformed."""


class NotFoundError(OutreachAPIError):
    """404. ``missing`` says what the vendor's answer names as missing (``"campaign"``,
    ``"lead"``, ...), or ``None`` when the answer is not one the vendor gives: a route
    nobody serves, a proxy's page, an empty body."""

    missing: str | None = None
    #: the parsed JSON error body, when the answer had one
    body: Any = None


class ConflictError(OutreachAPIError):
    """409: the object's state forbids the action (e.g. a campaign that is not a draft).
    ``state`` says which state, in the vendor's own answer (``"campaign_closed"``, ...), or
    ``None`` when the answer is not one the vendor gives."""

    state: str | None = None
    #: the parsed JSON error body, when the answer had one
    body: Any = None


class RateLimitError(OutreachAPIError):
    """429 after retries, or a required wait longer than the caller accepts inline."""


class ServerError(OutreachAPIError):
    """5xx after retries."""


class TransportError(OutreachAPIError):
    """No usable answer after retries: connection refused or dropped, timeout."""


class TLSVerificationError(TransportError):
    """The server's TLS certificate failed verification; retrying cannot help."""


class InvalidResponseError(OutreachAPIError):
    """The API answered success with a body that is not the JSON it documents."""


class UnexpectedResponseError(OutreachAPIError):
    """An answer the API does not document for this call: a redirect, a route nobody serves."""


class PreflightError(OutreachError):
    """The connection does not reach a working API (key refused, campaign missing, wrong
    base URL); raised before any item is sent, and no retry can help."""


class CampaignNotDraftError(OutreachError):
    """A draft-only action was refused without being sent: the campaign is not a draft."""

    def __init__(self, *, vendor: str, campaign_id: str, status: str | None) -> None:
        self.vendor = vendor
        self.campaign_id = campaign_id
        self.status = status
        super().__init__(f"{vendor} campaign {campaign_id} is {status}, not draft: not deleted")

    def __reduce__(self):
        return (_rebuild_not_draft, (self.vendor, self.campaign_id, self.status))


def _rebuild_not_draft(vendor: str, campaign_id: str, status: str | None) -> CampaignNotDraftError:
    return CampaignNotDraftError(vendor=vendor, campaign_id=campaign_id, status=status)


_BY_STATUS: dict[int, type[OutreachAPIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    422: InvalidRequestError,
    429: RateLimitError,
}


def error_class_for(status_code: int) -> type[OutreachAPIError]:
    """The exception class for an HTTP error status."""
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    if status_code >= 500:
        return ServerError
    return OutreachAPIError


# -- an error answer -> the typed error --------------------------------------------------------


def snippet(text: str, limit: int = 200) -> str:
    """``text`` on one line, cut at ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def readable(text: str) -> str:
    """A person-readable message from a plain-text or HTML error body."""
    if not text.strip():
        return ""
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title and title.group(1).strip():
        return snippet(title.group(1))
    return snippet(re.sub(r"<[^>]+>", " ", text))


def error_from_response(
    *,
    vendor: str,
    status_code: int,
    text: str,
    reason: str | None,
    error_fields: Callable[[Any], tuple[str | None, str | None]],
    request_id: str | None,
    retry_after: float | None,
    method: str,
    path: str,
) -> OutreachAPIError:
    """The typed error for an HTTP error answer.

    :param error_fields: the vendor's reading of a JSON error body, ``(code, message)``.
    :param retry_after: seconds the API asked to wait (used for a 429 only).
    """
    import json

    code, message = None, None
    try:
        body = json.loads(text) if text.strip() else None
    except ValueError:
        body = None
    if body is not None:
        try:
            code, message = error_fields(body)
        except (AttributeError, KeyError, TypeError, IndexError):
            code, message = None, None
    error = error_class_for(status_code)(
        vendor=vendor,
        status_code=status_code,
        code=code,
        message=message or readable(text) or reason or "",
        request_id=request_id,
        retry_after=retry_after if status_code == 429 else None,
        method=method,
        path=path,
    )
    error.body = body
    return error
