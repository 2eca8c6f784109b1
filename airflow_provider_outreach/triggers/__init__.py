"""Triggers: async pollers that run on the triggerer, while a task is deferred or as an
asset's watcher."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_outreach.hooks.base import OutreachHook


def polling_hook(hook_cls: type[OutreachHook], conn_id: str, poll_interval: float) -> OutreachHook:
    """A hook for a trigger's polling loop: a few quick retries inside one poll, no wait
    longer than the poll interval; anything longer is the loop's job."""
    return hook_cls(
        conn_id,
        max_attempts=3,
        backoff=min(0.5, poll_interval / 4),
        max_retry_wait=poll_interval,
        max_inline_wait=poll_interval,
    )
