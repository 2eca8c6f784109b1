"""Polls a campaign's status on the triggerer until it reaches a target, a failure status
or the deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.providers.common.compat.module_loading import import_string
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_outreach.campaign_wait import Verdict, judge
from airflow_provider_outreach.core.retry import Action, decide
from airflow_provider_outreach.exceptions import NotFoundError
from airflow_provider_outreach.hooks.base import OutreachHook
from airflow_provider_outreach.triggers import polling_hook


class CampaignStatusTrigger(BaseTrigger):
    """Poll ``GET campaign`` with one async client until the status settles.

    Failures the retry rule calls transient (5xx, 429, dropped connections) are polled
    through until the deadline; any other ends the wait at once. Yields exactly one JSON
    event ``{"status": "success" | "failure" | "timeout" | "error", "campaign_id",
    "campaign_status", "message"}``.

    :param hook_class: import path of the vendor's hook class.
    :param conn_id: the vendor connection.
    :param campaign_id: campaign to watch.
    :param target_statuses: statuses that end the wait successfully.
    :param failure_statuses: statuses that end it with a failure.
    :param poll_interval: seconds between polls.
    :param deadline: absolute end of the wait (epoch seconds), kept across triggerer restarts.
    """

    def __init__(
        self,
        *,
        hook_class: str,
        conn_id: str,
        campaign_id: str,
        target_statuses: list[str],
        failure_statuses: list[str],
        poll_interval: float,
        deadline: float,
    ) -> None:
        super().__init__()
        self.hook_class = hook_class
        self.conn_id = conn_id
        self.campaign_id = campaign_id
        self.target_statuses = sorted(target_statuses)
        self.failure_statuses = sorted(failure_statuses)
        self.poll_interval = float(poll_interval)
        self.deadline = float(deadline)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "hook_class": self.hook_class,
                "conn_id": self.conn_id,
                "campaign_id": self.campaign_id,
                "target_statuses": self.target_statuses,
                "failure_statuses": self.failure_statuses,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
            },
        )

    def _event(self, status: str, campaign_status: str | None, message: str) -> TriggerEvent:
        return TriggerEvent(
            {"status": status, "campaign_id": self.campaign_id, "campaign_status": campaign_status, "message": message}
        )

    def _hook(self) -> OutreachHook:
        cls = import_string(self.hook_class)
        if not (isinstance(cls, type) and issubclass(cls, OutreachHook)):
            raise TypeError(f"{self.hook_class} is not an outreach hook")
        return polling_hook(cls, self.conn_id, self.poll_interval)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            hook = self._hook()
            await hook.aload_connection()
        except Exception as exc:
            yield self._event("error", None, f"cannot use connection {self.conn_id!r}: {exc}")
            return
        where = f"{hook.vendor} campaign {self.campaign_id}"
        status: str | None = None
        async with hook.async_client() as client:
            while True:
                left = self.deadline - time.time()
                if left <= 0:
                    yield self._event(
                        "timeout",
                        status,
                        f"{where} did not reach {self.target_statuses} in time (last status: {status})",
                    )
                    return
                pause = self.poll_interval
                try:
                    # a slow or retried poll must not carry the wait past the deadline
                    campaign = await asyncio.wait_for(hook.aget_campaign(client, self.campaign_id), timeout=left)
                except asyncio.TimeoutError:
                    continue
                except NotFoundError as exc:
                    yield self._event("error", None, hook.not_found_message(exc, self.campaign_id))
                    return
                except Exception as exc:
                    decision = decide(exc, max_inline_wait=float("inf"))
                    if decision.action is Action.GIVE_UP:
                        yield self._event("error", status, str(exc))
                        return
                    self.log.warning("%s: %s; polling again", where, exc)
                    pause = max(pause, decision.wait or 0.0)
                else:
                    status = str(campaign.get("status"))
                    verdict, message = judge(where, status, self.target_statuses, self.failure_statuses)
                    if verdict is Verdict.WAITING:
                        self.log.info(message)
                    else:
                        yield self._event("success" if verdict is Verdict.REACHED else "failure", status, message)
                        return
                await asyncio.sleep(max(0.0, min(pause, self.deadline - time.time())))
