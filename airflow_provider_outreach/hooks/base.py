"""The hook every vendor hook is built on: ``call``/``acall`` and the override points.

The shared parts live in :mod:`airflow_provider_outreach.core` (path encoding, connection
settings, the retry rule, pacing, the wire) and :mod:`airflow_provider_outreach.exceptions`
(error mapping); a vendor hook says only what differs: base URL, auth, error body, which
404 answers name a missing campaign, campaign statuses, endpoints, probe. Importing this
module loads no HTTP client and no retry library: they load on the first call.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_outreach.core.paths import build_path
from airflow_provider_outreach.exceptions import (
    AuthenticationError,
    ConflictError,
    ConnectionConfigError,
    InvalidInputError,
    InvalidRequestError,
    InvalidResponseError,
    NotFoundError,
    PreflightError,
    RateLimitError,
    UnexpectedResponseError,
    error_from_response,
    snippet,
)
from airflow_provider_outreach.version_compat import BaseHook

if TYPE_CHECKING:
    from airflow_provider_outreach.core.connection import ConnectionSettings
    from airflow_provider_outreach.core.pacing import Pacer
    from airflow_provider_outreach.core.transport import Answer, AsyncTransport, SyncTransport


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
    :param pool_size: HTTP connections kept open (at least the caller's concurrency).
    """

    # -- what a vendor hook declares ------------------------------------------------------
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
    #: the cheap authenticated read that proves the key works: (path, query)
    probe: ClassVar[tuple[str, dict[str, Any] | None]]
    #: where a campaign is read (its status included)
    campaign_path: ClassVar[str]
    #: the vendor's campaign statuses, and those a campaign never leaves
    campaign_statuses: ClassVar[type[Enum]]
    terminal_statuses: ClassVar[frozenset[str]]

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        timeout: float | tuple[float, float] | None = None,
        max_attempts: int = 8,
        max_retry_wait: float = 300.0,
        max_inline_wait: float = 60.0,
        backoff: float = 0.5,
        pool_size: int = 64,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_attempts < 1:
            raise InvalidInputError("max_attempts must be at least 1")
        self.conn_id = conn_id or self.default_conn_name
        setattr(self, self.conn_name_attr, self.conn_id)
        self.timeout_override = timeout
        self.max_attempts = max_attempts
        self.max_retry_wait = max_retry_wait
        self.max_inline_wait = max_inline_wait
        self.backoff = backoff
        self.pool_size = pool_size
        self.settings: ConnectionSettings | None = None
        self.pacer: Pacer | None = None
        self._transport: SyncTransport | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.conn_name_attr}={self.conn_id!r})"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        from airflow_provider_outreach.version_compat import AIRFLOW_V_3_2_PLUS

        if not AIRFLOW_V_3_2_PLUS and "conn_type" in cls.__dict__:
            # 3.2+ reads the connection form from the provider info; below, from the hook class
            from airflow_provider_outreach.hooks.connection_form import add_connection_form

            add_connection_form(cls)

    # -- what a vendor overrides -----------------------------------------------------------

    def auth_header(self, api_key: str) -> str:
        """The ``Authorization`` header value for the API key (Bearer by default)."""
        return f"Bearer {api_key}"

    def error_fields(self, body: Any) -> tuple[str | None, str | None]:
        """``(code, message)`` from a JSON error body."""
        return None, None

    def campaign_from(self, body: Any) -> dict[str, Any]:
        """The campaign object out of the answer to :attr:`campaign_path`."""
        return body

    def missing_object(self, error: NotFoundError, route: str) -> str | None:
        """What a 404 from ``route`` (a path template) names as missing, in the vendor's own
        words: ``"campaign"``, ``"lead"``, ... or ``None`` for an answer the vendor does not give."""
        return None

    def conflict_state(self, error: ConflictError, route: str) -> str | None:
        """Which state a 409 from ``route`` names, in the vendor's own words, or ``None`` for
        an answer the vendor does not give."""
        return None

    def probe_ok(self, body: Any) -> bool:
        """Whether the answer to :attr:`probe` is the shape this vendor answers with."""
        return True

    # -- connection ------------------------------------------------------------------------

    @property
    def base_url(self) -> str | None:
        return self.settings.base_url if self.settings else None

    @property
    def timeout(self) -> float | tuple[float, float]:
        if self.timeout_override is not None:
            return self.timeout_override
        from airflow_provider_outreach.core.connection import DEFAULT_TIMEOUT

        return self.settings.timeout if self.settings else DEFAULT_TIMEOUT

    def load_connection(self, conn: Any) -> ConnectionSettings:
        """Parse the Airflow connection once; the key is masked in logs from here on."""
        from airflow.providers.common.compat.sdk import mask_secret

        from airflow_provider_outreach.core.budget import budget_spec
        from airflow_provider_outreach.core.connection import ConnectionSettings
        from airflow_provider_outreach.core.pacing import get_pacer

        settings = ConnectionSettings.parse(
            conn,
            conn_id=self.conn_id,
            vendor=self.vendor,
            default_base_url=self.default_base_url,
            default_rate_limit=self.default_rate_limit,
        )
        mask_secret(settings.api_key)
        self.settings = settings
        self.pacer = get_pacer(self.vendor, settings.api_key, settings.rate_limit, budget_spec(settings))
        return settings

    def get_conn(self) -> SyncTransport:
        """The hook's pooled transport, built on first use from the Airflow connection."""
        if self._transport is None:
            from airflow_provider_outreach.core.transport import SyncTransport

            settings = self.load_connection(self.get_connection(self.conn_id))
            self._transport = SyncTransport(settings, self.auth_header(settings.api_key), pool_size=self.pool_size)
        return self._transport

    async def aload_connection(self) -> None:
        """Load the connection without blocking the event loop: Airflow's async lookup where it
        is safe on a shared event loop (3.3.2+), else the sync lookup in a worker thread; the
        parse (masking the key, opening the shared rate-limit store) runs in a worker thread too."""
        import asyncio

        from airflow.providers.common.compat.connection import get_async_connection

        conn = await get_async_connection(self.conn_id, hook=self)
        await asyncio.to_thread(self.load_connection, conn)

    # -- calls -----------------------------------------------------------------------------

    def _retrying_kwargs(self) -> dict[str, Any]:
        from airflow_provider_outreach.core.retry import retrying_kwargs

        return retrying_kwargs(
            max_inline_wait=self.max_inline_wait,
            max_attempts=self.max_attempts,
            max_retry_wait=self.max_retry_wait,
            base=self.backoff,
            log=self.log,
        )

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
        import tenacity

        path = build_path(template, **path_params)
        transport = self.get_conn()
        return tenacity.Retrying(**self._retrying_kwargs())(
            self._send_once, transport, method, template, path, query, json_body
        )

    def _send_once(
        self,
        transport: SyncTransport,
        method: str,
        template: str,
        path: str,
        query: Mapping[str, Any] | None,
        json_body: Any,
    ) -> Any:
        ticket = self._take_ticket(method, path)
        answer = None
        try:
            answer = transport.send(self.vendor, method, path, query, json_body, self.timeout)
        finally:
            self._return_ticket(ticket, answer)
        return self.read_answer(answer, method, template, path)

    def _take_ticket(self, method: str, path: str) -> Any:
        """The pacer's go for one request (it may sleep, and reads the shared store)."""
        from airflow_provider_outreach.core.pacing import PacingWait

        try:
            return self.pacer.acquire(self.max_inline_wait)
        except PacingWait as wait:
            raise RateLimitError(
                vendor=self.vendor,
                method=method,
                path=path,
                message="the rate limit is used up; waiting for the reset would exceed max_inline_wait",
                retry_after=wait.wait,
            ) from None

    def _return_ticket(self, ticket: Any, answer: Answer | None) -> None:
        """Tell the pacer how the request went: the answer's rate headers, or no answer."""
        from airflow_provider_outreach.core.pacing import parse_rate_headers

        info = parse_rate_headers(answer.headers) if answer is not None else None
        self.pacer.release(ticket, info, answer.status_code if answer is not None else None)

    def read_answer(self, answer: Answer, method: str, template: str, path: str) -> Any:
        """The parsed JSON of a success answer, or the typed error of any other.

        A 2xx to a state-changing call means the action happened, whatever its body: it
        returns the JSON, or the text when the body is not JSON. A redirect is an error.
        """
        if answer.status_code >= 400:
            from airflow_provider_outreach.core.pacing import parse_rate_headers

            info = parse_rate_headers(answer.headers)
            error = error_from_response(
                vendor=self.vendor,
                status_code=answer.status_code,
                text=answer.text or "",
                reason=answer.reason,
                error_fields=self.error_fields,
                request_id=self._request_id(answer),
                retry_after=info.retry_after if info.retry_after is not None else info.reset_in,
                method=method,
                path=path,
            )
            if isinstance(error, NotFoundError):
                error.missing = self.missing_object(error, template)
            elif isinstance(error, ConflictError):
                error.state = self.conflict_state(error, template)
            raise error
        if answer.status_code >= 300:
            raise UnexpectedResponseError(
                vendor=self.vendor,
                status_code=answer.status_code,
                method=method,
                path=path,
                message=f"redirected to {answer.headers.get('Location') or 'nowhere'}; not followed",
                request_id=self._request_id(answer),
            )
        if not answer.text:
            return None
        try:
            import json

            return json.loads(answer.text)
        except ValueError:
            if method not in ("GET", "HEAD"):
                return answer.text  # the action happened: its answer just is not JSON
            raise InvalidResponseError(
                vendor=self.vendor,
                status_code=answer.status_code,
                method=method,
                path=path,
                message=f"the answer is not valid JSON: {snippet(answer.text)!r}",
                request_id=self._request_id(answer),
            ) from None

    def _request_id(self, answer: Answer) -> str | None:
        return answer.headers.get(self.request_id_header) if self.request_id_header else None

    def get_campaign(self, campaign_id: str) -> dict[str, Any]:
        """The campaign object, ``status`` included."""
        return self._campaign(self.call("GET", self.campaign_path, campaign_id=campaign_id), campaign_id)

    def _campaign(self, body: Any, campaign_id: str) -> dict[str, Any]:
        """The campaign object of an answer, with a status this vendor gives.

        :raises InvalidResponseError: no campaign object, or a status the vendor does not give.
        """
        try:
            campaign = self.campaign_from(body)
        except (KeyError, TypeError, IndexError):
            campaign = None
        known = {status.value for status in self.campaign_statuses}
        if not isinstance(campaign, dict) or campaign.get("status") not in known:
            found = f"status {campaign.get('status')!r}" if isinstance(campaign, dict) else "no campaign object"
            raise InvalidResponseError(
                vendor=self.vendor,
                status_code=200,
                method="GET",
                path=build_path(self.campaign_path, campaign_id=campaign_id),
                message=f"the answer about campaign {campaign_id} is not one {self.vendor} gives: {found}",
            )
        return campaign

    # -- async calls (triggers) ------------------------------------------------------------

    def async_client(self) -> AsyncTransport:
        """An async transport for :meth:`acall`; reuse it (``async with``) for a whole polling loop."""
        from airflow_provider_outreach.core.transport import AsyncTransport

        if self.settings is None:
            raise ConnectionConfigError(f"connection {self.conn_id!r} is not loaded: await aload_connection() first")
        return AsyncTransport(self.settings, self.auth_header(self.settings.api_key), self.timeout)

    async def acall(
        self,
        client: AsyncTransport,
        method: str,
        template: str,
        *,
        query: Mapping[str, Any] | None = None,
        **path_params: Any,
    ) -> Any:
        """The async twin of :meth:`call`: same encoding, retry rule, waits and errors."""
        import tenacity

        path = build_path(template, **path_params)
        return await tenacity.AsyncRetrying(**self._retrying_kwargs())(
            self._asend_once, client, method, template, path, query
        )

    async def _asend_once(
        self, client: AsyncTransport, method: str, template: str, path: str, query: Mapping[str, Any] | None
    ) -> Any:
        """Paced like a sync call, in the same budget; the pacer's waits and store reads run
        in a worker thread, never on the event loop."""
        import asyncio

        ticket = await asyncio.to_thread(self._take_ticket, method, path)
        answer = None
        try:
            answer = await client.send(self.vendor, method, path, query, None)
        finally:
            await asyncio.to_thread(self._return_ticket, ticket, answer)
        return self.read_answer(answer, method, template, path)

    async def aget_campaign(self, client: AsyncTransport, campaign_id: str) -> dict[str, Any]:
        """The async twin of :meth:`get_campaign`."""
        return self._campaign(await self.acall(client, "GET", self.campaign_path, campaign_id=campaign_id), campaign_id)

    # -- connection test and preflight ------------------------------------------------------

    def preflight(self, campaign_id: str | None = None) -> str:
        """One read proving the connection reaches this vendor's API with a working key: the
        campaign when one is given, else the probe. Returns what was proven.

        :raises PreflightError: the key is refused, the campaign does not exist, or the
            base URL answers like no known API of this vendor (a permanent cause).
        :raises OutreachAPIError: a transient failure that outlasted the retries.
        """
        self.get_conn()
        try:
            if campaign_id is not None:
                campaign = self.get_campaign(campaign_id)
                if not isinstance(campaign, dict) or "status" not in campaign:
                    raise ValueError("the campaign has no status")
                return f"campaign {campaign_id} is {campaign['status']}"
            path, query = self.probe
            if not self.probe_ok(self.call("GET", path, query=query)):
                raise ValueError(f"GET {path} did not answer as {self.vendor} does")
            return "the API key works"
        except AuthenticationError as exc:
            raise PreflightError(f"{self._where()} refused the API key: {exc}") from None
        except NotFoundError as exc:
            raise PreflightError(self.not_found_message(exc, campaign_id)) from None
        except (
            UnexpectedResponseError,
            InvalidResponseError,
            InvalidRequestError,
            ValueError,
            KeyError,
            TypeError,
        ) as exc:
            raise PreflightError(self.unknown_api_message(exc)) from None

    def _where(self) -> str:
        return f"{self.vendor} at {self.base_url} (connection {self.conn_id!r})"

    def unknown_api_message(self, exc: Exception) -> str:
        """What to say of an answer no API of this vendor gives: the base URL is not its API."""
        return f"{self.base_url} answers like no known {self.vendor} API: {exc}"

    def not_found_message(self, exc: NotFoundError, campaign_id: str | None) -> str:
        """What a 404 of a campaign read says: the campaign is gone (the vendor's own answer),
        or the base URL is not this vendor's API (any other 404)."""
        if campaign_id is not None and exc.missing == "campaign":
            return f"campaign {campaign_id} not found on {self._where()}"
        return self.unknown_api_message(exc)

    def test_connection(self) -> tuple[bool, str]:
        """Make the vendor's cheap authenticated read; ``(ok, message)``."""
        try:
            self.preflight()
        except Exception as exc:  # the UI shows the message; never raise from here
            return False, str(exc)
        return True, f"Connected to {self.vendor} at {self.base_url}"
