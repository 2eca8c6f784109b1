"""Connection settings: parsed once from an Airflow Connection into a frozen object.

A field of the extra left empty or ``null`` (the Airflow UI writes untouched fields as
``null``) means its default, never "off".
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_outreach.exceptions import ConnectionConfigError

#: (connect, read) seconds
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 30.0)


@dataclass(frozen=True)
class ConnectionSettings:
    """What a hook needs from its Airflow connection.

    :param rate_limit: ``(requests, seconds)`` to pace to, or ``None`` to pace from the
        API's rate-limit headers.
    :param shared_rate_limit: share the key's budget with every process using it (extra
        ``shared_rate_limit``, default true); see :mod:`airflow_provider_outreach.core.budget`.
    :param redis_conn_id: an Airflow redis connection to share the budget through, across
        hosts; ``None``: a store on this host.
    :param rate_limit_dir: the directory of the on-host store; ``None``: the default.
    """

    conn_id: str
    base_url: str
    api_key: str = field(repr=False)
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT
    verify: bool = True
    trust_env: bool = True
    rate_limit: tuple[int, float] | None = None
    shared_rate_limit: bool = True
    redis_conn_id: str | None = None
    rate_limit_dir: str | None = None

    @classmethod
    def parse(
        cls,
        conn: Any,
        *,
        conn_id: str,
        vendor: str,
        default_base_url: str,
        default_rate_limit: tuple[int, float] | None,
    ) -> ConnectionSettings:
        """Read the API key, base URL, timeout, TLS and pacing settings of ``conn``.

        :raises ConnectionConfigError: naming the connection and the field at fault.
        """
        api_key = (conn.password or "").strip()
        if not api_key:
            raise ConnectionConfigError(
                f"connection {conn_id!r} has no API key: put the {vendor} API key in its password field"
            )
        extra = conn.extra_dejson if isinstance(conn.extra_dejson, Mapping) else {}
        settings = _Extra(conn_id, extra)
        return cls(
            conn_id=conn_id,
            base_url=resolve_base_url(conn.host, conn.port, conn_id=conn_id, vendor=vendor, default=default_base_url),
            api_key=api_key,
            timeout=settings.number("timeout") or DEFAULT_TIMEOUT,
            verify=settings.flag("verify_ssl", True),
            trust_env=settings.flag("trust_env", True),
            rate_limit=settings.rate_limit(vendor, default_rate_limit),
            shared_rate_limit=settings.flag("shared_rate_limit", True),
            redis_conn_id=settings.text("redis_conn_id"),
            rate_limit_dir=settings.text("rate_limit_dir"),
        )


class _Extra:
    """Typed reads of a connection's extra; ``None`` and ``""`` mean "not set"."""

    def __init__(self, conn_id: str, extra: Mapping[str, Any]) -> None:
        self.conn_id = conn_id
        self.extra = extra

    def _get(self, name: str) -> Any:
        value = self.extra.get(name)
        return None if value is None or (isinstance(value, str) and not value.strip()) else value

    def number(self, name: str) -> float | None:
        value = self._get(name)
        if value is None:
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConnectionConfigError(
                f"connection {self.conn_id!r}: extra {name!r} must be a number, got {value!r}"
            ) from None
        if not 0 < number < float("inf"):  # also refuses NaN
            raise ConnectionConfigError(f"connection {self.conn_id!r}: extra {name!r} must be positive, got {value!r}")
        return number

    def text(self, name: str) -> str | None:
        value = self._get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ConnectionConfigError(f"connection {self.conn_id!r}: extra {name!r} must be a string, got {value!r}")
        return value.strip()

    def flag(self, name: str, default: bool) -> bool:
        value = self._get(name)
        if value is None:
            return default
        if isinstance(value, str):
            return value.strip().lower() not in ("false", "0", "no", "off")
        return bool(value)

    def rate_limit(self, vendor: str, default: tuple[int, float] | None) -> tuple[int, float] | None:
        limit, period = self.number("rate_limit"), self.number("rate_limit_period")
        if limit is not None and limit != int(limit):
            raise ConnectionConfigError(f"connection {self.conn_id!r}: extra 'rate_limit' must be a whole number")
        if limit is None and period is None:
            return default
        if limit is None:
            if default is None:
                raise ConnectionConfigError(
                    f"connection {self.conn_id!r}: extra 'rate_limit_period' needs 'rate_limit' "
                    f"({vendor} publishes no default limit)"
                )
            return default[0], period
        return int(limit), period or (default[1] if default else 1.0)


def is_loopback(hostname: str | None) -> bool:
    if not hostname:
        return False
    if hostname.lower() == "localhost" or hostname.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_base_url(host: str | None, port: int | None, *, conn_id: str, vendor: str, default: str) -> str:
    """The API base URL: ``default`` (production) unless the connection sets a host.

    :raises ConnectionConfigError: for a host that is not http(s), or plain ``http`` to a
        host that is not loopback (the API key would travel in clear text).
    """
    host = (host or "").strip()
    if not host:
        return default
    url = host if "://" in host else f"https://{host}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectionConfigError(f"connection {conn_id!r}: host must be an http(s) URL or a host name, got {host!r}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConnectionConfigError(
            f"connection {conn_id!r}: refusing to send the {vendor} API key over plain http "
            f"to {parts.hostname}; use https (plain http is allowed only to a loopback host)"
        )
    netloc = parts.netloc
    if port and parts.port is None:
        netloc = f"{netloc}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
