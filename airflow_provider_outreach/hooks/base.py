"""The HTTP core every vendor hook is built on.

One place for what the three APIs share: the connection (API key, base URL, transport
guard), one pooled ``requests.Session`` per hook, path-parameter encoding, pacing,
retries and the mapping of error answers to :mod:`airflow_provider_outreach.exceptions`.
A vendor hook only says what differs: its base URL, how it authenticates, how its error
body reads and which endpoints it calls.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import re
import ssl
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import requests
import requests.auth
import tenacity
from airflow.sdk import BaseHook
from requests.adapters import HTTPAdapter

from airflow_provider_outreach import __version__
from airflow_provider_outreach.exceptions import (
    ConnectionConfigError,
    InvalidInputError,
    InvalidResponseError,
    NotFoundError,
    OutreachAPIError,
    RateLimitError,
    ServerError,
    TLSVerificationError,
    TransportError,
    error_class_for,
)
from airflow_provider_outreach.pacing import PacingWait, get_pacer, parse_rate_headers

log = logging.getLogger(__name__)

USER_AGENT = f"airflow-provider-outreach/{__version__}"
DEFAULT_TIMEOUT = (10.0, 30.0)
MAX_PATH_PARAM_LENGTH = 2048
_HTML_TAG = re.compile(r"<[^>]+>")
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


class HeaderAuth(requests.auth.AuthBase, httpx.Auth):
    """Adds the ``Authorization`` header to each request (requests and httpx alike).

    The header value stays out of every repr, so a logged session or client shows no key.
    """

    def __init__(self, value: str) -> None:
        self._value = value

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._value
        return request

    def auth_flow(self, request: httpx.Request):
        request.headers["Authorization"] = self._value
        yield request

    def __repr__(self) -> str:
        return "HeaderAuth(***)"


def encode_path_param(name: str, value: Any) -> str:
    """Percent-encode one path parameter so it arrives as exactly one path segment.

    :raises InvalidInputError: for a value that encoding cannot protect (not a string,
        empty, whitespace only, ``.`` or ``..``, not encodable as UTF-8) or that is
        unreasonably long.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidInputError(f"{name} must be a string, got {type(value).__name__}")
    text = str(value)
    if not text.strip():
        raise InvalidInputError(f"{name} must not be empty or whitespace only")
    if text in (".", ".."):
        raise InvalidInputError(f"{name} must not be {text!r} (it would address the parent path)")
    if len(text) > MAX_PATH_PARAM_LENGTH:
        raise InvalidInputError(f"{name} is {len(text)} characters long; at most {MAX_PATH_PARAM_LENGTH} are accepted")
    try:
        return quote(text, safe="")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{name} is not valid text: {exc.reason} at position {exc.start}") from None


def build_path(template: str, **params: Any) -> str:
    """Fill ``template`` (``/campaigns/{campaign_id}``) with encoded parameters."""
    return template.format(**{name: encode_path_param(name, value) for name, value in params.items()})


def is_loopback(hostname: str | None) -> bool:
    if not hostname:
        return False
    if hostname.lower() == "localhost" or hostname.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def _as_float(conn_id: str, name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConnectionConfigError(f"connection {conn_id!r}: extra {name!r} must be a number, got {value!r}") from None
    if number <= 0:
        raise ConnectionConfigError(f"connection {conn_id!r}: extra {name!r} must be positive, got {value!r}")
    return number


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "off")
    return bool(value)


def is_transient(exc: BaseException, max_inline_wait: float) -> bool:
    """Whether a failed call is worth another attempt (the one retry rule for all vendors)."""
    if isinstance(exc, TLSVerificationError):
        return False
    if isinstance(exc, (ServerError, TransportError)):
        return True
    if isinstance(exc, RateLimitError) and exc.status_code == 429:
        return exc.retry_after is None or exc.retry_after <= max_inline_wait
    return False


def backoff_seconds(exc: BaseException | None, attempt: int, base: float, cap: float) -> float:
    """How long to wait before attempt ``attempt + 1``.

    A 429 waits exactly what the API asked for; anything else backs off exponentially
    with jitter.
    """
    if isinstance(exc, RateLimitError) and exc.retry_after is not None:
        return exc.retry_after
    delay = min(cap, base * 2 ** (attempt - 1))
    return delay + random.uniform(0, delay / 2)


