"""Typed errors raised by the outreach hooks, operators and sensors.

Every error a vendor API answers with is mapped to one class here, whatever the vendor:
callers catch :class:`NotFoundError`, never parse a status out of a message.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException


class OutreachError(AirflowException):
    """Base of every error raised by this provider."""


class InvalidInputError(OutreachError, ValueError):
    """A value given to a hook or operator is unusable; raised before any request is sent."""


class ConnectionConfigError(OutreachError):
    """The Airflow connection is unusable (no API key, unsafe base URL, bad extra)."""


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
    """404: the campaign, lead, contact or record does not exist (or no longer does)."""


class ConflictError(OutreachAPIError):
    """409: the object's state forbids the action (e.g. a campaign that is not a draft)."""


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
