"""The wire: one pooled ``requests`` session (sync) or ``httpx`` client (async) per hook.

Loaded when a task or trigger runs, never at DAG-parse time. It sends one request and
hands back the answer as an :class:`Answer`; what the answer means is the hook's business.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import requests
import requests.auth
from requests.adapters import HTTPAdapter

from airflow_provider_outreach import __version__
from airflow_provider_outreach.core.connection import ConnectionSettings
from airflow_provider_outreach.exceptions import (
    TLSVerificationError,
    TransportError,
    UnexpectedResponseError,
    snippet,
)

USER_AGENT = f"airflow-provider-outreach/{__version__}"
HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}
#: a redirect is followed only for these: a 302/303 would turn a DELETE into a GET
SAFE_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, whichever client received it."""

    status_code: int
    headers: Mapping[str, str]
    text: str
    reason: str | None


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


class SyncTransport:
    """A pooled ``requests.Session`` for one hook; only reads follow redirects."""

    def __init__(self, settings: ConnectionSettings, authorization: str, *, pool_size: int = 64) -> None:
        self.settings = settings
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(1, pool_size), max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers.update(HEADERS)
        session.verify = settings.verify
        session.trust_env = settings.trust_env
        session.auth = HeaderAuth(authorization)
        self.session = session

    def send(
        self, vendor: str, method: str, path: str, query: Mapping[str, Any] | None, json_body: Any, timeout: Any
    ) -> Answer:
        try:
            # verify per request: requests lets REQUESTS_CA_BUNDLE override a session's verify=False
            response = self.session.request(
                method,
                self.settings.base_url + path,
                params=query,
                json=json_body,
                timeout=timeout,
                verify=self.settings.verify,
                allow_redirects=method in SAFE_METHODS,
            )
        except requests.TooManyRedirects as exc:
            raise redirect_loop(vendor, method, path, exc) from None
        except requests.RequestException as exc:
            raise transport_error(exc)(vendor=vendor, method=method, path=path, message=describe(exc)) from None
        return Answer(response.status_code, response.headers, response.text, response.reason)

    def close(self) -> None:
        self.session.close()


class AsyncTransport:
    """An ``httpx.AsyncClient`` for one polling loop; use as an async context manager."""

    def __init__(self, settings: ConnectionSettings, authorization: str, timeout: Any) -> None:
        self.settings = settings
        if not isinstance(timeout, (int, float)):
            connect, read = timeout
            timeout = httpx.Timeout(read, connect=connect)
        self.client = httpx.AsyncClient(
            headers=HEADERS,
            auth=HeaderAuth(authorization),
            verify=settings.verify,
            trust_env=settings.trust_env,
            timeout=timeout,
        )

    async def __aenter__(self) -> AsyncTransport:
        await self.client.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.client.__aexit__(*exc)

    async def send(
        self, vendor: str, method: str, path: str, query: Mapping[str, Any] | None, json_body: Any
    ) -> Answer:
        try:
            response = await self.client.request(
                method,
                self.settings.base_url + path,
                params=query,
                json=json_body,
                follow_redirects=method in SAFE_METHODS,
            )
        except httpx.TooManyRedirects as exc:
            raise redirect_loop(vendor, method, path, exc) from None
        except httpx.HTTPError as exc:
            kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
            text = snippet(str(exc), 160) or type(exc).__doc__.splitlines()[0].strip().rstrip(".").lower()
            raise transport_error(exc)(
                vendor=vendor, method=method, path=path, message=f"{kind} ({type(exc).__name__}: {text})"
            ) from None
        return Answer(response.status_code, response.headers, response.text, response.reason_phrase)


def redirect_loop(vendor: str, method: str, path: str, exc: BaseException) -> UnexpectedResponseError:
    """A read redirected on and on: an answer no API gives, not a blip (no retry)."""
    return UnexpectedResponseError(
        vendor=vendor, method=method, path=path, message=f"redirected too many times ({type(exc).__name__})"
    )


def transport_error(exc: BaseException) -> type[TransportError]:
    """:class:`TLSVerificationError` when a certificate check is behind ``exc``, else :class:`TransportError`."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return TLSVerificationError
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return TransportError


def describe(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        kind = "timed out"
    elif isinstance(exc, requests.ConnectionError):
        kind = "connection failed"
    else:
        kind = "request failed"
    reason = exc.args[0] if exc.args else exc
    reason = getattr(reason, "reason", None) or reason  # the cause urllib3 wraps in MaxRetryError
    return f"{kind} ({type(exc).__name__}: {snippet(str(reason), 160)})"