class OutreachHook(BaseHook):
    """Shared base of the vendor hooks.

    :param conn_id: the Airflow connection; defaults to the vendor's ``*_default``.
    :param timeout: seconds, or a ``(connect, read)`` pair; overrides the connection's
        ``timeout`` extra (default ``(10, 30)``).
    :param max_attempts: attempts per call, the first included, for transient failures
        (429, 5xx, dropped connections, timeouts).
    :param max_retry_wait: most seconds one call may spend waiting between attempts.
    :param max_inline_wait: a single wait longer than this (a quota reset hours away) is
        not slept: :class:`~airflow_provider_outreach.exceptions.RateLimitError` is raised
        at once with ``retry_after`` set, so the caller can defer.
    :param backoff: first back-off delay in seconds for 5xx and transport errors.
    """

    vendor: ClassVar[str]
    conn_name_attr: ClassVar[str]
    default_conn_name: ClassVar[str]
    conn_type: ClassVar[str]
    hook_name: ClassVar[str]
    default_base_url: ClassVar[str]
    #: the documented rate limit as (requests, seconds); None to pace from headers
    default_rate_limit: ClassVar[tuple[int, float] | None] = None
    #: header carrying the vendor's request id
    request_id_header: ClassVar[str | None] = None
    #: the cheap authenticated read used by test_connection: (path, query)
    probe: ClassVar[tuple[str, dict[str, Any] | None]]
    #: where a campaign is read (its status included)
    campaign_path: ClassVar[str]

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        timeout: float | tuple[float, float] | None = None,
        max_attempts: int = 8,
        max_retry_wait: float = 300.0,
        max_inline_wait: float = 60.0,
        backoff: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id or self.default_conn_name
        setattr(self, self.conn_name_attr, self.conn_id)
        if max_attempts < 1:
            raise InvalidInputError("max_attempts must be at least 1")
        self.timeout_override = timeout
        self.max_attempts = max_attempts
        self.max_retry_wait = max_retry_wait
        self.max_inline_wait = max_inline_wait
        self.backoff = backoff
        self._session: requests.Session | None = None
        self.base_url: str | None = None
        self.timeout: float | tuple[float, float] = DEFAULT_TIMEOUT
        self.pacer = None
        self.verify = True
        self.trust_env = True
        self._auth: HeaderAuth | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.conn_name_attr}={self.conn_id!r})"

    # -- what a vendor overrides -------------------------------------------------------

    def auth_header(self, api_key: str) -> str:
        """The ``Authorization`` header value for the API key (Bearer by default)."""
        return f"Bearer {api_key}"

    def error_fields(self, body: Any) -> tuple[str | None, str | None]:
        """``(code, message)`` from a JSON error body; vendors override."""
        return None, None

    def campaign_from(self, body: Any) -> dict[str, Any]:
        """The campaign object out of the answer to :attr:`campaign_path`."""
        return body

    def campaign_missing(self, error: NotFoundError) -> bool:
        """Whether a 404 says the campaign is missing (rather than the item addressed in it)."""
        return False

    # -- connection ------------------------------------------------------------------------

    def get_conn(self) -> requests.Session:
        """The hook's session, built on first use from the Airflow connection."""
        if self._session is None:
            conn = self.get_connection(self.conn_id)
            self._configure(conn)
        return self._session  # type: ignore[return-value]

    def _configure(self, conn: Any) -> None:
        self.load_connection(conn)
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=64, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers.update(self._default_headers())
        session.verify = self.verify
        session.trust_env = self.trust_env
        session.auth = self._auth
        self._session = session

    def load_connection(self, conn: Any) -> None:
        """Read the API key, base URL, timeout and pacing from an Airflow connection."""
        api_key = (conn.password or "").strip()
        if not api_key:
            raise ConnectionConfigError(
                f"connection {self.conn_id!r} has no API key: put the {self.vendor} API key in its password field"
            )
        _mask(api_key)
        extra = conn.extra_dejson if isinstance(conn.extra_dejson, Mapping) else {}
        self.base_url = self.resolve_base_url(conn.host, conn.port)
        self.timeout = self._resolve_timeout(extra)
        self.verify = _as_bool(extra.get("verify_ssl", True))
        self.trust_env = _as_bool(extra.get("trust_env", True))
        self._auth = HeaderAuth(self.auth_header(api_key))
        self.pacer = get_pacer(self.vendor, self.base_url, api_key, *self._resolve_rate_limit(extra))

    def _default_headers(self) -> dict[str, str]:
        return {"User-Agent": USER_AGENT, "Accept": "application/json"}

    def resolve_base_url(self, host: str | None, port: int | None = None) -> str:
        """The API base URL: the vendor's production URL unless the connection sets a host.

        :raises ConnectionConfigError: for a host that is not http(s), or plain ``http``
            to a host that is not loopback (the API key would travel in clear text).
        """
        host = (host or "").strip()
        if not host:
            return self.default_base_url
        url = host if "://" in host else f"https://{host}"
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConnectionConfigError(
                f"connection {self.conn_id!r}: host must be an http(s) URL or a host name, got {host!r}"
            )
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ConnectionConfigError(
                f"connection {self.conn_id!r}: refusing to send the {self.vendor} API key over plain http "
                f"to {parts.hostname}; use https (plain http is allowed only to a loopback host)"
            )
        netloc = parts.netloc
        if port and parts.port is None:
            netloc = f"{netloc}:{port}"
        return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))

    def _resolve_timeout(self, extra: Mapping[str, Any]) -> float | tuple[float, float]:
        if self.timeout_override is not None:
            return self.timeout_override
        if extra.get("timeout") not in (None, ""):
            return _as_float(self.conn_id, "timeout", extra["timeout"])
        return DEFAULT_TIMEOUT

    def _resolve_rate_limit(self, extra: Mapping[str, Any]) -> tuple[int | None, float | None]:
        if extra.get("rate_limit") in (None, ""):
            return self.default_rate_limit or (None, None)
        limit = _as_float(self.conn_id, "rate_limit", extra["rate_limit"])
        if limit != int(limit):
            raise ConnectionConfigError(f"connection {self.conn_id!r}: extra 'rate_limit' must be a whole number")
        period = extra.get("rate_limit_period")
        if period in (None, ""):
            period = self.default_rate_limit[1] if self.default_rate_limit else 1.0
        return int(limit), _as_float(self.conn_id, "rate_limit_period", period)

    # -- calls -----------------------------------------------------------------------------

    def call(
        self,
        method: str,
        template: str,
        *,
        query: Mapping[str, Any] | None = None,
        json_body: Any = None,
        **path_params: Any,
    ) -> Any:
        """Call ``method template`` with encoded path parameters; return the parsed JSON.

        Paces to the rate limit, retries transient failures and raises the typed error
        of :mod:`airflow_provider_outreach.exceptions` for an error answer.
        """
        path = build_path(template, **path_params)
        session = self.get_conn()
        return tenacity.Retrying(**self._retry_policy())(self._send_once, session, method, path, query, json_body)

    def _retry_policy(self) -> dict[str, Any]:
        """The one retry policy of sync and async calls: what, how long, how often."""
        return {
            "retry": tenacity.retry_if_exception(lambda exc: is_transient(exc, self.max_inline_wait)),
            "wait": self._wait,
            "stop": self._stop,
            "before_sleep": self._log_retry,
            "reraise": True,
        }

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return backoff_seconds(exc, state.attempt_number, self.backoff, 30.0)

    def _stop(self, state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= self.max_attempts:
            return True
        return state.idle_for + state.upcoming_sleep > self.max_retry_wait

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.log.warning(
            "%s; attempt %d of %d, retrying in %.1f s", exc, state.attempt_number, self.max_attempts, state.upcoming_sleep
        )

    def _send_once(
        self, session: requests.Session, method: str, path: str, query: Mapping[str, Any] | None, json_body: Any
    ) -> Any:
        try:
            ticket = self.pacer.acquire(self.max_inline_wait)
        except PacingWait as wait:
            raise RateLimitError(
                vendor=self.vendor,
                method=method,
                path=path,
                message="the rate limit is used up; waiting for the reset would exceed max_inline_wait",
                retry_after=wait.wait,
            ) from None
        response = None
        try:
            # verify per request: requests lets REQUESTS_CA_BUNDLE override a session's verify=False
            response = session.request(
                method, self.base_url + path, params=query, json=json_body, timeout=self.timeout, verify=self.verify
            )
        except requests.RequestException as exc:
            raise _transport_error(exc)(
                vendor=self.vendor, method=method, path=path, message=_describe_transport(exc)
            ) from None
        finally:
            info = parse_rate_headers(response.headers) if response is not None else None
            self.pacer.release(ticket, info, response.status_code if response is not None else None)
        if response.status_code >= 400:
            raise self._error_from(response, method, path, info)
        return self._json(response, method, path)

    def _json(self, response: requests.Response, method: str, path: str) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise InvalidResponseError(
                vendor=self.vendor,
                status_code=response.status_code,
                method=method,
                path=path,
                message=f"the answer is not valid JSON: {_snippet(response.text)!r}",
                request_id=self._request_id(response),
            ) from None

    def _request_id(self, response: requests.Response) -> str | None:
        return response.headers.get(self.request_id_header) if self.request_id_header else None

    def _error_from(self, response: requests.Response, method: str, path: str, info: Any) -> OutreachAPIError:
        code, message = None, None
        text = response.text or ""
        try:
            body = json.loads(text) if text.strip() else None
        except ValueError:
            body = None
        if body is not None:
            try:
                code, message = self.error_fields(body)
            except (AttributeError, KeyError, TypeError, IndexError):
                code, message = None, None
        if not message:
            message = _readable(text) or getattr(response, "reason", None) or getattr(response, "reason_phrase", "")
        retry_after = None
        if response.status_code == 429:
            retry_after = info.retry_after if info.retry_after is not None else info.reset_in
        return error_class_for(response.status_code)(
            vendor=self.vendor,
            status_code=response.status_code,
            code=code,
            message=message,
            request_id=self._request_id(response),
            retry_after=retry_after,
            method=method,
            path=path,
        )

    def get_campaign(self, campaign_id: str) -> dict[str, Any]:
        """The campaign object, ``status`` included."""
        return self.campaign_from(self.call("GET", self.campaign_path, campaign_id=campaign_id))

    # -- async calls (triggers) ------------------------------------------------------------

    async def aload_connection(self) -> None:
        """Load the connection without blocking the event loop."""
        self.load_connection(await self.aget_connection(self.conn_id))

    def async_client(self) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` for :meth:`acall`; reuse it for a whole polling loop."""
        if self._auth is None:
            raise ConnectionConfigError(f"connection {self.conn_id!r} is not loaded: await aload_connection() first")
        timeout = self.timeout if isinstance(self.timeout, (int, float)) else None
        if timeout is None:
            connect, read = self.timeout
            timeout = httpx.Timeout(read, connect=connect)
        return httpx.AsyncClient(
            headers=self._default_headers(),
            auth=self._auth,
            verify=self.verify,
            trust_env=self.trust_env,
            timeout=timeout,
        )

    async def acall(
        self, client: httpx.AsyncClient, method: str, template: str, *, query: Mapping[str, Any] | None = None, **path_params: Any
    ) -> Any:
        """The async twin of :meth:`call`: same encoding, retry rule, waits and errors."""
        path = build_path(template, **path_params)
        return await tenacity.AsyncRetrying(**self._retry_policy())(self._asend_once, client, method, path, query)

    async def _asend_once(self, client: httpx.AsyncClient, method: str, path: str, query: Mapping[str, Any] | None) -> Any:
        try:
            response = await client.request(method, self.base_url + path, params=query)
        except httpx.HTTPError as exc:
            kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
            raise _transport_error(exc)(
                vendor=self.vendor, method=method, path=path, message=f"{kind} ({type(exc).__name__}: {_snippet(str(exc), 160)})"
            ) from None
        if response.status_code >= 400:
            raise self._error_from(response, method, path, parse_rate_headers(response.headers))
        return self._json(response, method, path)

    async def aget_campaign(self, client: httpx.AsyncClient, campaign_id: str) -> dict[str, Any]:
        """The async twin of :meth:`get_campaign`."""
        return self.campaign_from(await self.acall(client, "GET", self.campaign_path, campaign_id=campaign_id))

    # -- connection test -------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Make the vendor's cheap authenticated read; ``(ok, message)``."""
        path, query = self.probe
        try:
            self.call("GET", path, query=query)
        except Exception as exc:  # the UI shows the message; never raise from here
            return False, str(exc)
        return True, f"Connected to {self.vendor} at {self.base_url}"


def _mask(secret: str) -> None:
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - airflow.sdk always ships it on 3.2+
        return
    mask_secret(secret)


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _readable(text: str) -> str:
    """A person-readable message from a plain-text or HTML error body."""
    if not text.strip():
        return ""
    title = _HTML_TITLE.search(text)
    if title and title.group(1).strip():
        return _snippet(title.group(1))
    return _snippet(_HTML_TAG.sub(" ", text))


def _transport_error(exc: BaseException) -> type[TransportError]:
    """:class:`TLSVerificationError` when a certificate check is behind ``exc``, else :class:`TransportError`."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return TLSVerificationError
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return TransportError


def _describe_transport(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        kind = "timed out"
    elif isinstance(exc, requests.ConnectionError):
        kind = "connection failed"
    else:
        kind = "request failed"
    reason = exc.args[0] if exc.args else exc
    reason = getattr(reason, "reason", None) or reason  # the cause urllib3 wraps in MaxRetryError
    return f"{kind} ({type(exc).__name__}: {_snippet(str(reason), 160)})"
